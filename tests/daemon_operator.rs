//! The daemon end to end, the operator's tools against it: the installer's
//! camera check and `facecapturectl doctor`.

mod common;

use awareid_emulator::{Fault, FaultKind};
use common::daemon::{self, calls, json, stderr, stdout};
use common::watch::Watch;

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
