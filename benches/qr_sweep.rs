//! QR codes in camera scenes, read by the door (`qrimage::find_in`, the reader
//! `scan_qr` uses on every frame) and by zxing-cpp side by side (issue 30).
//!
//! The code is the project's own: a sessionCallbackURL as the emulator makes
//! and draws it (an RSA-2048 signature and the encrypted session: version 14 or
//! so, EC level L). `benches/qr_sweep.py` pastes it into real photos (six
//! placements, symbol widths 120 to 280 px, flat, turned, turned away in
//! perspective; defocus blur 0 to 1.5 px and a sensor's noise) and reads each
//! scene with zxing-cpp; this reads the same files. Prints what each read by
//! blur, width and tilt, the totals, and the door's time per frame.
//!
//!   bash benches/qr-sweep.sh        (installs zxing-cpp and scikit-image)
//!   cargo bench --bench qr_sweep    (when they are there)
//!
//! `QR_SWEEP_DIR=DIR` keeps the code and the scenes in DIR, and reads them
//! from there on the next run (the same scenes for a change to the reader).
//!
//! Goal: at least as many as zxing-cpp at every blur level, more in total.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

#[derive(serde::Deserialize)]
struct Scene {
    file: String,
    place: String,
    width: u32,
    tilt: String,
    blur: f64,
    zxing: bool,
    zxing_ms: f64,
}

#[derive(Default, Clone, Copy)]
struct Tally {
    scenes: u32,
    ours: u32,
    zxing: u32,
}

impl Tally {
    fn add(&mut self, ours: bool, zxing: bool) {
        self.scenes += 1;
        self.ours += u32::from(ours);
        self.zxing += u32::from(zxing);
    }
}

fn table<K: std::fmt::Display>(title: &str, rows: &BTreeMap<K, Tally>) {
    println!(
        "\n{title:<14} {:>6} {:>6} {:>9}",
        "scenes", "ours", "zxing-cpp"
    );
    for (k, t) in rows {
        let mark = if t.ours < t.zxing { "  <- fewer" } else { "" };
        println!(
            "{:<14} {:>6} {:>6} {:>9}{mark}",
            k.to_string(),
            t.scenes,
            t.ours,
            t.zxing
        );
    }
}

/// The code (DIR/code.png, DIR/code.txt), the scenes and zxing-cpp's reading
/// of them (benches/qr_sweep.py).
fn make_scenes(root: &Path, dir: &Path) {
    std::fs::create_dir_all(dir).expect("dir");
    let signer = awareid_emulator::server_crypto::new_rsa_key(2048).expect("key");
    let url = awareid_emulator::server_crypto::encode_qr(
        "awareid.example.com",
        "apikey",
        "aa73e547-0f1b-4235-a7b0-dd52fa4ab774",
        &signer,
        &[5u8; 32],
        Some([9u8; 16]),
    )
    .expect("url");
    let png = awareid_emulator::server_crypto::qr_png(&url).expect("png");
    std::fs::write(dir.join("code.png"), png).expect("code.png");
    std::fs::write(dir.join("code.txt"), &url).expect("code.txt");
    let made = Command::new("python3")
        .arg(root.join("benches/qr_sweep.py"))
        .arg(dir)
        .current_dir(root)
        .status()
        .expect("python3");
    assert!(
        made.success(),
        "benches/qr_sweep.py failed (zxing-cpp and scikit-image: bash benches/qr-sweep.sh installs them)"
    );
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let temp = tempfile::tempdir().expect("tmp");
    let dir = match std::env::var_os("QR_SWEEP_DIR") {
        Some(d) => std::path::PathBuf::from(d),
        None => temp.path().to_owned(),
    };
    if !dir.join("scenes.json").exists() {
        make_scenes(root, &dir);
    }
    let url = std::fs::read_to_string(dir.join("code.txt")).expect("code.txt");
    let scenes: Vec<Scene> =
        serde_json::from_slice(&std::fs::read(dir.join("scenes.json")).expect("scenes.json"))
            .expect("scenes");

    let (mut by_blur, mut by_width, mut by_tilt) =
        (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let mut by_place: BTreeMap<String, Tally> = BTreeMap::new();
    let mut total = Tally::default();
    let (mut ours_ms, mut zxing_ms) = (0.0, 0.0);
    let mut only_zxing = Vec::new();
    let mut empty = Tally::default();
    let (mut empty_ours_ms, mut empty_zxing_ms) = (0.0, 0.0);
    for s in &scenes {
        let gray = image::open(dir.join(&s.file)).expect("scene").to_luma8();
        let t = Instant::now();
        let found = facecapture::qrimage::find_in(&gray);
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if s.width == 0 {
            // No code: anything read is a false read.
            empty.add(found.is_some(), s.zxing);
            empty_ours_ms += ms;
            empty_zxing_ms += s.zxing_ms;
            continue;
        }
        ours_ms += ms;
        zxing_ms += s.zxing_ms;
        let ours = found.as_deref() == Some(url.as_str());
        by_blur
            .entry(format!("blur {:.1}", s.blur))
            .or_insert_with(Tally::default)
            .add(ours, s.zxing);
        by_width
            .entry(format!("{:>3} px", s.width))
            .or_insert_with(Tally::default)
            .add(ours, s.zxing);
        by_tilt
            .entry(s.tilt.clone())
            .or_insert_with(Tally::default)
            .add(ours, s.zxing);
        by_place
            .entry(s.place.clone())
            .or_default()
            .add(ours, s.zxing);
        total.add(ours, s.zxing);
        if s.zxing && !ours {
            only_zxing.push(format!(
                "{} px, {}, blur {:.1}, {}",
                s.width, s.tilt, s.blur, s.place
            ));
        }
    }
    println!(
        "QR sweep: {} scenes of a {}-character sessionCallbackURL and {} without a code, 640x480",
        total.scenes,
        url.len(),
        empty.scenes
    );
    table("blur (px)", &by_blur);
    table("symbol width", &by_width);
    table("tilt", &by_tilt);
    table("placement", &by_place);
    let n = f64::from(total.scenes.max(1));
    let e = f64::from(empty.scenes.max(1));
    println!(
        "\ntotal: ours {} of {}, zxing-cpp {} of {}",
        total.ours, total.scenes, total.zxing, total.scenes
    );
    println!(
        "without a code: something read by ours in {} of {}, by zxing-cpp in {}",
        empty.ours, empty.scenes, empty.zxing
    );
    println!(
        "time per frame (this machine, one thread each): with a code ours {:.1} ms, \
         zxing-cpp {:.1} ms; without ours {:.1} ms, zxing-cpp {:.1} ms",
        ours_ms / n,
        zxing_ms / n,
        empty_ours_ms / e,
        empty_zxing_ms / e
    );
    if !only_zxing.is_empty() {
        println!("read by zxing-cpp only:");
        for s in &only_zxing {
            println!("  {s}");
        }
    }
    let every_level = by_blur.values().all(|t| t.ours >= t.zxing);
    println!(
        "goal (at least as many at every blur level, more in total, nothing read where \
         there is no code): {}",
        if every_level && total.ours > total.zxing && empty.ours == 0 {
            "met"
        } else {
            "NOT met"
        }
    );
}
