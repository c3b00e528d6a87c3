//! A terminal that joins a site (docs/identity.md): the site identity arrives as
//! the credential `site_identity`; new enrollments are made under the site's
//! device id, enrollments made before under the terminal's own keep working,
//! another door holding the site identity authenticates a site enrollment (the
//! emulator, like AwareID, answers an enrollment only for the device registered
//! with it), and a door without it, or an enrollment under an identity no door
//! holds any more, says enroll again instead of failing silently.

mod common;

use common::daemon::{self, json, stderr};
use facecapture::crypto::site::SiteIdentity;
use facecapture::storage::Storage;

fn enrolled_device(state: &std::path::Path, user: &str) -> String {
    Storage::open(state)
        .expect("db")
        .enrollment(user)
        .expect("read")
        .expect("enrolled")
        .device_id
}

fn standing(d: &daemon::Daemon, user: &str) -> String {
    let o = d.ctl(&["list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let list = json(&o);
    list.as_array()
        .expect("array")
        .iter()
        .find(|e| e["username"] == user)
        .map(|e| e["standing"].as_str().expect("standing").to_owned())
        .unwrap_or_default()
}

#[test]
fn a_terminal_in_a_site_enrolls_as_the_site_and_keeps_its_own_enrollments() {
    let mut s = daemon::start();
    let own = s.daemon.ctl(&["status"]);
    let own_id = json(&own)["device_id"].as_str().expect("id").to_owned();
    let o = s
        .daemon
        .ctl(&["enroll", "ann", "--email", "ann@example.com"]);
    assert!(o.status.success(), "{}", stderr(&o));

    // It joins the site.
    let site = SiteIdentity::generate().expect("site");
    let creds = common::site::credentials(&site);
    s.daemon.stop(libc::SIGTERM);
    s.daemon.env.push((
        "CREDENTIALS_DIRECTORY".into(),
        creds.path().display().to_string(),
    ));
    s.daemon.start();
    s.daemon
        .wait_log(&format!("site_device_id=\"{}\"", site.device_id));
    s.daemon.wait_log("site_identity_protection=\"host-key\"");

    // Ann, enrolled under the terminal's own identity, still opens the door.
    let o = s.daemon.ctl(&["authenticate", "ann"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o)["granted"], true);
    assert_eq!(enrolled_device(&s.daemon.state_dir(), "ann"), own_id);

    // Bob is enrolled under the site's identity: AwareID registers the site's
    // device id and public key, and the row records it.
    let o = s
        .daemon
        .ctl(&["enroll", "bob", "--email", "bob@example.com"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let add_device = s
        .emulator
        .requests()
        .into_iter()
        .rfind(|r| r.call.as_deref() == Some("addDevice"))
        .expect("addDevice");
    assert_eq!(add_device.body["deviceId"], site.device_id.as_str());
    assert_eq!(
        add_device.body["publicKey"],
        site.key.public_key_b64().expect("pub").as_str()
    );
    assert_eq!(
        enrolled_device(&s.daemon.state_dir(), "bob"),
        site.device_id
    );
    assert_eq!(standing(&s.daemon, "bob"), "enrolled");
    let o = s.daemon.ctl(&["authenticate", "bob"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let verify = s
        .emulator
        .requests()
        .into_iter()
        .rfind(|r| r.call.as_deref() == Some("verifyDevice"))
        .expect("verifyDevice");
    assert_eq!(verify.body["deviceId"], site.device_id.as_str());

    // Another door, holding bob's row (as the site's replication will bring
    // it): without the site identity it cannot sign for bob and says so.
    let bob = Storage::open(&s.daemon.state_dir())
        .expect("db")
        .enrollment("bob")
        .expect("read")
        .expect("bob");
    s.daemon.stop(libc::SIGTERM);
    let mut door = daemon::another_daemon(&s.emulator, &s.bus.address, "session", "", &[]);
    door.stop(libc::SIGTERM);
    Storage::open(&door.state_dir())
        .expect("db")
        .put_enrollment(&bob)
        .expect("copy bob");
    door.start();
    assert_eq!(standing(&door, "bob"), "enroll-again");
    let verifies = |s: &daemon::Setup| {
        s.emulator
            .requests()
            .iter()
            .filter(|r| r.call.as_deref() == Some("verifyDevice"))
            .count()
    };
    let before = verifies(&s);
    let o = door.ctl(&["authenticate", "bob"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("enrolled under device {}", site.device_id))
            && stderr(&o).contains("enroll again"),
        "{}",
        stderr(&o)
    );
    assert_eq!(verifies(&s), before, "nothing was signed for bob");
    // Were it to sign with its own identity (bob's code copied under the door's
    // own device id), AwareID would refuse: the enrollment answers only for the
    // device registered with it.
    let door_id = json(&door.ctl(&["status"]))["device_id"]
        .as_str()
        .expect("id")
        .to_owned();
    door.stop(libc::SIGTERM);
    let mut naive = Storage::open(&door.state_dir())
        .expect("db")
        .enrollment("bob")
        .expect("read")
        .expect("bob");
    naive.device_id = door_id;
    Storage::open(&door.state_dir())
        .expect("db")
        .put_enrollment(&naive)
        .expect("naive copy");
    door.start();
    let o = door.ctl(&["authenticate", "bob"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("ServerRejected") && stderr(&o).contains("DEVICE_MISMATCH"),
        "{}",
        stderr(&o)
    );
    door.stop(libc::SIGTERM);
    Storage::open(&door.state_dir())
        .expect("db")
        .put_enrollment(&bob)
        .expect("bob again");

    // With the site identity, the other door authenticates bob.
    door.env.push((
        "CREDENTIALS_DIRECTORY".into(),
        creds.path().display().to_string(),
    ));
    door.start();
    let o = door.ctl(&["authenticate", "bob"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o)["granted"], true);

    // An enrollment under an identity no longer held (a replaced site
    // identity) is listed as such and refused without asking AwareID.
    let replaced = SiteIdentity::generate().expect("old site");
    door.stop(libc::SIGTERM);
    let mut old = bob;
    old.username = "cy".into();
    old.device_id = replaced.device_id.clone();
    Storage::open(&door.state_dir())
        .expect("db")
        .put_enrollment(&old)
        .expect("cy");
    door.start();
    assert_eq!(standing(&door, "cy"), "enroll-again");
    assert_eq!(standing(&door, "bob"), "enrolled");
    let o = door.ctl(&["authenticate", "cy"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("NotEnrolled") || stderr(&o).contains("enroll again"));
}
