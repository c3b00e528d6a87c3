//! The D-Bus object `/org/facecapture/FaceCapture1` (interface
//! `org.facecapture.FaceCapture1`, SPEC 6): argument checks, the one-operation
//! slot (Busy at once), Cancel, cancelling when the caller leaves the bus, the
//! operation timeout, and Progress / CaptureFeedback signals and State changes
//! sent before the reply.

use super::audit::{self, Decision};
use super::engine::{Engine, Enrolled, Event, Op, State};
use super::errors::Error;
use super::readonly::ReadOnly;
use crate::lock::lock;
use crate::workflow::{Interrupt, Person};
use facecapture_dbus::Operation;
use futures_util::StreamExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use zbus::message::Header;
use zbus::object_server::SignalEmitter;

/// The longest username, first or last name, in characters ([`crate::names`]).
pub const MAX_NAME: usize = crate::names::MAX_NAME;
const MAX_EMAIL: usize = 254;
const MAX_PHONE: usize = 32;
const MAX_URL: usize = 4096;

struct Current {
    operation: &'static str,
    started: std::time::Instant,
    interrupt: Arc<Interrupt>,
    cancelled: Arc<tokio::sync::Notify>,
}

/// The object: the engine, the one-operation slot, State and CameraAvailable.
pub struct FaceCapture {
    /// The engine of the configuration in force: an operation keeps the one it
    /// started with, a reload puts a new one here for the next.
    engine: Mutex<Arc<Engine>>,
    slot: Arc<Mutex<Option<Current>>>,
    state: Mutex<State>,
    camera_available: AtomicBool,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidArgument(msg.into())
}

/// [`crate::names::check_text`] as an InvalidArgument.
fn check_text(what: &str, value: &str, max: usize, required: bool) -> Result<(), Error> {
    crate::names::check_text(what, value, max, required).map_err(invalid)
}

/// Checks a username argument ([`crate::names::check_username`]): InvalidArgument
/// naming what is wrong (empty, too long, a hidden character, white space that
/// makes it show as another name).
pub fn check_username(username: &str) -> Result<(), Error> {
    crate::names::check_username(username).map_err(invalid)
}

fn check_email(email: &str) -> Result<(), Error> {
    check_text("email", email, MAX_EMAIL, true)?;
    let shape_ok = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !email.chars().any(char::is_whitespace)
    });
    if shape_ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "email {email:?} is not an address like name@example.com"
        )))
    }
}

fn check_phone(phone: &str) -> Result<(), Error> {
    check_text("phone_number", phone, MAX_PHONE, false)?;
    if phone
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c))
    {
        Ok(())
    } else {
        Err(invalid(
            "phone_number may hold only digits, spaces and + - ( ) .",
        ))
    }
}

fn check_url(url: &str) -> Result<(), Error> {
    if url.len() > MAX_URL {
        return Err(invalid(format!(
            "session_callback_url is {} bytes; at most {MAX_URL}",
            url.len()
        )));
    }
    // The QR decoder names what is wrong with a URL that is no sessionCallbackURL.
    Ok(())
}

/// The object as it is served: Set on its read-only properties answers
/// PropertyReadOnly (see [`ReadOnly`]).
pub type Served = ReadOnly<FaceCapture>;

impl FaceCapture {
    /// The object to serve at [`super::OBJECT_PATH`].
    pub fn served(engine: Arc<Engine>) -> Served {
        ReadOnly(Self::new(engine))
    }

    /// The object over `engine`, idle.
    pub fn new(engine: Arc<Engine>) -> Self {
        let camera = engine.camera_present();
        Self {
            engine: Mutex::new(engine),
            slot: Arc::new(Mutex::new(None)),
            state: Mutex::new(State::Idle),
            camera_available: AtomicBool::new(camera),
        }
    }

    /// The engine of the configuration in force.
    pub fn engine(&self) -> Arc<Engine> {
        lock(&self.engine).clone()
    }

    /// Puts `engine` (a reloaded configuration's) in force: the operation in flight
    /// finishes with the one it started with; the next one runs on this. The
    /// CameraAvailable property follows the new camera setting.
    pub async fn replace_engine(&self, emitter: &SignalEmitter<'_>, engine: Arc<Engine>) {
        let present = engine.camera_present();
        *lock(&self.engine) = engine;
        self.set_camera(emitter, present).await;
    }

    /// Cancels the operation in flight, if any (SIGTERM, Cancel()).
    pub fn cancel_current(&self) -> bool {
        match &*lock(&self.slot) {
            Some(cur) => {
                cur.interrupt.cancel();
                cur.cancelled.notify_one();
                true
            }
            None => false,
        }
    }

    /// The operation that holds the slot past `daemon.operation_timeout_s` plus
    /// the grace its blocking work has to notice the cancel (as of `now`): its
    /// name and age. Such work is stuck (a V4L2 ioctl that never returns): the
    /// daemon stops feeding systemd's watchdog, and systemd restarts it.
    pub fn overrun(&self, now: std::time::Instant) -> Option<(&'static str, std::time::Duration)> {
        let slot = lock(&self.slot);
        let cur = slot.as_ref()?;
        let age = now.saturating_duration_since(cur.started);
        let engine = self.engine();
        (age > engine.operation_timeout() + engine.stuck_grace()).then_some((cur.operation, age))
    }

    async fn set_state(&self, emitter: &SignalEmitter<'_>, state: State) {
        let changed = {
            let mut s = lock(&self.state);
            let changed = *s != state;
            *s = state;
            changed
        };
        if changed {
            let _ = self.state_changed(emitter).await;
        }
    }

    async fn emit(&self, emitter: &SignalEmitter<'_>, operation: &str, event: Event) {
        let sent = match event {
            Event::Progress(step) => Self::progress(emitter, operation, step.as_str()).await,
            Event::Feedback(code) => Self::capture_feedback(emitter, code.as_str()).await,
            Event::State(state) => {
                self.set_state(emitter, state).await;
                Ok(())
            }
        };
        if let Err(e) = sent {
            tracing::warn!(error = %e, "cannot emit a signal");
        }
    }

    /// Runs one operation: takes the slot or answers Busy, runs `work` on a
    /// blocking thread, forwards its events, and ends it on completion, Cancel, the
    /// caller leaving the bus, or the operation timeout; then writes its audit
    /// record. `username` is whom it concerns ("" for a QR code's, which the work
    /// learns).
    async fn run<T: Decided + Send + 'static>(
        &self,
        hdr: &Header<'_>,
        emitter: &SignalEmitter<'_>,
        conn: &zbus::Connection,
        (kind, username): (Operation, &str),
        limit: Option<std::time::Duration>,
        work: impl FnOnce(&Engine, &Op<'_>) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let operation = kind.as_str();
        // This operation's settings, whatever a reload puts in force meanwhile.
        let engine = self.engine();
        // Its own limit, or daemon.operation_timeout_s.
        let limit = limit.unwrap_or_else(|| engine.operation_timeout());
        let subject = Arc::new(OnceLock::new());
        if !username.is_empty() {
            let _ = subject.set(username.to_owned());
        }
        let (interrupt, cancelled) = self
            .take_slot(operation)
            .map_err(|busy| Error::Busy(format!("{busy} is in progress")))?;
        let caller = hdr.sender().map(|s| s.to_string());
        tracing::info!(
            operation,
            caller = caller.as_deref().unwrap_or("-"),
            "operation started"
        );
        let started = std::time::Instant::now();

        // The caller leaving the bus cancels its operation.
        let mut gone = match &caller {
            Some(name) => match zbus::fdo::DBusProxy::new(conn).await {
                Ok(proxy) => proxy
                    .receive_name_owner_changed_with_args(&[(0, name.as_str())])
                    .await
                    .ok(),
                Err(_) => None,
            },
            None => None,
        };

        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
        let work_engine = engine.clone();
        let flag = interrupt.clone();
        let who = subject.clone();
        let mut task = tokio::task::spawn_blocking(move || {
            let events = move |e: Event| {
                let _ = tx.send(e);
            };
            let op = Op {
                name: operation,
                events: &events,
                interrupt: &flag,
                subject: &who,
            };
            work(&work_engine, &op)
        });
        let deadline = tokio::time::sleep(limit);
        tokio::pin!(deadline);
        let mut finished = false;
        // Whether the operation was asked to stop after its point of no return
        // (addFace or verifyFace sent): it then ends with that call's outcome,
        // and nothing else stops it.
        let mut overtaken = false;
        // Asks the work to stop; the error to answer with now, or None when the
        // work has committed and its outcome is awaited.
        let stop = |why: &'static str, error: Error, overtaken: &mut bool| {
            if interrupt.cancel() {
                return Some(error);
            }
            tracing::info!(
                operation,
                why,
                "asked to stop after the call that decides was sent: its outcome stands"
            );
            *overtaken = true;
            None
        };
        let outcome = loop {
            tokio::select! {
                Some(event) = rx.recv() => self.emit(emitter, operation, event).await,
                joined = &mut task => {
                    finished = true;
                    break joined.unwrap_or_else(|e| Err(Error::Internal(format!("{operation} failed: {e}"))));
                }
                _ = cancelled.notified(), if !overtaken => {
                    if let Some(e) = stop("cancelled", Error::Cancelled(format!("{operation} was cancelled")), &mut overtaken) {
                        break Err(e);
                    }
                }
                Some(change) = async {
                    match gone.as_mut() {
                        Some(stream) => stream.next().await,
                        None => std::future::pending().await,
                    }
                }, if !overtaken => {
                    let left = change.args().map(|a| a.new_owner().is_none()).unwrap_or(false);
                    if left && let Some(e) = stop("the caller left the bus", Error::Cancelled(format!("{operation} cancelled: the caller left the bus")), &mut overtaken) {
                        break Err(e);
                    }
                }
                _ = &mut deadline, if !overtaken => {
                    let secs = limit.as_secs();
                    let state = *lock(&self.state);
                    let what = if kind == Operation::CameraCheck { "the check's seconds and the camera's stall limit" } else { "daemon.operation_timeout_s" };
                    let e = match state {
                        State::Capturing | State::ScanningQr => Error::CaptureTimeout(format!("{operation}: no result within {secs} s ({what})")),
                        _ => Error::ServerUnavailable(format!("{operation}: no answer within {secs} s ({what})")),
                    };
                    if let Some(e) = stop("the operation timeout", e, &mut overtaken) {
                        break Err(e);
                    }
                }
            }
        };
        interrupt.cancel();
        // Signals already sent by the operation go out before the reply.
        while let Ok(event) = rx.try_recv() {
            self.emit(emitter, operation, event).await;
        }
        let ms = started.elapsed().as_millis() as u64;
        match &outcome {
            Err(e @ Error::CameraUnavailable(_)) => {
                if self.set_camera(emitter, false).await {
                    let lost = Decision {
                        record: audit::Record::CameraLost,
                        operation,
                        username: "",
                        reason: zbus::DBusError::description(e)
                            .unwrap_or_default()
                            .to_owned(),
                        duration_ms: ms,
                    };
                    audit::record(&lost, engine.device_id());
                }
            }
            Ok(_) => {
                self.set_camera(emitter, true).await;
            }
            Err(_) => {}
        }
        if finished {
            *lock(&self.slot) = None;
            self.set_state(emitter, State::Idle).await;
        } else {
            // The blocking work ends at its next cancel check (or HTTP timeout): the
            // slot stays taken until then, so the camera is never shared.
            let slot = self.slot.clone();
            let conn = conn.clone();
            tokio::spawn(async move {
                let _ = task.await;
                *lock(&slot) = None;
                let iface = conn
                    .object_server()
                    .interface::<_, Served>(super::OBJECT_PATH)
                    .await;
                if let Ok(iface) = iface {
                    let emitter = iface.signal_emitter().clone();
                    iface.get().await.set_state(&emitter, State::Idle).await;
                }
            });
        }
        let who = subject.get().map_or("", String::as_str);
        let decision = match &outcome {
            Ok(done) => done.decision(kind, ms),
            Err(e) => audit::failure(kind, who, e, ms),
        };
        if let Some(decision) = decision {
            audit::record(&decision, engine.device_id());
        }
        self.publish_metrics();
        outcome
    }

    /// Takes the one-operation slot for `operation`: its interrupt and
    /// notification, or the name of the operation that holds it.
    fn take_slot(
        &self,
        operation: &'static str,
    ) -> Result<(Arc<Interrupt>, Arc<tokio::sync::Notify>), &'static str> {
        let mut slot = lock(&self.slot);
        if let Some(cur) = &*slot {
            return Err(cur.operation);
        }
        let interrupt = Arc::new(Interrupt::new());
        let cancelled = Arc::new(tokio::sync::Notify::new());
        *slot = Some(Current {
            operation,
            started: std::time::Instant::now(),
            interrupt: interrupt.clone(),
            cancelled: cancelled.clone(),
        });
        Ok((interrupt, cancelled))
    }

    /// Writes the metrics textfile (if configured) off the bus's thread.
    fn publish_metrics(&self) {
        let engine = self.engine();
        tokio::task::spawn_blocking(move || engine.write_metrics());
    }

    /// Sets CameraAvailable; whether it changed.
    async fn set_camera(&self, emitter: &SignalEmitter<'_>, available: bool) -> bool {
        let changed = self.camera_available.swap(available, Ordering::Relaxed) != available;
        if changed {
            let _ = self.camera_available_changed(emitter).await;
        }
        changed
    }
}

/// An operation's result, as the audit record it stands for (none for one that
/// decides nothing: the camera check).
trait Decided {
    fn decision(&self, operation: Operation, duration_ms: u64) -> Option<Decision<'_>>;
}

impl Decided for Enrolled {
    fn decision(&self, operation: Operation, duration_ms: u64) -> Option<Decision<'_>> {
        Some(audit::enrolled(
            operation,
            &self.outcome,
            self.replaced,
            duration_ms,
        ))
    }
}

impl Decided for crate::workflow::AuthOutcome {
    fn decision(&self, operation: Operation, duration_ms: u64) -> Option<Decision<'_>> {
        Some(audit::authenticated(operation, self, duration_ms))
    }
}

impl Decided for (String, crate::workflow::AuthOutcome) {
    fn decision(&self, operation: Operation, duration_ms: u64) -> Option<Decision<'_>> {
        Some(audit::authenticated(operation, &self.1, duration_ms))
    }
}

impl Decided for crate::capture::check::Check {
    fn decision(&self, _: Operation, _: u64) -> Option<Decision<'_>> {
        None
    }
}

/// Whether the caller of `hdr` is root (the snapshot's condition): asked of the
/// bus, which knows the peer's uid; no answer is no.
async fn caller_is_root(hdr: &Header<'_>, conn: &zbus::Connection) -> bool {
    let Some(sender) = hdr.sender() else {
        return false;
    };
    let Ok(bus) = zbus::fdo::DBusProxy::new(conn).await else {
        return false;
    };
    matches!(
        bus.get_connection_unix_user(sender.clone().into()).await,
        Ok(0)
    )
}

#[zbus::interface(name = "org.facecapture.FaceCapture1")]
impl FaceCapture {
    #[zbus(out_args("enrollment_status", "liveness"))]
    #[allow(clippy::too_many_arguments)]
    async fn enroll(
        &self,
        username: String,
        email: String,
        phone_number: String,
        first_name: String,
        last_name: String,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<(i32, bool), Error> {
        check_username(&username)?;
        check_email(&email)?;
        check_phone(&phone_number)?;
        check_text("first_name", &first_name, MAX_NAME, false)?;
        check_text("last_name", &last_name, MAX_NAME, false)?;
        let person = Person {
            username: username.clone(),
            email,
            phone_number,
            first_name: Some(first_name).filter(|s| !s.is_empty()),
            last_name: Some(last_name).filter(|s| !s.is_empty()),
        };
        let out = self
            .run(
                &hdr,
                &emitter,
                conn,
                (Operation::Enroll, &username),
                None,
                move |engine, op| engine.enroll(op, &person),
            )
            .await?
            .outcome;
        // The registration code stays in the daemon (SPEC 6).
        Ok((out.enrollment_status, out.liveness))
    }

    #[zbus(out_args("username", "enrollment_status", "liveness"))]
    async fn enroll_with_qr(
        &self,
        session_callback_url: String,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<(String, i32, bool), Error> {
        check_url(&session_callback_url)?;
        let out = self
            .run(
                &hdr,
                &emitter,
                conn,
                (Operation::EnrollQr, ""),
                None,
                move |engine, op| engine.enroll_qr(op, &session_callback_url),
            )
            .await?
            .outcome;
        Ok((out.username, out.enrollment_status, out.liveness))
    }

    #[zbus(out_args("granted", "liveness", "matched", "match_score", "auth_status"))]
    async fn authenticate(
        &self,
        username: String,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<(bool, bool, bool, f64, i32), Error> {
        check_username(&username)?;
        let who = username.clone();
        let a = self
            .run(
                &hdr,
                &emitter,
                conn,
                (Operation::Authenticate, &who),
                None,
                move |engine, op| engine.authenticate(op, &username),
            )
            .await?;
        Ok((
            a.granted,
            a.liveness,
            a.matched,
            a.match_score,
            a.auth_status,
        ))
    }

    #[zbus(out_args(
        "username",
        "granted",
        "liveness",
        "matched",
        "match_score",
        "auth_status"
    ))]
    async fn authenticate_with_qr(
        &self,
        session_callback_url: String,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<(String, bool, bool, bool, f64, i32), Error> {
        check_url(&session_callback_url)?;
        let (user, a) = self
            .run(
                &hdr,
                &emitter,
                conn,
                (Operation::AuthenticateQr, ""),
                None,
                move |engine, op| engine.authenticate_qr(op, &session_callback_url),
            )
            .await?;
        Ok((
            user,
            a.granted,
            a.liveness,
            a.matched,
            a.match_score,
            a.auth_status,
        ))
    }

    /// The installer's check: the capture loop for `seconds`, no AwareID; the
    /// report, and with `snapshot` (root only) one marked-up frame.
    #[zbus(out_args("report", "frame"))]
    async fn camera_check(
        &self,
        seconds: u32,
        snapshot: bool,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<(crate::capture::check::CameraReport, Vec<u8>), Error> {
        use crate::capture::check::MAX_SECONDS;
        if !(1..=MAX_SECONDS).contains(&seconds) {
            return Err(invalid(format!("seconds is {seconds}; 1 to {MAX_SECONDS}")));
        }
        if snapshot && !caller_is_root(&hdr, conn).await {
            return Err(Error::ZBus(zbus::Error::FDO(Box::new(
                zbus::fdo::Error::AccessDenied(
                    "snapshot: only root may have a frame (it is biometric data)".into(),
                ),
            ))));
        }
        // The check's time, a stalled camera's limit, and some for the last frame.
        let limit = std::time::Duration::from_secs(u64::from(seconds))
            + crate::capture::STALL
            + std::time::Duration::from_secs(10);
        let check = self
            .run(
                &hdr,
                &emitter,
                conn,
                (Operation::CameraCheck, ""),
                Some(limit),
                move |engine, op| engine.camera_check(op, seconds, snapshot),
            )
            .await?;
        let png = check
            .snapshot
            .as_ref()
            .map(|p| p.to_vec())
            .unwrap_or_default();
        Ok((check.report, png))
    }

    /// What usually breaks, from the daemon's seat. The camera is opened only when
    /// no operation holds it (one that does shows it works); the slot is held
    /// meanwhile, so a door call then is Busy for that second.
    #[zbus(out_args("findings"))]
    async fn diagnose(
        &self,
        #[zbus(header)] _hdr: Header<'_>,
    ) -> Result<Vec<crate::doctor::Finding>, Error> {
        let engine = self.engine();
        let camera = match self.take_slot("diagnose") {
            Err(busy) => crate::doctor::pass(
                "camera",
                format!("in use by {busy} (an operation streams from it)"),
            ),
            Ok(_) => {
                let e = engine.clone();
                let found = tokio::task::spawn_blocking(move || e.diagnose_camera()).await;
                *lock(&self.slot) = None;
                found.map_err(|e| Error::Internal(e.to_string()))?
            }
        };
        let mut findings = tokio::task::spawn_blocking(move || engine.diagnose())
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        findings.insert(1, camera);
        Ok(findings)
    }

    /// Ends the operation in flight with Cancelled; nothing in flight is not an error.
    ///
    /// (The unused header parameter is what makes zbus 6 check the call's body:
    /// for a method with no parameters at all it checks none, and `Cancel("x")`
    /// would be answered as `Cancel()`. tests/service.rs holds it to that.)
    async fn cancel(&self, #[zbus(header)] _hdr: Header<'_>) -> Result<(), Error> {
        if self.cancel_current() {
            tracing::info!("cancel requested");
        }
        Ok(())
    }

    /// (The header parameter: see `cancel`.)
    #[zbus(out_args("enrollments"))]
    async fn list_enrollments(
        &self,
        #[zbus(header)] _hdr: Header<'_>,
    ) -> Result<Vec<(String, String, i64, String)>, Error> {
        let engine = self.engine();
        let list = tokio::task::spawn_blocking(move || engine.list())
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        Ok(list
            .into_iter()
            .map(|(e, standing)| {
                (
                    e.username,
                    e.server_host,
                    e.enrolled_at,
                    standing.as_str().to_owned(),
                )
            })
            .collect())
    }

    async fn remove_enrollment(&self, username: String) -> Result<(), Error> {
        check_username(&username)?;
        let engine = self.engine();
        let removed = tokio::task::spawn_blocking(move || engine.remove(&username))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        self.publish_metrics();
        removed
    }

    /// (The header parameter: see `cancel`.)
    #[zbus(out_args("statistics"))]
    async fn get_statistics(
        &self,
        #[zbus(header)] _hdr: Header<'_>,
    ) -> Result<std::collections::HashMap<String, f64>, Error> {
        Ok(crate::metrics::global()
            .map(|m| m.snapshot().into_iter().collect())
            .unwrap_or_default())
    }

    #[zbus(property)]
    fn state(&self) -> String {
        lock(&self.state).as_str().to_owned()
    }

    #[zbus(property(emits_changed_signal = "const"), name = "DeviceId")]
    fn device_id(&self) -> String {
        self.engine().device_id().to_owned()
    }

    #[zbus(property(emits_changed_signal = "const"))]
    fn device_key_protection(&self) -> String {
        self.engine().protection().as_str().to_owned()
    }

    #[zbus(property)]
    fn camera_available(&self) -> bool {
        self.camera_available.load(Ordering::Relaxed)
    }

    #[zbus(property(emits_changed_signal = "const"))]
    fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_owned()
    }

    #[zbus(signal)]
    async fn progress(emitter: &SignalEmitter<'_>, operation: &str, step: &str)
    -> zbus::Result<()>;

    #[zbus(signal)]
    async fn capture_feedback(emitter: &SignalEmitter<'_>, code: &str) -> zbus::Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_checked_with_named_errors() {
        let name = |r: Result<(), Error>| match r {
            Err(Error::InvalidArgument(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(name(check_username("")).contains("username is empty"));
        assert!(name(check_username(&"x".repeat(10_000))).contains("at most 128"));
        assert!(name(check_username("a\u{0}b")).contains("control"));
        assert!(check_username("alice").is_ok());
        for bad in [
            "",
            "alice",
            "a@b",
            "@example.com",
            "a@@b.com",
            "a b@c.com",
            "a@.com",
        ] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
        assert!(check_email("alice@example.com").is_ok());
        assert!(check_phone("+1 (555) 010-0").is_ok());
        assert!(name(check_phone("call me")).contains("phone_number"));
        assert!(check_url(&"x".repeat(5000)).is_err());
    }

    #[test]
    fn text_that_shows_as_other_text_is_refused() {
        let name = |r: Result<(), Error>| match r {
            Err(Error::InvalidArgument(m)) => m,
            other => panic!("{other:?}"),
        };
        // Bidi controls, marks, zero-width and other format characters.
        for bad in [
            "eve\u{202E}gnp.exe",
            "a\u{202A}b",
            "a\u{2066}b",
            "a\u{2069}b",
            "a\u{200E}b",
            "a\u{200F}b",
            "a\u{200B}b",
            "a\u{2060}b",
            "\u{FEFF}alice",
            "a\u{2028}b",
            "a\u{E000}b",
        ] {
            let m = name(check_username(bad));
            assert!(m.contains("format character"), "{bad:?}: {m}");
        }
        assert!(name(check_username("eve\u{202E}gnp.exe")).contains("U+202E"));
        assert!(check_text("first_name", "eve\u{202E}x", MAX_NAME, false).is_err());
        // Letters of every script pass.
        for good in ["José", "Zoë", "Дмитрий", "李小龍", "O'Brien-Smith"] {
            assert!(check_username(good).is_ok(), "{good:?}");
        }
        // A Persian name with its non-joiner is a name, not a username.
        let persian = "\u{0645}\u{06CC}\u{200C}\u{062E}\u{0648}\u{0627}\u{0647}\u{0645}";
        assert!(check_text("first_name", persian, MAX_NAME, false).is_ok());
        assert!(name(check_username(persian)).contains("U+200C"));
    }

    #[test]
    fn the_interface_xml_gives_the_same_length_limit() {
        let xml = facecapture_dbus::INTERFACE_XML;
        assert!(
            xml.contains(&format!("1 to {MAX_NAME} characters")),
            "the XML's username length is not {MAX_NAME}"
        );
        assert!(xml.contains(&format!("at most {MAX_NAME} characters")));
    }
}
