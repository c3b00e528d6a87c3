//! The site's figures (issue 29, item 5), against Debian's nats-server running
//! the shipped examples/site/hub.conf on loopback, the emulator as AwareID:
//!
//! - propagation: an enrollment stored at t1 ("site entry queued" in t1's log)
//!   to applied at t2 ("site entry applied"), median and p99 over 100;
//! - catch-up: t3 stopped while 10,000 enrollments are written to the bucket
//!   (sealed entries under t1's name, as t1 would publish them), then started:
//!   start to every one applied, and t3's memory;
//! - a door's memory with the site on against one without it;
//! - the hub's memory and connections with 20 daemons linked (its /varz).
//!
//! `cargo bench --bench site` (the release build of facecaptured).

#[path = "../tests/common/mod.rs"]
mod common;

use awareid_emulator::{Emulator, EmulatorConfig};
use common::daemon::{self, Daemon};
use common::hub::Hub;
use common::{percentile, status_kb};
use facecapture::crypto::site::SiteIdentity;
use facecapture::site::entry::{self, Fact};
use facecapture::storage::Enrollment;
use std::time::{Duration, Instant};

/// When the log line holding `marker` and `user` was written (ms).
fn logged_at(log: &str, marker: &str, user: &str) -> Option<f64> {
    let needle = format!("username=\"{user}\"");
    log.lines()
        .find(|l| l.contains(marker) && l.contains(&needle))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp_micros() as f64 / 1000.0)
}

struct Bench {
    hub: Hub,
    emulator: Emulator,
    site: SiteIdentity,
    creds: tempfile::TempDir,
    buses: Vec<daemon::Bus>,
}

impl Bench {
    fn door(&mut self, name: &str, linked: bool) -> Daemon {
        let bus = daemon::bus();
        let toml = if linked {
            self.hub.site_toml(Some(name))
        } else {
            String::new()
        };
        let d = daemon::another_daemon(
            &self.emulator,
            &bus.address,
            "session",
            &toml,
            &[("CREDENTIALS_DIRECTORY", self.creds.path())],
        );
        if linked {
            d.wait_log("site hub: connected");
        }
        self.buses.push(bus);
        d
    }
}

fn varz(hub: &Hub) -> serde_json::Value {
    let body = hub.monitor(0, "/varz").expect("the hub's /varz");
    serde_json::from_str(&body).expect("varz json")
}

fn main() {
    let site = SiteIdentity::generate().expect("site");
    let creds = common::site::credentials(&site);
    let mut b = Bench {
        hub: Hub::start(),
        emulator: Emulator::start(EmulatorConfig::default()).expect("emulator"),
        site,
        creds,
        buses: Vec::new(),
    };

    // A door's memory with and without the site (idle, after start).
    let alone = b.door("t1", false);
    std::thread::sleep(Duration::from_millis(500));
    let alone_kb = status_kb(alone.pid().expect("pid"), "VmRSS:");
    drop(alone);
    let t1 = b.door("t1", true);
    let t2 = b.door("t2", true);
    std::thread::sleep(Duration::from_millis(500));
    let linked_kb = status_kb(t2.pid().expect("pid"), "VmRSS:");
    println!(
        "door RSS idle: {alone_kb} kB alone, {linked_kb} kB linked to the hub ({:+} kB)",
        linked_kb as i64 - alone_kb as i64
    );

    // Propagation over 100 enrollments.
    let n = 100;
    for i in 0..n {
        let user = format!("p{i:03}");
        let o = t1.ctl(&["enroll", &user, "--email", &format!("{user}@example.com")]);
        assert!(o.status.success(), "{}", daemon::stderr(&o));
    }
    t2.wait_log_count("outcome=\"stored\"", n);
    let (l1, l2) = (t1.log_text(), t2.log_text());
    let mut ms: Vec<f64> = (0..n)
        .map(|i| {
            let user = format!("p{i:03}");
            let queued = logged_at(&l1, "site entry queued", &user).expect("queued");
            let applied = logged_at(&l2, "site entry applied", &user).expect("applied");
            applied - queued
        })
        .collect();
    let median = percentile(&mut ms, 0.5);
    let p99 = percentile(&mut ms, 0.99);
    println!(
        "propagation t1 stored -> t2 applied over {n}: median {median:.1} ms, p99 {p99:.1} ms (goal: p99 < 1000 ms)"
    );

    // Catch-up of 10,000 written while t3 was away.
    let mut t3 = b.door("t3", true);
    t3.stop(libc::SIGTERM);
    let total = 10_000;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let wrote = Instant::now();
    rt.block_on(async {
        let client = async_nats::ConnectOptions::new()
            .user_and_password("t1".into(), "pw-t1".into())
            .add_root_certificates(b.hub.ca_file())
            .require_tls(true)
            .connect(b.hub.url())
            .await
            .expect("t1 connects");
        let kv = async_nats::jetstream::new(client)
            .get_key_value("facecapture")
            .await
            .expect("bucket");
        for i in 0..total {
            let e = Enrollment {
                username: format!("c{i:05}"),
                registration_code: facecapture::secret::Secret::new(format!(
                    "code-{i:05}-xxxxxxxx"
                )),
                server_host: "127.0.0.1".into(),
                device_id: b.site.device_id.clone(),
                enrolled_at: facecapture::clock::unix_now(),
                reenroll_started_at: None,
                door: "t1".into(),
            };
            let q = entry::seal(&b.site, "t1", &Fact::Enrolled(&e)).expect("seal");
            kv.put(q.key, q.value.into()).await.expect("put");
        }
    });
    println!("wrote {total} entries to the hub in {:?}", wrote.elapsed());
    let before_kb = linked_kb;
    let started = Instant::now();
    t3.start();
    let ready = started.elapsed();
    t3.wait_log_count("outcome=\"stored\"", n + total);
    let caught = started.elapsed();
    let pid = t3.pid().expect("pid");
    println!(
        "catch-up of {total}: start to ready {ready:?}, to all applied {caught:?} (goal < 10 s); \
         t3 RSS {} kB, peak {} kB (a linked door idle: {before_kb} kB)",
        status_kb(pid, "VmRSS:"),
        status_kb(pid, "VmHWM:")
    );

    // The hub with 20 daemons linked.
    let base = varz(&b.hub);
    let mut doors = vec![t1, t2, t3];
    for i in doors.len()..20 {
        doors.push(b.door(["t1", "t2", "t3"][i % 3], true));
    }
    std::thread::sleep(Duration::from_secs(2));
    let v = varz(&b.hub);
    let mem = v["mem"].as_f64().unwrap_or(0.0) / 1024.0 / 1024.0;
    let base_mem = base["mem"].as_f64().unwrap_or(0.0) / 1024.0 / 1024.0;
    println!(
        "hub with {} daemons: {} connections, RSS {mem:.1} MiB ({base_mem:.1} MiB with 3); \
         {:.2} MiB per door -> 200 doors about {:.0} MiB, 200 connections",
        doors.len(),
        v["connections"],
        (mem - base_mem) / 17.0,
        base_mem + (mem - base_mem) / 17.0 * 197.0
    );
}
