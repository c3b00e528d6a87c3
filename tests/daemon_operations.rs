//! The daemon end to end, an operation's life and its callers: Busy, Cancel, a
//! caller that leaves (and the audit trail that then agrees with AwareID), the
//! operation timeout and SIGTERM, bad input, and a failing server.

mod common;

use awareid_emulator::{Fault, FaultKind};
use common::daemon::{self, calls, json, stderr};
use common::watch::Watch;

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
