//! The daemon's figures (issue 4): start to READY, daemon memory idle and during
//! operations, Authenticate from call to reply, and capture to package, with the
//! emulator on loopback (HTTPS) and the `files` camera at 30 fps on a private bus.
//!
//! `cargo bench --bench daemon` (uses the release build of facecaptured that
//! `cargo bench` makes).

#[path = "../tests/common/mod.rs"]
mod common;

use common::daemon;
use common::{percentile, status_kb};
use std::time::Instant;

fn log_values(log: &str, marker: &str, key: &str) -> Vec<f64> {
    log.lines()
        .filter(|l| l.contains(marker))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{key}=")))
                .and_then(|v| v.trim_matches('"').parse().ok())
        })
        .collect()
}

fn main() {
    let mut s = daemon::start();
    // Start to READY on an existing state directory, as at every boot.
    s.daemon.stop(libc::SIGTERM);
    let t = Instant::now();
    s.daemon.start();
    let wall_ready = t.elapsed().as_secs_f64() * 1000.0;
    let d = &s.daemon;
    let pid = d.pid().expect("pid");
    let startup = log_values(&d.log_text(), " ready ", "startup_ms");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let idle_rss = status_kb(pid, "VmRSS:");

    let o = d.ctl(&["enroll", "bench", "--email", "bench@example.com"]);
    assert!(o.status.success(), "{}", daemon::stderr(&o));

    // Authenticate from call to reply, as a door controller sees it (zbus client).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut auth_ms: Vec<f64> = rt.block_on(async {
        let (_conn, proxy) =
            common::daemon::proxy_at(&d.address, std::time::Duration::from_secs(25)).await;
        let mut out = Vec::new();
        for _ in 0..20 {
            let t = Instant::now();
            let reply = proxy.authenticate("bench").await.expect("authenticate");
            assert!(reply.granted);
            out.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        out
    });
    let busy_rss = status_kb(pid, "VmRSS:");
    let peak = status_kb(pid, "VmHWM:");
    let mut capture_ms = log_values(&d.log_text(), "face capture finished", "duration_ms");

    println!(
        "facecaptured (release) on a private bus, emulator on loopback HTTPS, files camera at 30 fps"
    );
    println!(
        "start to READY: {:.0} ms in the daemon (startup_ms), {wall_ready:.0} ms from spawn to the ready line (polled every 20 ms)",
        startup.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "Authenticate call to reply, 20 calls: median {:.0} ms, p90 {:.0} ms, max {:.0} ms",
        percentile(&mut auth_ms, 0.5),
        percentile(&mut auth_ms, 0.9),
        percentile(&mut auth_ms, 1.0)
    );
    println!(
        "capture to package ({} captures): median {:.0} ms, max {:.0} ms",
        capture_ms.len(),
        percentile(&mut capture_ms, 0.5),
        percentile(&mut capture_ms, 1.0)
    );
    println!(
        "memory: idle VmRSS {:.1} MB; after 21 operations VmRSS {:.1} MB, peak (VmHWM) {:.1} MB",
        idle_rss as f64 / 1024.0,
        busy_rss as f64 / 1024.0,
        peak as f64 / 1024.0
    );
}
