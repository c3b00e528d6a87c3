//! One operation's life on the bus: it takes the one-operation slot (or is Busy
//! at once), runs its work on a blocking thread while forwarding its events as
//! signals, and ends on completion, Cancel, the caller leaving the bus or the
//! operation timeout; then it gives the slot back once the work has stopped
//! and writes the audit record its outcome stands for.
//!
//! A stop asked for after the work committed (addFace or verifyFace sent) does
//! not end it: the operation then answers that call's outcome
//! ([`crate::workflow::Interrupt`]).

use super::audit::{self, Decision};
use super::engine::{Engine, Enrolled, Event, Op, State};
use super::errors::Error;
use super::service::{FaceCapture, Served};
use crate::lock::lock;
use crate::workflow::{AuthOutcome, Interrupt};
use facecapture_dbus::Operation;
use futures_util::StreamExt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc};
use zbus::message::Header;
use zbus::object_server::SignalEmitter;

/// The operation holding the slot.
struct Current {
    operation: &'static str,
    started: Instant,
    interrupt: Arc<Interrupt>,
    cancelled: Arc<Notify>,
}

/// The one-operation slot: at most one operation (or the doctor's camera
/// check) holds it, so the camera is never shared.
#[derive(Clone, Default)]
pub struct Slot(Arc<Mutex<Option<Current>>>);

/// What taking the slot hands its operation: the flag its work checks and the
/// notification a Cancel sends.
pub struct Ticket {
    interrupt: Arc<Interrupt>,
    cancelled: Arc<Notify>,
}

impl Slot {
    /// Takes the slot for `operation`, or answers the name of the operation
    /// that holds it.
    pub fn take(&self, operation: &'static str) -> Result<Ticket, &'static str> {
        let mut slot = lock(&self.0);
        if let Some(cur) = &*slot {
            return Err(cur.operation);
        }
        let interrupt = Arc::new(Interrupt::new());
        let cancelled = Arc::new(Notify::new());
        *slot = Some(Current {
            operation,
            started: Instant::now(),
            interrupt: interrupt.clone(),
            cancelled: cancelled.clone(),
        });
        Ok(Ticket {
            interrupt,
            cancelled,
        })
    }

    /// Gives the slot back.
    pub fn release(&self) {
        *lock(&self.0) = None;
    }

    /// Asks the operation in flight to stop; whether there was one.
    pub fn cancel(&self) -> bool {
        match &*lock(&self.0) {
            Some(cur) => {
                cur.interrupt.cancel();
                cur.cancelled.notify_one();
                true
            }
            None => false,
        }
    }

    /// The operation holding the slot and its age as of `now`.
    pub fn holder(&self, now: Instant) -> Option<(&'static str, Duration)> {
        let slot = lock(&self.0);
        let cur = slot.as_ref()?;
        Some((cur.operation, now.saturating_duration_since(cur.started)))
    }
}

/// The bus side of a method call: who called, where signals go, the connection.
pub struct Call<'a> {
    /// The call's header (its sender).
    pub hdr: &'a Header<'a>,
    /// Where Progress, CaptureFeedback and property changes go.
    pub emitter: &'a SignalEmitter<'a>,
    /// The bus connection (watching the caller, the object server).
    pub conn: &'a zbus::Connection,
}

impl<'a> Call<'a> {
    /// The call of `hdr`, with its emitter and connection.
    pub fn new(
        hdr: &'a Header<'a>,
        emitter: &'a SignalEmitter<'a>,
        conn: &'a zbus::Connection,
    ) -> Self {
        Self { hdr, emitter, conn }
    }
}

/// What the operation is: its kind, whom it concerns ("" for a QR code's, which
/// the work learns) and its own time limit (None: daemon.operation_timeout_s).
pub struct Request<'a> {
    /// The method.
    pub kind: Operation,
    /// The user it concerns, when the caller named one.
    pub username: &'a str,
    /// Its limit, when not daemon.operation_timeout_s.
    pub limit: Option<Duration>,
}

impl<'a> Request<'a> {
    /// An operation of `kind` concerning `username` ("" when the work learns
    /// it), limited by daemon.operation_timeout_s.
    pub fn new(kind: Operation, username: &'a str) -> Self {
        Self {
            kind,
            username,
            limit: None,
        }
    }

    /// The same, with a limit of its own.
    pub fn within(self, limit: Duration) -> Self {
        Self {
            limit: Some(limit),
            ..self
        }
    }
}

/// An operation's result, as the audit record it stands for (none for one that
/// decides nothing: the camera check).
pub trait Decided {
    /// The audit record of this result of `operation`.
    fn decision(&self, operation: Operation, duration_ms: u64) -> Option<Decision<'_>>;
}

impl Decided for Enrolled {
    fn decision(&self, operation: Operation, duration_ms: u64) -> Option<Decision<'_>> {
        Some(audit::enrolled(operation, self, duration_ms))
    }
}

impl Decided for AuthOutcome {
    fn decision(&self, operation: Operation, duration_ms: u64) -> Option<Decision<'_>> {
        Some(audit::authenticated(operation, self, duration_ms))
    }
}

impl Decided for (String, AuthOutcome) {
    fn decision(&self, operation: Operation, duration_ms: u64) -> Option<Decision<'_>> {
        Some(audit::authenticated(operation, &self.1, duration_ms))
    }
}

impl Decided for crate::capture::check::Check {
    fn decision(&self, _: Operation, _: u64) -> Option<Decision<'_>> {
        None
    }
}

/// The stream that says the caller left the bus (None: no caller name, or the
/// bus would not tell).
type Departures = Option<zbus::fdo::NameOwnerChangedStream>;

async fn watch_caller(conn: &zbus::Connection, caller: Option<&str>) -> Departures {
    let name = caller?;
    let proxy = zbus::fdo::DBusProxy::new(conn).await.ok()?;
    proxy
        .receive_name_owner_changed_with_args(&[(0, name)])
        .await
        .ok()
}

/// An operation whose work is running: what can end it, and whether a stop
/// came after its point of no return.
struct Running<T> {
    kind: Operation,
    limit: Duration,
    ticket: Ticket,
    events: mpsc::UnboundedReceiver<Event>,
    task: tokio::task::JoinHandle<Result<T, Error>>,
    departures: Departures,
    /// Asked to stop after the deciding call was sent: it then ends with that
    /// call's outcome, and nothing else stops it.
    overtaken: bool,
}

impl<T: Send + 'static> Running<T> {
    /// Asks the work to stop: the error to answer with now, or None when the
    /// work has committed and its outcome is awaited.
    fn stop(&mut self, why: &'static str, error: Error) -> Option<Error> {
        if self.ticket.interrupt.cancel() {
            return Some(error);
        }
        tracing::info!(
            operation = self.kind.as_str(),
            why,
            "asked to stop after the call that decides was sent: its outcome stands"
        );
        self.overtaken = true;
        None
    }

    /// The error the operation timeout answers, by what the work was doing.
    fn timed_out(&self, state: State) -> Error {
        let operation = self.kind.as_str();
        let secs = self.limit.as_secs();
        let what = if self.kind == Operation::CameraCheck {
            "the check's seconds and the camera's stall limit"
        } else {
            "daemon.operation_timeout_s"
        };
        match state {
            State::Capturing | State::ScanningQr => {
                Error::CaptureTimeout(format!("{operation}: no result within {secs} s ({what})"))
            }
            _ => {
                Error::ServerUnavailable(format!("{operation}: no answer within {secs} s ({what})"))
            }
        }
    }

    /// Forwards the work's events until it finishes or is stopped: its outcome,
    /// and whether the work itself has finished.
    async fn until_done(
        &mut self,
        object: &FaceCapture,
        emitter: &SignalEmitter<'_>,
    ) -> (Result<T, Error>, bool) {
        let operation = self.kind.as_str();
        let deadline = tokio::time::sleep(self.limit);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                Some(event) = self.events.recv() => object.emit(emitter, operation, event).await,
                joined = &mut self.task => {
                    let outcome = joined.unwrap_or_else(|e| Err(Error::Internal(format!("{operation} failed: {e}"))));
                    return (outcome, true);
                }
                _ = self.ticket.cancelled.notified(), if !self.overtaken => {
                    if let Some(e) = self.stop("cancelled", Error::Cancelled(format!("{operation} was cancelled"))) {
                        return (Err(e), false);
                    }
                }
                Some(change) = async {
                    match self.departures.as_mut() {
                        Some(stream) => stream.next().await,
                        None => std::future::pending().await,
                    }
                }, if !self.overtaken => {
                    let left = change.args().map(|a| a.new_owner().is_none()).unwrap_or(false);
                    if left && let Some(e) = self.stop("the caller left the bus", Error::Cancelled(format!("{operation} cancelled: the caller left the bus"))) {
                        return (Err(e), false);
                    }
                }
                _ = &mut deadline, if !self.overtaken => {
                    let error = self.timed_out(object.current_state());
                    if let Some(e) = self.stop("the operation timeout", error) {
                        return (Err(e), false);
                    }
                }
            }
        }
    }
}

impl FaceCapture {
    /// Runs one operation: takes the slot or answers Busy, runs `work` on a
    /// blocking thread, forwards its events, and ends it on completion, Cancel, the
    /// caller leaving the bus, or the operation timeout; then writes its audit
    /// record.
    pub(super) async fn run<T: Decided + Send + 'static>(
        &self,
        call: Call<'_>,
        request: Request<'_>,
        work: impl FnOnce(&Engine, &Op<'_>) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let kind = request.kind;
        let operation = kind.as_str();
        // This operation's settings, whatever a reload puts in force meanwhile.
        let engine = self.engine();
        let limit = request.limit.unwrap_or_else(|| engine.operation_timeout());
        let subject = Arc::new(OnceLock::new());
        if !request.username.is_empty() {
            let _ = subject.set(request.username.to_owned());
        }
        let ticket = self
            .slot()
            .take(operation)
            .map_err(|busy| Error::Busy(format!("{busy} is in progress")))?;
        let caller = call.hdr.sender().map(|s| s.to_string());
        tracing::info!(
            operation,
            caller = caller.as_deref().unwrap_or("-"),
            "operation started"
        );
        let started = Instant::now();
        let departures = watch_caller(call.conn, caller.as_deref()).await;

        let (tx, events) = mpsc::unbounded_channel::<Event>();
        let work_engine = engine.clone();
        let flag = ticket.interrupt.clone();
        let who = subject.clone();
        let task = tokio::task::spawn_blocking(move || {
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
        let mut running = Running {
            kind,
            limit,
            ticket,
            events,
            task,
            departures,
            overtaken: false,
        };
        let (outcome, finished) = running.until_done(self, call.emitter).await;
        running.ticket.interrupt.cancel();
        // Signals already sent by the operation go out before the reply.
        while let Ok(event) = running.events.try_recv() {
            self.emit(call.emitter, operation, event).await;
        }
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.follow_camera(call.emitter, &outcome, operation, ms, &engine)
            .await;
        if finished {
            self.slot().release();
            self.set_state(call.emitter, State::Idle).await;
        } else {
            release_when_stopped(self.slot().clone(), running.task, call.conn.clone());
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

    /// CameraAvailable after an operation: true when it succeeded, false (with a
    /// camera-lost audit record) when it lost the camera.
    async fn follow_camera<T>(
        &self,
        emitter: &SignalEmitter<'_>,
        outcome: &Result<T, Error>,
        operation: &'static str,
        duration_ms: u64,
        engine: &Engine,
    ) {
        match outcome {
            Err(e @ Error::CameraUnavailable(_)) => {
                if self.set_camera(emitter, false).await {
                    let lost = Decision {
                        record: audit::Record::CameraLost,
                        operation,
                        username: "",
                        reason: zbus::DBusError::description(e)
                            .unwrap_or_default()
                            .to_owned(),
                        duration_ms,
                    };
                    audit::record(&lost, engine.device_id());
                }
            }
            Ok(_) => {
                self.set_camera(emitter, true).await;
            }
            Err(_) => {}
        }
    }
}

/// The blocking work ends at its next cancel check (or HTTP timeout): the slot
/// stays taken until then, so the camera is never shared; then State is idle.
fn release_when_stopped<T: Send + 'static>(
    slot: Slot,
    task: tokio::task::JoinHandle<T>,
    conn: zbus::Connection,
) {
    tokio::spawn(async move {
        let _ = task.await;
        slot.release();
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
