//! The daemon end to end, its flows: a private dbus-daemon, facecaptured, the
//! emulator over HTTPS and the `files` camera with real face photos. All four
//! flows through facecapturectl and through gdbus, QR codes the camera scans,
//! and the door controller examples (Rust, Python, C) against it.

mod common;

use common::daemon::{self, calls, json, stderr, stdout};

/// Kept warm (`server.keep_warm_s`, on by default): at the start the daemon
/// fetches the token and the public key by itself, so the first person pays
/// neither, only the calls of their own flow.
#[test]
fn a_door_kept_warm_has_the_token_and_key_before_the_first_person() {
    // 3600 s: no other keep-warm turn for the next 135 s (the renewal lead of
    // the emulator's 300 s tokens) to come between the flows' own calls.
    let s = daemon::start_with("[server]\nkeep_warm_s = 3600\n");
    let d = &s.daemon;
    d.wait_log("AwareID kept warm");
    assert_eq!(calls(&s), ["token", "getPublicKey"]);
    s.emulator.clear_requests();
    let o = d.ctl(&["enroll", "alice", "--email", "alice@example.com"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(calls(&s), ["enroll", "addDevice", "addFace"]);
    s.emulator.clear_requests();
    let o = d.ctl(&["authenticate", "alice"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o)["granted"], true);
    assert_eq!(calls(&s), ["authenticate", "verifyDevice", "verifyFace"]);
}

#[test]
fn four_flows_through_facecapturectl() {
    let s = daemon::start();
    let d = &s.daemon;

    let o = d.ctl(&[
        "enroll",
        "alice",
        "--email",
        "alice@example.com",
        "--first",
        "Alice",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(
        (v["enrollment_status"].as_i64(), v["liveness"].as_bool()),
        (Some(2), Some(true))
    );
    // Progress and feedback were shown live.
    let err = stderr(&o);
    for line in [
        "progress: enroll token",
        "progress: enroll add-face",
        "feedback: face-compliant",
        "progress: enroll done",
    ] {
        assert!(err.contains(line), "{line} missing:\n{err}");
    }
    assert_eq!(
        calls(&s),
        ["token", "getPublicKey", "enroll", "addDevice", "addFace"]
    );

    s.emulator.clear_requests();
    let o = d.ctl(&["authenticate", "alice"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["granted"], true);
    assert_eq!(v["matched"], true);
    assert!(
        calls(&s).contains(&"verifyFace".to_owned()),
        "{:?}",
        calls(&s)
    );

    // QR-started enrollment: the portal's code passed in.
    let url = s.emulator.qr_for_enroll("bob", "bob@example.com");
    daemon::show(d, "solvay-einstein.jpg");
    let o = d.ctl(&["enroll-qr", &url]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o)["username"], "bob");
    assert!(stderr(&o).contains("progress: enroll-qr validate-session"));

    // QR-started authentication.
    let url = s.emulator.qr_for_authenticate("bob");
    let o = d.ctl(&["authenticate-qr", &url]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(
        (v["username"].as_str(), v["granted"].as_bool()),
        (Some("bob"), Some(true))
    );

    // The wrong face for bob: not granted, exit status 1.
    daemon::show(d, "astronaut.jpg");
    let o = d.ctl(&["authenticate", "bob"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert_eq!(json(&o)["granted"], false);

    let o = d.ctl(&["list"]);
    let list = json(&o);
    let users: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|e| e["username"].as_str())
        .collect();
    assert_eq!(users, ["alice", "bob"]);
    assert!(!stdout(&o).contains("registration"), "no codes listed");

    let o = d.ctl(&["status"]);
    let v = json(&o);
    assert_eq!(v["state"], "idle");
    assert_eq!(v["camera_available"], true);
    assert_eq!(v["device_id"].as_str().map(str::len), Some(32));
    assert_eq!(v["device_key_protection"], "plain");

    // No secret reached the daemon's log: registration codes (read from its
    // database), the client secret, the apikey, the QR URLs.
    let db = rusqlite::Connection::open(d.state_dir().join("facecaptured.db")).expect("db");
    let codes: Vec<String> = db
        .prepare("SELECT registration_code FROM enrollments")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("codes");
    assert_eq!(codes.len(), 2);
    let log = d.log_text();
    let secret = std::fs::read_to_string(d.dir.path().join("client_secret")).expect("secret");
    let apikey = std::fs::read_to_string(d.dir.path().join("apikey")).expect("apikey");
    for s in codes.iter().chain([&secret, &apikey]) {
        let s = s.trim();
        assert!(s.len() >= 6 && !log.contains(s), "a secret is in the log");
    }
    assert!(!log.contains("data="), "a QR URL is in the log");
}

#[test]
fn four_flows_through_gdbus() {
    let s = daemon::start();
    let d = &s.daemon;
    let o = d.gdbus("Enroll", &["carol", "carol@example.com", "", "", ""]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "(2, true)");
    let o = d.gdbus("Authenticate", &["carol"]);
    assert_eq!(stdout(&o), "(true, true, true, 100.0, 2)", "{}", stderr(&o));

    let url = s.emulator.qr_for_enroll("dave", "dave@example.com");
    let o = d.gdbus("EnrollWithQr", &[&url]);
    assert_eq!(stdout(&o), "('dave', 2, true)", "{}", stderr(&o));
    let url = s.emulator.qr_for_authenticate("dave");
    let o = d.gdbus("AuthenticateWithQr", &[&url]);
    assert_eq!(
        stdout(&o),
        "('dave', true, true, true, 100.0, 2)",
        "{}",
        stderr(&o)
    );

    // What reached the server: both QR sessions validated, each flow to its end.
    let c = calls(&s);
    assert_eq!(
        c.iter().filter(|c| *c == "validateSession").count(),
        2,
        "{c:?}"
    );
    assert_eq!(c.iter().filter(|c| *c == "addFace").count(), 2, "{c:?}");
    assert_eq!(c.iter().filter(|c| *c == "verifyFace").count(), 2, "{c:?}");

    let o = d.gdbus("ListEnrollments", &[]);
    let out = stdout(&o);
    assert!(out.contains("'carol'") && out.contains("'dave'"), "{out}");
    let o = d.gdbus("RemoveEnrollment", &["carol"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = d.gdbus("Authenticate", &["carol"]);
    assert!(
        stderr(&o).contains("org.facecapture.FaceCapture1.Error.NotEnrolled"),
        "{}",
        stderr(&o)
    );
}

/// A QR scene: the emulator's code pasted into a street photo, as a person holds it up.
fn qr_scene(url: &str, path: &std::path::Path) {
    let png = awareid_emulator::server_crypto::qr_png(url).expect("qr");
    let qr = image::load_from_memory(&png).expect("png").to_luma8();
    let qr = image::imageops::resize(&qr, 300, 300, image::imageops::FilterType::Triangle);
    let mut scene = image::open(common::fixture("no-face.jpg"))
        .expect("photo")
        .to_luma8();
    image::imageops::overlay(&mut scene, &qr, 170, 90);
    scene.save(path).expect("scene");
}

#[test]
fn qr_codes_scanned_by_the_camera_start_both_flows() {
    let s = daemon::start();
    let d = &s.daemon;
    let frames = daemon::frames(d);
    // The person shows the code, then their face.
    let url = s.emulator.qr_for_enroll("pia", "pia@example.com");
    qr_scene(&url, &frames.join("0-qr.png"));
    for i in 1..4 {
        std::fs::copy(
            common::fixture("astronaut.jpg"),
            frames.join(format!("{i}-face.jpg")),
        )
        .expect("copy");
    }
    let o = d.ctl(&["enroll-qr"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o)["username"], "pia");
    assert!(
        calls(&s).contains(&"validateSession".to_owned()),
        "{:?}",
        calls(&s)
    );

    let url = s.emulator.qr_for_authenticate("pia");
    qr_scene(&url, &frames.join("0-qr.png"));
    let o = d.ctl(&["authenticate-qr"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(
        (v["username"].as_str(), v["granted"].as_bool()),
        (Some("pia"), Some(true))
    );
}

/// A door controller example against the daemon: run as `door USER --address ADDR
/// --relay FILE`, it shows the feedback and progress, opens the relay stand-in for
/// the enrolled person, and keeps it shut for a stranger's face and for a username
/// that is not enrolled (the daemon's typed error shown).
fn door_controller_opens_for_the_enrolled_face_only(
    door: impl Fn() -> std::process::Command,
    user: &str,
) {
    let s = daemon::start();
    let d = &s.daemon;
    let o = d.ctl(&["enroll", user, "--email", &format!("{user}@example.com")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let relay = d.dir.path().join("relay");
    let run = |who: &str| {
        door()
            .arg(who)
            .args(["--address", &d.address, "--relay"])
            .arg(&relay)
            .output()
            .expect("the door controller runs")
    };
    let relay_state = || {
        std::fs::read_to_string(&relay)
            .expect("relay")
            .trim()
            .to_owned()
    };
    let o = run(user);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}\n{}", stderr(&o));
    assert!(out.contains("feedback: face-compliant"), "{out}");
    assert!(out.contains("progress: authenticate verify-face"), "{out}");
    assert!(out.to_lowercase().contains("granted=true"), "{out}");
    assert!(out.contains("relay: OPEN"), "{out}");
    assert_eq!(relay_state(), "1");

    // Someone else's face: refused, the relay stays shut.
    daemon::show(d, "solvay-einstein.jpg");
    let o = run(user);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).to_lowercase().contains("granted=false"),
        "{}",
        stdout(&o)
    );
    assert_eq!(relay_state(), "0");
    // Not enrolled: the daemon's error is shown by name, the relay stays shut.
    std::fs::write(&relay, "1\n").expect("relay");
    let o = run("nobody");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("refused: NotEnrolled"),
        "{}",
        stdout(&o)
    );
    assert_eq!(relay_state(), "0");
}

/// examples/door_controller.py (Python, jeepney).
#[test]
#[ignore = "needs python3 with jeepney (tests/run.sh installs it)"]
fn the_python_door_controller_opens_for_the_enrolled_face_only() {
    let have_jeepney = std::process::Command::new("python3")
        .args(["-c", "import jeepney"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        have_jeepney,
        "python3 with jeepney (pip install jeepney) is not available"
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/door_controller.py");
    door_controller_opens_for_the_enrolled_face_only(
        || {
            let mut c = std::process::Command::new("python3");
            c.arg(script);
            c
        },
        "mona",
    );
}

/// The client crate's example (facecapture-dbus/examples/door.rs): typed replies
/// and errors, and each feedback code worded for the display.
#[test]
#[ignore = "needs the client crate's example built: cargo test --workspace builds it"]
fn the_rust_door_controller_opens_for_the_enrolled_face_only() {
    // target/debug/deps/<this test> -> target/debug/examples/door
    let exe = std::env::current_exe().expect("test exe");
    let door = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join("examples/door");
    assert!(
        door.is_file(),
        "{} is not built (cargo test --workspace builds it)",
        door.display()
    );
    door_controller_opens_for_the_enrolled_face_only(|| std::process::Command::new(&door), "nina");
}

/// examples/door_controller.c (C, sd-bus), compiled here with the system's cc.
#[test]
#[ignore = "needs cc and libsystemd-dev (tests/run.sh installs them)"]
fn the_c_door_controller_opens_for_the_enrolled_face_only() {
    let flags = std::process::Command::new("pkg-config")
        .args(["--cflags", "--libs", "libsystemd"])
        .output()
        .expect("pkg-config runs");
    assert!(
        flags.status.success(),
        "libsystemd-dev is not installed: {}",
        stderr(&flags)
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let door = dir.path().join("door_controller");
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/door_controller.c");
    let o = std::process::Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-O2", "-o"])
        .arg(&door)
        .arg(source)
        .args(stdout(&flags).split_whitespace())
        .output()
        .expect("cc runs");
    assert!(o.status.success(), "cc: {}", stderr(&o));
    door_controller_opens_for_the_enrolled_face_only(|| std::process::Command::new(&door), "otto");
}
