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
/// The close pass looks for faces from this share of the frame's height, with a
/// finer pyramid and stride than the usual pass (its image is small). It runs
/// on every frame where the usual pass finds nothing (an empty corridor, most
/// of an approach), so its pyramid and stride are the coarsest that keep every
/// face of the scale sweeps (tests/capture.rs in memory, and the bench set's
/// faces from 100 to 480 px in 10 px steps as JPEG): pyramid 0.7 and stride 6
/// (issue 30) cost an empty scene about 9M instructions where 0.8 and 4 cost
/// 18M (scikit-image's textured scenes; the second stage's proposals are most
/// of it). 0.72 or a stride of 7 lose the group's fourth face at 200 or 220
/// px, and so does starting the pass at 0.5 of the height.
const CLOSE_FROM: f32 = 0.45;
const CLOSE_PYRAMID_SCALE: f32 = 0.7;
const CLOSE_WINDOW_STEP: u32 = 6;
/// A tracked face is looked for in its box widened by this share of its width
/// on each side: room for a person moving between two frames...
const TRACK_MARGIN: f32 = 0.4;
/// ...in the region scaled so that the face is this wide (the detector's window
/// is 40 px). Chosen by instruction count (benches/instructions.sh): 44 to 56
/// all keep the astronaut's face, 44 costing least (21.4M instructions a frame
/// against 23.3M at 48); Einstein's is kept from 48 (19.0M against 38.8M for
/// full detection) but lost at 44 and 46, and fully detected there.
const TRACK_FACE_PX: f32 = 44.0;

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
        let faces = self.detect_scaled_to(frame, (TARGET_PX / min_face).min(1.0));
        if !faces.is_empty() {
            return faces;
        }
        self.detect_close(frame)
    }

    /// The coarse extra pass for a face too close to the camera (issue 15): one
    /// filling half the frame's height or more, which the pyramid for small
    /// faces reaches only at its last, coarsest levels, where a face cut off by
    /// the frame's edge no longer fits the window. Here the frame is shrunk so
    /// that such a face is just above the window and searched with a fine
    /// stride and pyramid; the image is a few thousand pixels, so the pass costs
    /// little, and it runs only when the usual pass found nothing.
    fn detect_close(&mut self, frame: &GrayImage) -> Vec<FaceBox> {
        let smallest = frame.height().min(frame.width()) as f32 * CLOSE_FROM;
        if smallest < WINDOW_PX {
            return Vec::new();
        }
        self.with_pyramid(CLOSE_PYRAMID_SCALE, CLOSE_WINDOW_STEP, |d| {
            d.detect_scaled_to(frame, TARGET_PX / smallest)
        })
    }

    /// The faces about the size of `near` in the region around it (the box
    /// widened by 0.4 of its width on each side), in frame coordinates, largest
    /// first: where a face seen in the previous frame is now. The region is
    /// area-averaged down so that `near` is a little above the detector's
    /// window; a face that shrank or grew a lot, or moved out of the region, is
    /// not found and the caller looks at the whole frame. Much cheaper than
    /// [`Self::detect_all`]: an image of a few thousand pixels.
    pub fn detect_near(&mut self, frame: &GrayImage, near: &FaceBox) -> Vec<FaceBox> {
        let margin = (near.width as f32 * TRACK_MARGIN) as i64;
        let clip = |lo: i64, len: u32, max: u32| {
            let a = (lo - margin).clamp(0, i64::from(max));
            let b = (lo + i64::from(len) + margin).clamp(0, i64::from(max));
            (a as u32, (b - a) as u32)
        };
        let (x, width) = clip(near.x.into(), near.width, frame.width());
        let (y, height) = clip(near.y.into(), near.height, frame.height());
        let region = Rect {
            x,
            y,
            width,
            height,
        };
        let f = (TRACK_FACE_PX / near.width.max(1) as f32).min(1.0);
        let w = (width as f32 * f).round() as u32;
        let h = (height as f32 * f).round() as u32;
        let view = image::imageops::crop_imm(frame, x, y, width, height);
        let img = image::imageops::thumbnail(&*view, w, h);
        self.detect_scaled(&img, region)
    }

    /// `f` run with the detector's pyramid step and window stride set to these,
    /// then back to the usual ones.
    fn with_pyramid<T>(&mut self, scale: f32, step: u32, f: impl FnOnce(&mut Self) -> T) -> T {
        self.inner.0.set_pyramid_scale_factor(scale);
        self.inner.0.set_slide_window_step(step, step);
        let out = f(self);
        self.inner.0.set_pyramid_scale_factor(PYRAMID_SCALE);
        self.inner.0.set_slide_window_step(WINDOW_STEP, WINDOW_STEP);
        out
    }

    /// Detection on `frame` scaled by about `want` (at most 1): a box average
    /// by the whole factor, then a resize for the rest when it is large.
    fn detect_scaled_to(&mut self, frame: &GrayImage, want: f32) -> Vec<FaceBox> {
        let want = want.min(1.0);
        let k = ((1.0 / want).floor() as u32).max(1);
        let mut img = box_downscale(frame, k);
        let rest = want * k as f32;
        if rest < SKIP_RESIZE_ABOVE {
            let w = ((img.width() as f32 * rest).round() as u32).max(1);
            let h = ((img.height() as f32 * rest).round() as u32).max(1);
            img = image::imageops::resize(&img, w, h, FilterType::Triangle);
        }
        let whole = Rect {
            x: 0,
            y: 0,
            width: frame.width(),
            height: frame.height(),
        };
        self.detect_scaled(&img, whole)
    }

    /// Detection on `img`, which is `region` of a frame scaled; boxes in frame
    /// pixels.
    fn detect_scaled(&mut self, img: &GrayImage, region: Rect) -> Vec<FaceBox> {
        if img.width() < WINDOW_PX as u32 || img.height() < WINDOW_PX as u32 {
            return Vec::new();
        }
        let sx = region.width as f32 / img.width() as f32;
        let sy = region.height as f32 / img.height() as f32;
        let data = rustface::ImageData::new(img.as_raw(), img.width(), img.height());
        let mut faces: Vec<FaceBox> = self
            .inner
            .0
            .detect(&data)
            .into_iter()
            .map(|f| {
                let b = f.bbox();
                FaceBox {
                    x: region.x as i32 + (b.x() as f32 * sx).round() as i32,
                    y: region.y as i32 + (b.y() as f32 * sy).round() as i32,
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

/// A rectangle of a frame, in its pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rect {
    x: u32,
    y: u32,
    width: u32,
    height: u32,
}

/// Follows one face from frame to frame (issue 15): once a full detection has
/// found exactly one face, the next frames are searched only around it
/// ([`Detector::detect_near`]), with a full detection every
/// [`Tracker::FULL_EVERY`] frames and whenever the face is lost, so that a
/// second person walking in is still seen (multiple-faces) within that many
/// frames. Two or more faces, or none, are always looked for in the whole frame;
/// after the region search misses the face, it waits for six full detections.
#[derive(Debug, Default, Clone)]
pub struct Tracker {
    last: Option<FaceBox>,
    since_full: u32,
    /// Full detections left before the region is tried again: a face the
    /// region search missed is not looked for there on every frame.
    wait: u32,
}

impl Tracker {
    /// Frames between full detections while a face is tracked.
    pub const FULL_EVERY: u32 = 6;

    /// The faces in `frame` as [`Detector::detect_all`] gives them, found around
    /// the tracked face when there is one and a full detection is not due.
    pub fn faces(
        &mut self,
        detector: &mut Detector,
        frame: &GrayImage,
        min_face_px: u32,
    ) -> Vec<FaceBox> {
        if let Some(last) = self.last
            && self.since_full + 1 < Self::FULL_EVERY
            && self.wait == 0
        {
            let near = detector.detect_near(frame, &last);
            if near.len() == 1 {
                self.since_full += 1;
                self.last = Some(near[0]);
                return near;
            }
            self.wait = Self::FULL_EVERY;
        }
        self.wait = self.wait.saturating_sub(1);
        let faces = detector.detect_all(frame, min_face_px);
        self.since_full = 0;
        self.last = match faces.as_slice() {
            [one] => Some(*one),
            _ => None,
        };
        faces
    }

    /// Forgets the face: the next frame gets a full detection.
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

/// Averages each k x k block into one pixel, rounding half up (the right and
/// bottom remainders are dropped). Much cheaper than a filtered resize, and as
/// good for detection. The factors detection uses (2 to 4) have their own
/// loops, which the compiler vectorises: about a tenth of the generic loop's
/// instructions.
///
/// ```
/// use image::{GrayImage, Luma};
/// let img = GrayImage::from_fn(5, 4, |x, y| Luma([(x * 10 + y * 50) as u8]));
/// let half = facecapture::detect::box_downscale(&img, 2);
/// assert_eq!(half.dimensions(), (2, 2));
/// // The top left block is 0, 10, 50 and 60.
/// assert_eq!(half.get_pixel(0, 0)[0], 30);
/// ```
pub fn box_downscale(src: &GrayImage, k: u32) -> GrayImage {
    match k {
        0 | 1 => src.clone(),
        2 => box_downscale_by::<2>(src),
        3 => box_downscale_by::<3>(src),
        4 => box_downscale_by::<4>(src),
        _ => box_downscale_any(src, k),
    }
}

/// [`box_downscale`] for a factor known at compile time (at most 16, so that a
/// block's sum fits 16 bits).
fn box_downscale_by<const K: usize>(src: &GrayImage) -> GrayImage {
    const { assert!(K >= 1 && K <= 16) };
    let (w, h) = (src.width() as usize / K, src.height() as usize / K);
    let mut out = GrayImage::new(w as u32, h as u32);
    if w == 0 || h == 0 {
        return out;
    }
    let stride = src.width() as usize;
    let area = (K * K) as u32;
    let mut sums = vec![0u16; w];
    let raw = src.as_raw();
    for (oy, out_row) in out.chunks_exact_mut(w).enumerate() {
        sums.fill(0);
        for row in raw[oy * K * stride..].chunks(stride).take(K) {
            let (blocks, _) = row.as_chunks::<K>();
            for (sum, block) in sums.iter_mut().zip(blocks) {
                *sum += block.iter().map(|&p| u16::from(p)).sum::<u16>();
            }
        }
        for (o, &sum) in out_row.iter_mut().zip(&sums) {
            *o = ((u32::from(sum) + area / 2) / area) as u8;
        }
    }
    out
}

/// [`box_downscale`] for any factor.
fn box_downscale_any(src: &GrayImage, k: u32) -> GrayImage {
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
    fn the_specialised_factors_average_as_the_generic_loop_does() {
        // Odd sizes (remainders dropped) and every byte value, bright blocks
        // included (a 4x4 block of 255 sums to 4080).
        for (w, h) in [(641, 479), (7, 5), (3, 3), (1, 9)] {
            let img = GrayImage::from_fn(w, h, |x, y| {
                image::Luma([((x * 37 + y * 101 + x * y) % 256) as u8])
            });
            for k in 1..=4 {
                assert_eq!(
                    box_downscale(&img, k),
                    box_downscale_any(&img, k),
                    "{w}x{h} by {k}"
                );
            }
        }
        let white = GrayImage::from_pixel(16, 16, image::Luma([255]));
        assert!(box_downscale(&white, 4).pixels().all(|p| p[0] == 255));
    }

    #[test]
    fn tiny_frames_do_not_panic() {
        let mut d = Detector::embedded().expect("model");
        assert!(d.detect(&GrayImage::new(1, 1), 100).is_empty());
        assert!(d.detect(&GrayImage::new(0, 0), 100).is_empty());
    }
}
