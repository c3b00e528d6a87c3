//! A site as a building has one (docs/identity.md), on one machine: doors that
//! share the site identity, each a daemon in a network namespace of its own
//! (with its own bus and database), a hub of three Debian nats-server nodes
//! running the shipped examples/site/hub-cluster.conf over TLS (the bucket
//! replicated three times), and the emulator as AwareID reachable from every
//! door. A partition is a real one: a door's route to the hub refused, its
//! route to AwareID kept. Each scenario of issue 29 is a test. Needs root
//! (tests/run.sh runs as root); elsewhere each test says SKIPPED.

mod common;

use awareid_emulator::{Emulator, EmulatorConfig};
use common::daemon::{self, Daemon, json, stderr};
use common::hub::Hub;
use common::netns::{self, Net};
use common::site::{applied, enroll, granted, refused, wait_site, wait_sites};
use facecapture::crypto::site::SiteIdentity;
use std::time::{Duration, Instant};

struct Site {
    hub: Hub,
    emulator: Emulator,
    identity: SiteIdentity,
    creds: tempfile::TempDir,
    buses: Vec<daemon::Bus>,
    /// Each door's namespace, by door.
    namespaces: Vec<(String, String)>,
    /// Last: the namespaces go after the daemons in them.
    net: Net,
}

impl Site {
    /// The site for `test`, or `None` (and a SKIPPED line, which tests/run.sh
    /// counts as a failure) where namespaces cannot be made.
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
            identity,
            creds,
            buses: Vec::new(),
            namespaces: Vec::new(),
            net,
        })
    }

    /// Door `name` (t1..t3 of the example), linked.
    fn door(&mut self, name: &str) -> Daemon {
        self.door_with(name, "")
    }

    /// Door `name` in a namespace of its own, on a bus of its own, with more
    /// `[site]` keys, linked.
    fn door_with(&mut self, name: &str, site_keys: &str) -> Daemon {
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
        // The client library's own account of consumers and heartbeats, for
        // a failure that needs it.
        d.env
            .push(("RUST_LOG".into(), "info,async_nats=debug".into()));
        d.start();
        d.wait_log("site hub: connected");
        self.buses.push(bus);
        self.namespaces.push((name.to_owned(), ns));
        d
    }

    /// Door `name`'s namespace.
    fn ns(&self, name: &str) -> &str {
        self.namespaces
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, ns)| ns.as_str())
            .expect("a door of this site")
    }
}

#[test]
fn an_enrollment_at_one_door_opens_the_other_and_a_removal_closes_both() {
    let Some(mut site) =
        Site::new("an_enrollment_at_one_door_opens_the_other_and_a_removal_closes_both")
    else {
        return;
    };
    let t1 = site.door("t1");
    let t2 = site.door("t2");
    let t3 = site.door("t3");

    let o = t1.ctl(&["enroll", "ann", "--email", "ann@example.com"]);
    assert!(o.status.success(), "{}", stderr(&o));
    t1.wait_log("site entry published");
    applied(&t2, "ann", "stored");
    let o = t2.ctl(&["authenticate", "ann"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o)["granted"], true);
    // t2 holds ann as made at t1, under the site's identity.
    let list = json(&t2.ctl(&["list"]));
    let ann = &list.as_array().expect("list")[0];
    assert_eq!(ann["username"], "ann");
    assert_eq!(ann["standing"], "enrolled");
    let row = facecapture::storage::Storage::open(&t2.state_dir())
        .expect("db")
        .enrollment("ann")
        .expect("read")
        .expect("ann");
    assert_eq!(
        (row.door.as_str(), row.device_id.as_str()),
        ("t1", site.identity.device_id.as_str())
    );

    // Nothing on the hub names ann or carries her code.
    let code = facecapture::storage::Storage::open(&t1.state_dir())
        .expect("db")
        .enrollment("ann")
        .expect("read")
        .expect("ann")
        .registration_code
        .expose()
        .to_owned();
    let store = all_bytes(site.hub.dir.path());
    for needle in [code.as_bytes(), b"ann@example.com", b"\"ann\""] {
        assert!(!store.windows(needle.len()).any(|w| w == needle));
    }

    granted(&t3, "ann");
    let o = t2.ctl(&["remove", "ann"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for d in [&t1, &t3] {
        applied(d, "ann", "removed");
        let o = d.ctl(&["authenticate", "ann"]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(stderr(&o).contains("NotEnrolled"), "{}", stderr(&o));
    }
}

/// A door killed while 50 people are enrolled at another catches up after its
/// restart, from the revision it had applied; a door that joins late receives
/// the whole site.
#[test]
fn a_door_that_was_away_or_joins_late_receives_the_whole_site() {
    let Some(mut site) = Site::new("a_door_that_was_away_or_joins_late_receives_the_whole_site")
    else {
        return;
    };
    let t1 = site.door("t1");
    let mut t3 = site.door("t3");
    enroll(&t1, "first");
    applied(&t3, "first", "stored");
    t3.stop(libc::SIGKILL);
    let started = std::time::Instant::now();
    for i in 0..50 {
        enroll(&t1, &format!("p{i:02}"));
    }
    let enrolling = started.elapsed();
    t1.wait_log_count("site entry published", 51);
    let started = std::time::Instant::now();
    t3.start();
    t3.wait_log_count("outcome=\"stored\"", 51);
    eprintln!(
        "50 enrollments at t1: {enrolling:?}; t3 caught up {:?} after its restart",
        started.elapsed()
    );
    // It resumed after what it had applied: "first" was not applied again.
    assert_eq!(
        t3.log_text().matches("username=\"first\" outcome=").count(),
        1
    );
    granted(&t3, "p49");
    let t2 = site.door("t2");
    t2.wait_log_count("outcome=\"stored\"", 51);
    let list = json(&t2.ctl(&["list"]));
    assert_eq!(list.as_array().map(Vec::len), Some(51), "{list}");
    granted(&t2, "p00");
}

/// With the hub down every door keeps deciding from its copy; an enrollment
/// made meanwhile waits in the door's outbox and reaches the others once the hub
/// is back, the doors' watches resuming after the hub's restart.
#[test]
fn with_the_hub_down_doors_decide_alone_and_the_outbox_waits_for_it() {
    let Some(mut site) =
        Site::new("with_the_hub_down_doors_decide_alone_and_the_outbox_waits_for_it")
    else {
        return;
    };
    let t1 = site.door("t1");
    let t2 = site.door("t2");
    enroll(&t1, "ann");
    applied(&t2, "ann", "stored");

    site.hub.stop();
    wait_site(&t1, |s| s["connected"] == false);
    wait_site(&t2, |s| s["connected"] == false);
    granted(&t2, "ann");
    granted(&t1, "ann");
    enroll(&t1, "bob");
    let waiting = wait_site(&t1, |s| s["outbox"] == 1);
    assert_eq!(waiting["connected"], false);
    let o = t2.ctl(&["authenticate", "bob"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));

    site.hub.run();
    applied(&t2, "bob", "stored");
    granted(&t2, "bob");
    wait_site(&t1, |s| s["outbox"] == 0 && s["connected"] == true);
    // And the watches go on after the restart: a removal at t2 reaches t1.
    let o = t2.ctl(&["remove", "ann"]);
    assert!(o.status.success(), "{}", stderr(&o));
    applied(&t1, "ann", "removed");
}

/// t1 and t2 re-enroll the same person while the hub is away (t2 after t1, so
/// AwareID keeps t2's code and retires t1's); when the hub is back their
/// entries reach it in either order, and all three doors end with the same
/// code, the one AwareID issued last.
#[test]
fn two_doors_reenrolling_one_person_at_once_end_with_the_code_issued_last() {
    let Some(mut site) =
        Site::new("two_doors_reenrolling_one_person_at_once_end_with_the_code_issued_last")
    else {
        return;
    };
    let t1 = site.door("t1");
    let t2 = site.door("t2");
    let t3 = site.door("t3");
    enroll(&t1, "ann");
    applied(&t2, "ann", "stored");
    applied(&t3, "ann", "stored");
    site.hub.stop();
    for d in [&t1, &t2, &t3] {
        wait_site(d, |s| s["connected"] == false);
    }
    enroll(&t1, "ann");
    enroll(&t2, "ann");
    site.hub.run();
    let code = |d: &Daemon| {
        facecapture::storage::Storage::open(&d.state_dir())
            .expect("db")
            .enrollment("ann")
            .expect("read")
            .map(|e| e.registration_code.expose().to_owned())
    };
    // Until the three doors hold one code and neither t1 nor t2 has an entry
    // left to publish; each entry applied or published changes a door's Site.
    wait_sites(&[&t1, &t2, &t3], |sites| {
        let codes = [code(&t1), code(&t2), code(&t3)];
        codes.iter().all(|c| *c == codes[0]) && sites.iter().all(|s| s["outbox"] == 0)
    });
    // The code they agree on is the one AwareID keeps: each door is let in.
    for d in [&t1, &t2, &t3] {
        granted(d, "ann");
    }
    let list = json(&t3.ctl(&["list"]));
    assert_eq!(list[0]["door"], "t2", "{list}");
}

/// `systemctl reload` (SIGHUP) on a door of a site keeps its link to the hub
/// and the link's state; a changed [site] section is refused until a restart.
#[test]
fn a_reload_keeps_the_link_and_a_changed_site_waits_for_a_restart() {
    let Some(mut site) =
        Site::new("a_reload_keeps_the_link_and_a_changed_site_waits_for_a_restart")
    else {
        return;
    };
    let t1 = site.door("t1");
    let t2 = site.door("t2");
    let hup = |d: &Daemon| {
        // SAFETY: kill(2) on the daemon this test started.
        unsafe { libc::kill(d.pid().expect("pid") as i32, libc::SIGHUP) };
    };
    hup(&t1);
    t1.wait_log("configuration reloaded");
    wait_site(&t1, |s| s["connected"] == true);
    enroll(&t1, "ann");
    applied(&t2, "ann", "stored");
    wait_site(&t1, |s| {
        s["outbox"] == 0 && s["revision"].as_u64() >= Some(1)
    });

    let config = std::fs::read_to_string(&t1.config).expect("config");
    std::fs::write(
        &t1.config,
        config.replace("door = \"t1\"", "door = \"t1\"\nmax_stale_s = 9"),
    )
    .expect("config");
    hup(&t1);
    t1.wait_log("the [site] section cannot change on reload: restart the service");
    granted(&t1, "ann");
}

/// A door cut off from the hub for longer than site.max_stale_s answers
/// SiteStale (a person removed elsewhere meanwhile must not be let in for
/// ever), and decides again once the link is back.
#[test]
fn past_max_stale_s_a_cut_off_door_refuses_until_the_hub_is_back() {
    let Some(mut site) = Site::new("past_max_stale_s_a_cut_off_door_refuses_until_the_hub_is_back")
    else {
        return;
    };
    let t1 = site.door_with("t1", "max_stale_s = 1\n");
    enroll(&t1, "ann");
    site.hub.stop();
    wait_site(&t1, |s| s["connected"] == false);
    let t = std::time::Instant::now();
    let refused = loop {
        let o = t1.ctl(&["authenticate", "ann"]);
        if !o.status.success() {
            break stderr(&o);
        }
        assert!(
            t.elapsed() < std::time::Duration::from_secs(60),
            "never stale"
        );
    };
    assert!(
        refused.contains("SiteStale") && refused.contains("site.max_stale_s (1)"),
        "{refused}"
    );
    site.hub.run();
    wait_site(&t1, |s| s["connected"] == true);
    granted(&t1, "ann");
}

/// The hub's permissions (the shipped example) hold each door to its own
/// prefix: t1's credential cannot write or overwrite t2's entries, cannot
/// listen to the hub's replies to t2, and cannot delete a consumer (the
/// other doors' watches).
#[test]
fn a_doors_credential_cannot_write_another_doors_entries() {
    let Some(site) = Site::new("a_doors_credential_cannot_write_another_doors_entries") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        // The hub's answers to what t1 was not allowed (NATS's -ERR lines).
        let (tx, mut refusals) = tokio::sync::mpsc::unbounded_channel();
        let t1 = async_nats::ConnectOptions::new()
            .user_and_password("t1".into(), "pw-t1".into())
            .custom_inbox_prefix(facecapture::site::inbox_prefix("t1"))
            .event_callback(move |event| {
                let tx = tx.clone();
                async move {
                    if let async_nats::Event::ServerError(e) = event {
                        tx.send(e.to_string().to_lowercase()).ok();
                    }
                }
            })
            .add_root_certificates(site.hub.ca_file())
            .require_tls(true)
            .connect(site.hub.url())
            .await
            .expect("t1 connects");
        let mut js = async_nats::jetstream::new(t1.clone());
        js.set_timeout(Duration::from_secs(5));
        let kv = js
            .get_key_value("facecapture")
            .await
            .expect("t1 reads the bucket");
        let tag = site.identity.user_tag("ann").expect("tag");
        let own = kv.put(format!("t1.{tag}"), "x".into()).await;
        assert!(own.is_ok(), "t1 writes its own entries: {own:?}");
        let theirs = kv.put(format!("t2.{tag}"), "x".into()).await;
        assert!(theirs.is_err(), "t1 wrote t2's entry");

        // Each refusal is waited for (a bound only so that a hub that never
        // answers fails the test instead of hanging it).
        let mut refused = async |what: &str| {
            let seen = tokio::time::timeout(Duration::from_secs(60), async {
                loop {
                    let e = refusals.recv().await.expect("the connection's events");
                    if e.contains("permissions violation") && e.contains(what) {
                        return;
                    }
                }
            });
            seen.await
                .unwrap_or_else(|_| panic!("the hub never refused t1 {what}"));
        };
        let _eavesdrop = t1.subscribe("_INBOX_t2.>").await.expect("sent");
        refused("subscription to \"_inbox_t2.>\"").await;
        let deleted = js
            .delete_consumer_from_stream("any", "KV_facecapture")
            .await;
        assert!(deleted.is_err(), "t1 deleted a consumer");
        refused("publish to \"$js.api.consumer.delete.kv_facecapture.any\"").await;
    });
}

fn all_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            all.extend(all_bytes(&path));
        } else {
            all.extend(std::fs::read(&path).unwrap_or_default());
        }
    }
    all
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
    let t1 = site.door("t1");
    let t2 = site.door_with("t2", "max_stale_s = 20\n");
    let t3 = site.door("t3");
    enroll(&t1, "ann");
    applied(&t2, "ann", "stored");
    applied(&t3, "ann", "stored");

    let cut = Instant::now();
    site.net.partition(site.ns("t2"));
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

    site.net.heal(site.ns("t2"));
    applied(&t2, "bob", "stored");
    wait_site(&t2, |s| s["connected"] == true);
    granted(&t2, "bob");
    granted(&t2, "ann");
}

/// One hub node killed: replication goes on through the two others. Then the
/// whole hub down: every door still authenticates, an enrollment waits in its
/// door's outbox and reaches the others when the hub returns.
#[test]
fn a_watch_whose_consumer_vanished_is_read_through_and_made_again() {
    let Some(mut site) =
        Site::new("a_watch_whose_consumer_vanished_is_read_through_and_made_again")
    else {
        return;
    };
    let t1 = site.door("t1");
    let t2 = site.door("t2");
    enroll(&t1, "ann");
    applied(&t2, "ann", "stored");

    // The hub forgets both doors' watches; their connections stay up. Right
    // after a heartbeat reached t2 (the client library's debug line), so
    // that its own check (10 s without one) comes after the door's.
    let beats = |d: &Daemon| d.log_text().matches("received idle heartbeats").count();
    t2.wait_log_count("received idle heartbeats", beats(&t2) + 1);
    assert_eq!(site.hub.delete_watches(), 2);
    let gone = Instant::now();
    enroll(&t1, "bob");
    applied(&t2, "bob", "stored");
    eprintln!(
        "bob reached t2 {:?} after its watch vanished",
        gone.elapsed()
    );
    t2.wait_log("site hub: revisions read one by one");
    // And it watches again: carl arrives the usual way.
    t2.wait_log_count("site hub: connected; watching", 2);
    enroll(&t1, "carl");
    applied(&t2, "carl", "stored");
    assert_eq!(
        t2.log_text().matches("revisions read one by one").count(),
        1,
        "carl came through the new watch"
    );
    granted(&t2, "bob");
}

#[test]
fn a_hub_node_killed_then_the_whole_hub_down_and_back() {
    let Some(mut site) = Site::new("a_hub_node_killed_then_the_whole_hub_down_and_back") else {
        return;
    };
    let t1 = site.door("t1");
    let t2 = site.door("t2");
    let t3 = site.door("t3");
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
    if std::env::var_os("SHOW_LOGS").is_some() {
        for d in [&t1, &t2, &t3] {
            eprintln!("=== {}\n{}", d.log.display(), d.log_text());
        }
    }
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
