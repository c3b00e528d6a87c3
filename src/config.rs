//! Configuration (SPEC 8): built-in defaults, then the TOML file, then
//! `FACECAPTURED__<SECTION>__<KEY>` environment variables, read with the `config`
//! crate. Secrets may also come from `<key>_file` or a systemd credential of the
//! same name. Every problem is reported as one line naming the key.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

pub use crate::secret::Secret;

/// Where the daemon looks when no `--config` is given.
pub const DEFAULT_PATH: &str = "/etc/facecaptured/config.toml";
/// Largest secret or key file we read.
const MAX_SECRET_FILE: u64 = 64 * 1024;

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
    /// An extra PEM trust anchor for the server and QR hosts; empty: the public roots only.
    pub ca_file: String,
    /// Connect and whole-request timeout of one HTTP call, in seconds.
    pub timeout_s: u64,
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
    /// `"envelope"`: sealed to the server's key (SPEC 4).
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
}

/// The secret keys and the credentials that carry them.
const SECRET_KEYS: [(&str, &str); 4] = [
    ("server.client_secret", "client_secret"),
    ("server.apikey", "apikey"),
    ("server.proxy_credentials", "proxy_credentials"),
    ("qr.aes_key", "aes_key"),
];

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

    fn resolve_secrets(&mut self, env: &Environment) -> Result<(), ConfigError> {
        // A unit's Environment= is shown to every user by `systemctl show`.
        if env.under_systemd {
            for (key, credential) in SECRET_KEYS {
                let var = format!("FACECAPTURED__{}", key.replace('.', "__").to_uppercase());
                if env.vars.iter().any(|(k, _)| *k == var) {
                    return Err(bad(
                        key,
                        format!(
                            "a secret in the environment ({var}) is shown to every user by \
                             systemctl show: under systemd secrets come as credentials only; put \
                             it in /etc/facecaptured/credentials/{credential} and restart the \
                             service, which seals it, and remove the variable"
                        ),
                    ));
                }
            }
        }
        let creds = env.credentials_dir.as_deref();
        resolve(
            "server.client_secret",
            &mut self.server.client_secret,
            self.server.client_secret_file.as_deref(),
            creds,
            "client_secret",
        )?;
        resolve(
            "server.apikey",
            &mut self.server.apikey,
            self.server.apikey_file.as_deref(),
            creds,
            "apikey",
        )?;
        resolve(
            "server.proxy_credentials",
            &mut self.server.proxy_credentials,
            self.server.proxy_credentials_file.as_deref(),
            creds,
            "proxy_credentials",
        )?;
        resolve(
            "qr.aes_key",
            &mut self.qr.aes_key,
            self.qr.aes_key_file.as_deref(),
            creds,
            "aes_key",
        )?;
        // Not config keys: only systemd puts them there (LoadCredentialEncrypted=,
        // LoadCredential=).
        let mut failed = Secret::default();
        resolve(
            PROVISIONING_CREDENTIAL,
            &mut failed,
            None,
            creds,
            PROVISIONING_CREDENTIAL,
        )?;
        self.storage.provisioning_failed = failed.expose().trim().to_owned();
        resolve(
            "device_key",
            &mut self.storage.device_key,
            None,
            creds,
            crate::crypto::sealed::CREDENTIAL,
        )
    }

    fn validate(&self, need: Need) -> Result<(), ConfigError> {
        if !self.storage.device_key.is_empty() {
            crate::crypto::sealed::SealedIdentity::parse(
                self.storage.device_key.expose().as_bytes(),
            )
            .map_err(|e| {
                bad(
                    "device_key",
                    format!("the credential device_key {e}; run facecaptured provision again"),
                )
            })?;
        }
        let s = &self.server;
        if need == Need::Daemon || !s.base_url.is_empty() {
            check_base_url(&s.base_url)?;
        }
        if need == Need::Daemon {
            for (key, value) in [
                ("server.customer_name", s.customer_name.as_str()),
                ("server.client_id", s.client_id.as_str()),
            ] {
                if value.trim().is_empty() {
                    return Err(bad(key, "is required"));
                }
            }
            if s.client_secret.is_empty() {
                return Err(bad(
                    "server.client_secret",
                    "missing secret (set it, client_secret_file, or the systemd credential client_secret: on a terminal, put it in /etc/facecaptured/credentials/client_secret and restart the service, which seals it)",
                ));
            }
            if s.apikey.is_empty() {
                return Err(bad(
                    "server.apikey",
                    "missing secret (set it, apikey_file, or the systemd credential apikey: on a terminal, put it in /etc/facecaptured/credentials/apikey and restart the service, which seals it)",
                ));
            }
        }
        if !s.customer_name.is_empty()
            && !s
                .customer_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(bad(
                "server.customer_name",
                "may hold only letters, digits, '-' and '_'",
            ));
        }
        if !s.ca_file.is_empty() {
            read_limited("server.ca_file", Path::new(&s.ca_file))?;
        }
        in_range("server.timeout_s", s.timeout_s, 1, 120)?;
        s.proxy_settings()?;

        // The AES key is a secret, a credential only the service can open: an offline
        // tool (and doctor) reading an installed terminal's configuration lacks it,
        // and checks the QR keys when it uses them.
        if need == Need::Daemon || !self.qr.aes_key.is_empty() {
            self.qr_keys()?;
        }
        let hosts = &self.qr.allowed_hosts;
        if hosts.len() > 1 && hosts.iter().any(|h| h == "*") {
            return Err(bad(
                "qr.allowed_hosts",
                "\"*\" (any host) stands alone: it cannot be listed with hosts",
            ));
        }
        for host in hosts.iter().filter(|h| *h != "*") {
            if host.is_empty() || host.contains('/') || host.contains("://") || host.contains('*') {
                return Err(bad(
                    "qr.allowed_hosts",
                    format!("{host:?} is not a host name"),
                ));
            }
        }

        let c = &self.camera;
        if c.source == CameraSource::Files && c.path.is_empty() {
            return Err(bad(
                "camera.path",
                "is required when camera.source = \"files\"",
            ));
        }
        if c.source == CameraSource::V4l && c.device.is_empty() {
            return Err(bad(
                "camera.device",
                "is required when camera.source = \"v4l\"",
            ));
        }
        in_range("camera.width", c.width.into(), 16, 4096)?;
        in_range("camera.height", c.height.into(), 16, 4096)?;
        in_range("camera.fps", c.fps.into(), 1, 120)?;
        if c.formats.is_empty() {
            return Err(bad("camera.formats", "must name at least one format"));
        }
        if let Some(f) = c
            .formats
            .iter()
            .find(|f| !KNOWN_FORMATS.contains(&f.trim_end_matches(' ')))
        {
            return Err(bad(
                "camera.formats",
                format!("unknown format {f:?} (known: {})", KNOWN_FORMATS.join(", ")),
            ));
        }
        if ![0, 90, 180, 270].contains(&c.rotation) {
            return Err(bad("camera.rotation", "must be 0, 90, 180 or 270"));
        }

        let cap = &self.capture;
        in_range("capture.frames", cap.frames.into(), 1, 10)?;
        in_range("capture.timeout_s", cap.timeout_s, 1, 60)?;
        in_range("capture.min_face_px", cap.min_face_px.into(), 40, 2000)?;
        in_range("capture.jpeg_quality", cap.jpeg_quality.into(), 1, 100)?;
        if !cap.face_model.is_empty() && !Path::new(&cap.face_model).is_file() {
            return Err(bad(
                "capture.face_model",
                format!("{:?} is not a readable file", cap.face_model),
            ));
        }

        let w = &self.face.workflow;
        if w.is_empty() || w.len() > 32 || !w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(bad(
                "face.workflow",
                "must be a workflow name such as hotel2, charlie4",
            ));
        }
        if self.face.device_brand.len() > 64 {
            return Err(bad("face.device_brand", "is longer than 64 characters"));
        }
        in_range(
            "daemon.operation_timeout_s",
            self.daemon.operation_timeout_s,
            1,
            24,
        )
        .map_err(|e| {
            bad(
                &e.key,
                format!("{} (D-Bus callers time out after 25 s)", e.problem),
            )
        })?;
        if !self.storage.state_dir.is_absolute() {
            return Err(bad("storage.state_dir", "must be an absolute path"));
        }
        let textfile = &self.daemon.metrics_textfile;
        if !textfile.as_os_str().is_empty()
            && (!textfile.is_absolute() || textfile.extension().is_none_or(|e| e != "prom"))
        {
            return Err(bad(
                "daemon.metrics_textfile",
                format!(
                    "{} is not an absolute path ending in .prom (node_exporter's textfile \
                     collector reads only *.prom files)",
                    textfile.display()
                ),
            ));
        }
        Ok(())
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

fn resolve(
    key: &str,
    value: &mut Secret,
    file: Option<&Path>,
    creds: Option<&Path>,
    credential: &str,
) -> Result<(), ConfigError> {
    if let Some(file) = file {
        if !value.is_empty() {
            return Err(bad(key, format!("is set both directly and as {key}_file")));
        }
        *value =
            Secret::new(read_limited(&format!("{key}_file"), file)?.trim_end_matches(['\n', '\r']));
        return Ok(());
    }
    if value.is_empty()
        && let Some(dir) = creds
    {
        let path = dir.join(credential);
        if path.exists() {
            *value = Secret::new(
                read_limited(&format!("{key} (credential {credential})"), &path)?
                    .trim_end_matches(['\n', '\r']),
            );
        }
    }
    Ok(())
}

fn read_limited(key: &str, path: &Path) -> Result<String, ConfigError> {
    use std::io::Read;
    let file = std::fs::File::open(path)
        .map_err(|e| bad(key, format!("cannot read {}: {e}", path.display())))?;
    let mut text = String::new();
    file.take(MAX_SECRET_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| bad(key, format!("cannot read {}: {e}", path.display())))?;
    if text.len() as u64 > MAX_SECRET_FILE {
        return Err(bad(
            key,
            format!("{} is larger than 64 KiB", path.display()),
        ));
    }
    Ok(text)
}

fn in_range(key: &str, value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(bad(
            key,
            format!("must be between {min} and {max}, got {value}"),
        ))
    }
}

/// `server.base_url` must be https, except on a loopback address.
pub fn check_base_url(base_url: &str) -> Result<url::Url, ConfigError> {
    const KEY: &str = "server.base_url";
    if base_url.is_empty() {
        return Err(bad(KEY, "is required"));
    }
    let url = url::Url::parse(base_url).map_err(|e| bad(KEY, format!("is not a URL ({e})")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(KEY, "must not carry credentials"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad(KEY, "must not have a query or fragment"));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(bad(
            KEY,
            "must be https (plain http is allowed only on a loopback address)",
        )),
        other => Err(bad(KEY, format!("unsupported scheme {other:?}"))),
    }
}

/// Where a proxy is, as `server.proxy` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxySettings {
    /// `true` for an `https://` proxy (TLS to the proxy itself).
    pub https: bool,
    /// Its host name or address.
    pub host: String,
    /// Its port (default 80 for http, 443 for https).
    pub port: u16,
    /// `user` and `password` for HTTP Basic, from `server.proxy_credentials`.
    pub credentials: Option<(String, Secret)>,
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

    /// The proxy `server.proxy` names, checked; `None` when the key is empty
    /// (the environment's proxy, if any, applies then).
    ///
    /// ```
    /// let mut s = facecapture::config::ServerConfig::default();
    /// s.proxy = "http://proxy.example:3128".into();
    /// let p = s.proxy_settings().unwrap().unwrap();
    /// assert_eq!((p.host.as_str(), p.port), ("proxy.example", 3128));
    /// s.proxy = "socks5://proxy.example:1080".into();
    /// assert!(s.proxy_settings().unwrap_err().to_string().contains("http:// or https://"));
    /// ```
    pub fn proxy_settings(&self) -> Result<Option<ProxySettings>, ConfigError> {
        const KEY: &str = "server.proxy";
        if self.proxy.is_empty() {
            if !self.proxy_credentials.is_empty() {
                return Err(bad(
                    "server.proxy_credentials",
                    "is set but server.proxy is not (a proxy from HTTPS_PROXY carries its own)",
                ));
            }
            return Ok(None);
        }
        let url =
            url::Url::parse(&self.proxy).map_err(|e| bad(KEY, format!("is not a URL ({e})")))?;
        let https = match url.scheme() {
            "http" => false,
            "https" => true,
            other => {
                return Err(bad(
                    KEY,
                    format!("must be an http:// or https:// proxy URL, not {other}://"),
                ));
            }
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(
                KEY,
                "must not carry credentials: put user:password in server.proxy_credentials \
                 (a secret: its _file or the systemd credential proxy_credentials)",
            ));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(bad(
                KEY,
                "must be only scheme, host and port (no path or query)",
            ));
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(bad(KEY, "names no host")),
        };
        let port = url.port().unwrap_or(if https { 443 } else { 80 });
        let credentials = if self.proxy_credentials.is_empty() {
            None
        } else {
            let (user, password) = self
                .proxy_credentials
                .expose()
                .split_once(':')
                .ok_or_else(|| bad("server.proxy_credentials", "must be user:password"))?;
            if user.is_empty() {
                return Err(bad("server.proxy_credentials", "names no user"));
            }
            Some((user.to_owned(), Secret::new(password)))
        };
        Ok(Some(ProxySettings {
            https,
            host,
            port,
            credentials,
        }))
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        let mut f = std::fs::File::create(&p).expect("create");
        f.write_all(text.as_bytes()).expect("write");
        p
    }

    const GOOD: &str = r#"
[server]
base_url = "https://awareid.example.com"
customer_name = "acme"
client_id = "door"
client_secret = "s3cret"
apikey = "k3y"
"#;

    fn load(text: &str, env: &Environment) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().expect("tmp");
        let p = write(dir.path(), "c.toml", text);
        Config::load(Some(&p), env, Need::Daemon)
    }

    #[test]
    fn defaults_match_the_spec() {
        let c = load(GOOD, &Environment::default()).expect("load");
        assert_eq!(c.server.timeout_s, 15);
        assert_eq!(c.camera.device, "/dev/video0");
        assert_eq!(
            (c.camera.width, c.camera.height, c.camera.fps),
            (640, 480, 30)
        );
        assert_eq!(c.camera.formats, ["MJPG", "YUYV", "GREY"]);
        assert_eq!(c.capture, CaptureConfig::default());
        assert_eq!(
            (c.capture.frames, c.capture.timeout_s, c.capture.min_face_px),
            (3, 10, 100)
        );
        assert_eq!(c.face.workflow, "hotel2");
        assert_eq!(c.face.encryption, Encryption::Envelope);
        assert_eq!(c.dbus.bus, Bus::System);
        assert_eq!(c.storage.state_dir, PathBuf::from("/var/lib/facecaptured"));
        assert_eq!(c.daemon.operation_timeout_s, 20);
        assert_eq!(c.server.client_secret.expose(), "s3cret");
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn the_proxy_is_checked_and_its_credentials_are_a_secret() {
        let with = |extra: &str, env: &Environment| {
            load(
                &GOOD.replace("[server]\n", &format!("[server]\n{extra}\n")),
                env,
            )
        };
        let none = Environment::default();
        let c = with("proxy = \"http://proxy.example:3128\"", &none).expect("proxy");
        let p = c.server.proxy_settings().expect("valid").expect("set");
        assert_eq!(
            (p.https, p.host.as_str(), p.port),
            (false, "proxy.example", 3128)
        );
        assert!(p.credentials.is_none());
        let c = with("proxy = \"https://[::1]\"", &none).expect("https proxy");
        let p = c.server.proxy_settings().expect("valid").expect("set");
        assert_eq!((p.https, p.host.as_str(), p.port), (true, "::1", 443));
        assert_eq!(
            with("", &none).expect("none").server.proxy_settings(),
            Ok(None)
        );
        for (proxy, says) in [
            ("socks5://proxy.example:1080", "http:// or https://"),
            (
                "http://door:pw@proxy.example:3128",
                "server.proxy_credentials",
            ),
            ("http://proxy.example:3128/path", "no path"),
            ("proxy.example:3128", "http:// or https://"),
            ("http://", "not a URL"),
        ] {
            let e = with(&format!("proxy = \"{proxy}\""), &none).expect_err(proxy);
            assert_eq!(e.key, "server.proxy", "{proxy}: {e}");
            assert!(e.problem.contains(says), "{proxy}: {e}");
            assert!(
                !e.to_string().contains("pw@"),
                "credentials never shown: {e}"
            );
        }
        // The credentials: a systemd credential, user:password, only with a proxy.
        let dir = tempfile::tempdir().expect("tmp");
        write(dir.path(), "proxy_credentials", "door:pa:ss\n");
        let env = Environment {
            credentials_dir: Some(dir.path().to_owned()),
            ..Environment::default()
        };
        let c = with("proxy = \"http://proxy.example:3128\"", &env).expect("credential");
        let p = c.server.proxy_settings().expect("valid").expect("set");
        let (user, password) = p.credentials.expect("credentials");
        assert_eq!((user.as_str(), password.expose()), ("door", "pa:ss"));
        assert!(!format!("{c:?}").contains("pa:ss"));
        let e = with("", &env).expect_err("credentials without a proxy");
        assert_eq!(e.key, "server.proxy_credentials");
        let e = with(
            "proxy = \"http://proxy.example:3128\"\nproxy_credentials = \"nocolon\"",
            &none,
        )
        .expect_err("not user:password");
        assert!(e.to_string().contains("user:password"), "{e}");
        assert!(!e.to_string().contains("nocolon"), "{e}");
    }

    #[test]
    fn environment_overrides_file_and_state_directory_wins() {
        let env = Environment {
            vars: vec![
                ("FACECAPTURED__CAPTURE__FRAMES".into(), "5".into()),
                (
                    "FACECAPTURED__QR__ALLOWED_HOSTS".into(),
                    "a.example,b.example".into(),
                ),
                ("FACECAPTURED__SERVER__APIKEY".into(), "12345".into()),
            ],
            credentials_dir: None,
            state_dir: Some("/run/state".into()),
            under_systemd: false,
        };
        let c = load(GOOD, &env).expect("load");
        assert_eq!(c.capture.frames, 5);
        assert_eq!(c.qr.allowed_hosts, ["a.example", "b.example"]);
        assert_eq!(c.server.apikey.expose(), "12345");
        assert_eq!(c.storage.state_dir, PathBuf::from("/run/state"));
    }

    /// Under systemd a secret in the environment is refused (issue 27, item 9):
    /// `systemctl show` prints a unit's Environment= to every user.
    #[test]
    fn under_systemd_secrets_do_not_come_from_the_environment() {
        let mut env = Environment {
            vars: vec![("FACECAPTURED__SERVER__APIKEY".into(), "12345".into())],
            under_systemd: true,
            ..Environment::default()
        };
        let e = load(GOOD, &env).expect_err("a secret in the environment");
        assert_eq!(e.key, "server.apikey");
        assert!(
            e.to_string().contains("FACECAPTURED__SERVER__APIKEY"),
            "{e}"
        );
        assert!(!e.to_string().contains("12345"), "{e}");
        env.vars = vec![("FACECAPTURED__QR__AES_KEY".into(), "x".into())];
        assert_eq!(load(GOOD, &env).expect_err("aes").key, "qr.aes_key");
        // Other keys still may, and outside systemd secrets too (a developer's shell).
        env.vars = vec![("FACECAPTURED__CAPTURE__FRAMES".into(), "5".into())];
        assert_eq!(load(GOOD, &env).expect("frames").capture.frames, 5);
        env.vars = vec![("FACECAPTURED__SERVER__APIKEY".into(), "12345".into())];
        env.under_systemd = false;
        assert_eq!(
            load(GOOD, &env).expect("a shell").server.apikey.expose(),
            "12345"
        );
    }

    /// A start whose provisioning failed gets no secrets (sealed to the same
    /// TPM, they did not open either), only why: it loads without them, to
    /// answer Unprovisioned.
    #[test]
    fn a_failed_provisioning_needs_no_secrets() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("provisioning"), "the key does not open\n").expect("w");
        std::fs::write(dir.path().join("client_secret"), "\n").expect("w");
        let env = Environment {
            credentials_dir: Some(dir.path().to_owned()),
            ..Environment::default()
        };
        let text = "[server]\nbase_url = \"https://awareid.example.com\"\n\
                    customer_name = \"acme\"\nclient_id = \"door\"\n\
                    [qr]\nsigning_public_key = \"/etc/facecaptured/qr.pem\"\n";
        let c = load(text, &env).expect("loads without secrets");
        assert_eq!(c.storage.provisioning_failed, "the key does not open");
        std::fs::remove_file(dir.path().join("provisioning")).expect("rm");
        let e = load(text, &env).expect_err("a normal start needs them");
        assert_eq!(e.key, "server.client_secret");
    }

    #[test]
    fn any_qr_host_is_asked_for_alone() {
        let env = Environment::default();
        let c = load(&format!("{GOOD}\n[qr]\nallowed_hosts = [\"*\"]\n"), &env).expect("*");
        assert!(c.qr_allowed_hosts().is_empty());
        let e = load(
            &format!("{GOOD}\n[qr]\nallowed_hosts = [\"*\", \"a.example\"]\n"),
            &env,
        )
        .expect_err("* with a host");
        assert_eq!(e.key, "qr.allowed_hosts");
        let e = load(
            &format!("{GOOD}\n[qr]\nallowed_hosts = [\"*.example\"]\n"),
            &env,
        )
        .expect_err("a wildcard");
        assert!(e.to_string().contains("not a host name"), "{e}");
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_the_key() {
        let e = load(
            &format!("{GOOD}\n[camera]\nwidht = 640\n"),
            &Environment::default(),
        )
        .expect_err("unknown");
        assert_eq!(e.key, "camera.widht", "{e}");
        assert!(e.problem.contains("unknown"), "{e}");
        let e = load(
            &format!("{GOOD}\n[camera]\nwidth = \"wide\"\n"),
            &Environment::default(),
        )
        .expect_err("type");
        assert_eq!(e.key, "camera.width", "{e}");
        let e = load(
            &format!("{GOOD}\n[bogus]\nx = 1\n"),
            &Environment::default(),
        )
        .expect_err("section");
        assert_eq!(e.key, "bogus", "{e}");
        let e = load(
            &format!("{GOOD}\n[face]\nencryption = \"rot13\"\n"),
            &Environment::default(),
        )
        .expect_err("enum");
        assert_eq!(e.key, "face.encryption", "{e}");
    }

    #[test]
    fn secrets_from_files_and_credentials() {
        let dir = tempfile::tempdir().expect("tmp");
        let secret = write(dir.path(), "secret", "from-file\n");
        let text = GOOD.replace(
            "client_secret = \"s3cret\"",
            &format!("client_secret_file = {:?}", secret),
        );
        let c = load(&text, &Environment::default()).expect("load");
        assert_eq!(c.server.client_secret.expose(), "from-file");

        let creds = tempfile::tempdir().expect("tmp");
        write(creds.path(), "apikey", "from-credential");
        let text = GOOD.replace("apikey = \"k3y\"", "");
        let env = Environment {
            credentials_dir: Some(creds.path().into()),
            ..Default::default()
        };
        assert_eq!(
            load(&text, &env).expect("load").server.apikey.expose(),
            "from-credential"
        );

        let e = load(&text, &Environment::default()).expect_err("missing");
        assert_eq!(e.key, "server.apikey");
        assert!(e.problem.contains("missing secret"), "{e}");

        let text = GOOD.replace(
            "client_secret = \"s3cret\"",
            "client_secret_file = \"/nonexistent/x\"",
        );
        let e = load(&text, &Environment::default()).expect_err("unreadable");
        assert_eq!(e.key, "server.client_secret_file");
        let text = format!("{GOOD}client_secret_file = {:?}\n", secret);
        assert!(
            load(&text, &Environment::default())
                .expect_err("both")
                .problem
                .contains("both")
        );
    }

    #[test]
    fn base_url_must_be_https_off_loopback() {
        for ok in [
            "https://a.example",
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:9",
        ] {
            assert!(check_base_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://a.example",
            "ftp://a.example",
            "https://u:p@a.example",
            "nonsense",
            "",
        ] {
            assert_eq!(
                check_base_url(bad).expect_err(bad).key,
                "server.base_url",
                "{bad}"
            );
        }
        let e = load(
            &GOOD.replace("https://", "http://"),
            &Environment::default(),
        )
        .expect_err("http");
        assert!(e.to_string().contains("must be https"), "{e}");
    }

    #[test]
    fn qr_keys_need_both_and_a_32_byte_aes_key() {
        let dir = tempfile::tempdir().expect("tmp");
        let key = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).expect("key");
        let pem = {
            use rsa::pkcs8::EncodePublicKey;
            key.to_public_key()
                .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
                .expect("pem")
        };
        let pem_path = write(dir.path(), "qr.pem", &pem);
        let good_aes = crate::crypto::b64(&[1u8; 32]);
        let qr = |aes: &str| {
            format!("{GOOD}\n[qr]\nsigning_public_key = {pem_path:?}\naes_key = \"{aes}\"\n")
        };
        let c = load(&qr(&good_aes), &Environment::default()).expect("load");
        assert!(c.qr_keys().expect("keys").is_some());
        let e = load(
            &qr(&crate::crypto::b64(&[1u8; 16])),
            &Environment::default(),
        )
        .expect_err("short");
        assert_eq!(e.key, "qr.aes_key");
        assert!(e.problem.contains("32 bytes, got 16"), "{e}");
        let e = load(&qr("###"), &Environment::default()).expect_err("b64");
        assert!(e.problem.contains("base64"), "{e}");
        let e = load(
            &format!("{GOOD}\n[qr]\nsigning_public_key = \"/nonexistent.pem\"\naes_key = \"{good_aes}\"\n"),
            &Environment::default(),
        )
        .expect_err("unreadable");
        assert_eq!(e.key, "qr.signing_public_key");
        let e = load(
            &format!("{GOOD}\n[qr]\naes_key = \"{good_aes}\"\n"),
            &Environment::default(),
        )
        .expect_err("half");
        assert_eq!(e.key, "qr.signing_public_key");
        // The AES key is a credential only the service opens: the daemon needs it,
        // an offline tool (or doctor) reading the same file does not.
        let half = format!("{GOOD}\n[qr]\nsigning_public_key = {pem_path:?}\n");
        assert_eq!(
            load(&half, &Environment::default())
                .expect_err("daemon")
                .key,
            "qr.aes_key"
        );
        let p = write(dir.path(), "half.toml", &half);
        let c = Config::load(Some(&p), &Environment::default(), Need::Nothing)
            .expect("an offline tool loads it");
        assert_eq!(c.qr_keys().expect_err("when used").key, "qr.aes_key");
    }

    #[test]
    fn every_convertible_fourcc_is_a_known_format() {
        let c = load(
            &format!(
                "{GOOD}\n[camera]\nformats = [\"JPEG\", \"UYVY\", \"NV21\", \"NV16\", \"Y10 \", \"Y16\"]\n"
            ),
            &Environment::default(),
        )
        .expect("formats");
        assert_eq!(c.camera.formats.len(), 6);
        for name in KNOWN_FORMATS {
            assert!(
                crate::camera::v4l2::format_named(name, true).is_some(),
                "{name} has no conversion"
            );
        }
        let e = load(
            &format!("{GOOD}\n[camera]\nformats = [\"YU12\"]\n"),
            &Environment::default(),
        )
        .expect_err("YU12");
        assert!(e.problem.contains("known: MJPG, JPEG, YUYV"), "{e}");
    }

    #[test]
    fn ranges_and_enums() {
        for (section, line, key) in [
            ("camera", "rotation = 45", "camera.rotation"),
            ("camera", "formats = [\"H264\"]", "camera.formats"),
            ("camera", "source = \"files\"", "camera.path"),
            ("capture", "frames = 0", "capture.frames"),
            ("capture", "jpeg_quality = 101", "capture.jpeg_quality"),
            (
                "daemon",
                "operation_timeout_s = 30",
                "daemon.operation_timeout_s",
            ),
            (
                "daemon",
                "metrics_textfile = \"/var/lib/m.txt\"",
                "daemon.metrics_textfile",
            ),
            (
                "daemon",
                "metrics_textfile = \"m.prom\"",
                "daemon.metrics_textfile",
            ),
            ("face", "workflow = \"\"", "face.workflow"),
            ("storage", "state_dir = \"relative\"", "storage.state_dir"),
            ("dbus", "bus = \"user\"", "dbus.bus"),
        ] {
            let e = load(
                &format!("{GOOD}\n[{section}]\n{line}\n"),
                &Environment::default(),
            )
            .expect_err(line);
            assert_eq!(e.key, key, "{line}: {e}");
        }
    }

    #[test]
    fn missing_config_file_is_named() {
        let e = Config::load(
            Some(Path::new("/nonexistent/c.toml")),
            &Environment::default(),
            Need::Nothing,
        )
        .expect_err("missing");
        assert_eq!(e.key, "--config");
    }

    #[test]
    fn the_example_config_is_complete_and_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/facecaptured.toml");
        let c = Config::load(Some(&path), &Environment::default(), Need::Nothing)
            .expect("example config loads");
        assert_eq!(c.capture.frames, 3);
    }
}
