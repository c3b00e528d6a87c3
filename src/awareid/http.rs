//! The transport every AwareID client of one configuration shares: one ureq
//! agent with its timeouts (`server.timeout_s`), trust anchors (the system's
//! roots, Debian's ca-certificates, and `server.ca_file`) and proxy
//! ([`super::proxy`]), and the retry backoff.

use super::proxy::proxy_name;
use crate::config::{ConfigError, ServerConfig};
use std::time::Duration;

/// How long an idle connection is kept for reuse without keep-warm calls.
const IDLE_CONNECTION: Duration = Duration::from_secs(15);

/// Transport settings shared by every client of one configuration.
#[derive(Clone)]
pub struct HttpSettings {
    pub(super) agent: ureq::Agent,
    /// Backoff before the second attempt of a retried call; doubles after.
    pub retry_backoff: Duration,
    /// How many root certificates the system's store gave.
    system_roots: usize,
}

impl std::fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSettings").finish_non_exhaustive()
    }
}

impl HttpSettings {
    /// Timeouts from `server.timeout_s`; trust anchors are the system's roots
    /// (as the site's link uses them) plus `server.ca_file`, which also covers QR hosts; the proxy of
    /// `server.proxy` (or, with the key empty, of `HTTPS_PROXY` and `NO_PROXY`).
    pub fn from_config(server: &ServerConfig) -> Result<Self, ConfigError> {
        let extra = if server.ca_file.is_empty() {
            None
        } else {
            Some(std::fs::read(&server.ca_file).map_err(|e| ConfigError {
                key: "server.ca_file".into(),
                problem: format!("cannot read {}: {e}", server.ca_file),
            })?)
        };
        let proxy = match server.proxy_settings()? {
            Some(p) => Some(p.to_ureq()?),
            None => ureq::Proxy::try_from_env(),
        };
        // With `server.keep_warm_s` an idle connection is kept past its next
        // keep-warm call; without, for ureq's usual 15 s.
        let idle = match server.keep_warm_s {
            0 => IDLE_CONNECTION,
            s => Duration::from_secs(s.saturating_add(30)),
        };
        let settings = Self::build(
            Duration::from_secs(server.timeout_s),
            extra.as_deref(),
            proxy,
            idle,
        )?;
        if settings.system_roots == 0 && extra.is_none() {
            tracing::warn!(
                "no trusted root certificates: the system has none (install \
                 ca-certificates) and server.ca_file is empty, so no AwareID \
                 server's certificate can be trusted"
            );
        }
        if let Some(p) = settings.agent.config().proxy() {
            tracing::info!(
                proxy = %proxy_name(p),
                from_environment = p.is_from_env(),
                "AwareID calls go through a proxy"
            );
        }
        Ok(settings)
    }

    /// The HTTP settings: `timeout` per exchange, the web PKI roots and `extra_ca_pem`
    /// (a private CA, the emulator's certificate); the environment's proxy, if any.
    pub fn new(timeout: Duration, extra_ca_pem: Option<&[u8]>) -> Result<Self, ConfigError> {
        Self::build(
            timeout,
            extra_ca_pem,
            ureq::Proxy::try_from_env(),
            IDLE_CONNECTION,
        )
    }

    fn build(
        timeout: Duration,
        extra_ca_pem: Option<&[u8]>,
        proxy: Option<ureq::Proxy>,
        idle: Duration,
    ) -> Result<Self, ConfigError> {
        // The system's store (SSL_CERT_FILE or SSL_CERT_DIR when set, else
        // /etc/ssl/certs): updated with the system, not frozen in the binary.
        // A file it cannot read leaves the others.
        let mut roots: Vec<ureq::tls::Certificate<'static>> =
            rustls_native_certs::load_native_certs()
                .certs
                .iter()
                .map(|der| ureq::tls::Certificate::from_der(der.as_ref()).to_owned())
                .collect();
        let system_roots = roots.len();
        if let Some(pem) = extra_ca_pem {
            let before = roots.len();
            for item in ureq::tls::parse_pem(pem) {
                if let Ok(ureq::tls::PemItem::Certificate(cert)) = item {
                    roots.push(cert);
                }
            }
            if roots.len() == before {
                return Err(ConfigError {
                    key: "server.ca_file".into(),
                    problem: "holds no PEM certificate".into(),
                });
            }
        }
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::new_with_certs(&roots))
            .build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .timeout_connect(Some(timeout.min(Duration::from_secs(5))))
            .max_idle_age(idle)
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(format!("facecaptured/{}", env!("CARGO_PKG_VERSION")))
            .tls_config(tls)
            .proxy(proxy)
            .build()
            .into();
        Ok(Self {
            agent,
            retry_backoff: Duration::from_millis(250),
            system_roots,
        })
    }

    /// The proxy a call to `url` goes through, as errors name it.
    pub(super) fn proxy_for(&self, url: &str) -> Option<String> {
        let p = self.agent.config().proxy()?;
        match url.parse::<ureq::http::Uri>() {
            Ok(uri) if p.is_no_proxy(&uri) => None,
            _ => Some(proxy_name(p)),
        }
    }
}
