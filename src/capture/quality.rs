//! The quality gate: turns a grayscale frame and the faces found in it into one
//! capture feedback code (the interface XML, the Face SDK's auto-capture feedback). A frame
//! is compliant when every test passes. Thresholds are fractions of the frame so
//! that they hold at any resolution; they were set on the fixture photos.

use crate::detect::FaceBox;
use image::GrayImage;

/// CaptureFeedback codes, in the order the gate tests them (the client crate's).
pub use facecapture_dbus::Feedback;

/// Howdy's dark-frame test: a frame is too dark when more than this share of
/// its pixels is in the darkest bin of the histogram, below DARK_LEVEL.
pub const DARK_SHARE: f64 = 0.75;
/// The darkest bin's end. It is 40, not 32: video-range luma starts at 16.
pub const DARK_LEVEL: u8 = 40;
/// A face whose mean luma is below this is too dark to match.
pub const DARK_FACE_MEAN: f64 = 50.0;
/// A face wider than this share of the frame's shorter side is too close.
pub const CLOSE_SHARE: f64 = 0.6;
/// The face centre may stray this share of the frame's width from its middle...
pub const CENTRE_TOLERANCE_X: f64 = 0.2;
/// ...and this share of its height from IDEAL_Y.
pub const CENTRE_TOLERANCE_Y: f64 = 0.2;
/// The ideal face centre sits a little above the frame's middle.
pub const IDEAL_Y: f64 = 0.45;
/// Faces are compared for sharpness at this width.
const SHARPNESS_PX: u32 = 96;
/// Variance of the Laplacian below this (at SHARPNESS_PX) is too blurry.
pub const BLUR_VARIANCE: f64 = 40.0;

/// The gate's verdict on one frame, with the face it judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// The code to send.
    pub feedback: Feedback,
    /// The face it is about, when there is one.
    pub face: Option<FaceBox>,
    /// Variance of the Laplacian of the face (0 when no face was judged).
    pub sharpness: f64,
    /// The share of the frame's pixels below DARK_LEVEL (the first test's figure).
    pub dark_share: f64,
}

/// Judges a frame. `faces` are all faces the detector saw (largest first),
/// including those narrower than `min_face_px`.
pub fn assess(gray: &GrayImage, faces: &[FaceBox], min_face_px: u32) -> Verdict {
    let (w, h) = gray.dimensions();
    let dark = dark_share(gray);
    let verdict = |feedback, face, sharpness| Verdict {
        feedback,
        face,
        sharpness,
        dark_share: dark,
    };
    if w == 0 || h == 0 {
        return verdict(Feedback::NoFace, None, 0.0);
    }
    if dark > DARK_SHARE {
        return verdict(Feedback::TooDark, None, 0.0);
    }
    let Some(&face) = faces.first() else {
        return verdict(Feedback::NoFace, None, 0.0);
    };
    if faces.len() > 1 {
        return verdict(Feedback::MultipleFaces, Some(face), 0.0);
    }
    if face.width < min_face_px {
        return verdict(Feedback::FaceTooFar, Some(face), 0.0);
    }
    if f64::from(face.width) > CLOSE_SHARE * f64::from(w.min(h)) {
        return verdict(Feedback::FaceTooClose, Some(face), 0.0);
    }
    let cx = (f64::from(face.x) + f64::from(face.width) / 2.0) / f64::from(w);
    let cy = (f64::from(face.y) + f64::from(face.height) / 2.0) / f64::from(h);
    if cx < 0.5 - CENTRE_TOLERANCE_X {
        return verdict(Feedback::FaceOnLeft, Some(face), 0.0);
    }
    if cx > 0.5 + CENTRE_TOLERANCE_X {
        return verdict(Feedback::FaceOnRight, Some(face), 0.0);
    }
    if cy < IDEAL_Y - CENTRE_TOLERANCE_Y {
        return verdict(Feedback::FaceTooHigh, Some(face), 0.0);
    }
    if cy > IDEAL_Y + CENTRE_TOLERANCE_Y {
        return verdict(Feedback::FaceTooLow, Some(face), 0.0);
    }
    let Some(crop) = face_crop(gray, &face) else {
        return verdict(Feedback::NoFace, None, 0.0);
    };
    if mean(&crop) < DARK_FACE_MEAN {
        return verdict(Feedback::TooDark, Some(face), 0.0);
    }
    let sharpness = laplacian_variance(&crop);
    if sharpness < BLUR_VARIANCE {
        return verdict(Feedback::TooBlurry, Some(face), sharpness);
    }
    verdict(Feedback::FaceCompliant, Some(face), sharpness)
}

/// Share of pixels in the darkest histogram bin, as Howdy tests IR frames.
pub fn dark_share(gray: &GrayImage) -> f64 {
    let raw = gray.as_raw();
    if raw.is_empty() {
        return 0.0;
    }
    let dark = raw.iter().filter(|&&p| p < DARK_LEVEL).count();
    dark as f64 / raw.len() as f64
}

/// The face box, clipped to the frame and scaled to SHARPNESS_PX wide.
fn face_crop(gray: &GrayImage, face: &FaceBox) -> Option<GrayImage> {
    let x0 = face.x.max(0) as u32;
    let y0 = face.y.max(0) as u32;
    let x1 = (face.x + face.width as i32).clamp(0, gray.width() as i32) as u32;
    let y1 = (face.y + face.height as i32).clamp(0, gray.height() as i32) as u32;
    if x1 <= x0 + 8 || y1 <= y0 + 8 {
        return None;
    }
    let (w, h) = (x1 - x0, y1 - y0);
    let out_h = (u64::from(h) * u64::from(SHARPNESS_PX) / u64::from(w)).max(8) as u32;
    Some(triangle_resize(gray, [x0, y0, w, h], SHARPNESS_PX, out_h))
}

/// The weights of a triangle filter from `len` samples to `new_len`: for each
/// output sample, its first input sample and the normalised weights from there.
/// The arithmetic is `image::imageops::resize`'s with `FilterType::Triangle`, step
/// for step, so that the result is the same to the bit (see the test).
fn triangle_weights(len: u32, new_len: u32) -> Vec<(usize, Vec<f32>)> {
    let ratio = len as f32 / new_len as f32;
    let sratio = ratio.max(1.0);
    let support = sratio;
    (0..new_len)
        .map(|out| {
            let centre = (out as f32 + 0.5) * ratio;
            let left = ((centre - support).floor() as i64).clamp(0, i64::from(len) - 1);
            let right = ((centre + support).ceil() as i64).clamp(left + 1, i64::from(len));
            let centre = centre - 0.5;
            let mut ws: Vec<f32> = (left..right)
                .map(|i| {
                    let x = ((i as f32 - centre) / sratio).abs();
                    if x < 1.0 { 1.0 - x } else { 0.0 }
                })
                .collect();
            let sum: f32 = ws.iter().sum();
            ws.iter_mut().for_each(|w| *w /= sum);
            (left as usize, ws)
        })
        .collect()
}

/// `rect` ([x, y, width, height]) of `gray` resized to `new_w` x `new_h` with a
/// triangle filter: what `image::imageops::resize(.., FilterType::Triangle)` gives
/// on the cropped picture, at a tenth of its cost for a gray picture (it filters
/// four float channels through a generic pixel interface).
fn triangle_resize(gray: &GrayImage, rect: [u32; 4], new_w: u32, new_h: u32) -> GrayImage {
    let [x0, y0, w, h] = rect;
    let stride = gray.width() as usize;
    let raw = gray.as_raw();
    let row = |y: usize| &raw[(y0 as usize + y) * stride + x0 as usize..][..w as usize];
    if (new_w, new_h) == (w, h) {
        let pixels = (0..h as usize).flat_map(row).copied().collect();
        return GrayImage::from_raw(w, h, pixels).unwrap_or_default();
    }
    // Down the columns first, into floats, as image's resize does...
    let mut tmp = vec![0f32; w as usize * new_h as usize];
    for (out, (left, ws)) in tmp
        .chunks_exact_mut(w as usize)
        .zip(triangle_weights(h, new_h))
    {
        for (i, &weight) in ws.iter().enumerate() {
            for (t, &p) in out.iter_mut().zip(row(left + i)) {
                *t += f32::from(p) * weight;
            }
        }
    }
    // ...then along the rows, rounded to the nearest byte.
    let columns = triangle_weights(w, new_w);
    let mut pixels = Vec::with_capacity(new_w as usize * new_h as usize);
    for line in tmp.chunks_exact(w as usize) {
        for (left, ws) in &columns {
            let t: f32 = ws
                .iter()
                .zip(&line[*left..])
                .fold(0.0, |t, (&weight, &p)| t + p * weight);
            pixels.push(t.clamp(0.0, 255.0).round() as u8);
        }
    }
    GrayImage::from_raw(new_w, new_h, pixels).unwrap_or_default()
}

/// The face's mean luma and sharpness (variance of the Laplacian at
/// SHARPNESS_PX wide), the figures the gate's last two tests judge; `None` for a
/// box too small to judge.
pub fn face_figures(gray: &GrayImage, face: &FaceBox) -> Option<(f64, f64)> {
    let crop = face_crop(gray, face)?;
    Some((mean(&crop), laplacian_variance(&crop)))
}

/// The mean luma of a picture.
pub fn mean(img: &GrayImage) -> f64 {
    let raw = img.as_raw();
    raw.iter().map(|&p| f64::from(p)).sum::<f64>() / raw.len().max(1) as f64
}

/// Variance of the 4-neighbour Laplacian: low when edges are soft.
pub fn laplacian_variance(img: &GrayImage) -> f64 {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w < 3 || h < 3 {
        return 0.0;
    }
    let p = img.as_raw();
    let (mut sum, mut sq, mut n) = (0f64, 0f64, 0f64);
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let i = y * w + x;
            let l = i32::from(p[i - 1])
                + i32::from(p[i + 1])
                + i32::from(p[i - w])
                + i32::from(p[i + w])
                - 4 * i32::from(p[i]);
            let l = f64::from(l);
            sum += l;
            sq += l * l;
            n += 1.0;
        }
    }
    let m = sum / n;
    sq / n - m * m
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::imageops::{self, FilterType};

    /// The gate's sharpness figure is computed on exactly the picture image's
    /// Triangle resize gives: real photos' regions, shrunk and enlarged.
    #[test]
    fn the_triangle_resize_is_images_to_the_bit() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/faces");
        for photo in ["astronaut.jpg", "solvay-einstein.jpg", "no-face.jpg"] {
            let gray = image::open(format!("{dir}/{photo}"))
                .expect("photo")
                .to_luma8();
            for rect in [
                [216, 84, 124, 124],
                [0, 0, gray.width(), gray.height()],
                [10, 20, 61, 50],
                [100, 40, 96, 130],
                [5, 7, 13, 9],
            ] {
                for (nw, nh) in [(96, 96), (96, 129), (96, 8), (200, 150), (96, 130)] {
                    let [x, y, w, h] = rect;
                    let want = imageops::resize(
                        &imageops::crop_imm(&gray, x, y, w, h).to_image(),
                        nw,
                        nh,
                        FilterType::Triangle,
                    );
                    let got = triangle_resize(&gray, rect, nw, nh);
                    assert_eq!(got.dimensions(), want.dimensions());
                    assert!(
                        got.as_raw() == want.as_raw(),
                        "{photo} {rect:?} to {nw}x{nh} differs"
                    );
                }
            }
        }
    }
}
