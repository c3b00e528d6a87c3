//! The camera: frame sources behind one interface (`v4l`: a V4L2 device; `files`:
//! images played at the configured rate, for demos and tests) and their ownership
//! (opened when an operation starts, closed after it unless `camera.keep_open`).

pub mod files;
pub mod frame;
pub mod v4l2;

pub use frame::{FrameError, PixelFormat, RawFrame};

use crate::config::{CameraConfig, CameraSource};
use std::time::Instant;

/// Why the camera cannot deliver: every variant ends the operation with
/// CameraUnavailable, and the next operation opens the camera afresh.
#[derive(Debug, thiserror::Error)]
pub enum CameraError {
    /// It cannot be opened or stream (missing, busy, unplugged, refused).
    #[error("camera {device}: {reason}")]
    Unavailable {
        /// The device node or path.
        device: String,
        /// What happened, with advice.
        reason: String,
    },
    /// It delivered no frame for [`crate::capture::STALL`] (3 s).
    #[error("camera {device}: no frame for {waited_ms} ms")]
    Stalled {
        /// The device node or path.
        device: String,
        /// How long it was waited for.
        waited_ms: u64,
    },
}

/// The longest frame side any source may give (a V4L2 driver's answer, a file).
pub const MAX_SIDE: u32 = 8192;

/// How many times the pixels asked for (`camera.width` x `camera.height`) a
/// source may give instead: a driver rounds to a size it has (640x480 asked,
/// 1280x720 given), but memory for every frame is sized from the answer, and
/// a hostile camera or file naming 8192x8192 must not take the daemon past its
/// `MemoryMax=` before a frame is refused.
pub const MAX_PIXELS_FACTOR: u64 = 4;

/// Checks a frame size a source gives against the size asked for: each side
/// from 1 to [`MAX_SIDE`], and at most [`MAX_PIXELS_FACTOR`] times the pixels
/// asked. The problem in words otherwise.
///
/// ```
/// use facecapture::camera::check_size;
/// assert!(check_size((640, 480), (1280, 720)).is_ok());
/// assert!(check_size((640, 480), (8192, 8192)).unwrap_err().contains("8192x8192"));
/// assert!(check_size((640, 480), (0, 480)).is_err());
/// ```
pub fn check_size(asked: (u32, u32), got: (u32, u32)) -> Result<(), String> {
    let (w, h) = got;
    if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE {
        return Err(format!(
            "{w}x{h} is not a usable size (each side 1 to {MAX_SIDE})"
        ));
    }
    let pixels = u64::from(w) * u64::from(h);
    let limit = MAX_PIXELS_FACTOR * u64::from(asked.0.max(1)) * u64::from(asked.1.max(1));
    if pixels > limit {
        return Err(format!(
            "{w}x{h} is more than {MAX_PIXELS_FACTOR} times the {}x{} asked for \
             (camera.width, camera.height)",
            asked.0, asked.1
        ));
    }
    Ok(())
}

/// What a source's `next_frame` yields.
#[derive(Debug)]
pub enum Next {
    /// A frame to convert and test.
    Frame(RawFrame),
    /// The source produced a frame it knows is unusable (driver error flag, a file
    /// that does not decode): skipped and counted by the pipeline.
    Bad(FrameError),
    /// The deadline passed first.
    Deadline,
}

/// What a source is and what its driver granted (the camera check reports it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceInfo {
    /// The V4L2 driver (`uvcvideo`, `vivid`), or `files`.
    pub driver: String,
    /// The device's name as the driver gives it (V4L2's card), or the path.
    pub card: String,
    /// The pixel format granted, as its fourcc.
    pub format: String,
    /// The frame width granted.
    pub width: u32,
    /// The frame height granted.
    pub height: u32,
    /// The frame rate granted; 0 when the driver does not say.
    pub fps: f64,
}

/// A stream of frames. Implementations block until a frame, the deadline, or an
/// error; they never panic on a device that misbehaves.
pub trait FrameSource: Send {
    /// The device or path, for logs and errors.
    fn name(&self) -> &str;
    /// The next frame, waiting no later than `deadline`.
    fn next_frame(&mut self, deadline: Instant) -> Result<Next, CameraError>;
    /// What the source is and was granted (unknowns empty or 0).
    fn info(&self) -> SourceInfo {
        SourceInfo::default()
    }
    /// Frames the driver dropped since the source opened (gaps in its sequence
    /// numbers): the consumer was too slow, or the bus was.
    fn dropped(&self) -> u64 {
        0
    }
    /// Hands back to the driver every frame already waiting in its queue, without
    /// waiting for more, and says how many there were. A camera kept open
    /// between operations (`camera.keep_open`) filled its buffers while nobody
    /// read them: those frames show whoever stood at the door then, not who asks
    /// now, and the next operation must not see them.
    fn discard_pending(&mut self) -> Result<usize, CameraError> {
        Ok(0)
    }
}

/// Opens the configured source.
pub fn open(config: &CameraConfig) -> Result<Box<dyn FrameSource>, CameraError> {
    match config.source {
        CameraSource::Files => Ok(Box::new(files::FilesSource::open(config)?)),
        CameraSource::V4l => Ok(Box::new(v4l2::V4l2Source::open(config)?)),
    }
}

/// The camera as operations see it: opened on `acquire`, closed on `release`
/// (kept streaming with `keep_open`), always closed after an error so that a
/// re-plugged or freed device is opened afresh by the next operation.
pub struct Camera {
    config: CameraConfig,
    open: Option<Box<dyn FrameSource>>,
}

impl Camera {
    /// The camera of `config`, not yet opened (it opens on the first `acquire`).
    pub fn new(config: CameraConfig) -> Self {
        Self { config, open: None }
    }

    /// A camera already open on `source` (tests: sources no driver gives).
    #[doc(hidden)]
    pub fn with_source(config: CameraConfig, source: Box<dyn FrameSource>) -> Self {
        Self {
            config,
            open: Some(source),
        }
    }

    /// The stream for one operation: opened now, or (kept open) with the frames
    /// it queued since the last operation discarded, so that the operation sees
    /// only frames taken after it began.
    pub fn acquire(&mut self) -> Result<&mut dyn FrameSource, CameraError> {
        if let Some(source) = self.open.as_deref_mut() {
            match source.discard_pending() {
                Ok(stale) => tracing::debug!(device = source.name(), stale, "camera kept open"),
                Err(e) => {
                    // A kept camera that went away: opened afresh below.
                    tracing::debug!(device = source.name(), error = %e, "kept camera failed");
                    self.open = None;
                }
            }
        }
        if self.open.is_none() {
            let source = open(&self.config)?;
            tracing::debug!(device = source.name(), "camera opened");
            self.open = Some(source);
        }
        match self.open.as_deref_mut() {
            Some(source) => Ok(source),
            None => Err(CameraError::Unavailable {
                device: self.config.device.clone(),
                reason: "not open".into(),
            }),
        }
    }

    /// Ends an operation's use of the camera. `failed`: the camera misbehaved and
    /// is closed even with keep_open.
    pub fn release(&mut self, failed: bool) {
        if (failed || !self.config.keep_open)
            && let Some(source) = self.open.take()
        {
            tracing::debug!(device = source.name(), failed, "camera closed");
        }
    }

    /// Whether the source is open now (between operations only with
    /// `camera.keep_open`).
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(keep_open: bool) -> CameraConfig {
        CameraConfig {
            source: CameraSource::Files,
            path: format!("{}/tests/fixtures/faces", env!("CARGO_MANIFEST_DIR")),
            keep_open,
            ..CameraConfig::default()
        }
    }

    #[test]
    fn opened_per_operation_unless_kept_open() {
        let mut cam = Camera::new(config(false));
        assert!(!cam.is_open());
        assert_eq!(
            cam.acquire().expect("open").name(),
            config(false).path.as_str()
        );
        assert!(cam.is_open());
        cam.release(false);
        assert!(!cam.is_open());

        let mut cam = Camera::new(config(true));
        cam.acquire().expect("open");
        cam.release(false);
        assert!(cam.is_open(), "keep_open keeps streaming");
        // A camera error closes it even with keep_open.
        cam.release(true);
        assert!(!cam.is_open());
    }

    /// A kept-open stream whose driver queue holds `queued` stale frames (or
    /// fails, once unplugged).
    struct Kept {
        queued: std::sync::Arc<std::sync::atomic::AtomicUsize>,
        unplugged: bool,
    }

    impl FrameSource for Kept {
        fn name(&self) -> &str {
            "kept"
        }
        fn next_frame(&mut self, _: Instant) -> Result<Next, CameraError> {
            Ok(Next::Deadline)
        }
        fn discard_pending(&mut self) -> Result<usize, CameraError> {
            if self.unplugged {
                return Err(CameraError::Unavailable {
                    device: "kept".into(),
                    reason: "unplugged".into(),
                });
            }
            Ok(self.queued.swap(0, std::sync::atomic::Ordering::SeqCst))
        }
    }

    #[test]
    fn a_kept_camera_drops_the_frames_it_queued_between_operations() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let queued = std::sync::Arc::new(AtomicUsize::new(4));
        let source = Kept {
            queued: queued.clone(),
            unplugged: false,
        };
        let mut cam = Camera::with_source(config(true), Box::new(source));
        assert_eq!(cam.acquire().expect("kept").name(), "kept");
        assert_eq!(
            queued.load(Ordering::SeqCst),
            0,
            "the frames queued while idle were handed back before the operation"
        );
        cam.release(false);
        assert!(cam.is_open());

        // A kept camera that went away meanwhile is opened afresh.
        let gone = Kept {
            queued,
            unplugged: true,
        };
        let mut cam = Camera::with_source(config(true), Box::new(gone));
        assert_eq!(
            cam.acquire().expect("reopened").name(),
            config(true).path.as_str()
        );
    }

    #[test]
    fn a_missing_camera_fails_each_time_and_works_once_back() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut c = config(false);
        c.path = dir.path().join("frames").display().to_string();
        let mut cam = Camera::new(c);
        assert!(cam.acquire().is_err());
        assert!(!cam.is_open());
        // The device (here: the frames directory) appears: the next operation works.
        std::fs::create_dir(dir.path().join("frames")).expect("mkdir");
        std::fs::copy(
            format!(
                "{}/tests/fixtures/faces/astronaut.jpg",
                env!("CARGO_MANIFEST_DIR")
            ),
            dir.path().join("frames/a.jpg"),
        )
        .expect("copy");
        assert!(cam.acquire().is_ok());
    }
}
