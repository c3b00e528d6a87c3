//! What the site tests do at a door and wait for: enroll, authenticate (let in
//! or refused), an entry applied (its log line), the door's `site` state.

use super::daemon::{Daemon, json, stderr};
use facecapture::crypto::sealed::Protection;
use facecapture::crypto::site::SiteIdentity;
use std::time::{Duration, Instant};

/// A credentials directory holding `site` as systemd would decrypt it (the
/// credential `site_identity`), for `CREDENTIALS_DIRECTORY`.
pub fn credentials(site: &SiteIdentity) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("creds");
    std::fs::write(
        dir.path().join("site_identity"),
        &site.to_payload(Protection::HostKey).expect("payload")[..],
    )
    .expect("credential");
    dir
}

/// Waits until `d` applied an entry for `user` with `outcome` (its log line).
pub fn applied(d: &Daemon, user: &str, outcome: &str) {
    d.wait_log(&format!("username=\"{user}\" outcome=\"{outcome}\""));
}

pub fn enroll(d: &Daemon, user: &str) {
    let o = d.ctl(&["enroll", user, "--email", &format!("{user}@example.com")]);
    assert!(o.status.success(), "enroll {user}: {}", stderr(&o));
}

pub fn granted(d: &Daemon, user: &str) {
    let o = d.ctl(&["authenticate", user]);
    assert!(o.status.success(), "authenticate {user}: {}", stderr(&o));
    assert_eq!(json(&o)["granted"], true);
}

/// Authenticate fails (exit 1); what facecapturectl said.
pub fn refused(d: &Daemon, user: &str) -> String {
    let o = d.ctl(&["authenticate", user]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "authenticate {user}: {}",
        stderr(&o)
    );
    stderr(&o)
}

/// The door's `site` in `facecapturectl status` once `ready` holds for it:
/// read again until it does (the Site property emits no signal), bounded.
pub fn wait_site(d: &Daemon, ready: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let t = Instant::now();
    loop {
        let site = json(&d.ctl(&["status"]))["site"].clone();
        if ready(&site) {
            return site;
        }
        assert!(
            t.elapsed() < Duration::from_secs(90),
            "the site's state never got there: {site}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
