//! The D-Bus object in-process, over a zbus peer-to-peer connection on a
//! `UnixStream::pair()` (as oo7's daemon tests do): no dbus-daemon, no child
//! processes. The real engine (emulator over HTTPS, `files` camera with real
//! photos, SQLite in a temporary directory) behind the real interface; the client
//! is the crate's proxy. Busy, Cancel, the operation timeout, the order of signals
//! and reply, and the mapping of failures onto the interface XML's errors.

mod common;

use awareid_emulator::{Emulator, EmulatorConfig, Fault, FaultKind};
use facecapture::camera::{Camera, CameraError, FrameSource, Next};
use facecapture::config::{Config, Environment, Need};
use facecapture::daemon::errors::Error;
use facecapture::daemon::service::{FaceCapture, Served};
use facecapture::daemon::{OBJECT_PATH, engine::Engine};
use facecapture_dbus::FaceCapture1Proxy;
use futures_util::StreamExt;
use std::sync::Arc;
use zbus::message::Type;

struct Peer {
    emulator: Emulator,
    dir: tempfile::TempDir,
    engine: Arc<Engine>,
    client: zbus::Connection,
    server: zbus::Connection,
}

impl Peer {
    async fn properties(&self) -> zbus::fdo::PropertiesProxy<'static> {
        zbus::fdo::PropertiesProxy::builder(&self.client)
            .destination(facecapture::daemon::BUS_NAME)
            .path(OBJECT_PATH)
            .build()
            .await
            .expect("properties proxy")
    }

    async fn proxy(&self) -> FaceCapture1Proxy<'static> {
        FaceCapture1Proxy::builder(&self.client)
            .destination(facecapture::daemon::BUS_NAME)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await
            .expect("proxy")
    }

    fn show(&self, photo: &str) {
        let frames = self.dir.path().join("frames");
        for e in std::fs::read_dir(&frames).expect("frames").flatten() {
            let _ = std::fs::remove_file(e.path());
        }
        std::fs::copy(common::fixture(photo), frames.join(photo)).expect("copy");
    }
}

/// The engine on the emulator, served on one end of a socket pair; the client on
/// the other. `extra` is TOML appended to the configuration.
async fn peer(extra: &str) -> Peer {
    peer_in(extra, &Environment::default()).await
}

/// [`peer`] with the daemon's environment (its credentials directory).
async fn peer_in(extra: &str, env: &Environment) -> Peer {
    let emulator = Emulator::start(EmulatorConfig::default()).expect("emulator");
    let dir = tempfile::tempdir().expect("tmp");
    emulator.write_out(dir.path()).expect("emulator files");
    std::fs::create_dir(dir.path().join("frames")).expect("frames");
    let base = std::fs::read_to_string(dir.path().join("facecaptured.toml")).expect("config");
    let path = dir.path().join("daemon.toml");
    std::fs::write(
        &path,
        format!(
            "{base}\n[camera]\nsource = \"files\"\npath = \"{}\"\n\n[storage]\nstate_dir = \"{}\"\n{extra}\n",
            dir.path().join("frames").display(),
            dir.path().join("state").display()
        ),
    )
    .expect("write config");
    let config = Config::load(Some(&path), env, Need::Daemon).expect("config");
    let engine = Arc::new(
        tokio::task::spawn_blocking(move || Engine::new(config))
            .await
            .expect("join")
            .expect("engine"),
    );
    let (a, b) = std::os::unix::net::UnixStream::pair().expect("socket pair");
    let guid = zbus::Guid::generate();
    let server = zbus::connection::Builder::unix_stream(a)
        .server(guid)
        .p2p()
        .serve_at(OBJECT_PATH, FaceCapture::served(engine.clone()))
        .build();
    let client = zbus::connection::Builder::unix_stream(b).p2p().build();
    let (server, client) = tokio::join!(server, client);
    let peer = Peer {
        emulator,
        dir,
        engine,
        client: client.expect("client"),
        server: server.expect("server"),
    };
    peer.show("astronaut.jpg");
    peer
}

/// The typed D-Bus error of a failed call.
fn error(e: zbus::Error) -> Error {
    Error::from(e)
}

/// Enrolls `user` (with the face on the camera) and holds that they are granted.
async fn enroll_then_granted(proxy: &FaceCapture1Proxy<'_>, user: &str) {
    let enrolled = proxy
        .enroll(user, &format!("{user}@example.com"), "", "", "")
        .await
        .expect("enroll");
    assert_eq!(enrolled.enrollment_status, 2, "{enrolled:?}");
    let reply = proxy.authenticate(user).await.expect("authenticate");
    assert!(reply.granted, "{reply:?}");
}

fn calls(p: &Peer) -> Vec<String> {
    common::calls(&p.emulator)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_and_state_come_before_the_reply_in_order() {
    let p = peer("").await;
    let proxy = p.proxy().await;
    let mut stream = zbus::MessageStream::from(&p.client);
    let call = tokio::spawn({
        let proxy = proxy.clone();
        async move {
            proxy
                .enroll("alice", "alice@example.com", "", "Alice", "")
                .await
        }
    });
    // Everything the client receives, in order, up to the reply.
    let mut seen = Vec::new();
    while let Some(Ok(msg)) = stream.next().await {
        let h = msg.header();
        match msg.message_type() {
            Type::Signal => {
                let member = h.member().map(|m| m.to_string()).unwrap_or_default();
                let what = match member.as_str() {
                    "Progress" => {
                        let (op, step): (String, String) = msg.body().deserialize().expect("body");
                        format!("progress:{op}:{step}")
                    }
                    "CaptureFeedback" => {
                        let code: String = msg.body().deserialize().expect("body");
                        format!("feedback:{code}")
                    }
                    "PropertiesChanged" => {
                        let (_, changed, _): (
                            String,
                            std::collections::HashMap<String, zbus::OwnedVariant>,
                            Vec<String>,
                        ) = msg.body().deserialize().expect("body");
                        let mut keys: Vec<String> = changed
                            .iter()
                            .map(|(k, v)| match <&str>::try_from(&**v) {
                                Ok(s) => format!("{k}={s}"),
                                Err(_) => k.clone(),
                            })
                            .collect();
                        keys.sort();
                        format!("changed:{}", keys.join(","))
                    }
                    other => other.to_owned(),
                };
                seen.push(what);
            }
            Type::MethodReturn => {
                seen.push("reply".into());
                break;
            }
            Type::Error => panic!("enroll failed: {msg:?} after {seen:?}"),
            _ => {}
        }
    }
    let reply = call.await.expect("join").expect("enroll");
    assert_eq!(
        reply,
        facecapture_dbus::EnrollReply {
            enrollment_status: 2,
            liveness: true
        }
    );
    assert_eq!(
        reply.status(),
        Some(facecapture_dbus::EnrollmentStatus::Complete)
    );
    let at = |what: &str| {
        seen.iter()
            .position(|s| s == what)
            .unwrap_or_else(|| panic!("{what} not seen: {seen:?}"))
    };
    // Two chains, each in order (issue 15: the capture runs alongside the
    // server calls, so the one's events interleave with the other's): the
    // server steps, the capture step once they are done, and the face sent;
    // and the camera's State, its feedback, then contacting-server for the
    // face. Both end with done, idle and the reply.
    for order in [
        &[
            "progress:enroll:token",
            "progress:enroll:add-device",
            "progress:enroll:capture",
            "progress:enroll:add-face",
            "progress:enroll:done",
            "changed:State=idle",
            "reply",
        ][..],
        &[
            "changed:State=capturing",
            "feedback:face-compliant",
            "changed:State=contacting-server",
            "progress:enroll:add-face",
            "progress:enroll:done",
            "changed:State=idle",
            "reply",
        ][..],
    ] {
        let positions: Vec<usize> = order.iter().map(|w| at(w)).collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "out of order: {seen:?}"
        );
    }
    assert_eq!(proxy.state().await.expect("State"), "idle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_at_once_then_cancel() {
    let p = peer("[capture]\ntimeout_s = 60\n\n[daemon]\noperation_timeout_s = 24\n").await;
    p.show("no-face.jpg");
    let proxy = p.proxy().await;
    let mut feedback = proxy.receive_capture_feedback().await.expect("subscribe");
    let mut progress = proxy.receive_progress().await.expect("subscribe");
    let first = tokio::spawn({
        let proxy = proxy.clone();
        async move { proxy.enroll("erin", "erin@example.com", "", "", "").await }
    });
    // The first operation holds the camera once its feedback flows.
    let f = feedback.next().await.expect("feedback");
    assert_eq!(f.args().expect("args").code, "no-face");
    assert_eq!(proxy.state().await.expect("State"), "capturing");
    // Its own server calls run alongside the capture: once it waits on the face
    // (the capture step) it makes none until a face comes.
    while progress
        .next()
        .await
        .expect("progress")
        .args()
        .expect("args")
        .step
        != "capture"
    {}
    let before = calls(&p).len();
    match error(proxy.authenticate("erin").await.expect_err("busy")) {
        Error::Busy(m) => assert_eq!(m, "enroll is in progress"),
        other => panic!("{other:?}"),
    }
    match error(
        proxy
            .enroll("fay", "fay@example.com", "", "", "")
            .await
            .expect_err("busy"),
    ) {
        Error::Busy(_) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(calls(&p).len(), before, "a refused call reaches no server");
    proxy.cancel().await.expect("cancel");
    match error(first.await.expect("join").expect_err("cancelled")) {
        Error::Cancelled(m) => assert_eq!(m, "enroll was cancelled"),
        other => panic!("{other:?}"),
    }
    // Once the capture has ended (State goes back to idle) the slot is free again.
    let props = p.properties().await;
    let mut changes = props.receive_properties_changed().await.expect("subscribe");
    while proxy.state().await.expect("State") != "idle" {
        changes.next().await.expect("a State change");
    }
    // Cancel with nothing in flight is not an error, and nothing was stored.
    proxy.cancel().await.expect("idle cancel");
    assert!(proxy.list_enrollments().await.expect("list").is_empty());
    p.show("astronaut.jpg");
    proxy
        .enroll("erin", "erin@example.com", "", "", "")
        .await
        .expect("enroll after cancel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operation_timeout_answers_capture_timeout() {
    let p = peer("[capture]\ntimeout_s = 60\n\n[daemon]\noperation_timeout_s = 3\n").await;
    p.show("no-face.jpg");
    let proxy = p.proxy().await;
    match error(
        proxy
            .enroll("olga", "olga@example.com", "", "", "")
            .await
            .expect_err("timeout"),
    ) {
        Error::CaptureTimeout(m) => {
            assert!(m.contains("daemon.operation_timeout_s"), "{m}")
        }
        // A loaded machine may still be talking to the server at 3 s.
        Error::ServerUnavailable(m) => {
            assert!(m.contains("daemon.operation_timeout_s"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    assert!(proxy.list_enrollments().await.expect("list").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_map_onto_named_errors() {
    let p = peer("").await;
    let proxy = p.proxy().await;
    match error(proxy.authenticate("nobody").await.expect_err("unknown")) {
        Error::NotEnrolled(m) => assert!(m.contains("nobody"), "{m}"),
        other => panic!("{other:?}"),
    }
    match error(proxy.authenticate("").await.expect_err("empty")) {
        Error::InvalidArgument(m) => assert_eq!(m, "username is empty"),
        other => panic!("{other:?}"),
    }
    match error(
        proxy
            .enroll("gus", "not-an-email", "", "", "")
            .await
            .expect_err("email"),
    ) {
        Error::InvalidArgument(m) => assert!(m.contains("email"), "{m}"),
        other => panic!("{other:?}"),
    }
    match error(proxy.enroll_with_qr("hello").await.expect_err("qr")) {
        Error::QrInvalid(_) => {}
        other => panic!("{other:?}"),
    }
    match error(proxy.remove_enrollment("nobody").await.expect_err("remove")) {
        Error::NotEnrolled(_) => {}
        other => panic!("{other:?}"),
    }
    assert!(calls(&p).is_empty(), "{:?}", calls(&p));
    // The server's own failures.
    for (call, kind, want) in [
        ("enroll", FaultKind::Status { code: 400 }, "ServerRejected"),
        (
            "addFace",
            FaultKind::Status { code: 503 },
            "ServerUnavailable",
        ),
        ("addDevice", FaultKind::MalformedJson, "ServerUnavailable"),
    ] {
        p.emulator.inject(Fault {
            call: Some(call.into()),
            kind,
            times: 1,
        });
        let e = error(
            proxy
                .enroll("hal", "hal@example.com", "", "", "")
                .await
                .expect_err(call),
        );
        assert_eq!(e.kind(), want, "{call}: {e:?}");
    }
    assert!(proxy.list_enrollments().await.expect("list").is_empty());
    // And the object still serves.
    enroll_then_granted(&proxy, "hal").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn properties_read_over_the_peer_connection() {
    let p = peer("").await;
    let proxy = p.proxy().await;
    assert_eq!(proxy.state().await.expect("State"), "idle");
    assert_eq!(proxy.device_id().await.expect("DeviceId").len(), 32);
    assert_eq!(
        proxy
            .device_key_protection()
            .await
            .expect("DeviceKeyProtection"),
        "plain"
    );
    assert!(proxy.camera_available().await.expect("CameraAvailable"));
    assert_eq!(
        proxy.version().await.expect("Version"),
        env!("CARGO_PKG_VERSION")
    );
}

/// A raw method call on the object, with any body: what a careless or hostile
/// caller can send, which the typed proxy cannot.
async fn raw_call<B>(
    p: &Peer,
    interface: &str,
    method: &str,
    body: &B,
) -> zbus::Result<zbus::Message>
where
    B: serde::Serialize + zbus::zvariant::DynamicType,
{
    p.client
        .call_method(
            Some(facecapture::daemon::BUS_NAME),
            OBJECT_PATH,
            Some(interface),
            method,
            body,
        )
        .await
}

/// The standard D-Bus error of a failed call (zbus maps the error name).
fn fdo_error(r: zbus::Result<zbus::Message>) -> zbus::fdo::Error {
    match r {
        Err(e) => e.into(),
        Ok(m) => panic!("expected an error reply, got {m:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn methods_without_arguments_refuse_arguments() {
    let p = peer("").await;
    const IFACE: &str = "org.facecapture.FaceCapture1";
    for (method, got) in [
        (
            "Cancel",
            fdo_error(raw_call(&p, IFACE, "Cancel", &("x",)).await),
        ),
        (
            "ListEnrollments",
            fdo_error(raw_call(&p, IFACE, "ListEnrollments", &(1i32,)).await),
        ),
    ] {
        match got {
            zbus::fdo::Error::InvalidArgs(m) => assert!(m.contains("got `"), "{method}: {m}"),
            other => panic!("{method}: {other:?}"),
        }
    }
    // Without arguments they answer as before.
    raw_call(&p, IFACE, "Cancel", &()).await.expect("Cancel()");
    let reply = raw_call(&p, IFACE, "ListEnrollments", &())
        .await
        .expect("ListEnrollments()");
    let list: Vec<(String, String, i64, String)> = reply.body().deserialize().expect("a(ssxs)");
    assert!(list.is_empty());
}

/// The identity systemd decrypts into `$CREDENTIALS_DIRECTORY/device_key` is the
/// terminal's: its device id, its key signing verifyDevice, its protection shown;
/// the database keeps no key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_identity_from_the_credential_signs_and_is_shown() {
    use facecapture::crypto::device::DeviceKey;
    use facecapture::crypto::sealed::{Protection, SealedIdentity};
    let creds = tempfile::tempdir().expect("creds");
    let sealed = SealedIdentity {
        device_id: "0123456789abcdef0123456789abcdef".into(),
        key: DeviceKey::generate().expect("key"),
        protection: Protection::Tpm2,
    };
    std::fs::write(
        creds.path().join("device_key"),
        &sealed.to_payload().expect("payload")[..],
    )
    .expect("credential");
    let env = Environment {
        credentials_dir: Some(creds.path().into()),
        ..Environment::default()
    };
    let p = peer_in("", &env).await;
    let proxy = p.proxy().await;
    assert_eq!(proxy.device_id().await.expect("DeviceId"), sealed.device_id);
    assert_eq!(
        proxy.device_key_protection().await.expect("protection"),
        "tpm2"
    );
    // verifyDevice succeeds only with a signature by the key addDevice sent.
    enroll_then_granted(&proxy, "hal").await;
    let storage = facecapture::storage::Storage::open(&p.dir.path().join("state")).expect("db");
    assert!(matches!(
        storage.stored_identity(),
        Ok(Some((ref id, None))) if *id == sealed.device_id
    ));
}

/// Provisioning failed on this start (the sealed key does not open on this
/// board: a cloned disk): systemd gives the daemon no key and the credential
/// `provisioning` saying why. The daemon serves all the same, so that a door
/// controller hears at once, by name, why it cannot be served (before issue 27
/// the daemon did not start, and the caller waited 25 s for D-Bus activation to
/// time out); it signs nothing and calls no server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_did_not_open_is_answered_unprovisioned_at_once() {
    let creds = tempfile::tempdir().expect("creds");
    let why = "the sealed device key /etc/facecaptured/credentials/device_key.cred does not \
               open on this board (TPM2 operation failed)";
    std::fs::write(creds.path().join("provisioning"), format!("{why}\n")).expect("write");
    let env = Environment {
        credentials_dir: Some(creds.path().into()),
        ..Environment::default()
    };
    let p = peer_in("", &env).await;
    let proxy = p.proxy().await;
    assert_eq!(
        proxy.device_key_protection().await.expect("protection"),
        "unusable"
    );
    let unprovisioned = |e: zbus::Error| match error(e) {
        Error::Unprovisioned(m) => assert!(m.contains(why), "{m}"),
        other => panic!("{other:?}"),
    };
    unprovisioned(proxy.authenticate("alice").await.expect_err("no key"));
    unprovisioned(
        proxy
            .enroll("alice", "alice@example.com", "", "", "")
            .await
            .expect_err("no key"),
    );
    let qr = p.emulator.qr_for_enroll("alice", "alice@example.com");
    unprovisioned(proxy.enroll_with_qr(&qr).await.expect_err("no key"));
    unprovisioned(proxy.authenticate_with_qr(&qr).await.expect_err("no key"));
    // Nor is AwareID kept warm (server.keep_warm_s is on by default): the
    // clone serves no one.
    let engine = p.engine.clone();
    let turn = tokio::task::spawn_blocking(move || engine.keep_warm().is_some())
        .await
        .expect("join");
    assert!(!turn, "an unprovisioned terminal keeps AwareID warm");
    assert!(calls(&p).is_empty(), "{:?}", calls(&p));
    assert_eq!(proxy.state().await.expect("State"), "idle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setting_a_read_only_property_says_read_only() {
    let p = peer("").await;
    let props = p.properties().await;
    let iface = zbus::names::InterfaceName::try_from("org.facecapture.FaceCapture1").expect("name");
    for (name, value) in [
        ("State", zbus::Variant::from("idle")),
        ("DeviceId", zbus::Variant::from("0".repeat(32))),
        ("DeviceKeyProtection", zbus::Variant::from("plain")),
        ("CameraAvailable", zbus::Variant::from(false)),
        ("Version", zbus::Variant::from("9.9.9")),
    ] {
        match props.set(iface.clone(), name, &value).await {
            Err(zbus::fdo::Error::PropertyReadOnly(m)) => assert!(m.contains(name), "{m}"),
            other => panic!("Set {name}: {other:?}"),
        }
    }
    match props
        .set(iface.clone(), "NoSuchProperty", &zbus::Variant::from(1u32))
        .await
    {
        Err(zbus::fdo::Error::UnknownProperty(_)) => {}
        other => panic!("Set NoSuchProperty: {other:?}"),
    }
    // Nothing changed, and reading still works.
    let proxy = p.proxy().await;
    assert_eq!(proxy.state().await.expect("State"), "idle");
    assert_eq!(
        proxy.version().await.expect("Version"),
        env!("CARGO_PKG_VERSION")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_username_that_displays_as_another_is_refused_before_any_server_call() {
    let p = peer("").await;
    let proxy = p.proxy().await;
    match error(
        proxy
            .enroll("eve\u{202E}gnp.exe", "eve@example.com", "", "", "")
            .await
            .expect_err("a bidi override"),
    ) {
        Error::InvalidArgument(m) => assert!(m.contains("username") && m.contains("U+202E"), "{m}"),
        other => panic!("{other:?}"),
    }
    match error(
        proxy
            .enroll("eve", "eve@example.com", "", "Eve\u{200B}", "")
            .await
            .expect_err("a zero-width space"),
    ) {
        Error::InvalidArgument(m) => {
            assert!(m.contains("first_name") && m.contains("U+200B"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    // Names that show as "alice" beside "alice" (issue 27, item 8), and a
    // space other than U+0020 inside one.
    for (bad, what) in [
        ("alice ", "white space (U+0020)"),
        ("\u{a0}alice", "white space (U+00A0)"),
        ("alice\u{3000}", "white space (U+3000)"),
        ("al\u{2009}ice", "U+2009, a space other than U+0020"),
    ] {
        match error(
            proxy
                .enroll(bad, "alice@example.com", "", "", "")
                .await
                .expect_err(bad),
        ) {
            Error::InvalidArgument(m) => {
                assert!(
                    m.starts_with("username ") && m.contains(what),
                    "{bad:?}: {m}"
                )
            }
            other => panic!("{bad:?}: {other:?}"),
        }
        match error(proxy.authenticate(bad).await.expect_err(bad)) {
            Error::InvalidArgument(m) => assert!(m.contains(what), "{bad:?}: {m}"),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    assert!(calls(&p).is_empty(), "no call reached the server");
    assert!(proxy.list_enrollments().await.expect("list").is_empty());
}

/// With `qr.allowed_hosts` left empty (the default), a correctly signed QR code
/// may send the terminal only to `server.base_url`'s host: one naming another
/// host is refused before anything is sent anywhere. (Before issue 27 the
/// default was any host: a code naming a stranger's server would have received
/// the enrolled user's registration code and the device's signatures.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qr_code_naming_another_host_is_refused_by_default() {
    let p = peer("").await;
    let proxy = p.proxy().await;
    let elsewhere = p
        .emulator
        .qr_naming_host("collector.example", "rita", "rita@example.com");
    p.emulator.clear_requests();
    match error(proxy.enroll_with_qr(&elsewhere).await.expect_err("refused")) {
        Error::QrInvalid(m) => assert!(
            m.contains("\"collector.example\" is not in qr.allowed_hosts"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(calls(&p).is_empty(), "{:?}", calls(&p));
    // The tenant's own host (base_url's) is allowed without listing it.
    let own = p.emulator.qr_for_enroll("rita", "rita@example.com");
    let reply = proxy.enroll_with_qr(&own).await.expect("enroll with QR");
    assert_eq!(
        (reply.username.as_str(), reply.enrollment_status),
        ("rita", 2)
    );
}

/// A camera whose next frame never comes, whatever the deadline or the cancel
/// flag: a driver stuck in an ioctl. Dropping the sender lets it fail.
struct Stuck(std::sync::Mutex<std::sync::mpsc::Receiver<()>>);

impl FrameSource for Stuck {
    fn name(&self) -> &str {
        "stuck"
    }
    fn next_frame(&mut self, _deadline: std::time::Instant) -> Result<Next, CameraError> {
        let _ = self.0.lock().map(|rx| rx.recv());
        Err(CameraError::Unavailable {
            device: "stuck".into(),
            reason: "released by the test".into(),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_camera_stops_the_watchdog_once_past_timeout_and_grace() {
    let p = peer("[daemon]\noperation_timeout_s = 1\n").await;
    let (release, rx) = std::sync::mpsc::channel::<()>();
    let config = facecapture::config::CameraConfig::default();
    p.engine.replace_camera(Camera::with_source(
        config,
        Box::new(Stuck(std::sync::Mutex::new(rx))),
    ));
    let served = p
        .server
        .object_server()
        .interface::<_, Served>(OBJECT_PATH)
        .await
        .expect("served");
    let proxy = p.proxy().await;
    // A QR scan by the camera is the first thing EnrollWithQr("") does (no server
    // call before it, so the timeout finds it scanning however loaded the
    // machine). The operation timeout answers the caller; the work is still stuck.
    match error(proxy.enroll_with_qr("").await.expect_err("stuck")) {
        Error::CaptureTimeout(m) => assert!(m.contains("operation_timeout_s"), "{m}"),
        other => panic!("{other:?}"),
    }
    let now = std::time::Instant::now();
    let grace = p.engine.operation_timeout() + p.engine.stuck_grace();
    // Within the grace the watchdog is fed: slow work is not stuck work...
    assert_eq!(served.get().await.overrun(now), None);
    // ...past it, it is not, and the operation and its age are named.
    let (operation, age) = served
        .get()
        .await
        .overrun(now + grace)
        .expect("stuck past timeout and grace");
    assert_eq!(operation, "enroll-qr");
    assert!(age > grace, "{age:?}");
    // Meanwhile the camera is not shared: the next caller gets Busy.
    match error(proxy.authenticate("alice").await.expect_err("busy")) {
        Error::Busy(m) => assert!(m.contains("enroll-qr"), "{m}"),
        other => panic!("{other:?}"),
    }
    // Once the driver returns, the slot is free and nothing is overrun.
    let props = p.properties().await;
    let mut changes = props.receive_properties_changed().await.expect("subscribe");
    drop(release);
    while proxy.state().await.expect("State") != "idle" {
        changes.next().await.expect("a State change");
    }
    assert_eq!(
        served
            .get()
            .await
            .overrun(std::time::Instant::now() + std::time::Duration::from_secs(3600)),
        None
    );
}

/// Waits until the State property is `state`.
async fn wait_state(p: &Peer, proxy: &FaceCapture1Proxy<'_>, state: &str) {
    let props = p.properties().await;
    let mut changes = props.receive_properties_changed().await.expect("subscribe");
    while proxy.state().await.expect("State") != state {
        changes.next().await.expect("a State change");
    }
}

/// Waits until the operation's blocking work has ended (State back to idle).
async fn wait_idle(p: &Peer, proxy: &FaceCapture1Proxy<'_>) {
    wait_state(p, proxy, "idle").await;
}

/// How many requests of `call` the emulator has seen arrive.
fn arrived(p: &Peer, call: &str) -> usize {
    p.emulator
        .requests()
        .iter()
        .filter(|r| r.call.as_deref() == Some(call))
        .count()
}

/// Waits until the `count`th request of `call` has arrived at the emulator.
fn wait_arrived(p: &Peer, call: &str, count: usize) {
    let arrived = tokio::task::block_in_place(|| {
        p.emulator
            .wait_arrived(call, count, std::time::Duration::from_secs(60))
    });
    assert!(arrived, "{call} never arrived");
}

/// The calls that change AwareID's state short of the deciding one, each held
/// in turn: (operation, call, deciding call).
const SHORT_OF_DECIDING: [(&str, &str, &str); 4] = [
    ("enroll", "enroll", "addFace"),
    ("enroll", "addDevice", "addFace"),
    ("authenticate", "authenticate", "verifyFace"),
    ("authenticate", "verifyDevice", "verifyFace"),
];

/// Holds `call` at the emulator and starts `operation` of `user`: the
/// operation, and how many `deciding` calls had arrived before it.
fn start_with_held(
    p: &Peer,
    proxy: &FaceCapture1Proxy<'static>,
    (operation, call, deciding): (&'static str, &str, &str),
    user: &'static str,
) -> (tokio::task::JoinHandle<zbus::Result<bool>>, usize) {
    let (calls_before, deciding_before) = (arrived(p, call), arrived(p, deciding));
    p.emulator.inject(Fault {
        call: Some(call.into()),
        kind: FaultKind::Hold { max_ms: 60_000 },
        times: 1,
    });
    let running = start_operation(proxy, operation, user);
    wait_arrived(p, call, calls_before + 1);
    (running, deciding_before)
}

/// Once the held call is let go and the work has ended: nothing more was sent
/// (no `deciding` call), and the stored code is still in force.
async fn nothing_more_was_sent(
    p: &Peer,
    proxy: &FaceCapture1Proxy<'_>,
    (call, deciding): (&str, &str),
    deciding_before: usize,
) {
    p.emulator.release();
    wait_idle(p, proxy).await;
    assert_eq!(
        arrived(p, deciding),
        deciding_before,
        "{deciding} was sent after the operation was stopped at {call}"
    );
    let listed = proxy.list_enrollments().await.expect("list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].standing, "enrolled", "at {call}: {listed:?}");
}

/// Starts `operation` ("enroll" or "authenticate") of `user` in the background:
/// whether it enrolled or granted.
fn start_operation(
    proxy: &FaceCapture1Proxy<'static>,
    operation: &'static str,
    user: &'static str,
) -> tokio::task::JoinHandle<zbus::Result<bool>> {
    let proxy = proxy.clone();
    tokio::spawn(async move {
        if operation == "enroll" {
            proxy
                .enroll(user, &format!("{user}@example.com"), "", "", "")
                .await
                .map(|r| r.enrollment_status == 2)
        } else {
            proxy.authenticate(user).await.map(|r| r.granted)
        }
    })
}

/// Cancel while a call short of the deciding one is at the server (enroll,
/// addDevice; authenticate, verifyDevice): the flow stops there. The caller is
/// told Cancelled, and that is true: addFace or verifyFace is never sent, the
/// stored code is the old one and still opens the door. (Before issue 27 the
/// flow went on once the face was captured: addFace was sent, and AwareID and
/// the database changed under a reply of Cancelled.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_before_the_deciding_call_stops_the_flow_there() {
    let p = peer("").await;
    let proxy = p.proxy().await;
    enroll_then_granted(&proxy, "rita").await;
    for case @ (operation, call, deciding) in SHORT_OF_DECIDING {
        let (running, deciding_before) = start_with_held(&p, &proxy, case, "rita");
        // The face is captured already (the camera is let go: State leaves
        // capturing), so nothing but the flow's own check can stop it now.
        wait_state(&p, &proxy, "contacting-server").await;
        proxy.cancel().await.expect("cancel");
        p.emulator.release();
        match error(running.await.expect("join").expect_err("cancelled")) {
            Error::Cancelled(m) => assert_eq!(m, format!("{operation} was cancelled")),
            other => panic!("{operation} at {call}: {other:?}"),
        }
        nothing_more_was_sent(&p, &proxy, (call, deciding), deciding_before).await;
    }
    // The old code is still the one in force.
    let reply = proxy.authenticate("rita").await.expect("authenticate");
    assert!(reply.granted, "{reply:?}");
}

/// Cancel once addFace or verifyFace is at the server: the outcome is real,
/// and it is what the caller is told. A re-enrollment answers enrolled and the
/// new code is stored (AwareID retired the old one: the door opens with the new
/// code); an authentication answers granted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_after_the_deciding_call_was_sent_answers_its_outcome() {
    let p = peer("").await;
    let proxy = p.proxy().await;
    enroll_then_granted(&proxy, "sam").await;
    for (operation, deciding) in [("enroll", "addFace"), ("authenticate", "verifyFace")] {
        let before = arrived(&p, deciding);
        p.emulator.inject(Fault {
            call: Some(deciding.into()),
            kind: FaultKind::AnswerLate { ms: 1500 },
            times: 1,
        });
        let running = start_operation(&proxy, operation, "sam");
        wait_arrived(&p, deciding, before + 1);
        proxy.cancel().await.expect("cancel");
        let done = running.await.expect("join");
        assert!(
            done.map_err(error)
                .expect("the real outcome, not Cancelled"),
            "{operation}: enrolled / granted"
        );
        let listed = proxy.list_enrollments().await.expect("list");
        assert_eq!(listed[0].standing, "enrolled", "{listed:?}");
    }
    // The code stored by the cancelled re-enrollment is the one AwareID holds.
    let reply = proxy.authenticate("sam").await.expect("authenticate");
    assert!(reply.granted, "{reply:?}");
}

/// The operation timeout passing while a call short of the deciding one is at
/// the server (enroll, addDevice; authenticate, verifyDevice): the caller is
/// told it timed out, and that is true: addFace or verifyFace is never sent
/// once the held call comes back, and the stored code is the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeout_before_the_deciding_call_stops_the_flow_there() {
    let p = peer("[daemon]\noperation_timeout_s = 2\n").await;
    let proxy = p.proxy().await;
    enroll_then_granted(&proxy, "ugo").await;
    for case @ (operation, call, deciding) in SHORT_OF_DECIDING {
        let (running, deciding_before) = start_with_held(&p, &proxy, case, "ugo");
        // The reply comes at the timeout, while the call is still held.
        match error(running.await.expect("join").expect_err("timed out")) {
            Error::ServerUnavailable(m) | Error::CaptureTimeout(m) => {
                assert!(m.contains("daemon.operation_timeout_s"), "{m}")
            }
            other => panic!("{operation} at {call}: {other:?}"),
        }
        nothing_more_was_sent(&p, &proxy, (call, deciding), deciding_before).await;
    }
}

/// The operation timeout passing while verifyFace is at the server: the answer
/// that comes after it is the caller's, not ServerUnavailable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeout_after_the_deciding_call_was_sent_answers_its_outcome() {
    let p = peer("[daemon]\noperation_timeout_s = 6\n").await;
    let proxy = p.proxy().await;
    enroll_then_granted(&proxy, "tom").await;
    // The answer comes back 2 s after the operation timeout at the earliest.
    p.emulator.inject(Fault {
        call: Some("verifyFace".into()),
        kind: FaultKind::AnswerLate { ms: 8000 },
        times: 1,
    });
    let started = std::time::Instant::now();
    let reply = proxy.authenticate("tom").await.map_err(error);
    assert!(started.elapsed() > std::time::Duration::from_secs(6));
    assert!(reply.expect("verifyFace's answer").granted);
}
