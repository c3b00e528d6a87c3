//! The AwareID workflows of the seed, at the HTTP level: client-initiated
//! enrollment and authentication, and both started from a QR code. The daemon runs
//! these with the camera pipeline as the face source; tests run them with photos.
//!
//! Each step is announced to a progress callback under the interface XML's step names, and
//! logged with structured fields (operation, step, username). Registration codes,
//! tokens and face data are never logged.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::awareid::wire::*;
use crate::awareid::{AwareIdClient, AwareIdError, HttpSettings};
use crate::config::Encryption;
use crate::crypto::device::DeviceKey;
use crate::crypto::qr::{QrError, QrKeys, SessionCallback};
use crate::secret::Secret;

/// the interface XML's Progress steps (the client crate's).
pub use facecapture_dbus::Step;

/// What a QR code's session starts (validateSession's `methodType`): a QR flow
/// accepts only the one it was called for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QrMethod {
    /// `methodType` "enroll": EnrollWithQr.
    Enroll,
    /// `methodType` "authenticate": AuthenticateWithQr.
    Authenticate,
}

impl QrMethod {
    /// The `methodType` AwareID sends for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enroll => "enroll",
            Self::Authenticate => "authenticate",
        }
    }
}

impl std::fmt::Display for QrMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a flow stopped; `daemon::errors` maps each onto the interface XML's D-Bus errors.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// An AwareID call failed (unreachable, refused, an unexpected answer).
    #[error(transparent)]
    Server(#[from] AwareIdError),
    /// The QR code does not verify or decrypt.
    #[error("QR code: {0}")]
    Qr(#[from] QrError),
    /// The QR session is for the other flow (an enrollment code given to
    /// AuthenticateWithQr, or the reverse).
    #[error("the QR code starts an {got} flow, not {expected}")]
    WrongMethod {
        /// The flow the caller runs.
        expected: QrMethod,
        /// The session's method, as validateSession gave it.
        got: String,
    },
    /// The capture ended without a package (cancelled, timed out, the camera lost).
    #[error("capture failed: {0}")]
    Capture(#[from] crate::capture::CaptureError),
    /// The face data could not be sealed.
    #[error("face data encryption failed: {0}")]
    Envelope(#[from] crate::crypto::envelope::EnvelopeError),
    /// The face package could not be serialised.
    #[error("face package encoding failed: {0}")]
    Encode(#[from] serde_json::Error),
    /// The device key could not sign or give its public key.
    #[error("device key: {0}")]
    Device(#[from] crate::crypto::device::DeviceError),
    /// validateSession named a username the terminal cannot take as it is (too
    /// long, a hidden character, white space that makes it show as another):
    /// nothing is stored or sent for it.
    #[error("the QR code's session (validateSession) names a bad userName: {0}")]
    SessionUser(String),
    /// The thread the capture runs on could not be started.
    #[error("cannot start the capture thread: {0}")]
    Thread(std::io::Error),
}

/// The terminal's identity as AwareID knows it.
#[derive(Debug)]
pub struct Terminal {
    /// The deviceId sent with addDevice and verifyDevice.
    pub device_id: String,
    /// The P-256 key whose public half addDevice registers and which signs
    /// verifyDevice's authToken.
    pub key: DeviceKey,
}

/// Who is being enrolled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// The AwareID username.
    pub username: String,
    /// Sent with enroll.
    pub email: String,
    /// Sent with enroll (may be empty).
    pub phone_number: String,
    /// Sent with enroll when given.
    pub first_name: Option<String>,
    /// Sent with enroll when given.
    pub last_name: Option<String>,
}

/// What an enrollment flow ended with (addFace's answer).
#[derive(Debug)]
pub struct EnrollOutcome {
    /// Who was enrolled.
    pub username: String,
    /// Empty unless enrollment_status is [`STATUS_COMPLETE`]. A secret: stored, never shown.
    pub registration_code: Secret,
    /// addFace's enrollmentStatus ([`STATUS_COMPLETE`]: enrolled).
    pub enrollment_status: i32,
    /// addFace's livenessResult.
    pub liveness: bool,
}

impl EnrollOutcome {
    /// Whether AwareID completed the enrollment: enrollment_status
    /// [`STATUS_COMPLETE`] with a registration code (what the terminal stores).
    pub fn completed(&self) -> bool {
        self.enrollment_status == STATUS_COMPLETE && !self.registration_code.is_empty()
    }
}

/// What an authentication flow ended with (verifyFace's answer), in the shape
/// the AuthenticateWithQr reply carries it: who, whether access is granted
/// (liveness && matched && auth_status == [`STATUS_COMPLETE`]), and verifyFace's
/// livenessResult, matchResult, matchScore and authStatus.
pub use facecapture_dbus::AuthenticateWithQrReply as AuthOutcome;

/// Produces the face package for a user: the capture pipeline, or photos in tests.
/// A flow runs it on a thread of its own, alongside its server calls, so it
/// must be `Send`.
pub trait FaceSource: Send {
    /// The package for `username` (named in its workflow data). It ends early,
    /// with [`crate::capture::CaptureError::Cancelled`], once `stop` is set: the
    /// flow sets it when a server call failed meanwhile.
    fn capture(&mut self, username: &str, stop: &AtomicBool)
    -> Result<FaceLivenessData, FlowError>;
}

impl<F> FaceSource for F
where
    F: FnMut(&str, &AtomicBool) -> Result<FaceLivenessData, FlowError> + Send,
{
    fn capture(
        &mut self,
        username: &str,
        stop: &AtomicBool,
    ) -> Result<FaceLivenessData, FlowError> {
        self(username, stop)
    }
}

/// The caller's say over a running flow, and the flow's point of no return.
///
/// Anyone may ask a flow to stop (Cancel, the caller leaving the bus, the
/// operation timeout, SIGTERM); the flow looks before each call that changes
/// state on the server. The last such call, addFace or verifyFace, is where the
/// outcome becomes real: AwareID stores the enrollment (retiring an old code)
/// or decides the access. Once it is sent its outcome is the operation's,
/// whoever asked to stop: the flow [commits](Self::commit) before sending it,
/// and a [`cancel`](Self::cancel) that comes later is told so and waits for that
/// outcome. Both sides write their flag before reading the other's (sequentially
/// consistent), so at least one sees the other: never a call sent and a reply of
/// Cancelled.
///
/// ```
/// use facecapture::workflow::Interrupt;
/// let before = Interrupt::new();
/// assert!(before.cancel(), "stopped before the point of no return");
/// assert!(before.commit().is_err(), "the flow does not send addFace");
///
/// let after = Interrupt::new();
/// assert!(after.commit().is_ok());
/// assert!(!after.cancel(), "addFace was sent: its outcome stands");
/// ```
#[derive(Debug, Default)]
pub struct Interrupt {
    cancel: AtomicBool,
    committed: AtomicBool,
}

impl Interrupt {
    /// Neither cancelled nor committed.
    pub const fn new() -> Self {
        Self {
            cancel: AtomicBool::new(false),
            committed: AtomicBool::new(false),
        }
    }

    /// The flag the capture and the QR scan watch (set by [`Self::cancel`]).
    pub fn flag(&self) -> &AtomicBool {
        &self.cancel
    }

    /// Asks the flow to stop. `true` when it stops short of the server's state
    /// (the operation may answer Cancelled now); `false` when the flow has
    /// committed: its last call was sent, and its outcome is the operation's.
    pub fn cancel(&self) -> bool {
        self.cancel.store(true, Ordering::SeqCst);
        !self.committed.load(Ordering::SeqCst)
    }

    /// Whether the flow was asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    /// Whether the flow has passed its point of no return.
    pub fn is_committed(&self) -> bool {
        self.committed.load(Ordering::SeqCst)
    }

    /// Before a call whose outcome is real: an error (Cancelled) if the flow was
    /// asked to stop first, and then the call is not sent.
    pub fn commit(&self) -> Result<(), FlowError> {
        self.committed.store(true, Ordering::SeqCst);
        if self.cancel.load(Ordering::SeqCst) {
            return Err(cancelled());
        }
        Ok(())
    }

    /// Before a call that changes state on the server short of the outcome
    /// (enroll, addDevice, authenticate, verifyDevice): an error (Cancelled) if
    /// the flow was asked to stop.
    pub fn check(&self) -> Result<(), FlowError> {
        if self.is_cancelled() {
            Err(cancelled())
        } else {
            Ok(())
        }
    }
}

fn cancelled() -> FlowError {
    FlowError::Capture(crate::capture::CaptureError::Cancelled)
}

/// Runs the capture on a thread of its own while `server` makes this flow's
/// calls on this one, so that the person is captured during the round trips
/// rather than after them. `server` calls the checkpoint it is given between
/// its calls: once the capture has failed (cancelled, timed out, the camera
/// lost) the checkpoint stops it, and the capture's error is the flow's. A
/// server error sets the capture's stop flag, so the camera is let go at once,
/// and is the flow's error.
fn alongside_capture<T>(
    face: &mut dyn FaceSource,
    interrupt: &Interrupt,
    username: &str,
    server: impl FnOnce(&dyn Fn() -> Result<(), FlowError>) -> Result<T, FlowError>,
) -> Result<(T, FaceLivenessData), FlowError> {
    let stop = AtomicBool::new(false);
    let capture_failed = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let capture = std::thread::Builder::new()
            .name("capture".into())
            .spawn_scoped(scope, || {
                let result = face.capture(username, &stop);
                if result.is_err() {
                    capture_failed.store(true, Ordering::Relaxed);
                }
                result
            })
            .map_err(FlowError::Thread)?;
        // Server calls never fail with a capture error: this one is the
        // checkpoint's, and the capture's own error stands for it below.
        let checkpoint = || {
            if capture_failed.load(Ordering::Relaxed) {
                Err(cancelled())
            } else {
                interrupt.check()
            }
        };
        let served = server(&checkpoint);
        if served.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        let captured = capture
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        match (served, captured) {
            (Ok(t), Ok(data)) => Ok((t, data)),
            (Err(FlowError::Capture(_)), Err(e)) => Err(e),
            (Err(e), _) | (Ok(_), Err(e)) => Err(e),
        }
    })
}

/// What a flow needs besides the server.
pub struct Context<'a> {
    /// The terminal's identity.
    pub terminal: &'a Terminal,
    /// Whether face data goes sealed (`face.encryption`).
    pub encryption: Encryption,
    /// Called at each step (the daemon's Progress signal).
    pub progress: &'a dyn Fn(Step),
    /// The caller's cancel, and the flow's point of no return.
    pub interrupt: &'a Interrupt,
}

impl Context<'_> {
    fn step(&self, operation: &str, username: &str, step: Step) {
        tracing::info!(operation, step = step.as_str(), username, "step");
        (self.progress)(step);
    }
}

/// Seals or passes the package as `face.encryption` says.
fn package(
    ctx: &Context<'_>,
    key: Option<&rsa::PublicKey>,
    data: FaceLivenessData,
) -> Result<FaceData, FlowError> {
    match (ctx.encryption, key) {
        (Encryption::Envelope, Some(key)) => {
            let json = zeroize::Zeroizing::new(serde_json::to_vec(&data)?);
            Ok(FaceData::Sealed(crate::crypto::envelope::seal(key, &json)?))
        }
        _ => Ok(FaceData::Plain(data)),
    }
}

fn public_key_if_needed(
    op: &str,
    username: &str,
    client: &AwareIdClient,
    ctx: &Context<'_>,
) -> Result<Option<rsa::PublicKey>, FlowError> {
    if ctx.encryption == Encryption::Envelope {
        if let Some(key) = client.cached_public_key() {
            return Ok(Some(key));
        }
        ctx.step(op, username, Step::PublicKey);
        Ok(Some(client.public_key()?))
    } else {
        Ok(None)
    }
}

/// Client-initiated enrollment (token, public key, enroll, addDevice, with the
/// face captured alongside them; then addFace), or the rest of a QR-started one
/// when `client` came from [`start_qr`]. The steps go to `ctx.progress` in that
/// order, `capture` once the calls before it are done and the flow waits on the
/// face.
pub fn enroll(
    client: &AwareIdClient,
    ctx: &Context<'_>,
    person: &Person,
    face: &mut dyn FaceSource,
) -> Result<EnrollOutcome, FlowError> {
    const OP: &str = "enroll";
    let started = Instant::now();
    let user = person.username.as_str();
    let ((token, key), data) = alongside_capture(face, ctx.interrupt, user, |checkpoint| {
        if client.uses_client_credentials() {
            ctx.step(OP, user, Step::Token);
            client.ensure_token()?;
            checkpoint()?;
        }
        let key = public_key_if_needed(OP, user, client, ctx)?;
        checkpoint()?;
        ctx.step(OP, user, Step::Enroll);
        let enrolled = client.enroll(&EnrollRequest {
            username: person.username.clone(),
            first_name: person.first_name.clone(),
            last_name: person.last_name.clone(),
            email: person.email.clone(),
            phone_number: person.phone_number.clone(),
        })?;
        let token = Secret::new(enrolled.enrollment_token.clone());
        tracing::info!(
            operation = OP,
            username = user,
            user_exists_already = enrolled.user_exists_already,
            "enrollment started"
        );
        checkpoint()?;
        ctx.step(OP, user, Step::AddDevice);
        client.add_device(&AddDeviceRequest {
            enrollment_token: token.expose().to_owned(),
            device_id: ctx.terminal.device_id.clone(),
            public_key: ctx.terminal.key.public_key_b64()?,
        })?;
        checkpoint()?;
        // The face is what the flow waits on now.
        ctx.step(OP, user, Step::Capture);
        Ok((token, key))
    })?;
    let data = package(ctx, key.as_ref(), data)?;
    // addFace's outcome is real (a re-enrollment retires the old code): from
    // here on a cancel waits for it.
    ctx.interrupt.commit()?;
    ctx.step(OP, user, Step::AddFace);
    let added = client
        .add_face(&AddFaceRequest {
            enrollment_token: token.expose().to_owned(),
            face_liveness_data: data,
        })
        .inspect_err(|_| client.forget_public_key())?;
    ctx.step(OP, user, Step::Done);
    tracing::info!(
        operation = OP,
        username = user,
        enrollment_status = added.enrollment_status,
        liveness = added.liveness_result,
        duration_ms = started.elapsed().as_millis() as u64,
        "enrollment finished"
    );
    Ok(EnrollOutcome {
        username: person.username.clone(),
        registration_code: Secret::new(added.registration_code),
        enrollment_status: added.enrollment_status,
        liveness: added.liveness_result,
    })
}

/// Client-initiated authentication with a stored registration code:
/// authenticate and verifyDevice (and the token and public key when they are
/// not cached), with the face captured alongside them; then verifyFace.
pub fn authenticate(
    client: &AwareIdClient,
    ctx: &Context<'_>,
    username: &str,
    registration_code: &Secret,
    face: &mut dyn FaceSource,
) -> Result<AuthOutcome, FlowError> {
    const OP: &str = "authenticate";
    let started = Instant::now();
    let ((token, key), data) = alongside_capture(face, ctx.interrupt, username, |checkpoint| {
        if client.uses_client_credentials() {
            ctx.step(OP, username, Step::Token);
            client.ensure_token()?;
        }
        checkpoint()?;
        ctx.step(OP, username, Step::Authenticate);
        let auth = client.authenticate(&AuthenticateRequest {
            registration_code: registration_code.expose().to_owned(),
            device_id: ctx.terminal.device_id.clone(),
        })?;
        let token = Secret::new(auth.auth_token.clone());
        checkpoint()?;
        ctx.step(OP, username, Step::VerifyDevice);
        client.verify_device(&VerifyDeviceRequest {
            auth_token: token.expose().to_owned(),
            signature: ctx.terminal.key.sign_auth_token(token.expose()),
            device_id: ctx.terminal.device_id.clone(),
        })?;
        checkpoint()?;
        let key = public_key_if_needed(OP, username, client, ctx)?;
        checkpoint()?;
        // The face is what the flow waits on now.
        ctx.step(OP, username, Step::Capture);
        Ok((token, key))
    })?;
    let data = package(ctx, key.as_ref(), data)?;
    // verifyFace decides the access: from here on a cancel waits for it.
    ctx.interrupt.commit()?;
    ctx.step(OP, username, Step::VerifyFace);
    let v = client
        .verify_face(&VerifyFaceRequest {
            auth_token: token.expose().to_owned(),
            face_liveness_data: data,
        })
        .inspect_err(|_| client.forget_public_key())?;
    ctx.step(OP, username, Step::Done);
    let granted = v.liveness_result && v.match_result && v.auth_status == STATUS_COMPLETE;
    tracing::info!(
        operation = OP,
        username,
        granted,
        liveness = v.liveness_result,
        matched = v.match_result,
        auth_status = v.auth_status,
        duration_ms = started.elapsed().as_millis() as u64,
        "authentication finished"
    );
    Ok(AuthOutcome {
        username: username.to_owned(),
        granted,
        liveness: v.liveness_result,
        matched: v.match_result,
        match_score: v.match_score,
        auth_status: v.auth_status,
    })
}

/// A QR-started flow after validateSession: the client for the QR's host and who
/// the session is for.
pub struct QrSession {
    /// A client for the QR code's host, with its session token.
    pub client: AwareIdClient,
    /// What the QR code held (host, apikey, session token).
    pub callback: SessionCallback,
    /// validateSession's answer: the method and who it is for.
    pub session: ValidateSessionResponse,
}

/// Verifies and decrypts the QR code, then validates the session on its host.
/// `expected` is the flow the caller runs; a QR code for the other is refused.
pub fn start_qr(
    url: &str,
    keys: &QrKeys,
    allowed_hosts: &[String],
    http: &HttpSettings,
    expected: QrMethod,
    progress: &dyn Fn(Step),
) -> Result<QrSession, FlowError> {
    let callback = crate::crypto::qr::decode(url, keys, allowed_hosts)?;
    start_qr_session(callback, http, expected, progress)
}

/// Validates the session of an already verified QR code (one scanned by the camera).
pub fn start_qr_session(
    callback: SessionCallback,
    http: &HttpSettings,
    expected: QrMethod,
    progress: &dyn Fn(Step),
) -> Result<QrSession, FlowError> {
    tracing::info!(operation = expected.as_str(), step = Step::ValidateSession.as_str(), host = %callback.host, "step");
    progress(Step::ValidateSession);
    let client = AwareIdClient::for_qr_host(&callback.host, &callback.apikey, http);
    let session = client.validate_session(&callback.session_token)?;
    // The session's userName is the server's word, held to the rule a D-Bus
    // username is held to before it is stored, listed or audited.
    crate::names::check_username(&session.user_name).map_err(FlowError::SessionUser)?;
    if session.method_type != expected.as_str() {
        return Err(FlowError::WrongMethod {
            expected,
            got: session.method_type,
        });
    }
    Ok(QrSession {
        client,
        callback,
        session,
    })
}
