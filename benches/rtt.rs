//! Authenticate and Enroll call to reply with network delay (issue 15): the
//! release daemon on a private bus, its `files` camera playing a person standing
//! still, and AwareID (the emulator, HTTPS) reached through a TCP relay on
//! loopback that holds every byte for half the round-trip time in each
//! direction, so each HTTP exchange costs one round trip as on a real network,
//! and a new connection's TCP and TLS handshakes their own.
//!
//! For each round-trip time (0, 50, 100 and 200 ms; or those given as
//! arguments) it prints the median and p90 of 20 Authenticate and 20 Enroll
//! calls as a door controller sees them (zbus client), and the server's own
//! time: the emulator's handling of authenticate, verifyDevice and verifyFace
//! measured at RTT 0 (their HTTP exchanges, from the daemon's debug log). The
//! target at 100 ms (issue 15): Authenticate within 3 round trips + the
//! server's own time + 20 ms.
//!
//! `cargo bench --bench rtt [-- 0 100]`

#[path = "../tests/common/mod.rs"]
mod common;

use common::daemon;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const CALLS: usize = 20;

/// A TCP relay to `upstream` that delays every chunk by the one-way time, which
/// can be changed while it runs.
struct Relay {
    port: u16,
    one_way_us: Arc<AtomicU64>,
}

impl Relay {
    fn start(upstream: std::net::SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("relay port");
        let port = listener.local_addr().expect("addr").port();
        let one_way_us = Arc::new(AtomicU64::new(0));
        let delay = one_way_us.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                for (from, to) in [(&client, &server), (&server, &client)] {
                    let (Ok(from), Ok(to)) = (from.try_clone(), to.try_clone()) else {
                        continue;
                    };
                    pipe(from, to, delay.clone());
                }
            }
        });
        Self { port, one_way_us }
    }

    fn set_rtt(&self, rtt: Duration) {
        self.one_way_us
            .store(rtt.as_micros() as u64 / 2, Ordering::Relaxed);
    }
}

/// Copies `from` to `to`, each chunk delivered the one-way time after it was read.
fn pipe(mut from: TcpStream, mut to: TcpStream, one_way_us: Arc<AtomicU64>) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let due =
                        Instant::now() + Duration::from_micros(one_way_us.load(Ordering::Relaxed));
                    if tx.send((due, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
    });
    std::thread::spawn(move || {
        for (due, bytes) in rx {
            // The relay is the network: it holds each chunk until it is due.
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if to.write_all(&bytes).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// The `duration_ms` of each logged HTTP exchange of `step`.
fn call_ms(log: &str, step: &str) -> Vec<f64> {
    let marker = format!("step=\"{step}\"");
    let plain = format!("step={step} ");
    log.lines()
        .filter(|l| l.contains("AwareID call") && (l.contains(&marker) || l.contains(&plain)))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("duration_ms="))
                .and_then(|v| v.parse().ok())
        })
        .collect()
}

fn main() {
    let rtts: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let rtts = if rtts.is_empty() {
        vec![0, 50, 100, 200]
    } else {
        rtts
    };
    let mut s = daemon::start();
    let base = s.emulator.base_url();
    let upstream = base
        .trim_start_matches("https://")
        .parse()
        .expect("the emulator listens on an IP address");
    let relay = Relay::start(upstream);
    // The daemon reaches AwareID through the relay; its HTTP exchanges are logged.
    let config = std::fs::read_to_string(&s.daemon.config).expect("config");
    let relayed = base.replace(&upstream.port().to_string(), &relay.port.to_string());
    std::fs::write(&s.daemon.config, config.replace(&base, &relayed)).expect("config");
    s.daemon
        .env
        .push(("RUST_LOG".into(), "info,facecapture::awareid=debug".into()));
    s.daemon.stop(libc::SIGTERM);
    s.daemon.start();
    let d = &s.daemon;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "facecaptured (release), files camera at 30 fps, emulator over HTTPS through a delaying TCP relay; {CALLS} calls each"
    );
    rt.block_on(async {
        let (_conn, proxy) = common::daemon::proxy_at(&d.address, Duration::from_secs(120)).await;
        let mut server_ms = f64::NAN;
        for rtt in rtts {
            relay.set_rtt(Duration::from_millis(rtt));
            let mut enroll = Vec::new();
            let mut auth = Vec::new();
            let logged = d.log_text().len();
            for _ in 0..CALLS {
                let t = Instant::now();
                let reply = proxy
                    .enroll("bench", "bench@example.com", "", "", "")
                    .await
                    .expect("enroll");
                assert_eq!(reply.enrollment_status, 2, "{reply:?}");
                enroll.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            for _ in 0..CALLS {
                let t = Instant::now();
                let reply = proxy.authenticate("bench").await.expect("authenticate");
                assert!(reply.granted, "{reply:?}");
                auth.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            if rtt == 0 {
                let log = d.log_text();
                let log = &log[logged.min(log.len())..];
                server_ms = ["authenticate", "verifyDevice", "verifyFace"]
                    .iter()
                    .map(|step| percentile(&mut call_ms(log, step), 0.5))
                    .sum();
            }
            let auth_median = percentile(&mut auth, 0.5);
            let target = 3.0 * rtt as f64 + server_ms + 20.0;
            println!(
                "RTT {rtt:>3} ms: Authenticate median {auth_median:>4.0} ms, p90 {:>4.0} ms (target {target:.0} ms{}); Enroll median {:>4.0} ms, p90 {:>4.0} ms",
                percentile(&mut auth, 0.9),
                if server_ms.is_nan() {
                    String::new()
                } else if auth_median <= target {
                    ": met".into()
                } else {
                    ": missed".into()
                },
                percentile(&mut enroll, 0.5),
                percentile(&mut enroll, 0.9),
            );
        }
        println!(
            "server's own time for authenticate + verifyDevice + verifyFace at RTT 0: {server_ms:.0} ms (medians)"
        );
    });
}
