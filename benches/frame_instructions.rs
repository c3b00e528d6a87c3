//! Instructions per frame, from YUYV to a feedback code, counted by valgrind's
//! callgrind (issue 15): the same count run after run on a loaded machine,
//! where criterion's times (benches/capture.rs) wander. `benches/instructions.sh`
//! runs this under callgrind, collecting only inside `frames()`, and divides.
//!
//! `frame_instructions <photo> <full|tracked|detect> <frames> [zoom]`: judges
//! `frames` frames of the photo after a warm-up (the model loaded, a tracker on
//! the face), with the face tracked between full detections or a full detection
//! on each; `detect` counts the detector alone (`Detector::detect` on the gray
//! frame, as `facecapturectl detect` runs it). With `zoom`, the photo is scaled
//! by that much about its largest face and cut back to its size: a face close to
//! the camera.

use facecapture::camera::PixelFormat;
use facecapture::camera::frame::{RawFrame, rgb_to_yuyv};
use facecapture::capture::{self, Feedback, Settings};
use facecapture::detect::{Detector, Tracker};
use std::hint::black_box;
use std::path::Path;
use std::process::ExitCode;
use zeroize::Zeroizing;

/// The measured loop; callgrind's --toggle-collect names it.
#[inline(never)]
fn frames(
    frame: &RawFrame,
    d: &mut Detector,
    t: &mut Tracker,
    s: &Settings,
    n: u32,
) -> Option<Feedback> {
    let mut last = None;
    for _ in 0..n {
        last = Some(
            capture::judge_tracked(black_box(frame), d, t, s)
                .ok()?
                .0
                .feedback,
        );
    }
    last
}

/// The measured loop of `detect`; callgrind's --toggle-collect names it too.
#[inline(never)]
fn detect_frames(gray: &image::GrayImage, d: &mut Detector, min: u32, n: u32) -> usize {
    let mut found = 0;
    for _ in 0..n {
        found = d.detect(black_box(gray), min).len();
    }
    found
}

/// `rgb` scaled by `zoom` about its largest face (its centre, when none is
/// found) and cut back to its own size.
fn zoomed(rgb: &image::RgbImage, d: &mut Detector, zoom: f32) -> image::RgbImage {
    let gray = image::DynamicImage::ImageRgb8(rgb.clone()).to_luma8();
    let (w, h) = rgb.dimensions();
    let (cx, cy) = d.detect_all(&gray, 40).first().map_or((w / 2, h / 2), |f| {
        (
            (f.x + f.width as i32 / 2).max(0) as u32,
            (f.y + f.height as i32 / 2).max(0) as u32,
        )
    });
    let (zw, zh) = ((w as f32 * zoom) as u32, (h as f32 * zoom) as u32);
    let big = image::imageops::resize(rgb, zw, zh, image::imageops::FilterType::Triangle);
    let x = ((cx as f32 * zoom) as u32)
        .saturating_sub(w / 2)
        .min(zw - w);
    let y = ((cy as f32 * zoom) as u32)
        .saturating_sub(h / 2)
        .min(zh - h);
    image::imageops::crop_imm(&big, x, y, w, h).to_image()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (photo, mode, n, zoom) = match args.as_slice() {
        [photo, mode, n] => (photo, mode, n, "1"),
        [photo, mode, n, zoom] => (photo, mode, n, zoom.as_str()),
        _ => {
            eprintln!("usage: frame_instructions <photo> <full|tracked|detect> <frames> [zoom]");
            return ExitCode::from(2);
        }
    };
    let Ok(zoom) = zoom.parse::<f32>() else {
        eprintln!("zoom: not a number: {zoom}");
        return ExitCode::from(2);
    };
    let Ok(n) = n.parse::<u32>() else {
        eprintln!("frames: not a number: {n}");
        return ExitCode::from(2);
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/faces")
        .join(photo);
    let rgb = match image::open(&path) {
        Ok(i) => i.to_rgb8(),
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    let Ok(mut d) = Detector::embedded() else {
        eprintln!("the face model does not load");
        return ExitCode::FAILURE;
    };
    let rgb = if zoom > 1.0 {
        zoomed(&rgb, &mut d, zoom)
    } else {
        rgb
    };
    let frame = RawFrame {
        format: PixelFormat::Yuyv,
        width: rgb.width(),
        height: rgb.height(),
        stride: 0,
        data: Zeroizing::new(rgb_to_yuyv(&rgb)),
        captured_ms: 0.0,
    };
    let s = Settings {
        device_brand: "bench".into(),
        track_face: mode == "tracked",
        ..Settings::default()
    };
    let mut t = Tracker::default();
    if mode == "detect" {
        let gray = image::DynamicImage::ImageRgb8(rgb).to_luma8();
        let warm = d.detect(&gray, s.min_face_px);
        let found = detect_frames(&gray, &mut d, s.min_face_px, n);
        println!("{photo} detect x{zoom} {n} frames: {found} faces (warm-up {warm:?})");
        return ExitCode::SUCCESS;
    }
    // Warm-up, not counted: the tracker on the face, the detector's buffers grown.
    let mut warm = None;
    for _ in 0..Tracker::FULL_EVERY {
        warm = capture::judge_tracked(&frame, &mut d, &mut t, &s)
            .ok()
            .map(|v| v.0.feedback);
    }
    let last = frames(&frame, &mut d, &mut t, &s, n);
    println!("{photo} {mode} {n} frames: {last:?} (warm-up {warm:?})");
    ExitCode::SUCCESS
}
