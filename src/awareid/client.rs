//! The blocking AwareID HTTP client (ureq 3, rustls): one method per call in
//! docs/awareid.md, bearer tokens cached and renewed before they expire, typed errors.
//!
//! Errors: `Rejected` (a 4xx with AwareID's errorCode/errorMsg, or a FAILURE
//! status), `Unavailable` (connect, timeout, 5xx), `Malformed` (a 2xx whose body is
//! not what AwareID sends, naming the field). Only the token and public-key calls are
//! retried, with backoff; a POST is never repeated, except once after a 401 when
//! the token is fetched again. Tokens, secrets and bodies are never logged.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use super::http::HttpSettings;
use super::paths::{self, Call};
use super::wire::*;
use crate::config::{ConfigError, ServerConfig};
use crate::lock::lock;
use crate::secret::Secret;

/// Largest response body read (a verifyFace answer is a few KiB).
const MAX_BODY: u64 = 1024 * 1024;
/// Attempts for the idempotent calls (token, getPublicKey).
const GET_ATTEMPTS: u32 = 3;

/// The most HTTP exchanges one client call makes before it returns:
/// getPublicKey's, tried [`GET_ATTEMPTS`] times, each attempt fetching a token
/// first (itself tried [`GET_ATTEMPTS`] times; a server whose tokens live no
/// time leaves none cached) and, when the call is answered 401, fetching one
/// again and sending the call once more. 24 with three attempts.
pub const MOST_EXCHANGES: u32 = GET_ATTEMPTS * 2 * (GET_ATTEMPTS + 1);

/// The longest one client call can take: [`MOST_EXCHANGES`] exchanges of at
/// most `timeout` each, and the sleeps between retries (`backoff`, doubling) of
/// each of its retried parts: the call's own attempts and two token fetches per
/// attempt. The daemon's watchdog grace is derived from it.
///
/// ```
/// use facecapture::awareid::client::longest_call;
/// use std::time::Duration;
/// // 24 exchanges of 15 s, and 7 retry loops sleeping 250 ms + 500 ms each.
/// assert_eq!(
///     longest_call(Duration::from_secs(15), Duration::from_millis(250)),
///     Duration::from_millis(360_000 + 7 * 750)
/// );
/// ```
pub fn longest_call(timeout: Duration, backoff: Duration) -> Duration {
    let retry_loops = 1 + 2 * GET_ATTEMPTS;
    // backoff, 2 backoff, ... before each attempt but the first.
    let sleeps = backoff.saturating_mul((1 << (GET_ATTEMPTS - 1)) - 1);
    timeout
        .saturating_mul(MOST_EXCHANGES)
        .saturating_add(sleeps.saturating_mul(retry_loops))
}

/// How an AwareID call failed (each becomes one of the D-Bus errors of the
/// interface XML).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum AwareIdError {
    /// A 4xx answer: AwareID refused (ServerRejected).
    #[error("AwareID rejected {call}: {code}: {message} (HTTP {status})")]
    Rejected {
        /// The call's name.
        call: &'static str,
        /// The HTTP status.
        status: u16,
        /// AwareID's errorCode.
        code: String,
        /// AwareID's errorMsg.
        message: String,
    },
    /// No answer, a timeout or a 5xx (ServerUnavailable).
    #[error("AwareID unavailable for {call}: {reason}")]
    Unavailable {
        /// The call's name.
        call: &'static str,
        /// What happened.
        reason: String,
    },
    /// A 2xx whose body is not what the call returns (ServerUnavailable).
    #[error("AwareID answered {call} with an unexpected response: {detail}")]
    Malformed {
        /// The call's name.
        call: &'static str,
        /// What is wrong with the body.
        detail: String,
    },
}

impl AwareIdError {
    fn malformed(call: &Call, detail: impl Into<String>) -> Self {
        Self::Malformed {
            call: call.name,
            detail: detail.into(),
        }
    }
}

struct CachedToken {
    token: Secret,
    fetched: Instant,
    renew_at: Instant,
    /// getPublicKey's answer, kept as long as this token (issue 15: one call
    /// fewer per flow) and handed on to the token that renews it; dropped when
    /// a call that used it failed.
    public_key: Option<rsa::PublicKey>,
}

impl CachedToken {
    /// How long before `renew_at` keeping warm renews it: `every`, or half
    /// the token's useful life when that is shorter (a server's 30 s tokens are
    /// renewed every 13.5 s, not in a loop).
    fn renew_lead(&self, every: Duration) -> Duration {
        every.min(self.renew_at.saturating_duration_since(self.fetched) / 2)
    }
}

/// What one keep-warm turn ([`AwareIdClient::keep_warm`]) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warmed {
    /// Nothing was due.
    Nothing,
    /// The token was renewed before it lapsed, and the public key fetched
    /// with it.
    Renewed,
    /// The connection had been idle: one getPublicKey kept it open.
    Called,
}

/// The shortest wait between two keep-warm turns.
const WARM_FLOOR: Duration = Duration::from_secs(5);

/// The longest token lifetime believed. `expires_in` is the server's number:
/// one near 2^64 would overflow an `Instant` (a panic), and no token should
/// outlive a day on a terminal anyway.
const MAX_TOKEN_LIFE_S: u64 = 24 * 3600;

/// How long after it was fetched a token of `expires_in` seconds is renewed: a
/// little before it expires, 10% of its lifetime early and at most 30 s. A
/// lifetime beyond a day is taken as a day.
fn renew_after(expires_in: u64) -> Duration {
    if expires_in > MAX_TOKEN_LIFE_S {
        tracing::debug!(
            expires_in,
            max = MAX_TOKEN_LIFE_S,
            "the token's expires_in is beyond a day: taken as a day"
        );
    }
    let life = Duration::from_secs(expires_in.min(MAX_TOKEN_LIFE_S));
    life.saturating_sub((life / 10).min(Duration::from_secs(30)))
}

enum Auth {
    /// The terminal's own client credentials (client-initiated flows).
    ClientCredentials {
        token_path: String,
        client_id: String,
        client_secret: Secret,
        cache: Mutex<Option<CachedToken>>,
    },
    /// A QR-started flow: the accessToken that validateSession returned.
    Session(Mutex<Option<Secret>>),
}

/// A client for one AwareID host.
pub struct AwareIdClient {
    http: HttpSettings,
    base: String,
    apikey: Secret,
    auth: Auth,
    /// When the last answer from this host arrived: how long its connection
    /// has been idle.
    last_answer: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for AwareIdClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwareIdClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// The body of a request. It only borrows, so it can be sent twice (the 401 retry).
enum Body<'a, T: Serialize> {
    None,
    Json(&'a T),
    Form(&'a [(&'a str, &'a str)]),
}

impl<T: Serialize> Clone for Body<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Serialize> Copy for Body<'_, T> {}

impl AwareIdClient {
    /// The client for the configured tenant, authenticating with client credentials.
    pub fn new(server: &ServerConfig, http: &HttpSettings) -> Result<Self, ConfigError> {
        let base = crate::config::check_base_url(&server.base_url)?;
        Ok(Self {
            http: http.clone(),
            base: base.as_str().trim_end_matches('/').to_owned(),
            apikey: server.apikey.clone(),
            auth: Auth::ClientCredentials {
                token_path: paths::token_path(&server.customer_name),
                client_id: server.client_id.clone(),
                client_secret: server.client_secret.clone(),
                cache: Mutex::new(None),
            },
            last_answer: Mutex::new(None),
        })
    }

    /// The client for a QR code's host (always https), with the QR's apikey. Call
    /// [`Self::validate_session`] first; it supplies the bearer token.
    pub fn for_qr_host(host: &str, apikey: &str, http: &HttpSettings) -> Self {
        Self {
            http: http.clone(),
            base: format!("https://{host}"),
            apikey: Secret::new(apikey),
            auth: Auth::Session(Mutex::new(None)),
            last_answer: Mutex::new(None),
        }
    }

    /// Whether this client authenticates with the terminal's client credentials
    /// (rather than a QR session's token).
    pub fn uses_client_credentials(&self) -> bool {
        matches!(self.auth, Auth::ClientCredentials { .. })
    }

    /// Moves the cached token's clock and the last answer's on by `elapsed`, as
    /// if that much time had passed since: lets a test reach the renewal point
    /// or an idle connection without waiting for it. For tests only.
    #[doc(hidden)]
    pub fn pretend_elapsed(&self, elapsed: Duration) {
        if let Auth::ClientCredentials { cache, .. } = &self.auth
            && let Some(t) = lock(cache).as_mut()
        {
            t.renew_at = t.renew_at.checked_sub(elapsed).unwrap_or_else(Instant::now);
            t.fetched = t.fetched.checked_sub(elapsed).unwrap_or(t.fetched);
        }
        if let Some(at) = lock(&self.last_answer).as_mut() {
            *at = at.checked_sub(elapsed).unwrap_or(*at);
        }
    }

    /// Fetches the access token now if none is cached (the flows' "token" step).
    pub fn ensure_token(&self) -> Result<(), AwareIdError> {
        self.bearer(&paths::TOKEN, false).map(|_| ())
    }

    /// `POST /tokenVerify/validateSession` (apikey only). Keeps the accessToken
    /// for the rest of this flow.
    pub fn validate_session(
        &self,
        session_token: &str,
    ) -> Result<ValidateSessionResponse, AwareIdError> {
        let call = paths::VALIDATE_SESSION;
        let body = ValidateSessionRequest {
            session_token: session_token.to_owned(),
        };
        let resp: ValidateSessionResponse =
            self.parse(&call, self.send(&call, call.path, None, Body::Json(&body))?)?;
        if resp.method_type != "enroll" && resp.method_type != "authenticate" {
            return Err(AwareIdError::malformed(
                &call,
                format!(
                    "methodType is {:?}, expected enroll or authenticate",
                    resp.method_type
                ),
            ));
        }
        if let Auth::Session(slot) = &self.auth {
            *lock(slot) = Some(Secret::new(resp.access_token.clone()));
        }
        Ok(resp)
    }

    /// `GET /getPublicKey`: the PEM key face data is encrypted to. With client
    /// credentials it is kept with the token, for the token's lifetime.
    pub fn public_key(&self) -> Result<rsa::PublicKey, AwareIdError> {
        let call = paths::PUBLIC_KEY;
        let text = self.with_retries(&call, || self.authed(&call, Body::<()>::None))?;
        let key = parse_public_key(&text)
            .ok_or_else(|| AwareIdError::malformed(&call, "body is not a PEM RSA public key"))?;
        self.with_live_token(|t| t.public_key = Some(key.clone()));
        Ok(key)
    }

    /// The public key [`Self::public_key`] fetched under the token in force,
    /// if it is still in force.
    pub fn cached_public_key(&self) -> Option<rsa::PublicKey> {
        self.with_live_token(|t| t.public_key.clone()).flatten()
    }

    /// Forgets the cached public key: a call that sealed face data to it failed
    /// (AwareID may have rotated its key), so the next flow fetches it again.
    pub fn forget_public_key(&self) {
        self.with_live_token(|t| t.public_key = None);
    }

    /// Runs `f` on the cached client-credentials token while it is in force;
    /// `None` without one (and for a QR session's client, which keeps nothing).
    fn with_live_token<R>(&self, f: impl FnOnce(&mut CachedToken) -> R) -> Option<R> {
        let Auth::ClientCredentials { cache, .. } = &self.auth else {
            return None;
        };
        let mut guard = lock(cache);
        let token = guard.as_mut().filter(|t| Instant::now() < t.renew_at)?;
        Some(f(token))
    }

    /// POST enroll.
    pub fn enroll(&self, req: &EnrollRequest) -> Result<EnrollResponse, AwareIdError> {
        let call = paths::ENROLL;
        let resp: EnrollResponse = self.parse(&call, self.authed(&call, Body::Json(req))?)?;
        check_required(&call, &resp.required_checks, &ENROLL_CHECKS)?;
        Ok(resp)
    }

    /// POST addDevice.
    pub fn add_device(&self, req: &AddDeviceRequest) -> Result<AddDeviceResponse, AwareIdError> {
        let call = paths::ADD_DEVICE;
        let resp: AddDeviceResponse = self.parse(&call, self.authed(&call, Body::Json(req))?)?;
        check_status(&call, "enrollmentStatus", resp.enrollment_status)?;
        Ok(resp)
    }

    /// POST addFace; a complete status without a registration code is Malformed.
    pub fn add_face(&self, req: &AddFaceRequest) -> Result<AddFaceResponse, AwareIdError> {
        let call = paths::ADD_FACE;
        let resp: AddFaceResponse = self.parse(&call, self.authed(&call, Body::Json(req))?)?;
        check_status(&call, "enrollmentStatus", resp.enrollment_status)?;
        if resp.enrollment_status == STATUS_COMPLETE && resp.registration_code.is_empty() {
            return Err(AwareIdError::malformed(
                &call,
                "enrollmentStatus is 2 but registrationCode is empty",
            ));
        }
        Ok(resp)
    }

    /// POST authenticate.
    pub fn authenticate(
        &self,
        req: &AuthenticateRequest,
    ) -> Result<AuthenticateResponse, AwareIdError> {
        let call = paths::AUTHENTICATE;
        let resp: AuthenticateResponse = self.parse(&call, self.authed(&call, Body::Json(req))?)?;
        check_required(&call, &resp.required_checks, &AUTH_CHECKS)?;
        Ok(resp)
    }

    /// POST verifyDevice.
    pub fn verify_device(
        &self,
        req: &VerifyDeviceRequest,
    ) -> Result<VerifyDeviceResponse, AwareIdError> {
        let call = paths::VERIFY_DEVICE;
        let resp: VerifyDeviceResponse = self.parse(&call, self.authed(&call, Body::Json(req))?)?;
        check_status(&call, "authStatus", resp.auth_status)?;
        Ok(resp)
    }

    /// POST verifyFace.
    pub fn verify_face(&self, req: &VerifyFaceRequest) -> Result<VerifyFaceResponse, AwareIdError> {
        let call = paths::VERIFY_FACE;
        let resp: VerifyFaceResponse = self.parse(&call, self.authed(&call, Body::Json(req))?)?;
        check_status(&call, "authStatus", resp.auth_status)?;
        if !resp.match_score.is_finite() {
            return Err(AwareIdError::malformed(
                &call,
                "matchScore is not a finite number",
            ));
        }
        Ok(resp)
    }

    /// The web portal's side of a QR-started enrollment.
    pub fn trigger_enroll(
        &self,
        req: &TriggerEnrollRequest,
    ) -> Result<TriggerResponse, AwareIdError> {
        self.trigger(&paths::TRIGGER_ENROLL, req)
    }

    /// The web portal's side of a QR-started authentication.
    pub fn trigger_authenticate(
        &self,
        req: &TriggerAuthenticateRequest,
    ) -> Result<TriggerResponse, AwareIdError> {
        self.trigger(&paths::TRIGGER_AUTHENTICATE, req)
    }

    fn trigger<T: Serialize>(&self, call: &Call, req: &T) -> Result<TriggerResponse, AwareIdError> {
        let resp: TriggerResponse = self.parse(call, self.authed(call, Body::Json(req))?)?;
        match resp.status.as_str() {
            "SUCCESS"
                if resp
                    .session_callback_url
                    .as_deref()
                    .is_some_and(|u| !u.is_empty()) =>
            {
                Ok(resp)
            }
            "SUCCESS" => Err(AwareIdError::malformed(
                call,
                "status SUCCESS without sessionCallbackURL",
            )),
            "FAILURE" => Err(AwareIdError::Rejected {
                call: call.name,
                status: 200,
                code: "FAILURE".into(),
                message: resp
                    .error_summary
                    .unwrap_or_else(|| "no errorSummary".into()),
            }),
            other => Err(AwareIdError::malformed(
                call,
                format!("status is {other:?}"),
            )),
        }
    }

    fn parse<T: DeserializeOwned>(&self, call: &Call, text: String) -> Result<T, AwareIdError> {
        super::wire::parse_json(&text).map_err(|e| AwareIdError::malformed(call, e))
    }

    /// Sends a call with the bearer token; on a 401 with client credentials the
    /// token is fetched again and the call is sent once more.
    fn authed<T: Serialize>(&self, call: &Call, body: Body<'_, T>) -> Result<String, AwareIdError> {
        let token = self.bearer(call, false)?;
        match self.send(call, call.path, Some(&token), body) {
            Err(SendError::Unauthorized(_))
                if matches!(self.auth, Auth::ClientCredentials { .. }) =>
            {
                tracing::info!(
                    step = call.name,
                    "AwareID answered 401; fetching a new token once"
                );
                let token = self.bearer(call, true)?;
                self.send(call, call.path, Some(&token), body)
                    .map_err(AwareIdError::from)
            }
            other => other.map_err(AwareIdError::from),
        }
    }

    fn bearer(&self, call: &Call, force: bool) -> Result<Secret, AwareIdError> {
        match &self.auth {
            Auth::Session(slot) => lock(slot).clone().ok_or_else(|| AwareIdError::Rejected {
                call: call.name,
                status: 401,
                code: "NO_SESSION".into(),
                message: "validateSession has not been called".into(),
            }),
            Auth::ClientCredentials {
                token_path,
                client_id,
                client_secret,
                cache,
            } => {
                let mut cache = lock(cache);
                if force {
                    // The server refused this token: it is never sent again, even
                    // when fetching the next one fails.
                    *cache = None;
                }
                if let Some(t) = cache.as_ref()
                    && Instant::now() < t.renew_at
                {
                    return Ok(t.token.clone());
                }
                let mut fetched = self.fetch_token(token_path, client_id, client_secret)?;
                // The public key does not change with the token: it goes on
                // (unless the server refused the token, which forgot both).
                fetched.public_key = cache.as_mut().and_then(|t| t.public_key.take());
                let token = fetched.token.clone();
                *cache = Some(fetched);
                Ok(token)
            }
        }
    }

    /// `POST` the token call: a new token, not yet cached.
    fn fetch_token(
        &self,
        token_path: &str,
        client_id: &str,
        client_secret: &Secret,
    ) -> Result<CachedToken, AwareIdError> {
        let call = paths::TOKEN;
        let request = TokenRequest::client_credentials(client_id, client_secret.expose());
        let form = request.form();
        let fetched = Instant::now();
        let text = self.with_retries(&call, || {
            self.send(&call, token_path, None, Body::<()>::Form(&form))
                .map_err(AwareIdError::from)
        })?;
        let resp: TokenResponse = self.parse(&call, text)?;
        if resp.access_token.is_empty() {
            return Err(AwareIdError::malformed(&call, "access_token is empty"));
        }
        Ok(CachedToken {
            token: Secret::new(resp.access_token),
            fetched,
            renew_at: fetched + renew_after(resp.expires_in),
            public_key: None,
        })
    }

    /// One keep-warm turn (`server.keep_warm_s` = `every`), so that the next
    /// person's flow finds what it needs: with client credentials, a token
    /// that would be due for renewal before the next turn is renewed now (the
    /// one in force stays until the new one is in hand) and the public key
    /// fetched with it; otherwise, after `every` without an answer from the
    /// host, one getPublicKey keeps the connection open. A QR session's client
    /// has nothing to keep.
    pub fn keep_warm(&self, every: Duration) -> Result<Warmed, AwareIdError> {
        let Auth::ClientCredentials {
            token_path,
            client_id,
            client_secret,
            cache,
        } = &self.auth
        else {
            return Ok(Warmed::Nothing);
        };
        let now = Instant::now();
        let due = lock(cache)
            .as_ref()
            .is_none_or(|t| t.renew_at <= now + t.renew_lead(every));
        if due {
            let mut fresh = self.fetch_token(token_path, client_id, client_secret)?;
            {
                let mut cache = lock(cache);
                fresh.public_key = cache.as_mut().and_then(|t| t.public_key.take());
                *cache = Some(fresh);
            }
            self.public_key()?;
            return Ok(Warmed::Renewed);
        }
        if self.idle_for(now) >= every {
            self.public_key()?;
            return Ok(Warmed::Called);
        }
        Ok(Warmed::Nothing)
    }

    /// How long until a keep-warm turn (`every`) has something to do: the
    /// connection idle for `every`, or the token within its renewal lead; at
    /// least 5 s.
    pub fn next_warm(&self, every: Duration) -> Duration {
        let now = Instant::now();
        let Auth::ClientCredentials { cache, .. } = &self.auth else {
            return every;
        };
        let renew = lock(cache).as_ref().map_or(Duration::ZERO, |t| {
            t.renew_at
                .checked_sub(t.renew_lead(every))
                .map_or(Duration::ZERO, |at| at.saturating_duration_since(now))
        });
        let idle = every.saturating_sub(self.idle_for(now));
        renew.min(idle).max(WARM_FLOOR)
    }

    /// How long since the last answer from the host (forever: never).
    fn idle_for(&self, now: Instant) -> Duration {
        lock(&self.last_answer).map_or(Duration::MAX, |t| now.saturating_duration_since(t))
    }

    fn with_retries(
        &self,
        call: &Call,
        mut attempt: impl FnMut() -> Result<String, AwareIdError>,
    ) -> Result<String, AwareIdError> {
        let mut backoff = self.http.retry_backoff;
        let mut n = 1;
        loop {
            match attempt() {
                Err(AwareIdError::Unavailable { reason, .. }) if n < GET_ATTEMPTS => {
                    tracing::warn!(step = call.name, attempt = n, reason = %reason, "AwareID unavailable; retrying");
                    std::thread::sleep(backoff);
                    backoff *= 2;
                    n += 1;
                }
                other => return other,
            }
        }
    }

    /// One HTTP exchange. Returns the body of a 2xx answer.
    fn send<T: Serialize>(
        &self,
        call: &Call,
        path: &str,
        bearer: Option<&Secret>,
        body: Body<'_, T>,
    ) -> Result<String, SendError> {
        let url = format!("{}{}", self.base, path);
        let started = Instant::now();
        let result = self.exchange(call, &url, bearer, body)?;
        let took = started.elapsed();
        let duration_ms = took.as_millis() as u64;
        if let Some(m) = crate::metrics::global() {
            m.awareid_call(
                call.name,
                result.as_ref().ok().map(|r| r.status().as_u16()),
                took,
            );
        }
        let resp = match result {
            Ok(r) => r,
            Err(e) => {
                let proxy = self.http.proxy_for(&url);
                tracing::warn!(
                    step = call.name,
                    duration_ms,
                    error = %e,
                    proxy = proxy.as_deref().unwrap_or(""),
                    "AwareID call failed"
                );
                return Err(SendError::Failed(transport_error(call, e, proxy)));
            }
        };
        let status = resp.status().as_u16();
        *lock(&self.last_answer) = Some(Instant::now());
        let text = resp
            .into_body()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string();
        // A failed call is a warning with its status, at the default filter too.
        if (200..300).contains(&status) {
            tracing::debug!(
                step = call.name,
                http_status = status,
                duration_ms,
                "AwareID call"
            );
        } else {
            tracing::warn!(
                step = call.name,
                http_status = status,
                duration_ms,
                "AwareID call refused"
            );
        }
        let text = match text {
            Ok(t) => t,
            Err(e) => {
                let proxy = self.http.proxy_for(&url);
                return Err(SendError::Failed(transport_error(call, e, proxy)));
            }
        };
        classify(call, status, text)
    }

    /// Sends one request: a GET with the headers, a form, or JSON. The
    /// transport's result; an unserialisable body fails before anything is sent.
    fn exchange<T: Serialize>(
        &self,
        call: &Call,
        url: &str,
        bearer: Option<&Secret>,
        body: Body<'_, T>,
    ) -> Result<Result<ureq::http::Response<ureq::Body>, ureq::Error>, SendError> {
        Ok(match body {
            Body::None => {
                let mut req = self.http.agent.get(url);
                req = req.header("apikey", self.apikey.expose());
                if let Some(t) = bearer {
                    req = req.header("Authorization", format!("Bearer {}", t.expose()));
                }
                req.call()
            }
            Body::Form(form) => self.http.agent.post(url).send_form(form.iter().copied()),
            Body::Json(json) => {
                let mut req = self
                    .http
                    .agent
                    .post(url)
                    .header("Content-Type", "application/json; charset=UTF-8")
                    .header("apikey", self.apikey.expose());
                if let Some(t) = bearer {
                    req = req.header("Authorization", format!("Bearer {}", t.expose()));
                }
                match serde_json::to_vec(json) {
                    Ok(bytes) => req.send(&bytes[..]),
                    Err(e) => {
                        return Err(SendError::Failed(AwareIdError::malformed(
                            call,
                            format!("request: {e}"),
                        )));
                    }
                }
            }
        })
    }
}

/// The outcome a status and body stand for: the body of a 2xx, a 401 kept apart
/// for the token retry, a 4xx rejection, or a 5xx as unavailable.
fn classify(call: &Call, status: u16, text: String) -> Result<String, SendError> {
    match status {
        200..=299 => Ok(text),
        401 => Err(SendError::Unauthorized(rejection(call, status, &text))),
        400..=499 => Err(SendError::Failed(rejection(call, status, &text))),
        _ => {
            let detail = serde_json::from_str::<ErrorBody>(&text)
                .map(|e| format!("HTTP {status}: {}: {}", e.error_code, e.error_msg))
                .unwrap_or_else(|_| format!("HTTP {status}"));
            Err(SendError::Failed(AwareIdError::Unavailable {
                call: call.name,
                reason: detail,
            }))
        }
    }
}

/// The outcome of one exchange, keeping a 401 apart for the token retry.
enum SendError {
    Unauthorized(AwareIdError),
    Failed(AwareIdError),
}

impl From<SendError> for AwareIdError {
    fn from(e: SendError) -> Self {
        match e {
            SendError::Unauthorized(e) | SendError::Failed(e) => e,
        }
    }
}

fn rejection(call: &Call, status: u16, text: &str) -> AwareIdError {
    match serde_json::from_str::<ErrorBody>(text) {
        Ok(e) => AwareIdError::Rejected {
            call: call.name,
            status,
            code: e.error_code,
            message: e.error_msg,
        },
        Err(_) => AwareIdError::Rejected {
            call: call.name,
            status,
            code: format!("HTTP{status}"),
            message: "no AwareID error body".into(),
        },
    }
}

/// A failed exchange as an error; `proxy` names the proxy it went through.
fn transport_error(call: &Call, e: ureq::Error, proxy: Option<String>) -> AwareIdError {
    let reason = match (e, proxy) {
        (ureq::Error::BodyExceedsLimit(n), _) => {
            return AwareIdError::malformed(call, format!("response body over {n} bytes"));
        }
        (ureq::Error::ConnectProxyFailed(why), Some(p)) => {
            format!("the proxy {p} refused the connection ({why})")
        }
        (ureq::Error::Timeout(t), Some(p)) => format!("timed out ({t}) through the proxy {p}"),
        (ureq::Error::Timeout(t), None) => format!("timed out ({t})"),
        (other, Some(p)) => format!("{other} (through the proxy {p})"),
        (other, None) => other.to_string(),
    };
    AwareIdError::Unavailable {
        call: call.name,
        reason,
    }
}

fn check_required(call: &Call, checks: &[String], known: &[&str]) -> Result<(), AwareIdError> {
    match checks.iter().find(|c| !known.contains(&c.as_str())) {
        Some(unknown) => Err(AwareIdError::malformed(
            call,
            format!("requiredChecks names an unknown check {unknown:?}"),
        )),
        None => Ok(()),
    }
}

fn check_status(call: &Call, field: &str, status: i32) -> Result<(), AwareIdError> {
    if (STATUS_FAILED..=STATUS_COMPLETE).contains(&status) {
        Ok(())
    } else {
        Err(AwareIdError::malformed(
            call,
            format!("{field} is {status}, expected 0, 1 or 2"),
        ))
    }
}

/// Parses the getPublicKey body: SPKI PEM ("BEGIN PUBLIC KEY") or PKCS#1 PEM, with
/// the indentation the seed shows tolerated.
pub fn parse_public_key(text: &str) -> Option<rsa::PublicKey> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::pkcs8::DecodePublicKey;
    let pem: String = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    rsa::PublicKey::from_public_key_pem(&pem)
        .ok()
        .or_else(|| rsa::PublicKey::from_pkcs1_pem(&pem).ok())
}

#[cfg(test)]
mod tests {
    use super::renew_after;
    use std::time::Duration;

    #[test]
    fn tokens_are_renewed_a_little_before_they_expire() {
        // 10% of the lifetime early...
        assert_eq!(renew_after(2), Duration::from_millis(1800));
        assert_eq!(renew_after(100), Duration::from_secs(90));
        // ...but never more than 30 s early, and a token without a lifetime at once.
        assert_eq!(renew_after(3600), Duration::from_secs(3570));
        assert_eq!(renew_after(0), Duration::ZERO);
        // A server's absurd number is a day (no overflow on the Instant).
        assert_eq!(renew_after(u64::MAX), Duration::from_secs(24 * 3600 - 30));
        assert!(
            std::time::Instant::now()
                .checked_add(renew_after(u64::MAX))
                .is_some()
        );
    }
}
