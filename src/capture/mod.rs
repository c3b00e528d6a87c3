//! The capture pipeline: frames from the camera, converted to gray, faces found,
//! judged by the quality gate (feedback goes out only when it changes), and
//! `capture.frames` consecutive compliant frames packaged. Also QR scanning from
//! the same stream. Runs on a blocking thread; checks `cancel` between frames.

pub mod check;
pub mod package;
pub mod quality;

pub use quality::Feedback;

use crate::awareid::wire::FaceLivenessData;
use crate::camera::frame::Gray;
use crate::camera::{CameraError, FrameError, FrameSource, Next, RawFrame};
use crate::config::{CameraConfig, CaptureConfig, Config, FaceConfig};
use crate::crypto::qr::{QrError, QrKeys, SessionCallback};
use crate::detect::{Detector, Tracker};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// No frame for this long ends the operation: the camera has stopped.
pub const STALL: Duration = Duration::from_secs(3);
/// How often a blocked wait looks at `cancel`.
const CANCEL_POLL: Duration = Duration::from_millis(100);
/// Packaged frames are at least this far apart ("a few tens of ms"); a camera
/// faster than 50 fps has frames skipped. A non-compliant frame restarts the burst,
/// so the package is always consecutive judged frames, however slow the board.
const MIN_SPACING_MS: f64 = 20.0;

/// What ends a capture early when it is set: the operation's cancel flag
/// (Cancel, the caller leaving, the timeout, SIGTERM), or that and the flow's
/// own stop flag (a server call failed while the face was being captured).
pub trait Cancel: Sync {
    /// Whether the capture should end now.
    fn is_set(&self) -> bool;
}

impl Cancel for AtomicBool {
    fn is_set(&self) -> bool {
        self.load(Ordering::Relaxed)
    }
}

impl Cancel for [&AtomicBool; 2] {
    fn is_set(&self) -> bool {
        self.iter().any(|f| f.is_set())
    }
}

/// What a capture needs from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `capture.frames`: consecutive compliant frames in a package.
    pub frames: u32,
    /// `capture.timeout_s`.
    pub timeout: Duration,
    /// `capture.min_face_px`: narrower faces are too far.
    pub min_face_px: u32,
    /// `face.jpeg_quality` of the packaged frames.
    pub jpeg_quality: u8,
    /// Clockwise degrees that turn the camera's image upright.
    pub rotation: u32,
    /// Packaged frame size before rotation (camera.width x camera.height).
    pub width: u32,
    /// Packaged frame height before rotation.
    pub height: u32,
    /// `face.workflow`, the package's workflow name.
    pub workflow: String,
    /// `face.device_brand`, the package's device brand.
    pub device_brand: String,
    /// `capture.track_face`: follow the face between full detections.
    pub track_face: bool,
}

impl Settings {
    /// The settings of a whole configuration.
    pub fn from_config(c: &Config) -> Self {
        Self::from_sections(&c.camera, &c.capture, &c.face)
    }

    /// The settings of its three sections.
    pub fn from_sections(
        camera: &CameraConfig,
        capture: &CaptureConfig,
        face: &FaceConfig,
    ) -> Self {
        Self {
            frames: capture.frames,
            timeout: Duration::from_secs(capture.timeout_s),
            min_face_px: capture.min_face_px,
            jpeg_quality: capture.jpeg_quality,
            rotation: camera.rotation,
            width: camera.width,
            height: camera.height,
            workflow: face.workflow.clone(),
            device_brand: face.device_brand.clone(),
            track_face: capture.track_face,
        }
    }

    /// The packaged size, upright.
    pub fn output_size(&self) -> (u32, u32) {
        if self.rotation % 180 == 90 {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }
}

/// Why a capture ends without a package.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The camera failed (CameraUnavailable).
    #[error(transparent)]
    Camera(#[from] CameraError),
    /// No compliant face within `capture.timeout_s` (CaptureTimeout).
    #[error("no compliant face within {seconds} s (last feedback: {last})")]
    Timeout {
        /// `capture.timeout_s`.
        seconds: u64,
        /// The last feedback code sent.
        last: String,
    },
    /// No QR code within `capture.timeout_s` (CaptureTimeout).
    #[error("no QR code within {seconds} s")]
    NoQr {
        /// `capture.timeout_s`.
        seconds: u64,
    },
    /// A QR code was seen but does not verify or decrypt (QrInvalid).
    #[error("the QR code shown is not valid: {0}")]
    QrInvalid(QrError),
    /// The operation was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// A frame could not be packaged (Internal).
    #[error("cannot encode the package: {0}")]
    Encode(String),
    /// The detector could not be made (Internal).
    #[error("face model: {0}")]
    Model(String),
}

/// Counts for the operation's log line.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// Frames taken from the camera.
    pub frames: u64,
    /// Frames skipped as unusable.
    pub bad_frames: u64,
    /// Frames that passed the quality gate.
    pub compliant: u64,
}

/// The configuration defaults (docs/config.md).
impl Default for Settings {
    fn default() -> Self {
        Self::from_sections(
            &CameraConfig::default(),
            &CaptureConfig::default(),
            &FaceConfig::default(),
        )
    }
}

/// Passes a feedback code on only when it differs from the last one.
#[derive(Debug, Default)]
pub struct FeedbackFilter {
    last: Option<Feedback>,
}

impl FeedbackFilter {
    /// Whether `f` differs from the last code (and remembers it).
    pub fn changed(&mut self, f: Feedback) -> bool {
        let changed = self.last != Some(f);
        self.last = Some(f);
        changed
    }

    /// The last code seen.
    pub fn last(&self) -> Option<Feedback> {
        self.last
    }
}

/// One frame through conversion, rotation, detection (of the whole frame) and
/// the gate.
pub fn judge(
    frame: &RawFrame,
    detector: &mut Detector,
    settings: &Settings,
) -> Result<(quality::Verdict, Gray), FrameError> {
    judge_tracked(frame, detector, &mut Tracker::default(), settings)
}

/// [`judge`] for a frame of a stream: with `settings.track_face`, the face is
/// looked for where `tracker` last saw it (a full detection when one is due).
pub fn judge_tracked(
    frame: &RawFrame,
    detector: &mut Detector,
    tracker: &mut Tracker,
    settings: &Settings,
) -> Result<(quality::Verdict, Gray), FrameError> {
    let gray = package::rotate(frame.to_gray()?, settings.rotation);
    let faces = if settings.track_face {
        tracker.faces(detector, &gray, settings.min_face_px)
    } else {
        detector.detect_all(&gray, settings.min_face_px)
    };
    Ok((quality::assess(&gray, &faces, settings.min_face_px), gray))
}

/// Waits for frames until `until`, watching `cancel`, the overall deadline and stalls.
/// A stall is STALL without a frame from the moment one is asked for: the time the
/// caller spent on the previous frame (detection on a slow or loaded board) is not
/// the camera's.
struct Pacer<'a> {
    cancel: &'a dyn Cancel,
    deadline: Instant,
    stats: Stats,
}

enum Tick {
    Frame(RawFrame),
    Timeout,
}

impl<'a> Pacer<'a> {
    fn new(cancel: &'a dyn Cancel, timeout: Duration) -> Self {
        Self {
            cancel,
            deadline: Instant::now() + timeout,
            stats: Stats::default(),
        }
    }

    fn next(&mut self, source: &mut dyn FrameSource) -> Result<Tick, CaptureError> {
        let mut waiting_since = Instant::now();
        loop {
            if self.cancel.is_set() {
                return Err(CaptureError::Cancelled);
            }
            let now = Instant::now();
            if now >= self.deadline {
                return Ok(Tick::Timeout);
            }
            if now.duration_since(waiting_since) >= STALL {
                return Err(CameraError::Stalled {
                    device: source.name().to_owned(),
                    waited_ms: now.duration_since(waiting_since).as_millis() as u64,
                }
                .into());
            }
            let until = self
                .deadline
                .min(waiting_since + STALL)
                .min(now + CANCEL_POLL);
            match source.next_frame(until)? {
                Next::Frame(f) => {
                    self.stats.frames += 1;
                    return Ok(Tick::Frame(f));
                }
                Next::Bad(e) => {
                    waiting_since = Instant::now();
                    self.stats.frames += 1;
                    self.stats.bad_frames += 1;
                    tracing::debug!(device = source.name(), error = %e, "frame skipped");
                }
                Next::Deadline => {}
            }
        }
    }

    fn skipped(&mut self, source: &dyn FrameSource, e: &FrameError) {
        self.stats.bad_frames += 1;
        tracing::debug!(device = source.name(), error = %e, "frame skipped");
    }
}

/// Captures `settings.frames` consecutive compliant frames and packages them.
/// `on_feedback` hears each change of feedback code.
pub fn capture_face(
    source: &mut dyn FrameSource,
    detector: &mut Detector,
    settings: &Settings,
    username: &str,
    on_feedback: &mut dyn FnMut(Feedback),
    cancel: &dyn Cancel,
) -> Result<FaceLivenessData, CaptureError> {
    let started = Instant::now();
    let mut pacer = Pacer::new(cancel, settings.timeout);
    let mut filter = FeedbackFilter::default();
    let mut burst: Vec<RawFrame> = Vec::with_capacity(settings.frames as usize);
    let mut tracker = Tracker::default();
    let result = loop {
        let frame = match pacer.next(source) {
            Ok(Tick::Frame(f)) => f,
            Ok(Tick::Timeout) => {
                break Err(CaptureError::Timeout {
                    seconds: settings.timeout.as_secs(),
                    last: filter
                        .last()
                        .map_or("none: no usable frame", Feedback::as_str)
                        .to_owned(),
                });
            }
            Err(e) => break Err(e),
        };
        let verdict = match judge_tracked(&frame, detector, &mut tracker, settings) {
            Ok((verdict, _gray)) => verdict,
            Err(e) => {
                pacer.skipped(source, &e);
                continue;
            }
        };
        if filter.changed(verdict.feedback) {
            tracing::debug!(feedback = verdict.feedback.as_str(), "capture feedback");
            on_feedback(verdict.feedback);
        }
        if verdict.feedback != Feedback::FaceCompliant {
            burst.clear();
            continue;
        }
        pacer.stats.compliant += 1;
        if burst
            .last()
            .is_some_and(|last| frame.captured_ms - last.captured_ms < MIN_SPACING_MS)
        {
            continue;
        }
        burst.push(frame);
        if burst.len() >= settings.frames as usize {
            break package::package(&burst, settings, username);
        }
    };
    let s = pacer.stats;
    let outcome = match &result {
        Ok(_) => "packaged",
        Err(CaptureError::Cancelled) => "cancelled",
        Err(CaptureError::Timeout { .. }) => "timeout",
        Err(_) => "failed",
    };
    if let Some(m) = crate::metrics::global() {
        m.capture(outcome, started.elapsed(), s.frames, s.bad_frames);
    }
    tracing::info!(
        device = source.name(),
        frames = s.frames,
        bad_frames = s.bad_frames,
        compliant = s.compliant,
        duration_ms = started.elapsed().as_millis() as u64,
        outcome,
        "face capture finished"
    );
    result
}

/// Scans the stream for a sessionCallbackURL QR code that verifies with `keys`.
/// Codes that do not verify are skipped (a passer-by's code must not end the
/// scan); if no good code appears in time, the last refusal is the error.
pub fn scan_qr(
    source: &mut dyn FrameSource,
    settings: &Settings,
    keys: &QrKeys,
    allowed_hosts: &[String],
    cancel: &dyn Cancel,
) -> Result<SessionCallback, CaptureError> {
    let started = Instant::now();
    let mut pacer = Pacer::new(cancel, settings.timeout);
    let mut refused: Option<QrError> = None;
    let result = loop {
        let frame = match pacer.next(source) {
            Ok(Tick::Frame(f)) => f,
            Ok(Tick::Timeout) => {
                break Err(match refused.take() {
                    Some(e) => CaptureError::QrInvalid(e),
                    None => CaptureError::NoQr {
                        seconds: settings.timeout.as_secs(),
                    },
                });
            }
            Err(e) => break Err(e),
        };
        let gray: Gray = match frame.to_gray() {
            Ok(g) => package::rotate(g, settings.rotation),
            Err(e) => {
                pacer.skipped(source, &e);
                continue;
            }
        };
        let Some(text) = crate::qrimage::find_in(&gray) else {
            continue;
        };
        let text = zeroize::Zeroizing::new(text);
        match crate::crypto::qr::decode(&text, keys, allowed_hosts) {
            Ok(callback) => break Ok(callback),
            Err(e) => {
                if refused.as_ref() != Some(&e) {
                    tracing::warn!(error = %e, "QR code in view refused");
                }
                refused = Some(e);
            }
        }
    };
    let s = pacer.stats;
    tracing::info!(
        device = source.name(),
        frames = s.frames,
        bad_frames = s.bad_frames,
        duration_ms = started.elapsed().as_millis() as u64,
        found = result.is_ok(),
        "QR scan finished"
    );
    result
}

/// An image file through the pipeline's conversion and detection: the faces of
/// at least `min_face_px` (`facecapturectl detect`).
pub fn detect_file(
    path: &std::path::Path,
    detector: &mut Detector,
    min_face_px: u32,
) -> Result<Vec<crate::detect::FaceBox>, String> {
    let frame = crate::camera::files::frame_from_file(path)?;
    let gray = frame.to_gray().map_err(|e| e.to_string())?;
    Ok(detector.detect(&gray, min_face_px))
}
