//! The emulator's in-memory tenant: issued tokens, users with their registration
//! codes and device keys, enrollments and authentications in progress, QR
//! sessions, recorded requests and pending faults.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::Fault;
use super::face::Template;

/// A request as the emulator received it, for tests to inspect.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RecordedRequest {
    /// The HTTP method.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The AwareID call name ("addFace"), if the path is one.
    pub call: Option<String>,
    /// The Content-Type header, if any.
    pub content_type: Option<String>,
    /// The `Authorization: Bearer` token, if any.
    pub bearer: Option<String>,
    /// The `apikey` header, if any.
    pub apikey: Option<String>,
    /// The JSON body (a form body as an object; null when empty or unparseable).
    pub body: serde_json::Value,
    /// The body's length on the wire, in bytes (what the terminal's uplink
    /// carried for it).
    #[serde(default)]
    pub body_bytes: usize,
    /// The HTTP status the emulator answered with.
    pub status: u16,
    /// The address the request came from: the terminal's, or its proxy's.
    pub peer: Option<std::net::IpAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Enroll,
    Authenticate,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Enroll => "enroll",
            Method::Authenticate => "authenticate",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// From client credentials: the whole tenant.
    Client,
    /// From validateSession: one user's one flow.
    Session { method: Method, username: String },
}

pub struct Grant {
    pub expires: Instant,
    pub scope: Scope,
}

pub struct QrSession {
    pub method: Method,
    pub username: String,
    pub email: String,
    pub used: bool,
    pub expires: Instant,
}

pub struct User {
    pub registration_code: String,
    pub device_id: String,
    pub device_key: String,
    pub template: Template,
}

pub struct Enrollment {
    pub username: String,
    pub device: Option<(String, String)>,
}

pub struct AuthAttempt {
    pub username: String,
    pub device_verified: bool,
    pub attempts: u32,
    pub finished: bool,
}

#[derive(Default)]
pub struct State {
    pub grants: HashMap<String, Grant>,
    pub users: HashMap<String, User>,
    pub enrollments: HashMap<String, Enrollment>,
    pub auths: HashMap<String, AuthAttempt>,
    pub qr_sessions: HashMap<String, QrSession>,
    pub requests: Vec<RecordedRequest>,
    /// The AwareID calls received, by name, in order of arrival (a request is in
    /// `requests` only once it is answered).
    pub arrived: Vec<String>,
    pub faults: Vec<Fault>,
}

/// How long a QR code stays valid.
const QR_TTL: Duration = Duration::from_secs(600);

/// A random opaque token in UUID form, as AwareID's look.
pub fn new_token() -> String {
    // Without an OS random source (never seen in practice) fall back to a unique,
    // guessable value: the emulator is a test tool, not a security boundary.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let b = facecapture::crypto::random_bytes::<16>().unwrap_or_else(|_| {
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        (u128::from(n) | (u128::from(std::process::id()) << 64)).to_le_bytes()
    });
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// A six-character registration code such as "LLXL2N".
pub fn new_registration_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let b = facecapture::crypto::random_bytes::<6>().unwrap_or([0; 6]);
    b.iter()
        .map(|x| ALPHABET[(*x as usize) % ALPHABET.len()] as char)
        .collect()
}

impl State {
    pub fn grant(&mut self, scope: Scope, ttl: Duration) -> String {
        let token = new_token();
        self.grants.insert(
            token.clone(),
            Grant {
                expires: Instant::now() + ttl,
                scope,
            },
        );
        token
    }

    /// Forgets the requests recorded so far, answered or not.
    pub fn clear_requests(&mut self) {
        self.requests.clear();
        self.arrived.clear();
    }

    pub fn expire_tokens(&mut self) {
        let past = Instant::now();
        for g in self.grants.values_mut() {
            g.expires = past;
        }
    }

    pub fn new_qr_session(&mut self, method: Method, username: &str, email: &str) -> String {
        let token = new_token();
        self.qr_sessions.insert(
            token.clone(),
            QrSession {
                method,
                username: username.to_owned(),
                email: email.to_owned(),
                used: false,
                expires: Instant::now() + QR_TTL,
            },
        );
        token
    }

    pub fn user_by_code(&self, code: &str) -> Option<(&String, &User)> {
        self.users.iter().find(|(_, u)| u.registration_code == code)
    }
}
