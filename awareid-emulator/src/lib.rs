//! `awareid-emulator`: a local AwareID-compatible server for development, demos and
//! tests. It speaks the wire format of docs/ (awareid, qr, face-data, identity) exactly (the same `awareid::wire`
//! types the client uses), over HTTPS with a self-signed certificate it writes
//! out, and is strict: wrong content types, credentials, fields, JSON types, expired
//! tokens, steps out of order and bad device signatures each get an AwareID-shaped
//! error. It records every request and can inject faults.
//!
//! Control endpoints for tests and demos (loopback only, as the server is):
//! `GET /__emulator/requests`, `DELETE /__emulator/requests`,
//! `POST /__emulator/faults` (a [`Fault`]), `POST /__emulator/expire-tokens`.
//!
//! [`server_crypto`] is the server's half of docs/qr.md and docs/face-data.md (making QR codes,
//! opening envelopes), which the product library does not carry.
#![warn(missing_docs)]

mod face;
mod handlers;
pub mod server_crypto;
mod state;

use axum::Router;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use facecapture::awareid::paths;
use facecapture::crypto;

pub use state::RecordedRequest;

/// How the emulator is set up.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Where to listen: a loopback address (port 0 picks a free one).
    pub listen: SocketAddr,
    /// HTTPS with a self-signed certificate (the default); plain HTTP when false.
    pub tls: bool,
    /// The tenant's name: the token realm is `<customer_name>-consumers`.
    pub customer_name: String,
    /// The OAuth client id the terminal must present.
    pub client_id: String,
    /// The OAuth client secret the terminal must present.
    pub client_secret: String,
    /// The `apikey` header every API call must carry.
    pub apikey: String,
    /// Lifetime of issued access tokens.
    pub token_ttl: Duration,
    /// Faces narrower than this in a frame do not count.
    pub min_face_px: u32,
    /// verifyFace attempts before authStatus 0 (max attempts reached).
    pub max_auth_attempts: u32,
    /// Names the certificate covers besides 127.0.0.1 and localhost: the
    /// address a virtual machine's guest reaches this host's loopback by, for
    /// instance (qemu's user networking: 10.0.2.2).
    pub cert_names: Vec<String>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: true,
            customer_name: "emulated".into(),
            client_id: "door-terminal".into(),
            client_secret: "emulator-client-secret".into(),
            apikey: "emulator-apikey".into(),
            token_ttl: Duration::from_secs(300),
            min_face_px: 60,
            max_auth_attempts: 3,
            cert_names: Vec::new(),
        }
    }
}

/// A fault to inject into the next `times` requests of `call` (an AwareID call
/// name such as "addFace", or any call when absent).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Fault {
    /// The AwareID call to fault ("addFace"); any call when absent.
    #[serde(default)]
    pub call: Option<String>,
    /// What happens to it.
    pub kind: FaultKind,
    /// How many of the matching requests are faulted (default 1).
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

/// What an injected fault does (JSON: `{"type": "delay", "ms": 500}`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer normally, after a delay.
    Delay {
        /// The delay, in milliseconds.
        ms: u64,
    },
    /// Handle the request at once (an addFace completes the enrollment), then
    /// hold the answer back: the server has done what the client may never hear.
    AnswerLate {
        /// How long the answer is held back, in milliseconds.
        ms: u64,
    },
    /// Answer with this HTTP status and an AwareID error body.
    Status {
        /// The HTTP status code.
        code: u16,
    },
    /// Hold the request, unanswered and unhandled, until the test calls
    /// [`Emulator::release`] (or `max_ms` pass), then handle it normally: a
    /// test acts while a call is surely at the server, without a sleep.
    Hold {
        /// The longest hold, in milliseconds.
        max_ms: u64,
    },
    /// Answer 200 with a body that is not JSON.
    MalformedJson,
    /// Answer 200 with this body (a hostile or broken server: a field of the
    /// wrong type, a value out of range), without handling the request.
    Body {
        /// The body, sent as `application/json`.
        body: String,
    },
    /// Expire every issued token before handling the request.
    ExpireToken,
    /// Send the headers, then drop the connection.
    DropConnection,
}

/// The keys the emulator signs and encrypts with, and the certificate it serves.
pub(crate) struct Keys {
    /// getPublicKey's key; opens face-data envelopes.
    pub server: rsa::PrivateKey,
    /// Signs QR payloads.
    pub qr_signing: rsa::PrivateKey,
    pub qr_aes: [u8; 32],
    pub cert_pem: String,
    pub key_pem: String,
}

pub(crate) struct Shared {
    pub cfg: EmulatorConfig,
    pub keys: Keys,
    /// host:port QR codes point at.
    pub host: String,
    pub state: Mutex<state::State>,
    /// Signalled when a request arrives or is answered.
    pub changed: std::sync::Condvar,
    /// Lets a held request go on ([`FaultKind::Hold`], [`Emulator::release`]).
    pub release: tokio::sync::Notify,
    pub detector: Mutex<facecapture::detect::Detector>,
}

/// A running emulator on its own thread and runtime (for tests and tools).
pub struct Emulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    handle: axum_server::Handle<SocketAddr>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Why the emulator cannot start.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// Binding, serving or writing out its files failed.
    #[error("cannot listen: {0}")]
    Io(#[from] std::io::Error),
    /// The RSA keys or the certificate could not be made.
    #[error("key generation failed: {0}")]
    Keys(String),
    /// The face detector's model did not load.
    #[error("face model: {0}")]
    Model(#[from] facecapture::detect::DetectError),
}

impl Emulator {
    /// Generates keys, binds, and serves on a background thread.
    pub fn start(cfg: EmulatorConfig) -> Result<Self, EmulatorError> {
        let (shared, listener) = bind(cfg)?;
        let addr = listener.local_addr()?;
        let handle = axum_server::Handle::new();
        let (s, h) = (shared.clone(), handle.clone());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("awareid-emulator".into())
            .spawn(move || {
                if let Err(e) = runtime.block_on(serve_on(s, listener, h)) {
                    tracing::error!(error = %e, "emulator stopped");
                }
            })?;
        Ok(Self {
            shared,
            addr,
            handle,
            thread: Some(thread),
        })
    }

    /// The address it listens on (the port chosen when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:PORT` (or http when TLS is off).
    pub fn base_url(&self) -> String {
        self.shared.base_url()
    }

    /// The self-signed certificate to trust (`server.ca_file`).
    pub fn ca_pem(&self) -> &str {
        &self.shared.keys.cert_pem
    }

    /// How it was set up.
    pub fn config(&self) -> &EmulatorConfig {
        &self.shared.cfg
    }

    /// The `[server]` settings that reach this emulator (trust [`Self::ca_pem`]).
    pub fn server_config(&self) -> facecapture::config::ServerConfig {
        let cfg = &self.shared.cfg;
        facecapture::config::ServerConfig {
            base_url: self.base_url(),
            customer_name: cfg.customer_name.clone(),
            client_id: cfg.client_id.clone(),
            client_secret: facecapture::secret::Secret::new(cfg.client_secret.clone()),
            apikey: facecapture::secret::Secret::new(cfg.apikey.clone()),
            ..facecapture::config::ServerConfig::default()
        }
    }

    /// The keys a terminal needs to trust this emulator's QR codes.
    pub fn qr_keys(&self) -> crypto::qr::QrKeys {
        crypto::qr::QrKeys::new(
            self.shared.keys.qr_signing.to_public_key(),
            self.shared.keys.qr_aes,
        )
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// The AwareID calls that arrived so far, oldest first, answered or not (a
    /// call the client gave up on while it was delayed is here, and in
    /// [`Self::requests`] only once it was handled).
    pub fn arrived(&self) -> Vec<String> {
        self.shared.lock().arrived.clone()
    }

    /// Forgets the requests recorded so far.
    pub fn clear_requests(&self) {
        self.shared.lock().clear_requests();
    }

    /// Waits until `count` requests of `call` (e.g. "addFace") have arrived, answered
    /// or not; false if that has not happened `within`.
    pub fn wait_arrived(&self, call: &str, count: usize, within: std::time::Duration) -> bool {
        self.wait_state(within, |state| {
            state.arrived.iter().filter(|c| *c == call).count() >= count
        })
    }

    /// Waits until `count` requests of `call` have been handled (recorded with
    /// their status; with [`FaultKind::AnswerLate`], before the answer is sent);
    /// false if that has not happened `within`.
    pub fn wait_handled(&self, call: &str, count: usize, within: std::time::Duration) -> bool {
        self.wait_state(within, |state| {
            state
                .requests
                .iter()
                .filter(|r| r.call.as_deref() == Some(call))
                .count()
                >= count
        })
    }

    fn wait_state(
        &self,
        within: std::time::Duration,
        done: impl Fn(&state::State) -> bool,
    ) -> bool {
        let deadline = std::time::Instant::now() + within;
        let mut state = self.shared.lock();
        loop {
            if done(&state) {
                return true;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            state = match self.shared.changed.wait_timeout(state, left) {
                Ok((s, _)) => s,
                Err(p) => p.into_inner().0,
            };
        }
    }

    /// Queues a fault for the requests to come.
    pub fn inject(&self, fault: Fault) {
        self.shared.lock().faults.push(fault);
    }

    /// Lets the request held by a [`FaultKind::Hold`] go on (or the next one,
    /// if none is held yet).
    pub fn release(&self) {
        self.shared.release.notify_one();
    }

    /// Expires every token issued so far.
    pub fn expire_tokens(&self) {
        self.shared.lock().expire_tokens();
    }

    /// Makes a QR code as the web portal would (triggerEnroll), without HTTP.
    pub fn qr_for_enroll(&self, username: &str, email: &str) -> String {
        let token = self
            .shared
            .lock()
            .new_qr_session(state::Method::Enroll, username, email);
        self.shared.callback_url(&token).unwrap_or_default()
    }

    /// A correctly signed enrollment QR code that names `host` instead of this
    /// server's (a portal, or a stolen signing key, sending the terminal
    /// elsewhere); its session exists here.
    pub fn qr_naming_host(&self, host: &str, username: &str, email: &str) -> String {
        let token = self
            .shared
            .lock()
            .new_qr_session(state::Method::Enroll, username, email);
        let s = &self.shared;
        server_crypto::encode_qr(
            host,
            &s.cfg.apikey,
            &token,
            &s.keys.qr_signing,
            &s.keys.qr_aes,
            None,
        )
        .unwrap_or_default()
    }

    /// Makes a QR code as the web portal would (triggerAuthenticate), without HTTP.
    pub fn qr_for_authenticate(&self, username: &str) -> String {
        let token = self
            .shared
            .lock()
            .new_qr_session(state::Method::Authenticate, username, "");
        self.shared.callback_url(&token).unwrap_or_default()
    }

    /// Writes the certificate, QR keys and a daemon config snippet into `dir`.
    pub fn write_out(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        self.shared.write_out(dir)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Shared {
    fn new(cfg: EmulatorConfig, addr: SocketAddr) -> Result<Self, EmulatorError> {
        let keys_err = |e: String| EmulatorError::Keys(e);
        let server = server_crypto::new_rsa_key(2048).map_err(|e| keys_err(e.to_string()))?;
        let qr_signing = server_crypto::new_rsa_key(2048).map_err(|e| keys_err(e.to_string()))?;
        let qr_aes = crypto::random_bytes::<32>().map_err(|e| keys_err(e.to_string()))?;
        let mut names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        names.extend(cfg.cert_names.iter().cloned());
        let cert =
            rcgen::generate_simple_self_signed(names).map_err(|e| keys_err(e.to_string()))?;
        let host = match addr.ip() {
            std::net::IpAddr::V6(ip) => format!("[{ip}]:{}", addr.port()),
            ip => format!("{ip}:{}", addr.port()),
        };
        Ok(Self {
            keys: Keys {
                server,
                qr_signing,
                qr_aes,
                cert_pem: cert.cert.pem(),
                key_pem: cert.signing_key.serialize_pem(),
            },
            host,
            cfg,
            state: Mutex::new(state::State::default()),
            changed: std::sync::Condvar::new(),
            release: tokio::sync::Notify::new(),
            detector: Mutex::new(facecapture::detect::Detector::embedded()?),
        })
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, state::State> {
        facecapture::lock::lock(&self.state)
    }

    fn base_url(&self) -> String {
        format!(
            "{}://{}",
            if self.cfg.tls { "https" } else { "http" },
            self.host
        )
    }

    fn qr_public_pem(&self) -> String {
        use rsa::pkcs8::EncodePublicKey;
        self.keys
            .qr_signing
            .to_public_key()
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .unwrap_or_default()
    }

    pub(crate) fn callback_url(
        &self,
        session_token: &str,
    ) -> Result<String, server_crypto::QrEncodeError> {
        server_crypto::encode_qr(
            &self.host,
            &self.cfg.apikey,
            session_token,
            &self.keys.qr_signing,
            &self.keys.qr_aes,
            None,
        )
    }

    fn write_out(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir)?;
        let files = [
            ("emulator-cert.pem", self.keys.cert_pem.clone()),
            ("qr-signing-public.pem", self.qr_public_pem()),
            ("qr-aes-key", crypto::b64(&self.keys.qr_aes)),
            ("client_secret", self.cfg.client_secret.clone()),
            ("apikey", self.cfg.apikey.clone()),
        ];
        let mut written = Vec::new();
        for (name, text) in files {
            let p = dir.join(name);
            write_private(&p, text.as_bytes())?;
            written.push(p);
        }
        let d = |n: &str| dir.join(n).display().to_string();
        let toml = format!(
            "# Written by awareid-emulator: point facecaptured at it.\n\
             [server]\nbase_url = {:?}\ncustomer_name = {:?}\nclient_id = {:?}\n\
             client_secret_file = {:?}\napikey_file = {:?}\nca_file = {:?}\n\n\
             [qr]\nsigning_public_key = {:?}\naes_key_file = {:?}\n",
            self.base_url(),
            self.cfg.customer_name,
            self.cfg.client_id,
            d("client_secret"),
            d("apikey"),
            if self.cfg.tls {
                d("emulator-cert.pem")
            } else {
                String::new()
            },
            d("qr-signing-public.pem"),
            d("qr-aes-key"),
        );
        let p = dir.join("facecaptured.toml");
        write_private(&p, toml.as_bytes())?;
        written.push(p);
        Ok(written)
    }
}

/// Writes a file readable only by its owner, atomically (temp file, then rename).
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn router(shared: Arc<Shared>) -> Router {
    let token_route = "/auth/realms/{realm}/protocol/openid-connect/token";
    Router::new()
        .route(token_route, post(handlers::token))
        .route(paths::PUBLIC_KEY.path, get(handlers::public_key))
        .route(paths::ENROLL.path, post(handlers::enroll))
        .route(paths::ADD_DEVICE.path, post(handlers::add_device))
        .route(paths::ADD_FACE.path, post(handlers::add_face))
        .route(paths::AUTHENTICATE.path, post(handlers::authenticate))
        .route(paths::VERIFY_DEVICE.path, post(handlers::verify_device))
        .route(paths::VERIFY_FACE.path, post(handlers::verify_face))
        .route(
            paths::VALIDATE_SESSION.path,
            post(handlers::validate_session),
        )
        .route(paths::TRIGGER_ENROLL.path, post(handlers::trigger_enroll))
        .route(
            paths::TRIGGER_AUTHENTICATE.path,
            post(handlers::trigger_authenticate),
        )
        .route(
            "/__emulator/requests",
            get(handlers::list_requests).delete(handlers::clear_requests),
        )
        .route("/__emulator/faults", post(handlers::add_fault))
        .route("/__emulator/expire-tokens", post(handlers::expire_tokens))
        .fallback(handlers::not_found)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            handlers::record_and_inject,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024 * 1024))
        .with_state(shared)
}

/// Binds the listener (so the port is known before keys are made) and builds the
/// shared state: keys, certificate for that address, detector.
fn bind(cfg: EmulatorConfig) -> Result<(Arc<Shared>, std::net::TcpListener), EmulatorError> {
    let listener = std::net::TcpListener::bind(cfg.listen)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    Ok((Arc::new(Shared::new(cfg, addr)?), listener))
}

async fn serve_on(
    shared: Arc<Shared>,
    listener: std::net::TcpListener,
    handle: axum_server::Handle<SocketAddr>,
) -> std::io::Result<()> {
    // The peer's address reaches each request (RecordedRequest::peer).
    let app = router(shared.clone()).into_make_service_with_connect_info::<SocketAddr>();
    if shared.cfg.tls {
        let tls = axum_server::tls_rustls::RustlsConfig::from_pem(
            shared.keys.cert_pem.clone().into_bytes(),
            shared.keys.key_pem.clone().into_bytes(),
        )
        .await?;
        axum_server::from_tcp_rustls(listener, tls)?
            .handle(handle)
            .serve(app)
            .await
    } else {
        axum_server::from_tcp(listener)?
            .handle(handle)
            .serve(app)
            .await
    }
}

/// Runs the emulator in the foreground until `shutdown` resolves (the binary).
pub async fn run(
    cfg: EmulatorConfig,
    out_dir: Option<&Path>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), EmulatorError> {
    let (shared, listener) = tokio::task::block_in_place(|| bind(cfg))?;
    if let Some(dir) = out_dir {
        let files = shared.write_out(dir)?;
        tracing::info!(dir = %dir.display(), files = files.len(), "wrote certificate, QR keys and facecaptured.toml");
    }
    tracing::info!(base_url = %shared.base_url(), "awareid-emulator listening");
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    let server = tokio::spawn(serve_on(shared, listener, h));
    shutdown.await;
    handle.graceful_shutdown(Some(Duration::from_secs(2)));
    server
        .await
        .map_err(|e| EmulatorError::Io(std::io::Error::other(e)))??;
    Ok(())
}
