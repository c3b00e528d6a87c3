//! The operation engine's resources and the blocking work of each D-Bus method:
//! the camera, detector and capture settings; storage; the AwareID client; the
//! terminal's identity. Each operation runs on a blocking thread, reports progress,
//! feedback and state through `Events`, and watches its cancel flag.

use super::audit;
use super::errors::Error;
use crate::awareid::wire::STATUS_COMPLETE;
use crate::awareid::{AwareIdClient, AwareIdError, HttpSettings, paths};
use crate::camera::Camera;
use crate::capture::{self, CaptureError, Feedback, Settings};
use crate::clock::unix_now;
use crate::config::{CameraSource, Config};
use crate::crypto::device::{DeviceKey, this_machine_device_id};
use crate::crypto::qr::{QrKeys, SessionCallback};
use crate::crypto::sealed::{Protection, SealedIdentity};
use crate::crypto::site::SiteIdentity;
use crate::detect::Detector;
use crate::lock::lock;
use crate::secret::Secret;
use crate::site::entry::{self, Fact};
use crate::storage::Queued;
use crate::storage::{Adopted, Enrollment, EnrollmentInfo, Storage, StorageError};
use crate::workflow::{
    self, AuthOutcome, Context, EnrollOutcome, FlowError, Interrupt, Person, QrMethod, Step,
    Terminal,
};
use facecapture_dbus::Standing;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};

/// The `State` property (the client crate's).
pub use facecapture_dbus::State;

/// What an operation tells the bus while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A workflow step began.
    Progress(Step),
    /// The capture feedback changed.
    Feedback(Feedback),
    /// The State property changes.
    State(State),
}

/// One operation's link to its caller: where events go, and its cancel flag.
pub struct Op<'a> {
    /// The operation's name (its Progress `operation`).
    pub name: &'static str,
    /// Where its events go (the service forwards them to the bus).
    pub events: &'a (dyn Fn(Event) + Sync),
    /// Set by Cancel, the caller leaving, the timeout or SIGTERM; the work checks
    /// it, and commits to addFace or verifyFace through it.
    pub interrupt: &'a Interrupt,
    /// Whom the operation concerns, once known: the username argument, or the
    /// one a QR code's session names (the audit record of a failure carries it).
    pub subject: &'a OnceLock<String>,
}

/// A start without a usable identity: the device id the database knows, and
/// why provisioning failed.
struct Unusable {
    device_id: String,
    why: String,
}

/// An enrollment AwareID answered: its outcome, and whether it replaced a stored
/// one (the user was enrolled before and the new code is stored).
#[derive(Debug)]
pub struct Enrolled {
    /// addFace's answer.
    pub outcome: EnrollOutcome,
    /// Whether its registration code was stored ([`EnrollOutcome::completed`]).
    pub stored: bool,
    /// Whether a re-enrollment replaced the stored code.
    pub replaced: bool,
}

/// The site identity as the engine uses it.
struct Site {
    /// Its device id and key, to sign with.
    terminal: Terminal,
    /// How it is sealed on this terminal.
    protection: Protection,
}

impl Site {
    /// The engine's part of the credential, and the identity itself parsed once
    /// (for the hub, which seals and opens the entries with it).
    fn from_credential(payload: &Secret) -> Result<(Self, SiteIdentity), StartError> {
        let bad =
            |e: String| StartError::Identity(StorageError::Identity(format!("site_identity {e}")));
        let site =
            SiteIdentity::parse(payload.expose().as_bytes()).map_err(|e| bad(e.to_string()))?;
        let der = site.key.to_pkcs8_der().map_err(|e| bad(e.to_string()))?;
        let engines = Self {
            terminal: Terminal {
                device_id: site.device_id.clone(),
                key: DeviceKey::from_pkcs8_der(&der).map_err(|e| bad(e.to_string()))?,
            },
            protection: site.protection.unwrap_or(Protection::Unusable),
        };
        Ok((engines, site))
    }
}

struct CaptureKit {
    camera: Camera,
    detector: Detector,
    settings: Settings,
}

/// The daemon's resources and each method's blocking work (see the module doc).
pub struct Engine {
    config: Config,
    http: HttpSettings,
    client: AwareIdClient,
    qr_keys: Option<QrKeys>,
    /// The hosts a QR code may name (`Config::qr_allowed_hosts`; empty: any).
    qr_hosts: Vec<String>,
    /// The terminal's own identity; `Err` when provisioning failed on this
    /// start (every flow then answers Unprovisioned, signing nothing).
    terminal: Result<Terminal, Unusable>,
    protection: Protection,
    /// The site identity (docs/identity.md) when this terminal is in a site: new
    /// enrollments are made under it; each stored one is signed with the
    /// identity it was made under.
    site: Option<Site>,
    /// The site's hub, when `[site]` names one: enrollments and removals made
    /// here are queued for it in the transaction that stores them.
    hub: Option<Arc<crate::site::Hub>>,
    server_host: String,
    storage: Mutex<Storage>,
    kit: Mutex<CaptureKit>,
    /// The user whose re-enrollment this process is running (one operation at a
    /// time); a stored mark for anyone else was left by an interrupted one.
    reenrolling: Mutex<Option<String>>,
}

/// Whether AwareID may have acted on an addFace whose answer the terminal never
/// read (it timed out, the connection dropped, the answer was garbled).
fn add_face_unsettled(e: &FlowError) -> bool {
    match e {
        FlowError::Server(
            AwareIdError::Unavailable { call, .. } | AwareIdError::Malformed { call, .. },
        ) => *call == paths::ADD_FACE.name,
        _ => false,
    }
}

fn new_identity() -> Result<(String, DeviceKey), StorageError> {
    let id = this_machine_device_id().map_err(|e| StorageError::Identity(e.to_string()))?;
    let key = DeviceKey::generate().map_err(|e| StorageError::Identity(e.to_string()))?;
    tracing::info!(device_id = id.as_str(), "new device identity");
    Ok((id, key))
}

/// Why the engine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The device identity cannot be used on this start (a sealed key that did
    /// not load, or a credential from another terminal): retrying cannot help.
    #[error("device identity: {0}")]
    Identity(StorageError),
    /// Anything else that stops the start (the message says what).
    #[error("{0}")]
    Other(String),
}

fn other(e: impl std::fmt::Display) -> StartError {
    StartError::Other(e.to_string())
}

impl Engine {
    /// Everything the daemon needs before it takes its bus name.
    pub fn new(config: Config) -> Result<Self, StartError> {
        let mut storage = Storage::open(&config.storage.state_dir).map_err(other)?;
        if !config.storage.provisioning_failed.is_empty() {
            // The sealed key did not open (or provisioning failed otherwise):
            // serve, so that callers hear why at once, but sign nothing.
            let reason = config.storage.provisioning_failed.clone();
            tracing::error!(
                reason = reason.as_str(),
                "provisioning failed on this start: every enrollment and authentication \
                 answers Unprovisioned, and nothing is signed"
            );
            let device_id = storage
                .stored_identity()
                .ok()
                .flatten()
                .map(|(id, _)| id)
                .unwrap_or_default();
            let unusable = Unusable {
                device_id,
                why: reason,
            };
            return Self::assemble(config, storage, Err(unusable), Protection::Unusable);
        }
        let identity = |e| match e {
            StorageError::Db { .. } | StorageError::Dir { .. } => other(e),
            e => StartError::Identity(e),
        };
        let (device_id, key, protection) = if config.storage.device_key.is_empty() {
            let (id, key) = storage.device_identity(new_identity).map_err(identity)?;
            (id, key, Protection::Plain)
        } else {
            let sealed = SealedIdentity::parse(config.storage.device_key.expose().as_bytes())
                .map_err(|e| {
                    StartError::Identity(StorageError::Identity(format!("device_key {e}")))
                })?;
            if storage.adopt_sealed(&sealed).map_err(identity)? == Adopted::Scrubbed {
                tracing::info!(
                    path = %storage.path().display(),
                    "the database's plain copy of the device key is scrubbed: the sealed credential holds it now"
                );
            }
            (sealed.device_id, sealed.key, sealed.protection)
        };
        let terminal = Terminal { device_id, key };
        let mut engine = Self::assemble(config, storage, Ok(terminal), protection)?;
        if !engine.config.storage.site_identity.is_empty() {
            let (site, identity) = Site::from_credential(&engine.config.storage.site_identity)?;
            engine.site = Some(site);
            if engine.config.site.enabled() {
                let hub = crate::site::Hub::new(&engine.config.site, identity).map_err(other)?;
                engine.hub = Some(Arc::new(hub));
            }
        }
        Ok(engine)
    }

    /// The rest of the engine, whatever the identity.
    fn assemble(
        config: Config,
        storage: Storage,
        terminal: Result<Terminal, Unusable>,
        protection: Protection,
    ) -> Result<Self, StartError> {
        let detector = Detector::from_config(&config.capture).map_err(other)?;
        let http = HttpSettings::from_config(&config.server).map_err(other)?;
        let client = AwareIdClient::new(&config.server, &http).map_err(other)?;
        // Without a usable identity nothing is signed or decrypted: no QR keys
        // (their AES key did not open either).
        let qr_keys = match &terminal {
            Ok(_) => config.qr_keys().map_err(other)?,
            Err(_) => None,
        };
        let server_host = config.server.host();
        let qr_hosts = config.qr_allowed_hosts();
        Ok(Self {
            kit: Mutex::new(CaptureKit {
                camera: Camera::new(config.camera.clone()),
                detector,
                settings: Settings::from_config(&config),
            }),
            http,
            client,
            qr_keys,
            qr_hosts,
            terminal,
            protection,
            site: None,
            hub: None,
            server_host,
            storage: Mutex::new(storage),
            reenrolling: Mutex::new(None),
            config,
        })
    }

    /// The terminal's device id (the DeviceId property).
    pub fn device_id(&self) -> &str {
        match &self.terminal {
            Ok(t) => &t.device_id,
            Err(u) => &u.device_id,
        }
    }

    /// One keep-warm turn of the tenant's client (`server.keep_warm_s`, see
    /// [`AwareIdClient::keep_warm`]): its interval, what it did, and how long
    /// until the next has something to do. `None` while keeping warm is off,
    /// and on an unprovisioned terminal (a cloned disk, a key that does not
    /// open): it serves no one, so it calls AwareID for nothing.
    pub fn keep_warm(
        &self,
    ) -> Option<(
        std::time::Duration,
        Result<crate::awareid::Warmed, AwareIdError>,
        std::time::Duration,
    )> {
        let every = std::time::Duration::from_secs(self.config.server.keep_warm_s);
        if every.is_zero() || self.terminal.is_err() {
            return None;
        }
        let done = self.client.keep_warm(every);
        Some((every, done, self.client.next_warm(every)))
    }

    /// The site's hub, when this door is in a site with one.
    pub fn hub(&self) -> Option<Arc<crate::site::Hub>> {
        self.hub.clone()
    }

    /// Takes over `hub` (the engine this one replaces on a reload): the link
    /// and its state go on. Nothing changes outside a site.
    pub fn adopt_hub(&mut self, hub: Option<Arc<crate::site::Hub>>) {
        if self.hub.is_some() && hub.is_some() {
            self.hub = hub;
        }
    }

    /// `[site]`.
    pub fn site_config(&self) -> &crate::config::SiteConfig {
        &self.config.site
    }

    /// The site's device id and how its identity is sealed here, when this
    /// terminal is in a site.
    pub fn site_identity(&self) -> Option<(&str, Protection)> {
        self.site
            .as_ref()
            .map(|s| (s.terminal.device_id.as_str(), s.protection))
    }

    /// The identity a new enrollment is made under: the site's when this
    /// terminal is in one, its own otherwise; or Unprovisioned with why it
    /// cannot be used.
    fn terminal(&self) -> Result<&Terminal, Error> {
        let own = self
            .terminal
            .as_ref()
            .map_err(|u| Error::Unprovisioned(format!("this terminal signs nothing: {}", u.why)))?;
        Ok(self.site.as_ref().map_or(own, |s| &s.terminal))
    }

    /// The identity an enrollment stored under `device_id` is signed with: the
    /// site's or the terminal's own; `None` for one this terminal no longer
    /// holds (standing `enroll-again`).
    fn signer_for(&self, device_id: &str) -> Option<&Terminal> {
        let own = self.terminal.as_ref().ok();
        let site = self.site.as_ref().map(|s| &s.terminal);
        [site, own]
            .into_iter()
            .flatten()
            .find(|t| t.device_id == device_id)
    }

    /// How the device key is kept at rest (the `DeviceKeyProtection` property).
    pub fn protection(&self) -> Protection {
        self.protection
    }

    /// `daemon.operation_timeout_s`.
    pub fn operation_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.config.daemon.operation_timeout_s)
    }

    /// How long an operation's blocking work may go on after the operation
    /// timeout cancelled it: the longest one AwareID call can take with its
    /// retries and token fetches ([`crate::awareid::client::longest_call`] of
    /// `server.timeout_s`: 24 exchanges) and 10 s more. Past that it is stuck,
    /// not slow.
    pub fn stuck_grace(&self) -> std::time::Duration {
        let timeout = std::time::Duration::from_secs(self.config.server.timeout_s);
        crate::awareid::client::longest_call(timeout, self.http.retry_backoff)
            + std::time::Duration::from_secs(10)
    }

    /// Writes the metrics to `daemon.metrics_textfile`, when it is set; a failure
    /// is a warning (the next operation tries again).
    pub fn write_metrics(&self) {
        let path = &self.config.daemon.metrics_textfile;
        if path.as_os_str().is_empty() {
            return;
        }
        if let Some(m) = crate::metrics::global()
            && let Err(e) = m.write_textfile(path)
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the metrics textfile");
        }
    }

    /// Puts `camera` in place of the configured one (tests: a source that blocks).
    #[doc(hidden)]
    pub fn replace_camera(&self, camera: Camera) {
        lock(&self.kit).camera = camera;
    }

    /// Whether the configured camera is there to be opened.
    pub fn camera_present(&self) -> bool {
        let c = &self.config.camera;
        match c.source {
            CameraSource::V4l => std::path::Path::new(&c.device).exists(),
            CameraSource::Files => !c.path.is_empty(),
        }
    }

    /// The enrollments, each with its standing as ListEnrollments shows it.
    pub fn list(&self) -> Result<Vec<(EnrollmentInfo, Standing)>, Error> {
        let running = lock(&self.reenrolling).clone();
        Ok(lock(&self.storage)
            .list()?
            .into_iter()
            .map(|e| {
                let standing = match e.reenroll_started_at {
                    _ if self.terminal.is_ok() && self.signer_for(&e.device_id).is_none() => {
                        Standing::EnrollAgain
                    }
                    None => Standing::Enrolled,
                    Some(_) if running.as_deref() == Some(e.username.as_str()) => {
                        Standing::Reenrolling
                    }
                    Some(_) => Standing::ReenrollmentInterrupted,
                };
                (e, standing)
            })
            .collect())
    }

    /// Runs an enrollment flow for `username`. An enrolled user's re-enrollment
    /// is recorded before it starts (so before its addFace is sent): if the
    /// daemon dies meanwhile, AwareID may complete it and retire the stored
    /// code, and the mark says so after a restart. The outcome settles the mark:
    /// a new code replaces the old one; an answered failure leaves the old code
    /// in force; an addFace never answered leaves the mark.
    fn enrolling(
        &self,
        username: &str,
        flow: impl FnOnce() -> Result<EnrollOutcome, FlowError>,
        host: &str,
    ) -> Result<Enrolled, Error> {
        let marked = lock(&self.storage).mark_reenrollment(username, unix_now())?;
        if marked {
            *lock(&self.reenrolling) = Some(username.to_owned());
            tracing::info!(
                username,
                "re-enrollment started; the stored code stays until it completes"
            );
        }
        let result = flow();
        *lock(&self.reenrolling) = None;
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(e) => {
                if marked && !add_face_unsettled(&e) {
                    lock(&self.storage).clear_reenrollment(username)?;
                } else if marked {
                    tracing::warn!(
                        username,
                        "the re-enrollment's addFace was never answered: AwareID may have \
                         retired the stored code"
                    );
                }
                return Err(e.into());
            }
        };
        let stored = self.store(&outcome, host)?;
        if marked && outcome.enrollment_status != STATUS_COMPLETE {
            lock(&self.storage).clear_reenrollment(username)?;
        }
        Ok(Enrolled {
            outcome,
            stored,
            // `marked`: the user was enrolled (mark_reenrollment marks only them).
            replaced: stored && marked,
        })
    }

    /// RemoveEnrollment: forgets `username`'s stored enrollment, or NotEnrolled.
    pub fn remove(&self, username: &str) -> Result<(), Error> {
        let mut storage = lock(&self.storage);
        let held = storage.enrollment(username)?.is_some();
        // The removal's entry for the hub, sealed only for one held here.
        let queued = match held {
            true => self.queue(&Fact::Removed {
                username: username.to_owned(),
            })?,
            false => None,
        };
        if held && storage.remove_queued(username, queued.as_ref())? {
            self.ring(&storage)?;
            drop(storage);
            let decision = audit::Decision {
                record: audit::Record::EnrollmentRemoved,
                operation: "remove-enrollment",
                username,
                reason: String::new(),
                duration_ms: 0,
            };
            audit::record(&decision, self.device_id());
            Ok(())
        } else {
            Err(Error::NotEnrolled(format!(
                "{username:?} is not enrolled on this terminal"
            )))
        }
    }

    /// Runs `flow` with what every workflow takes from an operation: the context
    /// (its steps sent as Progress) and the face source (this camera, its feedback
    /// sent as CaptureFeedback).
    fn in_flow<T>(
        &self,
        op: &Op<'_>,
        terminal: &Terminal,
        flow: impl FnOnce(&Context<'_>, &mut dyn workflow::FaceSource) -> T,
    ) -> T {
        let progress = |s: Step| (op.events)(Event::Progress(s));
        let ctx = Context {
            terminal,
            encryption: self.config.face.encryption,
            progress: &progress,
            interrupt: op.interrupt,
        };
        let mut face = |user: &str, stop: &AtomicBool| self.capture(op, user, stop);
        flow(&ctx, &mut face)
    }

    /// Runs `use_it` on the opened camera, then releases it: closed unless
    /// `camera.keep_open`, and always after a camera error (the next operation
    /// opens it afresh, e.g. after an unplug).
    fn with_camera<T>(
        &self,
        use_it: impl FnOnce(
            &mut dyn crate::camera::FrameSource,
            &mut Detector,
            &Settings,
        ) -> Result<T, CaptureError>,
    ) -> Result<T, CaptureError> {
        let mut kit = lock(&self.kit);
        let CaptureKit {
            camera,
            detector,
            settings,
        } = &mut *kit;
        let result = camera
            .acquire()
            .map_err(CaptureError::from)
            .and_then(|source| use_it(source, detector, settings));
        let camera_failed = matches!(result, Err(CaptureError::Camera(_)));
        if camera_failed && let Some(m) = crate::metrics::global() {
            m.camera_error();
        }
        camera.release(camera_failed);
        result
    }

    /// Captures a face package from the camera for `username`, until the
    /// operation is cancelled or the flow sets `stop` (a server call failed).
    fn capture(
        &self,
        op: &Op<'_>,
        username: &str,
        stop: &AtomicBool,
    ) -> Result<crate::awareid::wire::FaceLivenessData, FlowError> {
        (op.events)(Event::State(State::Capturing));
        let result = self.with_camera(|source, detector, settings| {
            capture::capture_face(
                source,
                detector,
                settings,
                username,
                &mut |f| {
                    if let Some(m) = crate::metrics::global() {
                        m.feedback(f.as_str());
                    }
                    (op.events)(Event::Feedback(f))
                },
                &[op.interrupt.flag(), stop],
            )
        });
        (op.events)(Event::State(State::ContactingServer));
        Ok(result?)
    }

    /// CameraCheck: the capture loop for `seconds` without AwareID, its feedback
    /// sent as CaptureFeedback; the report, and the marked-up frame when
    /// `snapshot` (the caller's uid was checked by the service).
    pub fn camera_check(
        &self,
        op: &Op<'_>,
        seconds: u32,
        snapshot: bool,
    ) -> Result<capture::check::Check, Error> {
        (op.events)(Event::State(State::Capturing));
        (op.events)(Event::Progress(Step::Capture));
        let check = self.with_camera(|source, detector, settings| {
            capture::check::camera_check(
                source,
                detector,
                settings,
                std::time::Duration::from_secs(u64::from(seconds)),
                snapshot,
                &mut |f| (op.events)(Event::Feedback(f)),
                op.interrupt.flag(),
            )
        })?;
        (op.events)(Event::Progress(Step::Done));
        Ok(check)
    }

    /// Diagnose's checks from the daemon's seat, but the camera's (which needs the
    /// operation slot: see [`Self::diagnose_camera`]).
    pub fn diagnose(&self) -> Vec<crate::doctor::Finding> {
        use crate::doctor::{fail, pass};
        let credentials = match self.protection {
            Protection::Unusable => fail(
                "credentials",
                format!(
                    "the device key cannot be used on this start: {}",
                    self.terminal.as_ref().err().map_or("", |u| u.why.as_str())
                ),
                "journalctl -u facecaptured-provision says why; a disk moved to another \
                 board, or a cleared TPM, needs the right TPM back, or facecaptured provision \
                 --new-key and everyone enrolled again",
            ),
            Protection::Plain => fail(
                "credentials",
                format!(
                    "the tenant's secrets loaded; the device key is a plain database row in {}",
                    self.config.storage.state_dir.display()
                ),
                "seal it with systemd-creds: systemctl start facecaptured-provision (or \
                 facecaptured provision), then systemctl restart facecaptured",
            ),
            p => pass(
                "credentials",
                format!(
                    "the tenant's secrets loaded; the device key is sealed ({})",
                    p.as_str()
                ),
            ),
        };
        let mut found = vec![
            credentials,
            self.check_server(),
            crate::doctor::disk(&self.config.storage.state_dir),
        ];
        if let Some(hub) = &self.hub {
            found.push(crate::doctor::site(
                &hub.door,
                &self.config.site.hub,
                &hub.state(),
                hub.max_stale_s,
            ));
        }
        found
    }

    /// AwareID reached with a fresh token call (a new client: no cached token),
    /// through the site's proxy when there is one.
    fn check_server(&self) -> crate::doctor::Finding {
        use crate::doctor::{fail, pass};
        let started = std::time::Instant::now();
        let host = &self.server_host;
        let result = AwareIdClient::new(&self.config.server, &self.http)
            .map_err(|e| e.to_string())
            .and_then(|c| c.ensure_token().map_err(|e| e.to_string()));
        match result {
            Ok(()) => pass(
                "awareid",
                format!(
                    "{host}: token issued in {} ms",
                    started.elapsed().as_millis()
                ),
            ),
            Err(e) => fail(
                "awareid",
                format!("{host}: {e}"),
                "check server.base_url, the network and server.proxy; a TLS error after \
                 a power cut is often the clock (see the clock check); a 401 is the \
                 tenant's client_secret or api key",
            ),
        }
    }

    /// The camera opened for one frame (the caller holds the operation slot).
    pub fn diagnose_camera(&self) -> crate::doctor::Finding {
        let started = std::time::Instant::now();
        let mut kit = lock(&self.kit);
        match kit.camera.acquire() {
            Ok(source) => {
                let found = crate::doctor::camera_delivers(source, started);
                let failed = !found.passed;
                kit.camera.release(failed);
                found
            }
            Err(e) => {
                kit.camera.release(true);
                crate::doctor::camera_unavailable(&e)
            }
        }
    }

    /// The QR code from the caller, or scanned by the camera when `url` is empty.
    fn qr(&self, op: &Op<'_>, url: &str, expected: QrMethod) -> Result<workflow::QrSession, Error> {
        let keys = self.qr_keys.as_ref().ok_or_else(|| {
            Error::QrInvalid(
                "QR flows are not configured (qr.signing_public_key, qr.aes_key)".into(),
            )
        })?;
        let allowed = &self.qr_hosts;
        let callback: SessionCallback = if url.is_empty() {
            (op.events)(Event::State(State::ScanningQr));
            self.with_camera(|source, _, settings| {
                capture::scan_qr(source, settings, keys, allowed, op.interrupt.flag())
            })?
        } else {
            crate::crypto::qr::decode(url, keys, allowed)
                .map_err(|e| Error::QrInvalid(e.to_string()))?
        };
        (op.events)(Event::State(State::ContactingServer));
        let progress = |s: Step| (op.events)(Event::Progress(s));
        Ok(workflow::start_qr_session(
            callback, &self.http, expected, &progress,
        )?)
    }

    /// Stores the code of an enrollment AwareID completed; whether there was one.
    fn store(&self, outcome: &EnrollOutcome, host: &str) -> Result<bool, Error> {
        if !outcome.completed() {
            return Ok(false);
        }
        let enrollment = Enrollment {
            username: outcome.username.clone(),
            registration_code: Secret::new(outcome.registration_code.expose()),
            server_host: host.to_owned(),
            device_id: self.terminal()?.device_id.clone(),
            enrolled_at: unix_now(),
            reenroll_started_at: None,
            door: self
                .hub
                .as_ref()
                .map(|h| h.door.clone())
                .unwrap_or_default(),
        };
        let queued = self.queue(&Fact::Enrolled(&enrollment))?;
        let mut storage = lock(&self.storage);
        storage.put_enrollment_queued(&enrollment, queued.as_ref())?;
        self.ring(&storage)?;
        if queued.is_some() {
            tracing::info!(
                username = enrollment.username.as_str(),
                door = enrollment.door.as_str(),
                "site entry queued"
            );
        }
        Ok(true)
    }

    /// The entry for the site's hub that says `fact`, when this door has a hub.
    fn queue(&self, fact: &Fact<'_>) -> Result<Option<Queued>, Error> {
        self.hub
            .as_ref()
            .map(|hub| entry::seal(&hub.identity, &hub.door, fact))
            .transpose()
            .map_err(Error::Internal)
    }

    /// Wakes the site's link after an entry was queued in `storage`.
    fn ring(&self, storage: &Storage) -> Result<(), Error> {
        if let Some(hub) = &self.hub {
            hub.ring(storage.outbox_len()?);
        }
        Ok(())
    }

    /// Enroll: the client-initiated enrollment of `person`.
    pub fn enroll(&self, op: &Op<'_>, person: &Person) -> Result<Enrolled, Error> {
        let terminal = self.terminal()?;
        self.enrolling(
            &person.username,
            || {
                self.in_flow(op, terminal, |ctx, face| {
                    workflow::enroll(&self.client, ctx, person, face)
                })
            },
            &self.server_host,
        )
    }

    /// EnrollWithQr: the enrollment a QR code started (`url`, or scanned when empty).
    pub fn enroll_qr(&self, op: &Op<'_>, url: &str) -> Result<Enrolled, Error> {
        let terminal = self.terminal()?;
        let qr = self.qr(op, url, QrMethod::Enroll)?;
        let _ = op.subject.set(qr.session.user_name.clone());
        let person = Person {
            username: qr.session.user_name.clone(),
            email: qr.session.email.clone(),
            phone_number: String::new(),
            first_name: None,
            last_name: None,
        };
        self.enrolling(
            &person.username,
            || {
                self.in_flow(op, terminal, |ctx, face| {
                    workflow::enroll(&qr.client, ctx, &person, face)
                })
            },
            &qr.callback.host,
        )
    }

    /// Runs an authentication flow with `username`'s stored code. After an
    /// interrupted re-enrollment AwareID may have retired that code: if it is
    /// refused the answer is NotEnrolled (enroll again); if it is accepted, it
    /// is in force and the mark is settled.
    fn authenticating(
        &self,
        username: &str,
        flow: impl FnOnce(&Terminal, &Secret) -> Result<AuthOutcome, FlowError>,
    ) -> Result<AuthOutcome, Error> {
        self.terminal()?;
        if let Some(hub) = &self.hub
            && let Some(past) = hub.stale_by(unix_now())
        {
            return Err(Error::SiteStale(format!(
                "this door has not heard from the site's hub for {}s, {past}s longer than \
                 site.max_stale_s ({}): it no longer decides alone; the link to the hub must \
                 come back",
                hub.max_stale_s + past,
                hub.max_stale_s
            )));
        }
        let stored = lock(&self.storage).enrollment(username)?.ok_or_else(|| {
            Error::NotEnrolled(format!("{username:?} is not enrolled on this terminal"))
        })?;
        let signer = self.signer_for(&stored.device_id).ok_or_else(|| {
            Error::NotEnrolled(format!(
                "{username:?} was enrolled under device {}, an identity this terminal no \
                 longer holds (a replaced site identity): enroll again",
                stored.device_id
            ))
        })?;
        let interrupted = stored.reenroll_started_at.is_some();
        match flow(signer, &stored.registration_code) {
            Ok(outcome) => {
                if interrupted {
                    lock(&self.storage).clear_reenrollment(username)?;
                    tracing::info!(
                        username,
                        "the stored code is still in force after the interrupted re-enrollment"
                    );
                }
                Ok(outcome)
            }
            Err(FlowError::Server(e @ AwareIdError::Rejected { .. })) if interrupted => {
                tracing::warn!(
                    username,
                    error = %e,
                    "the stored code was refused after an interrupted re-enrollment"
                );
                Err(Error::NotEnrolled(format!(
                    "{username:?}: the last re-enrollment was interrupted; enroll again \
                     (AwareID refused the stored registration code)"
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Authenticate: `username` with the stored registration code.
    pub fn authenticate(&self, op: &Op<'_>, username: &str) -> Result<AuthOutcome, Error> {
        self.authenticating(username, |terminal, code| {
            self.in_flow(op, terminal, |ctx, face| {
                workflow::authenticate(&self.client, ctx, username, code, face)
            })
        })
    }

    /// AuthenticateWithQr: the authentication a QR code started; the username with the
    /// outcome.
    pub fn authenticate_qr(&self, op: &Op<'_>, url: &str) -> Result<(String, AuthOutcome), Error> {
        self.terminal()?;
        let qr = self.qr(op, url, QrMethod::Authenticate)?;
        let username = qr.session.user_name.clone();
        let _ = op.subject.set(username.clone());
        let outcome = self.authenticating(&username, |terminal, code| {
            self.in_flow(op, terminal, |ctx, face| {
                workflow::authenticate(&qr.client, ctx, &username, code, face)
            })
        })?;
        Ok((username, outcome))
    }
}

impl crate::site::Local for Engine {
    fn with_storage(
        &self,
        f: &mut dyn FnMut(&mut Storage) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        f(&mut lock(&self.storage))
    }

    fn site_changed(&self) {
        self.write_metrics();
    }
}
