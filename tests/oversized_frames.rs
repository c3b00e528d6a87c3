//! A camera or a file naming a frame far larger than the stream's (issue 27,
//! item 3: an 8192x8192 MJPEG frame took the daemon from 23 MB to 1140 MB, and
//! `MemoryMax=128M` killed it, again and again) is refused from its header,
//! before anything is allocated for its pixels. Memory is counted by this test
//! binary's own allocator (bytes live at the peak, above what was live when the
//! measurement began): exact and repeatable, whatever the machine's load. One
//! test in this binary, so nothing else allocates meanwhile.

mod common;

use facecapture::camera::files::FilesSource;
use facecapture::camera::{FrameError, FrameSource, Next, PixelFormat, RawFrame};
use facecapture::capture::{self, Settings};
use facecapture::config::{CameraConfig, CameraSource};
use facecapture::detect::Detector;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call goes to the system allocator unchanged; only counts are kept.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most bytes live at once while `f` ran, above those live before it.
fn peak_of<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    (PEAK.load(Ordering::Relaxed).saturating_sub(base), out)
}

fn mjpeg(data: Vec<u8>, width: u32, height: u32) -> RawFrame {
    RawFrame {
        format: PixelFormat::Mjpg,
        width,
        height,
        stride: 0,
        data: zeroize::Zeroizing::new(data),
        captured_ms: 0.0,
    }
}

/// A real JPEG of 8192x8192 (one grey level: a few hundred kilobytes).
fn huge_jpeg() -> Vec<u8> {
    let img = image::GrayImage::from_pixel(8192, 8192, image::Luma([128]));
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 50)
        .encode_image(&img)
        .expect("encode");
    out
}

#[test]
fn an_oversized_frame_is_refused_from_its_header_within_twice_a_frames_memory() {
    let normal = std::fs::read(common::fixture("astronaut.jpg")).expect("photo");
    let huge = huge_jpeg();

    // One frame through both conversions: the stream's size, then 8192x8192
    // from a camera that negotiated 640x480.
    let (normal_peak, ok) = peak_of(|| {
        let f = mjpeg(normal.clone(), 640, 480);
        (f.to_gray().is_ok(), f.to_rgb().is_ok())
    });
    assert_eq!(ok, (true, true));
    let (huge_peak, refused) = peak_of(|| {
        let f = mjpeg(huge.clone(), 640, 480);
        (f.to_gray().err(), f.to_rgb().err())
    });
    for e in [refused.0, refused.1] {
        assert!(
            matches!(
                e,
                Some(FrameError::Size {
                    got_w: 8192,
                    got_h: 8192,
                    ..
                })
            ),
            "{e:?}"
        );
    }
    println!(
        "one frame: 640x480 {normal_peak} bytes at the peak; 8192x8192 ({} bytes of JPEG) {huge_peak}",
        huge.len()
    );
    assert!(
        huge_peak <= 2 * normal_peak + huge.len(),
        "an 8192x8192 frame took {huge_peak} bytes; a 640x480 one {normal_peak}"
    );

    // A files source asked for 640x480, its directory holding a small PNG that
    // says 8192x8192 between two faces: a bad frame, named, counted; the
    // capture goes on and its peak stays within twice a normal capture's.
    let mut detector = Detector::embedded().expect("model");
    let settings = Settings {
        device_brand: "test".into(),
        ..Settings::default()
    };
    let capture_in = |dir: &std::path::Path, detector: &mut Detector| {
        let mut source = FilesSource::open(&CameraConfig {
            source: CameraSource::Files,
            path: dir.display().to_string(),
            fps: 200,
            ..CameraConfig::default()
        })
        .expect("files");
        let mut bad = Vec::new();
        for _ in 0..3 {
            match source.next_frame(std::time::Instant::now() + std::time::Duration::from_secs(5)) {
                Ok(Next::Bad(e)) => bad.push(e.to_string()),
                Ok(_) => {}
                Err(e) => panic!("{e}"),
            }
        }
        let package = capture::capture_face(
            &mut source,
            detector,
            &settings,
            "test",
            &mut |_| {},
            &AtomicBool::new(false),
        );
        (bad, package.is_ok())
    };
    let plain = tempfile::tempdir().expect("tmp");
    let hostile = tempfile::tempdir().expect("tmp");
    for dir in [plain.path(), hostile.path()] {
        std::fs::write(dir.join("0.jpg"), &normal).expect("write");
        std::fs::write(dir.join("2.jpg"), &normal).expect("write");
    }
    std::fs::write(plain.path().join("1.jpg"), &normal).expect("write");
    image::GrayImage::from_pixel(8192, 8192, image::Luma([0]))
        .save(hostile.path().join("1.png"))
        .expect("png");
    let png_len = std::fs::metadata(hostile.path().join("1.png"))
        .expect("png")
        .len();
    let (plain_peak, (bad, ok)) = peak_of(|| capture_in(plain.path(), &mut detector));
    assert!(bad.is_empty() && ok, "{bad:?}");
    let (hostile_peak, (bad, ok)) = peak_of(|| capture_in(hostile.path(), &mut detector));
    assert!(ok, "the capture did not go on past the bad frame");
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(
        bad[0].contains("1.png") && bad[0].contains("8192x8192 is more than 4 times the 640x480"),
        "{bad:?}"
    );
    println!(
        "capture: three 640x480 files {plain_peak} bytes at the peak; with an 8192x8192 PNG \
         ({png_len} bytes) among them {hostile_peak}"
    );
    assert!(
        hostile_peak <= 2 * plain_peak,
        "with the 8192x8192 PNG: {hostile_peak} bytes; without: {plain_peak}"
    );
}
