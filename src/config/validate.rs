//! Validation: each section checks its own keys (`validate()` per section
//! struct), and every refusal names the key and what is wrong with it.

use super::secrets::read_limited;
use super::{
    CameraConfig, CameraSource, CaptureConfig, Config, ConfigError, DaemonConfig, FaceConfig,
    KNOWN_FORMATS, Need, QrConfig, ServerConfig, SiteConfig, StorageConfig, bad,
};
use std::path::Path;

impl Config {
    /// Checks every section; `need` says whether the daemon's server settings
    /// and secrets must be there.
    pub(super) fn validate(&self, need: Need) -> Result<(), ConfigError> {
        self.storage.validate()?;
        self.server.validate(need)?;
        // The AES key is a secret, a credential only the service can open: an offline
        // tool (and doctor) reading an installed terminal's configuration lacks it,
        // and checks the QR keys when it uses them.
        if need == Need::Daemon || !self.qr.aes_key.is_empty() {
            self.qr_keys()?;
        }
        self.qr.validate()?;
        self.camera.validate()?;
        self.capture.validate()?;
        self.face.validate()?;
        self.daemon.validate()?;
        self.site.validate(need, &self.storage)
    }
}

/// The most hub URLs a door is given (a cluster of a few nodes).
const MAX_HUB_URLS: usize = 16;

/// The longest door or bucket name.
const MAX_NAME: usize = 64;

/// The longest `site.max_stale_s`: 30 days.
const MAX_STALE_S: u64 = 30 * 24 * 3600;

/// Whether `name` can be a NATS subject token: letters, digits, `-`, `_`.
pub(crate) fn is_site_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl SiteConfig {
    fn validate(&self, need: Need, storage: &StorageConfig) -> Result<(), ConfigError> {
        if !self.enabled() {
            return Ok(());
        }
        if self.hub.len() > MAX_HUB_URLS {
            return Err(bad(
                "site.hub",
                format!("lists {} URLs, at most {MAX_HUB_URLS}", self.hub.len()),
            ));
        }
        for u in &self.hub {
            let parsed = url::Url::parse(u)
                .map_err(|e| bad("site.hub", format!("{u:?} is not a URL: {e}")))?;
            if !matches!(parsed.scheme(), "nats" | "tls") || parsed.host_str().is_none() {
                return Err(bad(
                    "site.hub",
                    format!("{u:?} must be nats://HOST:PORT or tls://HOST:PORT"),
                ));
            }
            if !parsed.username().is_empty() || parsed.password().is_some() {
                return Err(bad(
                    "site.hub",
                    "must not carry a user or password (they would be logged): use \
                     site.hub_credentials",
                ));
            }
        }
        if !self.door.is_empty() && !is_site_name(&self.door) {
            return Err(bad(
                "site.door",
                format!(
                    "must be 1 to {MAX_NAME} letters, digits, '-' or '_' (a NATS subject \
                     token), got {:?}",
                    self.door
                ),
            ));
        }
        if !is_site_name(&self.bucket) {
            return Err(bad(
                "site.bucket",
                format!(
                    "must be 1 to {MAX_NAME} letters, digits, '-' or '_', got {:?}",
                    self.bucket
                ),
            ));
        }
        if !self.ca_file.as_os_str().is_empty() && !self.ca_file.is_absolute() {
            return Err(bad("site.ca_file", "must be an absolute path"));
        }
        if self.max_stale_s > MAX_STALE_S {
            return Err(bad(
                "site.max_stale_s",
                format!(
                    "must be at most {MAX_STALE_S} (30 days; 0: no limit), got {}",
                    self.max_stale_s
                ),
            ));
        }
        if need == Need::Daemon && storage.site_identity.is_empty() {
            return Err(bad(
                "site.hub",
                "is set, but this terminal holds no site identity (the credential \
                 site_identity): run facecaptured provision --site-identity FILE as root",
            ));
        }
        Ok(())
    }
}

impl ServerConfig {
    fn validate(&self, need: Need) -> Result<(), ConfigError> {
        if need == Need::Daemon || !self.base_url.is_empty() {
            check_base_url(&self.base_url)?;
        }
        if need == Need::Daemon {
            self.require()?;
        }
        if !self.customer_name.is_empty()
            && !self
                .customer_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(bad(
                "server.customer_name",
                "may hold only letters, digits, '-' and '_'",
            ));
        }
        if !self.ca_file.is_empty() {
            read_limited("server.ca_file", Path::new(&self.ca_file))?;
        }
        in_range("server.timeout_s", self.timeout_s, 1, 120)?;
        if self.keep_warm_s != 0 {
            in_range("server.keep_warm_s", self.keep_warm_s, 10, 3600)?;
        }
        self.proxy_settings()?;
        Ok(())
    }

    /// What the daemon cannot run without: the tenant and its two secrets.
    fn require(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("server.customer_name", self.customer_name.as_str()),
            ("server.client_id", self.client_id.as_str()),
        ] {
            if value.trim().is_empty() {
                return Err(bad(key, "is required"));
            }
        }
        if self.client_secret.is_empty() {
            return Err(bad(
                "server.client_secret",
                "missing secret (set it, client_secret_file, or the systemd credential client_secret: on a terminal, put it in /etc/facecaptured/credentials/client_secret and restart the service, which seals it)",
            ));
        }
        if self.apikey.is_empty() {
            return Err(bad(
                "server.apikey",
                "missing secret (set it, apikey_file, or the systemd credential apikey: on a terminal, put it in /etc/facecaptured/credentials/apikey and restart the service, which seals it)",
            ));
        }
        Ok(())
    }
}

impl QrConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let hosts = &self.allowed_hosts;
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
        Ok(())
    }
}

impl CameraConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.source == CameraSource::Files && self.path.is_empty() {
            return Err(bad(
                "camera.path",
                "is required when camera.source = \"files\"",
            ));
        }
        if self.source == CameraSource::V4l && self.device.is_empty() {
            return Err(bad(
                "camera.device",
                "is required when camera.source = \"v4l\"",
            ));
        }
        in_range("camera.width", self.width.into(), 16, 4096)?;
        in_range("camera.height", self.height.into(), 16, 4096)?;
        in_range("camera.fps", self.fps.into(), 1, 120)?;
        if self.formats.is_empty() {
            return Err(bad("camera.formats", "must name at least one format"));
        }
        if let Some(f) = self
            .formats
            .iter()
            .find(|f| !KNOWN_FORMATS.contains(&f.trim_end_matches(' ')))
        {
            return Err(bad(
                "camera.formats",
                format!("unknown format {f:?} (known: {})", KNOWN_FORMATS.join(", ")),
            ));
        }
        if ![0, 90, 180, 270].contains(&self.rotation) {
            return Err(bad("camera.rotation", "must be 0, 90, 180 or 270"));
        }
        Ok(())
    }
}

impl CaptureConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        in_range("capture.frames", self.frames.into(), 1, 10)?;
        in_range("capture.timeout_s", self.timeout_s, 1, 60)?;
        in_range("capture.min_face_px", self.min_face_px.into(), 40, 2000)?;
        in_range("capture.jpeg_quality", self.jpeg_quality.into(), 1, 100)?;
        if !self.face_model.is_empty() && !Path::new(&self.face_model).is_file() {
            return Err(bad(
                "capture.face_model",
                format!("{:?} is not a readable file", self.face_model),
            ));
        }
        Ok(())
    }
}

impl FaceConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let w = &self.workflow;
        if w.is_empty() || w.len() > 32 || !w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(bad(
                "face.workflow",
                "must be a workflow name such as hotel2, charlie4",
            ));
        }
        if self.device_brand.len() > 64 {
            return Err(bad("face.device_brand", "is longer than 64 characters"));
        }
        Ok(())
    }
}

impl StorageConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if !self.device_key.is_empty() {
            crate::crypto::sealed::SealedIdentity::parse(self.device_key.expose().as_bytes())
                .map_err(|e| {
                    bad(
                        "device_key",
                        format!("the credential device_key {e}; run facecaptured provision again"),
                    )
                })?;
        }
        if !self.site_identity.is_empty() {
            crate::crypto::site::SiteIdentity::parse(self.site_identity.expose().as_bytes())
                .map_err(|e| {
                    bad(
                        "site_identity",
                        format!(
                            "the credential site_identity {e}; run facecaptured provision \
                             --site-identity again"
                        ),
                    )
                })?;
        }
        if !self.state_dir.is_absolute() {
            return Err(bad("storage.state_dir", "must be an absolute path"));
        }
        Ok(())
    }
}

impl DaemonConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        in_range(
            "daemon.operation_timeout_s",
            self.operation_timeout_s,
            1,
            24,
        )
        .map_err(|e| {
            bad(
                &e.key,
                format!("{} (D-Bus callers time out after 25 s)", e.problem),
            )
        })?;
        let textfile = &self.metrics_textfile;
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
}

/// `key`'s `value` within `min..=max`, or an error naming both bounds.
pub(super) fn in_range(key: &str, value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
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

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}
