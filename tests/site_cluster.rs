//! A site as a building has one: three doors, each in a network namespace of
//! its own, a hub of three nats-server nodes (examples/site/hub-cluster.conf,
//! the bucket replicated three times), the emulator as AwareID reachable from
//! every door. A partition is a real one: the door's route to the hub refused,
//! its route to AwareID kept. Needs root (tests/run.sh runs as root).

mod common;

use awareid_emulator::{Emulator, EmulatorConfig};
use common::daemon::{self, Daemon, stderr};
use common::hub::Hub;
use common::netns::{self, Net};
use common::site::{applied, enroll, granted, refused, wait_site};
use facecapture::crypto::site::SiteIdentity;
use std::time::{Duration, Instant};

struct Site {
    hub: Hub,
    emulator: Emulator,
    creds: tempfile::TempDir,
    buses: Vec<daemon::Bus>,
    /// Last: the namespaces go after the daemons in them.
    net: Net,
}

impl Site {
    fn new(test: &str) -> Option<Self> {
        if !netns::available() {
            println!("SKIPPED {test}: needs root and iproute2 (network namespaces)");
            return None;
        }
        let net = Net::new();
        let hub = Hub::start_on(&net.hub(), 3);
        let emulator = Emulator::start(EmulatorConfig {
            listen: format!("{}:0", net.awareid()).parse().expect("address"),
            cert_names: vec![net.awareid()],
            ..EmulatorConfig::default()
        })
        .expect("emulator");
        let identity = SiteIdentity::generate().expect("site");
        let creds = common::site::credentials(&identity);
        Some(Self {
            hub,
            emulator,
            creds,
            buses: Vec::new(),
            net,
        })
    }

    /// Door `name` in a namespace of its own; its namespace too.
    fn door(&mut self, name: &str, site_keys: &str) -> (Daemon, String) {
        let ns = self.net.door(name);
        let bus = daemon::bus();
        let mut d = daemon::unstarted_daemon(
            &self.emulator,
            &bus.address,
            "session",
            &format!("{}{site_keys}", self.hub.site_toml(Some(name))),
            &[("CREDENTIALS_DIRECTORY", self.creds.path())],
        );
        d.wrap = Net::exec(&ns);
        d.start();
        d.wait_log("site hub: connected");
        self.buses.push(bus);
        (d, ns)
    }
}

/// t2, cut off from the hub, keeps authenticating the people it knows (not
/// those enrolled elsewhere meanwhile), refuses once site.max_stale_s has
/// passed, and converges when its link comes back.
#[test]
fn a_partitioned_door_decides_alone_until_max_stale_s_and_converges() {
    let Some(mut site) =
        Site::new("a_partitioned_door_decides_alone_until_max_stale_s_and_converges")
    else {
        return;
    };
    let (t1, _) = site.door("t1", "");
    let (t2, ns2) = site.door("t2", "max_stale_s = 20\n");
    let (t3, _) = site.door("t3", "");
    enroll(&t1, "ann");
    applied(&t2, "ann", "stored");
    applied(&t3, "ann", "stored");

    let cut = Instant::now();
    site.net.partition(&ns2);
    wait_site(&t2, |s| s["connected"] == false);
    granted(&t2, "ann");
    enroll(&t1, "bob");
    applied(&t3, "bob", "stored");
    granted(&t3, "bob");
    assert!(refused(&t2, "bob").contains("NotEnrolled"));
    let t = Instant::now();
    let stale = loop {
        let o = t2.ctl(&["authenticate", "ann"]);
        if !o.status.success() {
            break stderr(&o);
        }
        assert!(t.elapsed() < Duration::from_secs(90), "t2 never went stale");
    };
    assert!(stale.contains("SiteStale"), "{stale}");
    eprintln!("t2 went stale {:?} after the cut", cut.elapsed());

    site.net.heal(&ns2);
    applied(&t2, "bob", "stored");
    wait_site(&t2, |s| s["connected"] == true);
    granted(&t2, "bob");
    granted(&t2, "ann");
}

/// One hub node killed: replication goes on through the two others. Then the
/// whole hub down: every door still authenticates, an enrollment waits in its
/// door's outbox and reaches the others when the hub returns.
#[test]
fn a_hub_node_killed_then_the_whole_hub_down_and_back() {
    let Some(mut site) = Site::new("a_hub_node_killed_then_the_whole_hub_down_and_back") else {
        return;
    };
    let (t1, _) = site.door("t1", "");
    let (t2, _) = site.door("t2", "");
    let (t3, _) = site.door("t3", "");
    enroll(&t1, "ann");
    applied(&t3, "ann", "stored");

    site.hub.kill(0);
    let killed = Instant::now();
    enroll(&t1, "carl");
    applied(&t2, "carl", "stored");
    applied(&t3, "carl", "stored");
    eprintln!(
        "one node killed: carl reached t2 and t3 {:?} later",
        killed.elapsed()
    );
    granted(&t2, "carl");

    site.hub.stop();
    for d in [&t1, &t2, &t3] {
        wait_site(d, |s| s["connected"] == false);
    }
    granted(&t3, "ann");
    granted(&t2, "carl");
    enroll(&t2, "dan");
    assert_eq!(wait_site(&t2, |s| s["outbox"] == 1)["connected"], false);
    assert!(refused(&t1, "dan").contains("NotEnrolled"));

    let back = Instant::now();
    site.hub.run();
    applied(&t1, "dan", "stored");
    applied(&t3, "dan", "stored");
    eprintln!(
        "the hub back: dan reached t1 and t3 {:?} later",
        back.elapsed()
    );
    wait_site(&t2, |s| s["outbox"] == 0);
    granted(&t1, "dan");
}
