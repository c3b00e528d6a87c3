//! The daemon end to end, what it records: one audit record per decision, and
//! the metrics textfile and GetStatistics.

mod common;

use common::daemon::{self, json, stderr, stdout};
use std::io::Write;
use std::process::{Command, Stdio};

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
