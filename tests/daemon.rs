//! The daemon end to end: a private dbus-daemon, facecaptured, the emulator over
//! HTTPS and the `files` camera with real face photos. All four flows through
//! facecapturectl and through gdbus, Busy, Cancel, a vanished caller, restarts,
//! SIGKILL during an enrollment, bad input, a failing server, the audit records,
//! the metrics, reload and the installer's camera check.

mod common;

use awareid_emulator::{Fault, FaultKind};
use common::daemon::{self, json, stderr, stdout};
use common::watch::Watch;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

fn calls(setup: &daemon::Setup) -> Vec<String> {
    common::calls(&setup.emulator)
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

#[test]
fn busy_cancel_and_a_caller_that_leaves() {
    let s = daemon::start_with("[capture]\ntimeout_s = 60\n\n[daemon]\noperation_timeout_s = 24\n");
    let d = &s.daemon;
    let watch = Watch::new(&d.address);
    daemon::show(d, "no-face.jpg");
    // An enrollment that waits for a face: it has the camera once feedback flows.
    let mark = watch.mark();
    let first = d
        .ctl_command(&["enroll", "erin", "--email", "erin@example.com"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    watch.wait_for(mark, "feedback:no-face");
    // A second operation is refused at once (no camera, no server).
    let o = d.ctl(&["authenticate", "erin"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("Busy: enroll is in progress"),
        "{}",
        stderr(&o)
    );
    // Cancel ends the first with Cancelled.
    let o = d.ctl(&["cancel"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = first.wait_with_output().expect("first ends");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("Cancelled"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("feedback: no-face"),
        "{}",
        stderr(&out)
    );
    watch.wait_for(mark, "state:idle");

    // A caller that leaves the bus: its operation is cancelled and the daemon is free.
    let mark = watch.mark();
    let mut leaver = d
        .ctl_command(&["enroll", "frank", "--email", "frank@example.com"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    watch.wait_for(mark, "feedback:no-face");
    leaver.kill().expect("kill caller");
    let _ = leaver.wait();
    watch.wait_for(mark, "state:idle");
    assert_eq!(json(&d.ctl(&["status"]))["state"], "idle");
    d.wait_log("the caller left the bus");
    // And serves the next one.
    daemon::show(d, "astronaut.jpg");
    let o = d.ctl(&["enroll", "frank", "--email", "frank@example.com"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn bad_input_gets_named_errors_and_the_daemon_keeps_serving() {
    let s = daemon::start();
    let d = &s.daemon;
    let long = "u".repeat(10 * 1024);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["enroll", "", "--email", "a@example.com"],
            "InvalidArgument: username is empty",
        ),
        (
            vec!["enroll", &long, "--email", "a@example.com"],
            "InvalidArgument: username is 10240 characters",
        ),
        (
            vec!["enroll", "gus", "--email", "not-an-email"],
            "InvalidArgument: email",
        ),
        (
            vec!["enroll", "gus", "--email", "a@b"],
            "InvalidArgument: email",
        ),
        (
            vec!["enroll-qr", "https://example.com/not-a-callback"],
            "QrInvalid",
        ),
        (vec!["authenticate-qr", "hello"], "QrInvalid"),
        (vec!["authenticate", "nobody"], "NotEnrolled"),
        (vec!["authenticate", &long], "InvalidArgument"),
        (vec!["remove", "nobody"], "NotEnrolled"),
    ];
    for (args, want) in cases {
        let o = d.ctl(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
    // A QR code signed by another tenant.
    let other = awareid_emulator::Emulator::start(Default::default()).expect("other");
    let forged = other.qr_for_enroll("henry", "henry@example.com");
    let o = d.ctl(&["enroll-qr", &forged]);
    assert!(
        stderr(&o).contains("QrInvalid: the signature does not verify"),
        "{}",
        stderr(&o)
    );
    // Nothing reached the server, nothing was stored, and the daemon still serves.
    assert!(calls(&s).is_empty(), "{:?}", calls(&s));
    assert_eq!(json(&d.ctl(&["list"])), serde_json::json!([]));
    let o = d.ctl(&["enroll", "gus", "--email", "gus@example.com"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn a_failing_server_gives_server_errors_and_stores_nothing() {
    // server.timeout_s is far above what a loaded machine needs for a normal call,
    // and the delayed answer far above it.
    let s = daemon::start_with("[server]\ntimeout_s = 10\n\n[daemon]\noperation_timeout_s = 24\n");
    let d = &s.daemon;
    // Ivy is enrolled; a failed re-enrollment must leave her code as it was.
    let o = d.ctl(&["enroll", "ivy", "--email", "ivy@example.com"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let cases = [
        (
            "addFace",
            FaultKind::Status { code: 500 },
            "ServerUnavailable",
        ),
        ("enroll", FaultKind::Status { code: 400 }, "ServerRejected"),
        ("addDevice", FaultKind::MalformedJson, "ServerUnavailable"),
        ("addFace", FaultKind::DropConnection, "ServerUnavailable"),
        // Slower than server.timeout_s (10 s).
        (
            "addFace",
            FaultKind::Delay { ms: 60_000 },
            "ServerUnavailable",
        ),
    ];
    for (call, kind, want) in cases {
        for user in ["ivy", "noah"] {
            s.emulator.inject(Fault {
                call: Some(call.into()),
                kind: kind.clone(),
                times: 1,
            });
            let o = d.ctl(&["enroll", user, "--email", &format!("{user}@example.com")]);
            assert_eq!(o.status.code(), Some(1), "{user} {call} {kind:?}");
            assert!(
                stderr(&o).contains(want),
                "{user} {call} {kind:?}: {}",
                stderr(&o)
            );
        }
        // Nothing was stored for the new user.
        let list = json(&d.ctl(&["list"]));
        assert_eq!(
            list.as_array().map(Vec::len),
            Some(1),
            "{call} {kind:?}: {list}"
        );
    }
    // Ivy's stored code still works: the failed re-enrollments replaced nothing.
    let o = d.ctl(&["authenticate", "ivy"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o)["granted"], true);
}

#[test]
fn enrollments_survive_a_restart_and_sigterm_exits_cleanly() {
    let mut s = daemon::start();
    let o = s
        .daemon
        .ctl(&["enroll", "jack", "--email", "jack@example.com"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let status = s.daemon.stop(libc::SIGTERM).expect("stopped");
    assert!(status.success(), "SIGTERM exits 0: {status}");
    s.daemon.start();
    let o = s.daemon.ctl(&["authenticate", "jack"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o)["granted"], true);
    // The state directory and database are private.
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&s.daemon.state_dir()), 0o700);
    assert_eq!(mode(&s.daemon.state_dir().join("facecaptured.db")), 0o600);
}

/// Enrolls `user` with `fault` on addFace and SIGKILLs the daemon once the
/// emulator has the enrollment's addFace (`arrived`: on the wire; otherwise
/// handled, its answer held back), the caller's process reaped.
fn kill_during_add_face(s: &mut daemon::Setup, user: &str, kind: FaultKind, arrived: bool) {
    s.emulator.inject(Fault {
        call: Some("addFace".into()),
        kind,
        times: 1,
    });
    let before = calls(s).iter().filter(|c| *c == "addFace").count();
    let email = format!("{user}@example.com");
    let caller = s
        .daemon
        .ctl_command(&["enroll", user, "--email", &email])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let within = Duration::from_secs(60);
    let reached = if arrived {
        s.emulator.wait_arrived("addFace", before + 1, within)
    } else {
        s.emulator.wait_handled("addFace", before + 1, within)
    };
    assert!(reached, "{user}'s addFace never reached the server");
    s.daemon.stop(libc::SIGKILL);
    let _ = caller.wait_with_output();
}

#[test]
fn sigkill_during_an_enrollment_leaves_only_complete_rows() {
    let mut s = daemon::start();
    let o = s
        .daemon
        .ctl(&["enroll", "kate", "--email", "kate@example.com"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The next enrollment hangs in addFace; the daemon is killed while liam's
    // addFace is on the wire (the emulator holds it).
    kill_during_add_face(&mut s, "liam", FaultKind::Delay { ms: 60_000 }, true);
    // The database opens cleanly and holds only complete rows.
    let db =
        rusqlite::Connection::open(s.daemon.state_dir().join("facecaptured.db")).expect("open");
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("check");
    assert_eq!(check, "ok");
    let rows: Vec<(String, String)> = db
        .prepare("SELECT username, registration_code FROM enrollments ORDER BY username")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(rows.len(), 1, "only kate: liam never finished");
    assert_eq!(rows[0].0, "kate");
    assert_eq!(rows[0].1.len(), 6);
    drop(db);
    // The daemon starts again on that database and serves.
    s.daemon.start();
    let o = s.daemon.ctl(&["authenticate", "kate"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// A re-enrollment cut off after AwareID completed it: the daemon is killed while
/// the server, having retired kate's old code, holds back addFace's answer. After
/// the restart kate is listed as interrupted, Authenticate says to enroll again
/// (not a bare ServerRejected), and enrolling again settles it.
#[test]
fn an_interrupted_reenrollment_is_marked_and_authenticate_says_enroll_again() {
    let mut s = daemon::start();
    let o = s
        .daemon
        .ctl(&["enroll", "kate", "--email", "kate@example.com"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&s.daemon.ctl(&["list"]))[0]["standing"], "enrolled");
    // The server has handled the second addFace (a new code issued, the old one
    // retired); its answer is on hold when the daemon dies.
    kill_during_add_face(&mut s, "kate", FaultKind::AnswerLate { ms: 60_000 }, false);
    s.daemon.start();
    let list = json(&s.daemon.ctl(&["list"]));
    assert_eq!(list[0]["username"], "kate");
    assert_eq!(list[0]["standing"], "reenrollment-interrupted", "{list}");
    let o = s.daemon.ctl(&["authenticate", "kate"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("NotEnrolled")
            && err.contains("the last re-enrollment was interrupted; enroll again"),
        "{err}"
    );
    // Enrolling again stores the new code and clears the mark.
    let o = s
        .daemon
        .ctl(&["enroll", "kate", "--email", "kate@example.com"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&s.daemon.ctl(&["list"]))[0]["standing"], "enrolled");
    let o = s.daemon.ctl(&["authenticate", "kate"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// A re-enrollment that the server answers with a refusal (a 400 at addFace)
/// leaves the old code in force and the user enrolled.
#[test]
fn a_reenrollment_refused_by_the_server_keeps_the_old_code() {
    let s = daemon::start();
    let d = &s.daemon;
    let o = d.ctl(&["enroll", "lena", "--email", "lena@example.com"]);
    assert!(o.status.success(), "{}", stderr(&o));
    s.emulator.inject(Fault {
        call: Some("addFace".into()),
        kind: FaultKind::Status { code: 400 },
        times: 1,
    });
    let o = d.ctl(&["enroll", "lena", "--email", "lena@example.com"]);
    assert!(stderr(&o).contains("ServerRejected"), "{}", stderr(&o));
    assert_eq!(json(&d.ctl(&["list"]))[0]["standing"], "enrolled");
    let o = d.ctl(&["authenticate", "lena"]);
    assert!(o.status.success(), "{}", stderr(&o));
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

#[test]
fn the_operation_timeout_answers_in_time_and_sigterm_cancels() {
    let mut s =
        daemon::start_with("[capture]\ntimeout_s = 60\n\n[daemon]\noperation_timeout_s = 5\n");
    daemon::show(&s.daemon, "no-face.jpg");
    let watch = Watch::new(&s.daemon.address);
    let o = s
        .daemon
        .ctl(&["enroll", "olga", "--email", "olga@example.com"]);
    assert!(stderr(&o).contains("CaptureTimeout"), "{}", stderr(&o));
    assert!(stderr(&o).contains("operation_timeout_s"), "{}", stderr(&o));

    // The timed-out capture ends at its next cancel check and the daemon goes idle;
    // then SIGTERM during a new operation cancels it and the daemon exits cleanly.
    watch.wait_for(0, "state:idle");
    let mark = watch.mark();
    let caller = s
        .daemon
        .ctl_command(&["enroll", "olga", "--email", "olga@example.com"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    watch.wait_for(mark, "feedback:no-face");
    let status = s.daemon.stop(libc::SIGTERM).expect("stopped");
    assert!(status.success(), "{status}");
    let out = caller.wait_with_output().expect("caller ends");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // The call reached the daemon and was answered: cancelled by the shutdown.
    assert!(stderr(&out).contains("Cancelled"), "{}", stderr(&out));
    assert!(s.daemon.log_text().contains("stopping"));
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

/// systemd's notify protocol: READY=1 once the bus name is held, then WATCHDOG=1
/// heartbeats at half of WATCHDOG_USEC, and STOPPING=1 on SIGTERM.
#[test]
fn ready_and_watchdog_notifications_reach_systemd() {
    let mut s = daemon::start();
    s.daemon.stop(libc::SIGTERM);
    let sock_path = s.daemon.dir.path().join("notify");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.daemon.env = vec![
        ("NOTIFY_SOCKET".into(), sock_path.display().to_string()),
        ("WATCHDOG_USEC".into(), "200000".into()),
    ];
    s.daemon.start();
    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    while seen
        .iter()
        .filter(|m: &&String| m.contains("WATCHDOG=1"))
        .count()
        < 3
    {
        let n = sock.recv(&mut buf).expect("a notification");
        seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(seen[0].contains("READY=1"), "{seen:?}");
    // The name is held when READY is sent.
    let o = s.daemon.ctl(&["status"]);
    assert!(o.status.success(), "{}", stderr(&o));
    s.daemon.stop(libc::SIGTERM);
    loop {
        let n = sock.recv(&mut buf).expect("STOPPING");
        if String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1") {
            break;
        }
    }
}

/// Every access decision is one audit record (its MESSAGE_ID and the fields an
/// auditor filters on; tests/logging.rs checks them as journald gets them): stored,
/// replaced, granted, refused and why, a QR code refused, the camera lost, removed.
#[test]
fn every_decision_is_one_audit_record() {
    use facecapture::daemon::audit::Record;
    let s = daemon::start();
    let d = &s.daemon;
    let ok = |args: &[&str]| {
        let o = d.ctl(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    };
    let fails = |args: &[&str]| {
        let o = d.ctl(args);
        assert!(!o.status.success(), "{args:?} succeeded: {}", stdout(&o));
    };
    ok(&["enroll", "alice", "--email", "alice@example.com"]);
    ok(&["enroll", "alice", "--email", "alice@example.com"]);
    ok(&["authenticate", "alice"]);
    daemon::show(d, "solvay-einstein.jpg");
    fails(&["authenticate", "alice"]);
    fails(&["authenticate", "nobody"]);
    fails(&["authenticate-qr", "https://example.com/not-a-session"]);
    for entry in std::fs::read_dir(daemon::frames(d))
        .expect("frames")
        .flatten()
    {
        std::fs::remove_file(entry.path()).expect("rm frame");
    }
    fails(&["authenticate", "alice"]);
    ok(&["remove", "alice"]);
    d.wait_log("enrollment removed");

    let log = d.log_text();
    let records: Vec<&str> = log.lines().filter(|l| l.contains("message_id=")).collect();
    let expected: [(Record, &str, &str); 9] = [
        (Record::EnrollmentStored, "alice", "reason=\"-\""),
        (Record::EnrollmentReplaced, "alice", "reason=\"-\""),
        (Record::AccessGranted, "alice", "reason=\"-\""),
        (Record::AccessRefused, "alice", "no match"),
        (Record::AccessRefused, "nobody", "NotEnrolled: "),
        (Record::QrSessionRefused, "-", "QrInvalid: "),
        (Record::CameraLost, "-", "no images"),
        (Record::AccessRefused, "alice", "CameraUnavailable: "),
        (Record::EnrollmentRemoved, "alice", "reason=\"-\""),
    ];
    assert_eq!(records.len(), expected.len(), "{records:#?}");
    for (line, (record, user, reason)) in records.iter().zip(expected) {
        for needle in [
            format!("message_id=\"{}\"", record.message_id()),
            format!("outcome=\"{}\"", record.outcome()),
            format!("username=\"{user}\""),
            reason.to_owned(),
        ] {
            assert!(line.contains(&needle), "{needle} missing from {line}");
        }
        assert!(line.contains("device_id=\""), "{line}");
        assert!(line.contains("duration_ms="), "{line}");
    }
}

/// The metrics textfile (daemon.metrics_textfile) is there from the start, passes
/// `promtool check metrics`, and counts what was done; `facecapturectl stats` shows
/// the same counts over D-Bus.
#[test]
fn metrics_count_the_operations_run_and_promtool_accepts_them() {
    assert!(
        Command::new("promtool").arg("--version").output().is_ok(),
        "promtool (package prometheus) is not installed"
    );
    let out = tempfile::tempdir().expect("tmp");
    let textfile = out.path().join("facecaptured.prom");
    let s = daemon::start_with(&format!(
        "[daemon]\nmetrics_textfile = \"{}\"\n",
        textfile.display()
    ));
    let d = &s.daemon;
    let promtool = |text: &str| {
        let mut child = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("promtool");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write");
        let o = child.wait_with_output().expect("promtool");
        assert!(
            o.status.success(),
            "promtool check metrics: {}{}\n{text}",
            stdout(&o),
            stderr(&o)
        );
    };
    let wait_text = |needle: &str| daemon::wait_text(&textfile, needle);
    promtool(&wait_text("facecaptured_camera_errors_total 0"));

    let o = d.ctl(&["enroll", "alice", "--email", "alice@example.com"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = d.ctl(&["authenticate", "alice"]);
    assert!(o.status.success(), "{}", stderr(&o));
    daemon::show(d, "solvay-einstein.jpg");
    assert_eq!(d.ctl(&["authenticate", "alice"]).status.code(), Some(1));
    assert_eq!(d.ctl(&["authenticate", "nobody"]).status.code(), Some(1));

    let text =
        wait_text(r#"facecaptured_operations_total{operation="authenticate",outcome="refused"} 2"#);
    promtool(&text);
    for line in [
        r#"facecaptured_operations_total{operation="enroll",outcome="stored"} 1"#,
        r#"facecaptured_operations_total{operation="authenticate",outcome="granted"} 1"#,
        r#"facecaptured_awareid_calls_total{call="verifyFace",result="2xx"} 2"#,
        r#"facecaptured_awareid_calls_total{call="addFace",result="2xx"} 1"#,
        r#"facecaptured_capture_duration_seconds_count{outcome="packaged"} 3"#,
        r#"facecaptured_operation_duration_seconds_count{operation="authenticate"} 3"#,
        "facecaptured_camera_errors_total 0",
        "# TYPE facecaptured_awareid_call_duration_seconds histogram",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }

    let o = d.ctl(&["stats"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stats = json(&o);
    let get = |k: &str| stats[k].as_f64();
    assert_eq!(
        get(r#"facecaptured_operations_total{operation="authenticate",outcome="refused"}"#),
        Some(2.0),
        "{stats}"
    );
    assert_eq!(
        get(r#"facecaptured_operations_total{operation="enroll",outcome="stored"}"#),
        Some(1.0)
    );
    assert!(
        get(r#"facecaptured_feedback_total{code="face-compliant"}"#).is_some_and(|n| n >= 3.0),
        "{stats}"
    );
    assert!(get("facecaptured_frames_total").is_some_and(|n| n >= 3.0));
    assert!(
        get(r#"facecaptured_operation_duration_seconds_sum{operation="enroll"}"#)
            .is_some_and(|t| t > 0.0)
    );
    assert!(
        !stdout(&o).contains("alice") && !text.contains("alice"),
        "a username is in the metrics"
    );
}

/// Reads notifications from the daemon's NOTIFY_SOCKET until one holds `want`.
fn notified(sock: &std::os::unix::net::UnixDatagram, want: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    while !seen.iter().any(|m: &String| m.contains(want)) {
        let n = sock
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no {want} notification ({e}); saw {seen:?}"));
        seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    seen
}

/// SIGHUP (systemctl reload): RELOADING=1, the new configuration for the next
/// operation while the one in flight finishes with the old, READY=1, the bus name
/// never released; a configuration that does not load is refused with its
/// `config:` line and the old one kept.
#[test]
fn reload_puts_a_new_configuration_in_force_and_refuses_a_broken_one() {
    let mut s = daemon::start_with("[capture]\ntimeout_s = 10\n");
    s.daemon.stop(libc::SIGTERM);
    let sock_path = s.daemon.dir.path().join("notify");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    s.daemon.env = vec![("NOTIFY_SOCKET".into(), sock_path.display().to_string())];
    s.daemon.start();
    notified(&sock, "READY=1");
    let d = &s.daemon;
    let o = d.ctl(&["enroll", "alice", "--email", "alice@example.com"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let watch = Watch::new(&d.address);
    let hup = || {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(d.pid().expect("pid") as i32, libc::SIGHUP) };
    };
    let original = std::fs::read_to_string(&d.config).expect("config");
    let frames = daemon::frames(d).display().to_string();
    let faces = d.dir.path().join("faces");
    std::fs::create_dir(&faces).expect("faces dir");
    std::fs::copy(common::fixture("astronaut.jpg"), faces.join("a.jpg")).expect("copy");

    // In flight: the camera (opened with the old settings) sees nobody; the new
    // configuration points at a camera with alice and a 3 s timeout.
    daemon::show(d, "no-face.jpg");
    let mark = watch.mark();
    let mut ctl = d.ctl_command(&["authenticate", "alice"]);
    let in_flight = std::thread::spawn(move || ctl.output().expect("facecapturectl"));
    watch.wait_for(mark, "state:capturing");
    let reconfigured = original
        .replace(
            &format!("path = \"{frames}\""),
            &format!("path = \"{}\"", faces.display()),
        )
        .replace("[capture]\ntimeout_s = 10", "[capture]\ntimeout_s = 3");
    assert_ne!(reconfigured, original);
    std::fs::write(&d.config, &reconfigured).expect("write config");
    hup();
    let seen = notified(&sock, "READY=1");
    assert!(
        seen.iter()
            .any(|m| m.contains("RELOADING=1") && m.contains("MONOTONIC_USEC=")),
        "{seen:?}"
    );
    d.wait_log("configuration reloaded");
    let o = in_flight.join().expect("in flight");
    assert!(
        stderr(&o).contains("CaptureTimeout") && stderr(&o).contains("within 10 s"),
        "the operation in flight did not keep its settings: {}",
        stderr(&o)
    );
    let log = d.log_text();
    let reloaded_at = log.find("configuration reloaded").expect("reloaded");
    let refused_at = log
        .find("access refused: alice: CaptureTimeout")
        .expect("refused");
    assert!(
        reloaded_at < refused_at,
        "the reload came after the operation:\n{log}"
    );
    // The next operation runs on the new camera.
    let o = d.ctl(&["authenticate", "alice"]);
    assert!(o.status.success(), "after the reload: {}", stderr(&o));
    assert_eq!(json(&o)["granted"], true);

    // A broken configuration (back to the empty camera, and a bad key) is refused
    // whole: alice is still seen by the new camera.
    let broken = original.replace(
        "[capture]\ntimeout_s = 10",
        "[capture]\ntimeout_s = 3\nframes = 0",
    );
    std::fs::write(&d.config, broken).expect("write config");
    hup();
    notified(&sock, "READY=1");
    d.wait_log("reload refused");
    assert!(
        d.log_text().contains("config: capture.frames: "),
        "{}",
        d.log_text()
    );
    let o = d.ctl(&["authenticate", "alice"]);
    assert!(
        o.status.success(),
        "after the refused reload: {}",
        stderr(&o)
    );
    assert_eq!(json(&o)["granted"], true);
    let owners: Vec<String> = watch
        .events()
        .into_iter()
        .filter(|e| e.starts_with("owner:"))
        .collect();
    assert!(owners.is_empty(), "the bus name changed hands: {owners:?}");
}

/// The installer's camera check over D-Bus through facecapturectl: the feedback
/// live, a report with its advice, Busy for a door call while it holds the camera,
/// Cancel, the snapshot for root only (mode 0600, marked up), no AwareID call and
/// no audit record.
#[test]
fn the_camera_check_reports_what_the_camera_sees_and_holds_the_camera() {
    let s = daemon::start();
    let d = &s.daemon;
    let watch = Watch::new(&d.address);
    let before = calls(&s).len();

    // A long check holds the camera: the door's call meanwhile is Busy.
    daemon::show(d, "no-face.jpg");
    let mark = watch.mark();
    let long = d
        .ctl_command(&["camera-check", "--seconds", "30"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    watch.wait_for(mark, "feedback:no-face");
    let o = d.ctl(&["authenticate", "alice"]);
    assert!(
        stderr(&o).contains("Busy: camera-check is in progress"),
        "{}",
        stderr(&o)
    );
    assert!(d.ctl(&["cancel"]).status.success());
    let out = long.wait_with_output().expect("check ends");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("Cancelled"), "{}", stderr(&out));
    watch.wait_for(mark, "state:idle");

    // Out of range is named.
    let o = d.gdbus("CameraCheck", &["0", "false"]);
    assert!(
        stderr(&o).contains("seconds is 0; 1 to 30"),
        "{}",
        stderr(&o)
    );

    // The astronaut, framed well: the report says so.
    daemon::show(d, "astronaut.jpg");
    let dir = tempfile::tempdir().expect("tmp");
    let snap = dir.path().join("aim.png");
    let root = unsafe { libc::geteuid() } == 0;
    let mut args = vec!["camera-check", "--seconds", "2"];
    let snap_arg = snap.display().to_string();
    args.extend(["--snapshot", &snap_arg]);
    let o = d.ctl(&args);
    if !root {
        // Not root: facecapturectl refuses before it asks (the daemon would too).
        assert!(
            stderr(&o).contains("--snapshot is for root only"),
            "{}",
            stderr(&o)
        );
        args.truncate(3);
    }
    let o = if root { o } else { d.ctl(&args) };
    assert!(o.status.success(), "{}", stderr(&o));
    let r = json(&o);
    assert_eq!(r["driver"], "files");
    assert_eq!(r["format"], "MJPG");
    assert_eq!(
        (r["width"].as_u64(), r["height"].as_u64()),
        (Some(640), Some(480))
    );
    assert_eq!(r["commonest_feedback"], "face-compliant");
    assert_eq!(r["face_share"], 1.0);
    assert!(r["frames"].as_u64() >= Some(1), "{r}");
    let advice = r["advice"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str())
        .find(|a| a.starts_with("framing is good"))
        .unwrap_or_else(|| panic!("no framing is good: {r}"))
        .to_owned();
    assert!(
        stderr(&o).contains("feedback: face-compliant"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains(&format!("advice: {advice}")),
        "{}",
        stderr(&o)
    );
    if root {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&snap)
            .expect("snapshot")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let img = image::open(&snap).expect("a PNG").to_rgb8();
        assert_eq!(img.dimensions(), (320, 240));
        assert!(
            img.pixels().any(|p| p.0 == [255, 200, 0]),
            "no face box drawn"
        );
    }
    d.wait_log("camera check finished");

    // Nothing went to AwareID, and nothing was decided about anyone.
    assert_eq!(calls(&s).len(), before, "{:?}", calls(&s));
    assert!(
        !d.log_text().lines().any(|l| l.contains("message_id=")),
        "{}",
        d.log_text()
    );
    assert_eq!(json(&d.ctl(&["status"]))["state"], "idle");
}

/// `facecapturectl doctor` against the running daemon: every check named, a token
/// call really made, the failures with what to do, exit 1 while any fails; AwareID
/// refusing and the daemon down each named.
#[test]
fn doctor_names_what_is_wrong_and_what_to_do() {
    let mut s = daemon::start();
    let config = s.daemon.config.display().to_string();
    let doctor = |d: &daemon::Daemon| d.ctl(&["--config", &config, "doctor"]);
    let line = |o: &std::process::Output, prefix: &str| {
        stdout(o)
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line:\n{}", stdout(o)))
            .to_owned()
    };
    let before = calls(&s).len();
    let o = doctor(&s.daemon);
    for ok in [
        "ok   config: ",
        "ok   daemon: facecaptured ",
        "ok   camera: ",
        "ok   awareid: ",
        "ok   disk: ",
    ] {
        line(&o, ok);
    }
    assert!(line(&o, "ok   camera: ").contains("delivered a 640x480 MJPG frame"));
    assert!(line(&o, "ok   awareid: ").contains("token issued in"));
    assert_eq!(&calls(&s)[before..], ["token"], "one fresh token call");
    // The test daemon's device key is a plain database row: a failure, with the fix.
    assert!(line(&o, "FAIL credentials: ").contains("plain database row"));
    let out = stdout(&o);
    assert!(out.contains("     do: seal it with systemd-creds"), "{out}");
    // The clock's line says what the kernel says (not synchronised on most test machines).
    let clock = out
        .lines()
        .find(|l| l.contains(" clock: "))
        .expect("clock line");
    assert_eq!(
        clock.starts_with("ok"),
        !clock.contains("not synchronised"),
        "{clock}"
    );
    assert_eq!(o.status.code(), Some(1), "a failed check fails doctor");
    assert!(stderr(&o).contains("checks failed"), "{}", stderr(&o));

    // AwareID refusing the tenant's credentials.
    s.emulator.inject(Fault {
        call: Some("token".into()),
        kind: FaultKind::Status { code: 401 },
        times: 1,
    });
    let o = doctor(&s.daemon);
    assert!(line(&o, "FAIL awareid: ").contains("401"), "{}", stdout(&o));

    // The daemon down: named, and the camera and disk checked from here.
    s.daemon.stop(libc::SIGTERM);
    let o = doctor(&s.daemon);
    assert!(line(&o, "FAIL daemon: ").contains("nothing owns org.facecapture.FaceCapture1"));
    assert!(stdout(&o).contains("do: systemctl status facecaptured"));
    line(&o, "ok   camera: ");
    line(&o, "ok   disk: ");
    assert_eq!(o.status.code(), Some(1));
}

/// A caller that leaves the bus (a door controller killed, its connection
/// cut) while the deciding call is at AwareID: the outcome is real, so it is
/// stored and audited as what it was; while a call short of it is at AwareID,
/// the flow stops there, and the audit record, the database and AwareID all
/// say nothing changed (issue 27, item 2).
#[test]
fn a_caller_that_leaves_gets_an_audit_trail_that_agrees_with_awareid() {
    use facecapture::daemon::audit::Record;
    let s = daemon::start();
    let d = &s.daemon;
    let o = d.ctl(&["enroll", "hugo", "--email", "hugo@example.com"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let watch = Watch::new(&s.bus.address);
    let arrived = |call: &str| {
        s.emulator
            .requests()
            .iter()
            .filter(|r| r.call.as_deref() == Some(call))
            .count()
    };
    for (operation, call, deciding, record) in [
        ("enroll", "addDevice", "addFace", Record::EnrollmentFailed),
        ("enroll", "addFace", "addFace", Record::EnrollmentReplaced),
        (
            "authenticate",
            "verifyDevice",
            "verifyFace",
            Record::AccessRefused,
        ),
        (
            "authenticate",
            "verifyFace",
            "verifyFace",
            Record::AccessGranted,
        ),
    ] {
        let (before, faces) = (arrived(call), arrived(deciding));
        s.emulator.inject(awareid_emulator::Fault {
            call: Some(call.into()),
            kind: awareid_emulator::FaultKind::Hold { max_ms: 60_000 },
            times: 1,
        });
        let mark = watch.mark();
        let args: &[&str] = if operation == "enroll" {
            &["enroll", "hugo", "--email", "hugo@example.com"]
        } else {
            &["authenticate", "hugo"]
        };
        let records_before = d.log_text().matches(record.message_id()).count();
        let mut leaver = d
            .ctl_command(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        assert!(
            s.emulator
                .wait_arrived(call, before + 1, std::time::Duration::from_secs(60)),
            "{call} never arrived"
        );
        // The face is captured (the camera let go) before the caller leaves.
        watch.wait_for(mark, "state:contacting-server");
        leaver.kill().expect("kill caller");
        let _ = leaver.wait();
        // The daemon has seen the caller go (before the held call goes on):
        // past the deciding call it says it waits for it; short of it, the
        // refusal is audited at once.
        let committed = call == deciding;
        if committed {
            d.wait_log(&format!(
                "operation=\"{operation}\" why=\"the caller left the bus\""
            ));
        } else {
            d.wait_log_count(record.message_id(), records_before + 1);
        }
        s.emulator.release();
        d.wait_log_count(record.message_id(), records_before + 1);
        watch.wait_for(mark, "state:idle");
        let sent = arrived(deciding) > faces;
        assert_eq!(sent, committed, "at {call}: {deciding} sent {sent}");
    }
    let log = d.log_text();
    let records: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("message_id=") && l.contains("username=\"hugo\""))
        .collect();
    // Stored; failed (the caller left before addFace); replaced (it left
    // after); refused (it left before verifyFace); granted (it left after).
    let expected = [
        (Record::EnrollmentStored, "reason=\"-\""),
        (Record::EnrollmentFailed, "the caller left the bus"),
        (Record::EnrollmentReplaced, "reason=\"-\""),
        (Record::AccessRefused, "the caller left the bus"),
        (Record::AccessGranted, "reason=\"-\""),
    ];
    assert_eq!(records.len(), expected.len(), "{records:#?}");
    for (line, (record, reason)) in records.iter().zip(expected) {
        assert!(
            line.contains(&format!("outcome=\"{}\"", record.outcome())) && line.contains(reason),
            "{line}"
        );
    }
    assert!(
        log.contains("asked to stop after the call that decides was sent"),
        "{log}"
    );
    // The code stored by the replaced enrollment is AwareID's: the door opens.
    let o = d.ctl(&["authenticate", "hugo"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let listed = json(&d.ctl(&["list"]));
    assert_eq!(listed[0]["standing"], "enrolled", "{listed}");
}
