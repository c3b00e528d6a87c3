//! Peak memory of a capture session (issue 3's target: at most 40 MB): the
//! process's high-water mark (VmHWM) after loading the detector and running
//! face captures and a QR scan from the `files` source at 30 fps.
//!
//! `cargo bench --bench capture_memory`

use facecapture::camera::files::FilesSource;
use facecapture::capture::{self, Settings};
use facecapture::config::{CameraConfig, CameraSource};
use facecapture::detect::Detector;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

fn vm(key: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "?".into())
}

fn main() {
    // `cargo bench` passes --bench; nothing to parse.
    let dir = tempfile::tempdir().expect("tmp");
    let faces = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/faces");
    // A street scene, then the astronaut for three frames: each capture sees both.
    for (name, from) in [
        ("0.jpg", "no-face.jpg"),
        ("1.jpg", "astronaut.jpg"),
        ("2.jpg", "astronaut.jpg"),
        ("3.jpg", "astronaut.jpg"),
    ] {
        std::fs::copy(faces.join(from), dir.path().join(name)).expect("copy");
    }
    println!("start: VmRSS {} VmHWM {}", vm("VmRSS:"), vm("VmHWM:"));
    let mut detector = Detector::embedded().expect("model");
    println!(
        "detector loaded: VmRSS {} VmHWM {}",
        vm("VmRSS:"),
        vm("VmHWM:")
    );
    let settings = Settings {
        device_brand: "bench".into(),
        ..Settings::default()
    };
    let mut source = FilesSource::open(&CameraConfig {
        source: CameraSource::Files,
        path: dir.path().display().to_string(),
        fps: 30,
        ..CameraConfig::default()
    })
    .expect("files");
    let t = Instant::now();
    for _ in 0..5 {
        let p = capture::capture_face(
            &mut source,
            &mut detector,
            &settings,
            "bench",
            &mut |_| {},
            &AtomicBool::new(false),
        )
        .expect("package");
        let json = serde_json::to_vec(&p).expect("json");
        assert!(json.len() > 10_000);
    }
    println!(
        "5 captures in {:.0} ms: VmRSS {} VmHWM {} (peak)",
        t.elapsed().as_secs_f64() * 1000.0,
        vm("VmRSS:"),
        vm("VmHWM:")
    );
}
