//! What the site tests do at a door and wait for: enroll, authenticate (let in
//! or refused), an entry applied (its log line), the door's `site` state.

use super::daemon::{Daemon, json, stderr};
use super::watch::Watch;
use facecapture::crypto::sealed::Protection;
use facecapture::crypto::site::SiteIdentity;

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
/// read again after each PropertiesChanged of its `Site` property.
pub fn wait_site(d: &Daemon, ready: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    wait_sites(&[d], |sites| {
        last = sites[0].clone();
        ready(&last)
    });
    last
}

/// Waits until `ready` holds for the doors' `site` states (in `doors`' order),
/// read again after each PropertiesChanged of a door's `Site` property.
pub fn wait_sites(doors: &[&Daemon], mut ready: impl FnMut(&[serde_json::Value]) -> bool) {
    let addresses: Vec<&str> = doors.iter().map(|d| d.address.as_str()).collect();
    let watch = Watch::on(&addresses);
    loop {
        let mark = watch.mark();
        let sites: Vec<_> = doors
            .iter()
            .map(|d| json(&d.ctl(&["status"]))["site"].clone())
            .collect();
        if ready(&sites) {
            return;
        }
        watch.wait_for(mark, "property:Site");
    }
}
