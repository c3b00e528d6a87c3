//! What the logs say, and what they never say: a full run of every flow with
//! logging captured at the most verbose level must not contain any secret, token,
//! registration code or frame data; journald gets the structured fields.

mod common;

use common::*;
use facecapture::awareid::wire::*;
use facecapture::config::Encryption;
use facecapture::workflow;
use std::io::Write;
use std::sync::{Arc, Mutex};
use tracing_subscriber::EnvFilter;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Buffer {
        self.clone()
    }
}

/// Runs all four flows plus failures; returns every secret that went over the wire.
fn run_everything(s: &Setup) -> Vec<String> {
    let ctx = ctx(s, Encryption::Envelope, &no_progress);
    let enrolled = enroll_astronaut(&s.client, &ctx, "alice").expect("enroll");
    authenticate_astronaut(&s.client, &ctx, "alice", &enrolled.registration_code).expect("auth");
    let trigger = s
        .client
        .trigger_enroll(&TriggerEnrollRequest {
            username: "bob".into(),
            email: "bob@example.com".into(),
            notify_options: None,
        })
        .expect("trigger");
    let qr = workflow::start_qr(
        trigger.session_callback_url.as_deref().expect("url"),
        &s.qr_keys,
        &[],
        &s.http,
        workflow::QrMethod::Enroll,
        &no_progress,
    )
    .expect("qr");
    let bob = enroll_astronaut(&qr.client, &ctx, "bob").expect("qr enroll");
    // A failure path logs too.
    s.emulator.inject(awareid_emulator::Fault {
        call: Some("verifyDevice".into()),
        kind: awareid_emulator::FaultKind::ExpireToken,
        times: 1,
    });
    authenticate_astronaut(&s.client, &ctx, "alice", &enrolled.registration_code)
        .expect("auth after 401");

    let mut secrets = vec![
        s.server.client_secret.expose().to_owned(),
        s.server.apikey.expose().to_owned(),
        enrolled.registration_code.expose().to_owned(),
        bob.registration_code.expose().to_owned(),
        trigger.session_token.clone().expect("session token"),
        qr.callback.session_token.clone(),
        qr.session.access_token.clone(),
        s.terminal.key.public_key_b64().expect("pub"),
    ];
    // A slice of the frame data, as sent in plain packages.
    let frame = facecapture::crypto::b64(&std::fs::read(fixture("astronaut.jpg")).expect("photo"));
    secrets.push(frame[1000..1060].to_owned());
    for r in s.emulator.requests() {
        secrets.extend(r.bearer);
        for key in [
            "enrollmentToken",
            "authToken",
            "signature",
            "registrationCode",
            "sessionToken",
        ] {
            if let Some(v) = r.body.get(key).and_then(|v| v.as_str()) {
                secrets.push(v.to_owned());
            }
        }
        if let Some(p) = r
            .body
            .pointer("/faceLivenessData/p")
            .and_then(|v| v.as_str())
        {
            secrets.push(p[..60].to_owned());
        }
    }
    secrets.retain(|x| x.len() >= 6);
    // The daemon's audit record of a grant (tests/daemon_records.rs runs it over D-Bus).
    let decision = facecapture::daemon::audit::Decision {
        record: facecapture::daemon::audit::Record::AccessGranted,
        operation: "authenticate",
        username: "alice",
        reason: String::new(),
        duration_ms: 812,
    };
    facecapture::daemon::audit::record(&decision, "0123456789abcdef0123456789abcdef");
    secrets
}

#[test]
fn no_secret_reaches_the_log() {
    let s = start();
    let buffer = Buffer::default();
    let subscriber = facecapture::logging::text_subscriber(EnvFilter::new("trace"), buffer.clone());
    let secrets = tracing::subscriber::with_default(subscriber, || run_everything(&s));
    let log = String::from_utf8(buffer.0.lock().expect("lock").clone()).expect("utf8");
    assert!(
        log.contains("step=\"add-face\""),
        "the flows did log:\n{log}"
    );
    assert!(log.contains("username=\"alice\""));
    assert!(log.contains("AwareID answered 401"));
    assert!(secrets.len() > 20, "collected {} secrets", secrets.len());
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "a secret ({} chars) is in the log",
            secret.len()
        );
    }
}

/// Reads one native-protocol journald datagram into (field, value) pairs.
fn parse_journal_datagram(mut data: &[u8]) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    while !data.is_empty() {
        let nl = data.iter().position(|&b| b == b'\n').expect("newline");
        let line = &data[..nl];
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            fields.push((
                String::from_utf8_lossy(&line[..eq]).into_owned(),
                String::from_utf8_lossy(&line[eq + 1..]).into_owned(),
            ));
            data = &data[nl + 1..];
        } else {
            let name = String::from_utf8_lossy(line).into_owned();
            let len = u64::from_le_bytes(data[nl + 1..nl + 9].try_into().expect("len")) as usize;
            let value = &data[nl + 9..nl + 9 + len];
            fields.push((name, String::from_utf8_lossy(value).into_owned()));
            data = &data[nl + 9 + len + 1..];
        }
    }
    fields
}

const JOURNAL_DIR: &str = "/run/systemd/journal";

#[test]
fn journald_gets_structured_fields() {
    let socket_path = std::path::Path::new(JOURNAL_DIR).join("socket");
    if socket_path.exists() && std::env::var_os("FACECAPTURE_PRIVATE_JOURNAL").is_none() {
        // A real journald owns the path: run this test again in a private mount
        // namespace with a tmpfs over the journal directory.
        let exe = std::env::current_exe().expect("exe");
        let status = std::process::Command::new("unshare")
            .args(["--mount", "--map-root-user", "--propagation", "private", "sh", "-c"])
            .arg(format!("mount -t tmpfs tmpfs {JOURNAL_DIR} && exec \"$0\" journald_gets_structured_fields --exact"))
            .arg(exe)
            .env("FACECAPTURE_PRIVATE_JOURNAL", "1")
            .status()
            .expect("unshare");
        assert!(
            status.success(),
            "journald test in a private namespace failed"
        );
        return;
    }
    let created_dir = !std::path::Path::new(JOURNAL_DIR).exists();
    std::fs::create_dir_all(JOURNAL_DIR).expect("journal dir (tests run as root in CI)");
    let _ = std::fs::remove_file(&socket_path);
    let journal =
        std::os::unix::net::UnixDatagram::bind(&socket_path).expect("bind journal socket");
    // Drain while the flows run: a datagram queue holds only a few messages.
    journal
        .set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .expect("timeout");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut events = Vec::new();
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                match journal.recv(&mut buf) {
                    // tracing-journald probes the socket with an empty datagram when
                    // the layer is made; every event after it carries fields.
                    Ok(0) => {}
                    Ok(n) => events.push(parse_journal_datagram(&buf[..n])),
                    Err(_) if stop.load(std::sync::atomic::Ordering::SeqCst) => return events,
                    Err(_) => {}
                }
            }
        })
    };

    let s = start();
    let layer = facecapture::logging::journald_layer("facecaptured").expect("journald layer");
    use tracing_subscriber::layer::SubscriberExt;
    let subscriber = tracing_subscriber::registry()
        .with(EnvFilter::new("debug"))
        .with(layer);
    let granted = facecapture::daemon::audit::Record::AccessGranted;
    let secrets = tracing::subscriber::with_default(subscriber, || run_everything(&s));

    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let events = reader.join().expect("reader");
    let _ = std::fs::remove_file(&socket_path);
    if created_dir {
        let _ = std::fs::remove_dir(JOURNAL_DIR);
    }

    let get =
        |e: &Vec<(String, String)>, k: &str| e.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert!(
        !events.is_empty(),
        "no datagrams reached the journal socket"
    );
    for e in &events {
        assert_eq!(
            get(e, "SYSLOG_IDENTIFIER").as_deref(),
            Some("facecaptured"),
            "{e:?}"
        );
    }
    assert!(
        events
            .iter()
            .all(|e| get(e, "PRIORITY").is_some() && get(e, "MESSAGE").is_some())
    );
    let step = events
        .iter()
        .find(|e| get(e, "STEP").as_deref() == Some("add-device"))
        .expect("an add-device step event");
    assert_eq!(get(step, "OPERATION").as_deref(), Some("enroll"));
    assert_eq!(get(step, "USERNAME").as_deref(), Some("alice"));
    let http = events
        .iter()
        .find(|e| get(e, "HTTP_STATUS").as_deref() == Some("200"))
        .expect("an HTTP call event");
    assert!(get(http, "DURATION_MS").is_some_and(|d| d.parse::<u64>().is_ok()));
    let done = events
        .iter()
        .find(|e| get(e, "MESSAGE").as_deref() == Some("authentication finished"))
        .expect("the outcome");
    assert_eq!(get(done, "GRANTED").as_deref(), Some("true"));
    // The audit record: journalctl MESSAGE_ID=... finds it, with what an auditor
    // filters on.
    let audit = events
        .iter()
        .find(|e| get(e, "MESSAGE_ID").as_deref() == Some(granted.message_id()))
        .expect("the audit record of the grant");
    for (field, value) in [
        ("MESSAGE", "access granted: alice"),
        ("USERNAME", "alice"),
        ("OPERATION", "authenticate"),
        ("OUTCOME", "granted"),
        ("REASON", "-"),
        ("DURATION_MS", "812"),
        ("DEVICE_ID", "0123456789abcdef0123456789abcdef"),
        // (tracing-journald: INFO is notice.)
        ("PRIORITY", "5"),
    ] {
        assert_eq!(
            get(audit, field).as_deref(),
            Some(value),
            "{field}: {audit:?}"
        );
    }
    let all: String = events
        .iter()
        .flat_map(|e| e.iter().map(|(k, v)| format!("{k}={v}\n")))
        .collect();
    for secret in &secrets {
        assert!(
            !all.contains(secret.as_str()),
            "a secret ({} chars) reached journald",
            secret.len()
        );
    }
}
