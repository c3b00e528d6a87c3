//! Configuration (docs/config.md): built-in defaults, then the TOML file, then
//! `FACECAPTURED__<SECTION>__<KEY>` environment variables, read with the `config`
//! crate. Secrets may also come from `<key>_file` or a systemd credential of the
//! same name. Every problem is reported as one line naming the key.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

mod secrets;
#[cfg(test)]
mod tests;
mod validate;
pub(crate) use validate::is_site_name;

pub use crate::secret::Secret;
use secrets::read_limited;
pub use validate::check_base_url;

/// Where the daemon looks when no `--config` is given.
pub const DEFAULT_PATH: &str = "/etc/facecaptured/config.toml";

/// A bad configuration: the key and what is wrong with it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("config: {key}: {problem}")]
pub struct ConfigError {
    /// The key, as `section.key` (`server.base_url`).
    pub key: String,
    /// What is wrong with its value.
    pub problem: String,
}

fn bad(key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_owned(),
        problem: problem.into(),
    }
}

/// `[server]`: the AwareID tenant.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// AwareID's base URL: https, or http on a loopback address (the emulator).
    pub base_url: String,
    /// The customer: the token realm is `<customer_name>-consumers`.
    pub customer_name: String,
    /// The OAuth client id.
    pub client_id: String,
    /// The OAuth client secret (prefer the credential or `client_secret_file`).
    pub client_secret: Secret,
    /// A file whose first line is the client secret.
    pub client_secret_file: Option<PathBuf>,
    /// The `apikey` header (prefer the credential or `apikey_file`).
    pub apikey: Secret,
    /// A file whose first line is the apikey.
    pub apikey_file: Option<PathBuf>,
    /// An extra PEM trust anchor for the server and QR hosts, beside the system's
    /// roots; empty: the system's roots only.
    pub ca_file: String,
    /// Connect and whole-request timeout of one HTTP call, in seconds.
    pub timeout_s: u64,
    /// Keeps the way to AwareID ready for the next person: a call (getPublicKey)
    /// after this many seconds without one, so the connection stays open, and
    /// the token renewed before it lapses. 0: off (the first call after a quiet
    /// spell connects, and fetches a token, first).
    pub keep_warm_s: u64,
    /// The site's HTTP proxy for every AwareID call, QR hosts included:
    /// `http://host:port` or `https://host:port`, without credentials. Empty:
    /// `HTTPS_PROXY` (or `HTTP_PROXY`, `ALL_PROXY`) and `NO_PROXY` from the
    /// environment, as curl reads them; none set: direct.
    pub proxy: String,
    /// `user:password` for the proxy (HTTP Basic), a secret like the others.
    pub proxy_credentials: Secret,
    /// A file whose first line is the proxy's `user:password`.
    pub proxy_credentials_file: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            base_url: String::new(),
            customer_name: String::new(),
            client_id: String::new(),
            client_secret: Secret::default(),
            client_secret_file: None,
            apikey: Secret::default(),
            apikey_file: None,
            ca_file: String::new(),
            timeout_s: 15,
            keep_warm_s: 45,
            proxy: String::new(),
            proxy_credentials: Secret::default(),
            proxy_credentials_file: None,
        }
    }
}

/// `[qr]`: the keys QR codes are checked with; both empty: QR flows off.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct QrConfig {
    /// Path of AwareID's QR signing public key (PEM).
    pub signing_public_key: String,
    /// base64 of the 32-byte AES key.
    pub aes_key: Secret,
    /// A file whose first line is the AES key (base64).
    pub aes_key_file: Option<PathBuf>,
    /// Hosts a QR code may send the terminal to. Empty (the default): the host
    /// of `server.base_url` only; `["*"]`: any host whose code verifies. See
    /// [`Config::qr_allowed_hosts`].
    pub allowed_hosts: Vec<String>,
}

/// `camera.source`: where frames come from.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CameraSource {
    /// `"v4l"`: a V4L2 device.
    V4l,
    /// `"files"`: images from a directory or glob, for demos and tests.
    Files,
}

/// `[camera]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct CameraConfig {
    /// Where frames come from.
    pub source: CameraSource,
    /// The V4L2 device (a /dev/v4l/by-id/ link keeps the name stable).
    pub device: String,
    /// For `files`: a directory or glob, played in name order at `fps` and looped.
    pub path: String,
    /// The frame width asked for.
    pub width: u32,
    /// The frame height asked for.
    pub height: u32,
    /// The frame rate asked for.
    pub fps: u32,
    /// Pixel formats to ask for, preferred first (of [`KNOWN_FORMATS`]).
    pub formats: Vec<String>,
    /// Degrees (0, 90, 180, 270) to turn frames clockwise so that faces are upright.
    pub rotation: u32,
    /// Keep the camera streaming between operations (lowest latency, camera LED on).
    pub keep_open: bool,
}

impl Default for CameraConfig {
    fn default() -> Self {
        Self {
            source: CameraSource::V4l,
            device: "/dev/video0".into(),
            path: String::new(),
            width: 640,
            height: 480,
            fps: 30,
            formats: vec!["MJPG".into(), "YUYV".into(), "GREY".into()],
            rotation: 0,
            keep_open: false,
        }
    }
}

/// Pixel formats the camera module can convert, by V4L2 fourcc (`Y10` and `Y16`
/// may also be written with the fourcc's trailing space), and the two-plane
/// layouts of the multi-planar API by their V4L2 names (`NV12M` is fourcc `NM12`).
pub const KNOWN_FORMATS: [&str; 13] = [
    "MJPG", "JPEG", "YUYV", "UYVY", "NV12", "NV21", "NV16", "GREY", "Y10", "Y16", "NV12M", "NV21M",
    "NV16M",
];

/// `[capture]`: what makes a package.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct CaptureConfig {
    /// Compliant frames per package.
    pub frames: u32,
    /// Seconds to find a compliant face (or a QR code) before giving up.
    pub timeout_s: u64,
    /// Faces narrower than this, in pixels, are ignored.
    pub min_face_px: u32,
    /// JPEG quality of the packaged frames (1-100).
    pub jpeg_quality: u8,
    /// A SeetaFace model file; empty: the model embedded in the binary.
    pub face_model: String,
    /// Follow the face between full detections (`detect::Tracker`): a few
    /// times less work per frame once a face is found.
    pub track_face: bool,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        Self {
            frames: 3,
            timeout_s: 10,
            min_face_px: 100,
            jpeg_quality: 90,
            face_model: String::new(),
            track_face: true,
        }
    }
}

/// `face.encryption`: how face data travels.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Encryption {
    /// `"envelope"`: sealed to the server's key (docs/face-data.md).
    Envelope,
    /// `"none"`: in the clear, inside TLS.
    None,
}

/// `[face]`: the Face SDK package's settings.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct FaceConfig {
    /// The AwareID workflow: family and level (`hotel2`).
    pub workflow: String,
    /// How face data travels.
    pub encryption: Encryption,
    /// Sent as `meta_data.client_device_brand`.
    pub device_brand: String,
}

impl Default for FaceConfig {
    fn default() -> Self {
        Self {
            workflow: "hotel2".into(),
            encryption: Encryption::Envelope,
            device_brand: "Unknown".into(),
        }
    }
}

/// `dbus.bus`: which bus the daemon serves on.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Bus {
    /// `"system"`: production.
    System,
    /// `"session"`: development and tests.
    Session,
}

/// `[dbus]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct DbusConfig {
    /// Which bus.
    pub bus: Bus,
}

impl Default for DbusConfig {
    fn default() -> Self {
        Self { bus: Bus::System }
    }
}

/// `[storage]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// The database's directory (systemd's `$STATE_DIRECTORY` wins when set).
    pub state_dir: PathBuf,
    /// The sealed device identity, as systemd decrypted it into the credential
    /// `device_key` (see [`crate::crypto::sealed`]); empty when the key lives in
    /// the database (protection `plain`).
    #[serde(skip)]
    pub device_key: Secret,
    /// The sealed site identity, as systemd decrypted it into the credential
    /// `site_identity` (see [`crate::crypto::site`]); empty when this terminal
    /// is not in a site.
    #[serde(skip)]
    pub site_identity: Secret,
    /// Why provisioning failed on this start, as `facecaptured provision` wrote
    /// it for the credential `provisioning` (the unit's `LoadCredential=`);
    /// empty when it did not fail. Not secret. When set the daemon serves, but
    /// answers every enrollment and authentication Unprovisioned with it, at
    /// once, and signs nothing.
    #[serde(skip)]
    pub provisioning_failed: String,
}

/// The credential that carries why provisioning failed (see
/// [`StorageConfig::provisioning_failed`]).
pub const PROVISIONING_CREDENTIAL: &str = "provisioning";

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            state_dir: PathBuf::from("/var/lib/facecaptured"),
            device_key: Secret::default(),
            site_identity: Secret::default(),
            provisioning_failed: String::new(),
        }
    }
}

/// `[daemon]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct DaemonConfig {
    /// Every D-Bus method answers within this many seconds.
    pub operation_timeout_s: u64,
    /// Where to write the metrics for node_exporter's textfile collector (a
    /// `.prom` file, replaced atomically after each operation); empty: not written.
    pub metrics_textfile: PathBuf,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            operation_timeout_s: 20,
            metrics_textfile: PathBuf::new(),
        }
    }
}

/// `[site]`: the doors of a site sharing their enrollments through a NATS
/// JetStream hub (docs/identity.md). Without `hub` the terminal is alone and
/// nothing here is used.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct SiteConfig {
    /// The hub's NATS URLs (`nats://` or `tls://`); empty: not in a site.
    pub hub: Vec<String>,
    /// This terminal's name in the site (letters, digits, `-`, `_`); empty: the
    /// host name. The hub lets it write only under this name.
    pub door: String,
    /// The JetStream key-value bucket.
    pub bucket: String,
    /// A PEM file of the CA that signed the hub's certificate; empty: the
    /// system's roots.
    pub ca_file: PathBuf,
    /// How long, in seconds, a door cut off from the hub keeps authenticating
    /// from its copy (a revoked person must not be let in for ever by a door
    /// whose cable was cut); 0: no limit.
    pub max_stale_s: u64,
    /// The door's credential on the hub: `user:password`, or an nkey seed
    /// (`SU...`). Prefer the credential `hub_credentials` or the `_file`.
    pub hub_credentials: Secret,
    /// A file whose first line is [`Self::hub_credentials`].
    pub hub_credentials_file: Option<PathBuf>,
}

impl Default for SiteConfig {
    fn default() -> Self {
        Self {
            hub: Vec::new(),
            door: String::new(),
            bucket: "facecapture".into(),
            ca_file: PathBuf::new(),
            max_stale_s: 0,
            hub_credentials: Secret::default(),
            hub_credentials_file: None,
        }
    }
}

impl SiteConfig {
    /// Whether this terminal is in a site.
    pub fn enabled(&self) -> bool {
        !self.hub.is_empty()
    }
}

/// The whole configuration, validated, with secrets resolved.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[server]`.
    pub server: ServerConfig,
    /// `[qr]`.
    pub qr: QrConfig,
    /// `[camera]`.
    pub camera: CameraConfig,
    /// `[capture]`.
    pub capture: CaptureConfig,
    /// `[face]`.
    pub face: FaceConfig,
    /// `[dbus]`.
    pub dbus: DbusConfig,
    /// `[storage]`.
    pub storage: StorageConfig,
    /// `[daemon]`.
    pub daemon: DaemonConfig,
    /// `[site]`.
    pub site: SiteConfig,
}

/// Where the environment's secrets and overrides come from; injectable for tests.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// `FACECAPTURED__*` variables.
    pub vars: Vec<(String, String)>,
    /// `$CREDENTIALS_DIRECTORY`, set by systemd's LoadCredential=.
    pub credentials_dir: Option<PathBuf>,
    /// `$STATE_DIRECTORY`, set by systemd's StateDirectory=.
    pub state_dir: Option<PathBuf>,
    /// Whether systemd runs this process as a service (`$INVOCATION_ID` is
    /// set): secrets then come as credentials only, never from the
    /// environment, which `systemctl show` shows every user.
    pub under_systemd: bool,
}

impl Environment {
    /// The process environment.
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars()
                .filter(|(k, _)| k.starts_with("FACECAPTURED__"))
                .collect(),
            credentials_dir: std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from),
            state_dir: std::env::var_os("STATE_DIRECTORY")
                .map(PathBuf::from)
                .filter(|p| !p.as_os_str().is_empty()),
            under_systemd: std::env::var_os("INVOCATION_ID").is_some_and(|v| !v.is_empty()),
        }
    }
}

/// What must be configured for a use of the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// The daemon: the AwareID server and its secrets.
    Daemon,
    /// Offline tools: only what the command uses is checked when used.
    Nothing,
}

impl Config {
    /// Loads and validates. `path` is `--config`; without it the default path is read
    /// if it exists.
    pub fn load(path: Option<&Path>, env: &Environment, need: Need) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder();
        match path {
            Some(p) => {
                if !p.is_file() {
                    return Err(bad(
                        "--config",
                        format!("{} is not a readable file", p.display()),
                    ));
                }
                builder = builder.add_source(
                    config::File::from(p)
                        .format(config::FileFormat::Toml)
                        .required(true),
                );
            }
            None => {
                builder = builder.add_source(
                    config::File::with_name(DEFAULT_PATH)
                        .format(config::FileFormat::Toml)
                        .required(false),
                );
            }
        }
        let source = config::Environment::with_prefix("FACECAPTURED")
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .list_separator(",")
            .with_list_parse_key("camera.formats")
            .with_list_parse_key("qr.allowed_hosts")
            .source(Some(env.vars.iter().cloned().collect()));
        builder = builder.add_source(source);
        let raw = builder.build().map_err(from_config_error)?;
        let mut cfg: Config = raw.try_deserialize().map_err(from_config_error)?;
        if let Some(dir) = &env.state_dir {
            cfg.storage.state_dir = dir.clone();
        }
        cfg.resolve_secrets(env)?;
        // A start whose provisioning failed has no secrets (they did not open
        // either): the daemon serves only to answer Unprovisioned, and needs
        // none of them.
        let need = if cfg.storage.provisioning_failed.is_empty() {
            need
        } else {
            Need::Nothing
        };
        cfg.validate(need)?;
        Ok(cfg)
    }

    /// The hosts a QR code may send the terminal to, as the decoder takes them
    /// (an empty list: any host). `qr.allowed_hosts` when it lists hosts; when
    /// it is empty, the host of `server.base_url` alone: a correctly signed QR
    /// code naming another host would otherwise receive an enrolled user's
    /// registration code and the device's signatures on demand. `["*"]` is
    /// any host, for sites that really want it.
    ///
    /// ```
    /// let mut c = facecapture::config::Config::default();
    /// c.server.base_url = "https://tenant.awareid.example:8443/api".into();
    /// assert_eq!(c.qr_allowed_hosts(), ["tenant.awareid.example:8443"]);
    /// c.qr.allowed_hosts = vec!["*".into()];
    /// assert!(c.qr_allowed_hosts().is_empty(), "any host");
    /// c.qr.allowed_hosts = vec!["qr.awareid.example".into()];
    /// assert_eq!(c.qr_allowed_hosts(), ["qr.awareid.example"]);
    /// ```
    pub fn qr_allowed_hosts(&self) -> Vec<String> {
        match self.qr.allowed_hosts.as_slice() {
            [any] if any == "*" => Vec::new(),
            [] => vec![self.server.host()],
            hosts => hosts.to_vec(),
        }
    }

    /// The QR keys, if QR flows are configured: both keys or neither.
    pub fn qr_keys(&self) -> Result<Option<crate::crypto::qr::QrKeys>, ConfigError> {
        let q = &self.qr;
        match (q.signing_public_key.is_empty(), q.aes_key.is_empty()) {
            (true, true) => Ok(None),
            (false, true) => Err(bad(
                "qr.aes_key",
                "missing secret (qr.signing_public_key is set)",
            )),
            (true, false) => Err(bad(
                "qr.signing_public_key",
                "is required when qr.aes_key is set",
            )),
            (false, false) => {
                let pem = read_limited("qr.signing_public_key", Path::new(&q.signing_public_key))?;
                let key = aes_key(&q.aes_key)?;
                crate::crypto::qr::QrKeys::from_pem(&pem, key)
                    .map(Some)
                    .map_err(|_| bad("qr.signing_public_key", "is not a PEM RSA public key"))
            }
        }
    }
}

/// Decodes `qr.aes_key` (base64 of exactly 32 bytes).
pub fn aes_key(secret: &Secret) -> Result<[u8; 32], ConfigError> {
    let raw = Zeroizing::new(
        crate::crypto::unb64(secret.expose().trim())
            .map_err(|_| bad("qr.aes_key", "is not valid base64"))?,
    );
    raw.as_slice().try_into().map_err(|_| {
        bad(
            "qr.aes_key",
            format!("AES key must be 32 bytes, got {}", raw.len()),
        )
    })
}

impl ServerConfig {
    /// The host of `base_url`, with its port when it names one (as AwareID's
    /// QR codes and the stored enrollments name it); empty when the URL does
    /// not parse (validation refuses such a URL first).
    pub fn host(&self) -> String {
        url::Url::parse(&self.base_url)
            .ok()
            .and_then(|u| {
                u.host_str()
                    .map(|h| u.port().map_or(h.to_owned(), |p| format!("{h}:{p}")))
            })
            .unwrap_or_default()
    }
}

/// Turns the config crate's messages into one line naming the key.
fn from_config_error(err: config::ConfigError) -> ConfigError {
    let text = err.to_string();
    // The config crate says e.g. "unknown field `foo`, expected one of ... for key `server`"
    // or "invalid type: string \"x\", expected u32 for key `camera.width` in FILE".
    let key = text
        .rsplit_once("for key `")
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(k, _)| k.to_owned());
    let problem = match text.find(" for key `") {
        Some(i) => text[..i].to_owned(),
        None => text.clone(),
    };
    match (key, problem) {
        (Some(k), p) if p.starts_with("unknown field") => {
            let field = p.split('`').nth(1).unwrap_or("?");
            bad(&format!("{k}.{field}"), "unknown key")
        }
        (Some(k), p) => bad(&k, p),
        (None, p) if p.starts_with("unknown field") => {
            let field = p.split('`').nth(1).unwrap_or("?");
            bad(field, "unknown key")
        }
        (None, p) => bad("config", p),
    }
}
