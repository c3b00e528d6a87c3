//! Instructions per frame, from YUYV to a feedback code, counted by valgrind's
//! callgrind (issue 15): the same count run after run on a loaded machine,
//! where criterion's times (benches/capture.rs) wander. `benches/instructions.sh`
//! runs this under callgrind, collecting only inside `frames()`, and divides.
//!
//! `frame_instructions <photo> <full|tracked> <frames>`: judges `frames` frames
//! of the photo after a warm-up (the model loaded, a tracker on the face), with
//! the face tracked between full detections or a full detection on each.

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

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [photo, mode, n] = args.as_slice() else {
        eprintln!("usage: frame_instructions <photo> <full|tracked> <frames>");
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
    let Ok(mut d) = Detector::embedded() else {
        eprintln!("the face model does not load");
        return ExitCode::FAILURE;
    };
    let mut t = Tracker::default();
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
