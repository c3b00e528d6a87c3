//! The D-Bus object `/org/facecapture/FaceCapture1` (interface
//! `org.facecapture.FaceCapture1`, documented method by method in
//! `facecapture-dbus/org.facecapture.FaceCapture1.xml`): its methods and
//! properties, and Progress / CaptureFeedback signals and State changes sent
//! before the reply. Arguments are checked in [`super::args`]; an operation's
//! life (the one slot, Cancel, the caller leaving, the timeout, the audit
//! record) is [`super::operation`]'s.

use super::args::{
    MAX_NAME, check_email, check_phone, check_text, check_url, check_username, invalid,
};
use super::engine::{Engine, Event, State};
use super::errors::Error;
use super::operation::{Call, Request, Slot};
use super::readonly::ReadOnly;
use crate::lock::lock;
use crate::workflow::Person;
use facecapture_dbus::Operation;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use zbus::message::Header;
use zbus::object_server::SignalEmitter;

/// The object: the engine, the one-operation slot, State and CameraAvailable.
pub struct FaceCapture {
    /// The engine of the configuration in force: an operation keeps the one it
    /// started with, a reload puts a new one here for the next.
    engine: Mutex<Arc<Engine>>,
    slot: Slot,
    state: Mutex<State>,
    camera_available: AtomicBool,
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
            slot: Slot::default(),
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
        self.slot.cancel()
    }

    /// The operation that holds the slot past `daemon.operation_timeout_s` plus
    /// the grace its blocking work has to notice the cancel (as of `now`): its
    /// name and age. Such work is stuck (a V4L2 ioctl that never returns): the
    /// daemon stops feeding systemd's watchdog, and systemd restarts it.
    pub fn overrun(&self, now: std::time::Instant) -> Option<(&'static str, std::time::Duration)> {
        let (operation, age) = self.slot.holder(now)?;
        let engine = self.engine();
        (age > engine.operation_timeout() + engine.stuck_grace()).then_some((operation, age))
    }

    /// The one-operation slot.
    pub(super) fn slot(&self) -> &Slot {
        &self.slot
    }

    /// The enrollments as ListSiteEnrollments shows them: username, host,
    /// enrolled at, standing, door.
    async fn listed(&self) -> Result<Vec<(String, String, i64, String, String)>, Error> {
        let engine = self.engine();
        let list = tokio::task::spawn_blocking(move || engine.list())
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        Ok(list
            .into_iter()
            .map(|(e, standing)| {
                let standing = standing.as_str().to_owned();
                (e.username, e.server_host, e.enrolled_at, standing, e.door)
            })
            .collect())
    }

    /// The State property's value.
    pub(super) fn current_state(&self) -> State {
        *lock(&self.state)
    }

    pub(super) async fn set_state(&self, emitter: &SignalEmitter<'_>, state: State) {
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

    pub(super) async fn emit(&self, emitter: &SignalEmitter<'_>, operation: &str, event: Event) {
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

    /// Writes the metrics textfile (if configured) off the bus's thread.
    pub(super) fn publish_metrics(&self) {
        let engine = self.engine();
        tokio::task::spawn_blocking(move || engine.write_metrics());
    }

    /// Sets CameraAvailable; whether it changed.
    pub(super) async fn set_camera(&self, emitter: &SignalEmitter<'_>, available: bool) -> bool {
        let changed = self.camera_available.swap(available, Ordering::Relaxed) != available;
        if changed {
            let _ = self.camera_available_changed(emitter).await;
        }
        changed
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
                Call::new(&hdr, &emitter, conn),
                Request::new(Operation::Enroll, &username),
                move |engine, op| engine.enroll(op, &person),
            )
            .await?
            .outcome;
        // The registration code stays in the daemon (docs/identity.md).
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
                Call::new(&hdr, &emitter, conn),
                Request::new(Operation::EnrollQr, ""),
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
                Call::new(&hdr, &emitter, conn),
                Request::new(Operation::Authenticate, &who),
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
                Call::new(&hdr, &emitter, conn),
                Request::new(Operation::AuthenticateQr, ""),
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
                Call::new(&hdr, &emitter, conn),
                Request::new(Operation::CameraCheck, "").within(limit),
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
        let camera = match self.slot.take("diagnose") {
            Err(busy) => crate::doctor::pass(
                "camera",
                format!("in use by {busy} (an operation streams from it)"),
            ),
            Ok(_) => {
                let e = engine.clone();
                let found = tokio::task::spawn_blocking(move || e.diagnose_camera()).await;
                self.slot.release();
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
        Ok(self
            .listed()
            .await?
            .into_iter()
            .map(|(user, host, at, standing, _)| (user, host, at, standing))
            .collect())
    }

    /// (The header parameter: see `cancel`.)
    #[zbus(out_args("enrollments"))]
    async fn list_site_enrollments(
        &self,
        #[zbus(header)] _hdr: Header<'_>,
    ) -> Result<Vec<(String, String, i64, String, String)>, Error> {
        self.listed().await
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

    #[zbus(property)]
    fn site(&self) -> (String, bool, i64, u64, u64, u64) {
        match self.engine().hub() {
            Some(hub) => {
                let s = hub.state();
                (
                    hub.door.clone(),
                    s.connected,
                    s.last_contact,
                    s.applied,
                    s.outbox,
                    hub.max_stale_s,
                )
            }
            None => Default::default(),
        }
    }

    #[zbus(signal)]
    async fn progress(emitter: &SignalEmitter<'_>, operation: &str, step: &str)
    -> zbus::Result<()>;

    #[zbus(signal)]
    async fn capture_feedback(emitter: &SignalEmitter<'_>, code: &str) -> zbus::Result<()>;
}
