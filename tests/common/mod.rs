//! Shared set-up for integration tests: an emulator over HTTPS, a client that
//! trusts its certificate, a terminal identity, and face packages from real photos.
#![allow(dead_code)]

pub mod daemon;
pub mod hub;
pub mod netns;
pub mod program;
pub mod site;
pub mod watch;

use awareid_emulator::{Emulator, EmulatorConfig};
use facecapture::awareid::wire::*;
use facecapture::awareid::{AwareIdClient, HttpSettings};
use facecapture::config::{Encryption, ServerConfig};
use facecapture::crypto::device::DeviceKey;
use facecapture::crypto::qr::QrKeys;
use facecapture::secret::Secret;
use facecapture::workflow::{
    self, AuthOutcome, Context, EnrollOutcome, FlowError, Interrupt, Person, Step, Terminal,
};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/faces")
        .join(name)
}

pub struct Setup {
    pub emulator: Emulator,
    pub server: ServerConfig,
    pub http: HttpSettings,
    pub client: AwareIdClient,
    pub terminal: Terminal,
    pub qr_keys: QrKeys,
    /// The flows' cancel flag (never set unless a test sets it).
    pub interrupt: Interrupt,
}

pub fn start() -> Setup {
    start_with(EmulatorConfig::default(), Duration::from_secs(10))
}

impl Setup {
    /// Starts the QR flow of `url` with the emulator's keys, any host allowed.
    pub fn start_qr(
        &self,
        url: &str,
        method: workflow::QrMethod,
        progress: &dyn Fn(Step),
    ) -> Result<workflow::QrSession, FlowError> {
        workflow::start_qr(url, &self.qr_keys, &[], &self.http, method, progress)
    }
}

pub fn start_with(cfg: EmulatorConfig, timeout: Duration) -> Setup {
    let emulator = Emulator::start(cfg).expect("emulator starts");
    let server = ServerConfig {
        timeout_s: timeout.as_secs().max(1),
        ..emulator.server_config()
    };
    let mut http =
        HttpSettings::new(timeout, Some(emulator.ca_pem().as_bytes())).expect("http settings");
    http.retry_backoff = Duration::from_millis(20);
    let client = AwareIdClient::new(&server, &http).expect("client");
    let qr_keys = emulator.qr_keys();
    Setup {
        emulator,
        server,
        http,
        client,
        terminal: Terminal {
            device_id: "5c1e2f8a93474d0ba61f33e27d90c458".into(),
            key: DeviceKey::generate().expect("device key"),
        },
        qr_keys,
        interrupt: Interrupt::new(),
    }
}

/// A Face SDK package of `frames` copies of a photo, 33 ms apart.
pub fn package_of(photo: &str, frames: usize, username: &str) -> FaceLivenessData {
    let jpeg = std::fs::read(fixture(photo)).expect("fixture");
    let t0 = 1_764_000_000_000.0;
    let frames: Vec<(&[u8], f64)> = (0..frames)
        .map(|i| (&jpeg[..], t0 + 33.0 * i as f64))
        .collect();
    FaceLivenessData::from_jpegs(
        "hotel2",
        0,
        &frames,
        MetaData::for_terminal("Unknown", username),
    )
}

/// A face source that serves a photo.
pub fn photo(
    name: &'static str,
) -> impl FnMut(&str, &AtomicBool) -> Result<FaceLivenessData, FlowError> + Send {
    move |user: &str, _: &AtomicBool| Ok(package_of(name, 3, user))
}

/// Enrolls `username` (as [`person`] gives them) with the astronaut photo.
pub fn enroll_astronaut(
    client: &AwareIdClient,
    ctx: &Context<'_>,
    username: &str,
) -> Result<EnrollOutcome, FlowError> {
    workflow::enroll(client, ctx, &person(username), &mut photo("astronaut.jpg"))
}

/// Authenticates `username` with the astronaut photo.
pub fn authenticate_astronaut(
    client: &AwareIdClient,
    ctx: &Context<'_>,
    username: &str,
    registration_code: &Secret,
) -> Result<AuthOutcome, FlowError> {
    workflow::authenticate(
        client,
        ctx,
        username,
        registration_code,
        &mut photo("astronaut.jpg"),
    )
}

/// Who a test enrolls: `<username>@example.com`.
pub fn person(username: &str) -> Person {
    Person {
        username: username.into(),
        email: format!("{username}@example.com"),
        phone_number: "+15550100".into(),
        first_name: Some("Test".into()),
        last_name: None,
    }
}

/// The AwareID calls of an enrollment then an authentication with sealed face
/// data, in order (the server's key is fetched once a token: the
/// authentication uses the one the enrollment fetched).
pub const ENROLL_THEN_AUTHENTICATE: [&str; 8] = [
    "token",
    "getPublicKey",
    "enroll",
    "addDevice",
    "addFace",
    "authenticate",
    "verifyDevice",
    "verifyFace",
];

/// A progress callback that ignores the steps.
pub fn no_progress(_: Step) {}

pub fn ctx<'a>(
    setup: &'a Setup,
    encryption: Encryption,
    progress: &'a dyn Fn(Step),
) -> Context<'a> {
    Context {
        terminal: &setup.terminal,
        encryption,
        progress,
        interrupt: &setup.interrupt,
    }
}

/// The AwareID calls the emulator received, in order.
pub fn calls(emulator: &Emulator) -> Vec<String> {
    emulator
        .requests()
        .into_iter()
        .filter_map(|r| r.call)
        .collect()
}

/// A field of /proc/PID/status, in kB (VmRSS:, VmHWM:); 0 when unreadable.
pub fn status_kb(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The `p` quantile (0 to 1) of `v`, sorting it.
pub fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}
