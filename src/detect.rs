//! Face detection with rustface (SeetaFace). The model is embedded in the binary
//! from the rustface package; a file can override it. Detection runs on a frame
//! downscaled so that the smallest face of interest is just above the detector's
//! 40 px window (rustface's own min_face_size does nothing): first an integer box
//! average, then a resize only when the remaining factor is large. `detect` drops
//! faces narrower than `min_face_px`; `detect_all` keeps the smaller ones the
//! downscaled frame still shows (down to about 0.8 x `min_face_px`), which the
//! quality gate reports as too far.

use image::GrayImage;
use image::imageops::FilterType;
use serde::Serialize;

/// SeetaFace frontal model (BSD-2), from the rustface crate's package.
static EMBEDDED_MODEL: &[u8] = include_bytes!(env!("FACECAPTURE_RUSTFACE_MODEL"));
/// The detector's window: faces smaller than this at detection scale are missed.
const WINDOW_PX: f32 = 40.0;
/// Detection-scale target for the smallest face: a margin above the window.
const TARGET_PX: f32 = 48.0;
/// Pyramid step and window stride, chosen by measurement (benches/capture.rs): the
/// fixtures' faces (and the group photo's eight) are still found, including the
/// too-far band, at under half the cost of rustface's defaults (0.8, 4). A pyramid
/// step of 0.6 loses faces at the bottom of the too-far band.
const PYRAMID_SCALE: f32 = 0.65;
const WINDOW_STEP: u32 = 7;
/// A remaining resize factor above this is skipped: the face is still above the window.
const SKIP_RESIZE_ABOVE: f32 = 0.85;

/// A face in frame coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FaceBox {
    /// Left edge, in the frame's pixels.
    pub x: i32,
    /// Top edge, in the frame's pixels.
    pub y: i32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// rustface's confidence.
    pub score: f64,
}

/// Why the detector cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// The embedded model does not load.
    #[error("cannot load the face model: {0}")]
    Model(#[from] std::io::Error),
}

/// rustface's detector with the embedded model and this crate's settings.
pub struct Detector {
    inner: SendDetector,
}

/// rustface's `Detector` trait object is not declared `Send`, but its only
/// implementation owns plain data (the model and scratch buffers; no Rc, no raw
/// pointers), so moving it to another thread is sound.
struct SendDetector(Box<dyn rustface::Detector>);

// SAFETY: see SendDetector's doc comment.
unsafe impl Send for SendDetector {}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Detector")
    }
}

impl Detector {
    /// The detector with the embedded model.
    pub fn embedded() -> Result<Self, DetectError> {
        Self::from_model(rustface::read_model(EMBEDDED_MODEL)?)
    }

    /// The detector `capture.face_model` names, or the embedded one.
    pub fn from_config(capture: &crate::config::CaptureConfig) -> Result<Self, DetectError> {
        if capture.face_model.is_empty() {
            Self::embedded()
        } else {
            Self::from_path(std::path::Path::new(&capture.face_model))
        }
    }

    /// The detector with a model file (a config override).
    pub fn from_path(path: &std::path::Path) -> Result<Self, DetectError> {
        Self::from_model(rustface::read_model(std::fs::File::open(path)?)?)
    }

    fn from_model(model: rustface::Model) -> Result<Self, DetectError> {
        let mut inner = rustface::create_detector_with_model(model);
        inner.set_score_thresh(2.0);
        inner.set_pyramid_scale_factor(PYRAMID_SCALE);
        inner.set_slide_window_step(WINDOW_STEP, WINDOW_STEP);
        Ok(Self {
            inner: SendDetector(inner),
        })
    }

    /// Faces at least `min_face_px` wide, largest first.
    pub fn detect(&mut self, frame: &GrayImage, min_face_px: u32) -> Vec<FaceBox> {
        let mut faces = self.detect_all(frame, min_face_px);
        faces.retain(|f| f.width >= min_face_px);
        faces
    }

    /// Every face the detection scale for `min_face_px` shows, largest first:
    /// also those somewhat smaller than `min_face_px` (too far away).
    pub fn detect_all(&mut self, frame: &GrayImage, min_face_px: u32) -> Vec<FaceBox> {
        let min_face = min_face_px.max(WINDOW_PX as u32) as f32;
        let want = (TARGET_PX / min_face).min(1.0);
        let k = ((1.0 / want).floor() as u32).max(1);
        let boxed;
        let mut img = frame;
        if k > 1 {
            boxed = box_downscale(frame, k);
            img = &boxed;
        }
        let rest = want * k as f32;
        let resized;
        if rest < SKIP_RESIZE_ABOVE {
            let w = ((img.width() as f32 * rest).round() as u32).max(1);
            let h = ((img.height() as f32 * rest).round() as u32).max(1);
            resized = image::imageops::resize(img, w, h, FilterType::Triangle);
            img = &resized;
        }
        if img.width() < WINDOW_PX as u32 || img.height() < WINDOW_PX as u32 {
            return Vec::new();
        }
        let sx = frame.width() as f32 / img.width() as f32;
        let sy = frame.height() as f32 / img.height() as f32;
        let data = rustface::ImageData::new(img.as_raw(), img.width(), img.height());
        let mut faces: Vec<FaceBox> = self
            .inner
            .0
            .detect(&data)
            .into_iter()
            .map(|f| {
                let b = f.bbox();
                FaceBox {
                    x: (b.x() as f32 * sx).round() as i32,
                    y: (b.y() as f32 * sy).round() as i32,
                    width: (b.width() as f32 * sx).round() as u32,
                    height: (b.height() as f32 * sy).round() as u32,
                    score: f.score(),
                }
            })
            .collect();
        faces.sort_by_key(|f| std::cmp::Reverse(f.width));
        faces
    }
}

/// Averages each k x k block into one pixel (the right and bottom remainders are
/// dropped). Much cheaper than a filtered resize, and as good for detection.
pub fn box_downscale(src: &GrayImage, k: u32) -> GrayImage {
    let (w, h) = (src.width() / k, src.height() / k);
    let mut out = GrayImage::new(w, h);
    if w == 0 || h == 0 {
        return out;
    }
    let stride = src.width() as usize;
    let (k, w) = (k as usize, w as usize);
    let area = (k * k) as u32;
    let mut sums = vec![0u32; w];
    let raw = src.as_raw();
    for (oy, out_row) in out.chunks_exact_mut(w).enumerate() {
        sums.fill(0);
        for row in raw[oy * k * stride..].chunks(stride).take(k) {
            for (sum, block) in sums.iter_mut().zip(row.chunks_exact(k)) {
                *sum += block.iter().map(|&p| u32::from(p)).sum::<u32>();
            }
        }
        for (o, sum) in out_row.iter_mut().zip(&sums) {
            *o = ((sum + area / 2) / area) as u8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn fixture(name: &str) -> GrayImage {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/faces")
            .join(name);
        image::open(&p).expect("fixture").to_luma8()
    }

    #[test]
    fn finds_one_face_in_each_portrait() {
        let mut d = Detector::embedded().expect("model");
        let faces = d.detect(&fixture("astronaut.jpg"), 100);
        assert_eq!(faces.len(), 1, "{faces:?}");
        // The astronaut's face is about 124 px, left of centre, in the upper half.
        let f = faces[0];
        assert!((100..160).contains(&f.width), "{f:?}");
        assert!(
            (180..260).contains(&f.x) && (50..120).contains(&f.y),
            "{f:?}"
        );
        assert_eq!(d.detect(&fixture("solvay-einstein.jpg"), 100).len(), 1);
    }

    #[test]
    fn finds_many_faces_in_the_group_and_none_in_the_street() {
        let mut d = Detector::embedded().expect("model");
        assert!(d.detect(&fixture("solvay-group.jpg"), 40).len() >= 6);
        assert!(d.detect(&fixture("no-face.jpg"), 40).is_empty());
    }

    #[test]
    fn min_face_px_drops_small_faces() {
        let mut d = Detector::embedded().expect("model");
        // The group's faces are 65-85 px: all gone at 100 px.
        assert!(d.detect(&fixture("solvay-group.jpg"), 100).is_empty());
        // The astronaut's 124 px face is dropped at 200 px.
        assert!(d.detect(&fixture("astronaut.jpg"), 200).is_empty());
    }

    #[test]
    fn box_downscale_averages_blocks() {
        let img = GrayImage::from_fn(5, 4, |x, y| image::Luma([(x * 10 + y * 50) as u8]));
        let half = box_downscale(&img, 2);
        assert_eq!(half.dimensions(), (2, 2));
        // Block (0,0): 0, 10, 50, 60 -> 30; block (1,1): 120, 130, 170, 180 -> 150.
        assert_eq!(half.get_pixel(0, 0)[0], 30);
        assert_eq!(half.get_pixel(1, 1)[0], 150);
        assert_eq!(box_downscale(&img, 8).dimensions(), (0, 0));
    }

    #[test]
    fn tiny_frames_do_not_panic() {
        let mut d = Detector::embedded().expect("model");
        assert!(d.detect(&GrayImage::new(1, 1), 100).is_empty());
        assert!(d.detect(&GrayImage::new(0, 0), 100).is_empty());
    }
}
