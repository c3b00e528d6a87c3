//! The proxy AwareID calls go through: `server.proxy` parsed and checked (the
//! URL, its scheme and port, the Basic credentials from the secret
//! `server.proxy_credentials`), and as ureq takes it. With the key empty the
//! environment's `HTTPS_PROXY` / `NO_PROXY` apply ([`super::HttpSettings`]).

use crate::config::{ConfigError, Secret, ServerConfig};

fn bad(key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_owned(),
        problem: problem.into(),
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

/// The ureq proxy for `server.proxy`.
impl ProxySettings {
    /// The ureq proxy for these settings.
    pub fn to_ureq(&self) -> Result<ureq::Proxy, ConfigError> {
        let p = self;
        let protocol = if p.https {
            ureq::ProxyProtocol::Https
        } else {
            ureq::ProxyProtocol::Http
        };
        let mut b = ureq::Proxy::builder(protocol).host(&p.host).port(p.port);
        if let Some((user, password)) = &p.credentials {
            b = b.username(user).password(password.expose());
        }
        b.build().map_err(|e| ConfigError {
            key: "server.proxy".into(),
            problem: format!("is not a usable proxy ({e})"),
        })
    }
}

/// `http://host:port`: a proxy as logs and errors name it, without credentials.
pub(super) fn proxy_name(p: &ureq::Proxy) -> String {
    let scheme = match p.protocol() {
        ureq::ProxyProtocol::Https => "https",
        ureq::ProxyProtocol::Http => "http",
        ureq::ProxyProtocol::Socks4 => "socks4",
        ureq::ProxyProtocol::Socks4A => "socks4a",
        ureq::ProxyProtocol::Socks5 => "socks5",
        ureq::ProxyProtocol::Socks5h => "socks5h",
        _ => "proxy",
    };
    format!("{scheme}://{}:{}", p.host(), p.port())
}
