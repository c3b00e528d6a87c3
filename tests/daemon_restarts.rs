//! The daemon end to end, across restarts: enrollments survive them, SIGKILL
//! during an enrollment leaves only complete rows, an interrupted or refused
//! re-enrollment keeps the user's standing true.

mod common;

use awareid_emulator::{Fault, FaultKind};
use common::daemon::{self, calls, json, stderr};
use std::time::Duration;

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
