//! The daemon end to end, under systemd's protocols: READY=1, the watchdog,
//! STOPPING=1, and reload (SIGHUP) with a good and a broken configuration.

mod common;

use common::daemon::{self, json, stderr};
use common::watch::Watch;
use std::time::Duration;

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
