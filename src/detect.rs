//! Face detection with rustface (SeetaFace). The model is embedded in the binary
//! from the rustface package; a file can override it. Detection runs on a frame
//! downscaled so that the smallest face of interest is just above the detector's
//! 40 px window (rustface's own min_face_size does nothing); faces narrower than
//! `min_face_px` in the original frame are dropped.

use image::GrayImage;
use image::imageops::FilterType;
use serde::Serialize;

/// SeetaFace frontal model (BSD-2), from the rustface crate's package.
static EMBEDDED_MODEL: &[u8] = include_bytes!(env!("FACECAPTURE_RUSTFACE_MODEL"));
/// The detector's window: faces smaller than this at detection scale are missed.
const WINDOW_PX: f32 = 40.0;
/// Detection-scale target for the smallest face: a margin above the window.
const TARGET_PX: f32 = 48.0;

/// A face in frame coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FaceBox {
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
    pub score: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("cannot load the face model: {0}")]
    Model(#[from] std::io::Error),
}

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

    /// The detector with a model file (a config override).
    pub fn from_path(path: &std::path::Path) -> Result<Self, DetectError> {
        Self::from_model(rustface::read_model(std::fs::File::open(path)?)?)
    }

    fn from_model(model: rustface::Model) -> Result<Self, DetectError> {
        let mut inner = rustface::create_detector_with_model(model);
        inner.set_score_thresh(2.0);
        inner.set_pyramid_scale_factor(0.8);
        inner.set_slide_window_step(4, 4);
        Ok(Self {
            inner: SendDetector(inner),
        })
    }

    /// Faces at least `min_face_px` wide, largest first.
    pub fn detect(&mut self, frame: &GrayImage, min_face_px: u32) -> Vec<FaceBox> {
        let scale = (TARGET_PX / min_face_px.max(WINDOW_PX as u32) as f32).min(1.0);
        let (w, h) = frame.dimensions();
        let sw = ((w as f32 * scale).round() as u32).max(1);
        let sh = ((h as f32 * scale).round() as u32).max(1);
        let small;
        let (img, scale) = if sw < w {
            small = image::imageops::resize(frame, sw, sh, FilterType::Triangle);
            (&small, sw as f32 / w as f32)
        } else {
            (frame, 1.0)
        };
        if img.width() < WINDOW_PX as u32 || img.height() < WINDOW_PX as u32 {
            return Vec::new();
        }
        let data = rustface::ImageData::new(img.as_raw(), img.width(), img.height());
        let mut faces: Vec<FaceBox> = self
            .inner
            .0
            .detect(&data)
            .into_iter()
            .map(|f| {
                let b = f.bbox();
                FaceBox {
                    x: (b.x() as f32 / scale).round() as i32,
                    y: (b.y() as f32 / scale).round() as i32,
                    width: (b.width() as f32 / scale).round() as u32,
                    height: (b.height() as f32 / scale).round() as u32,
                    score: f.score(),
                }
            })
            .filter(|f| f.width >= min_face_px)
            .collect();
        faces.sort_by_key(|f| std::cmp::Reverse(f.width));
        faces
    }
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
    fn tiny_frames_do_not_panic() {
        let mut d = Detector::embedded().expect("model");
        assert!(d.detect(&GrayImage::new(1, 1), 100).is_empty());
        assert!(d.detect(&GrayImage::new(0, 0), 100).is_empty());
    }
}
