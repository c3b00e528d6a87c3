//! Behind a site's proxy: every AwareID call, the QR host's included, through a
//! real HTTP proxy on loopback (Debian's tinyproxy), with the emulator behind it.
//!
//! The proxy makes its outgoing connections from 127.0.0.2 (tinyproxy's `Bind`),
//! and the emulator records the address each request came from: a request from
//! 127.0.0.1 went around the proxy. A proxy that refuses, that is not there, or
//! that wants a password it was not given ends the call as ServerUnavailable
//! naming the proxy.
//!
//! They need tinyproxy, so they are `#[ignore]`d: tests/run.sh installs it and
//! runs them with `--include-ignored`; run so without it, they fail naming it.

mod common;

use common::*;
use facecapture::awareid::{AwareIdClient, AwareIdError, HttpSettings};
use facecapture::config::{Encryption, ServerConfig};
use facecapture::secret::Secret;
use facecapture::workflow::{self, FlowError, QrMethod};
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Where the proxy's outgoing connections come from.
const PROXY_SIDE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// tinyproxy in the foreground on a free loopback port.
struct Tinyproxy {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Tinyproxy {
    /// Lets CONNECT through to `connect_port` only (any port when `None`);
    /// `extra` is more configuration.
    fn start(connect_port: Option<u16>, extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        // A port no one holds now; tinyproxy binds it below.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let conf = dir.path().join("tinyproxy.conf");
        let only = connect_port.map_or(String::new(), |p| format!("ConnectPort {p}\n"));
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListen 127.0.0.1\nBind 127.0.0.2\nTimeout 30\nLogLevel Connect\n\
                 MaxClients 20\nAllow 127.0.0.1\n{only}{extra}\n"
            ),
        )
        .expect("config");
        let mut child = Command::new("tinyproxy")
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("tinyproxy runs (apt-get install tinyproxy; tests/run.sh installs it)");
        // It logs "done sending stored logs" once it listens (its main(): the
        // listening sockets, then the logging set-up that prints the line).
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut ready = Some(tx);
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if line.contains("done sending stored logs")
                    && let Some(tx) = ready.take()
                {
                    let _ = tx.send(());
                }
            }
        });
        if rx.recv_timeout(Duration::from_secs(30)).is_err() {
            let status = child.try_wait();
            panic!("tinyproxy did not start listening: {status:?}");
        }
        Self {
            child,
            port,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The emulator's `[server]` with `proxy`, its certificate in a file.
fn server_via(s: &Setup, proxy: &str, credentials: &str, dir: &tempfile::TempDir) -> ServerConfig {
    let ca = dir.path().join("emulator-ca.pem");
    std::fs::write(&ca, s.emulator.ca_pem()).expect("ca");
    ServerConfig {
        proxy: proxy.to_owned(),
        proxy_credentials: Secret::new(credentials),
        ca_file: ca.display().to_string(),
        timeout_s: 10,
        ..s.server.clone()
    }
}

fn peers(s: &Setup) -> Vec<Option<IpAddr>> {
    s.emulator.requests().iter().map(|r| r.peer).collect()
}

/// The reason of a ServerUnavailable-kind failure.
fn unavailable(e: FlowError) -> String {
    match e {
        FlowError::Server(AwareIdError::Unavailable { reason, .. }) => reason,
        other => panic!("expected ServerUnavailable, got {other}"),
    }
}

#[test]
#[ignore = "needs tinyproxy: tests/run.sh installs it"]
fn every_call_of_the_four_flows_goes_through_the_proxy() {
    let s = start();
    let proxy = Tinyproxy::start(Some(s.emulator.addr().port()), "");
    let dir = tempfile::tempdir().expect("tmp");
    let server = server_via(&s, &proxy.url(), "", &dir);
    let http = HttpSettings::from_config(&server).expect("settings");
    let client = AwareIdClient::new(&server, &http).expect("client");
    let ctx = ctx(&s, Encryption::Envelope, &no_progress);

    let enrolled = enroll_astronaut(&client, &ctx, "alice").expect("enroll through the proxy");
    let auth = authenticate_astronaut(&client, &ctx, "alice", &enrolled.registration_code)
        .expect("authenticate through the proxy");
    assert!(auth.granted);
    // A QR code's host is reached with the same settings: through the proxy.
    for (method, url) in [
        (
            QrMethod::Enroll,
            s.emulator.qr_for_enroll("bob", "bob@example.com"),
        ),
        (
            QrMethod::Authenticate,
            s.emulator.qr_for_authenticate("alice"),
        ),
    ] {
        let qr = workflow::start_qr(&url, &s.qr_keys, &[], &http, method, &no_progress)
            .expect("validateSession through the proxy");
        assert_eq!(qr.session.method_type, method.as_str());
    }
    let all = peers(&s);
    let calls = calls(&s.emulator);
    assert_eq!(
        calls,
        [&ENROLL_THEN_AUTHENTICATE[..], &["validateSession"; 2]].concat()
    );
    assert!(
        all.iter().all(|p| *p == Some(PROXY_SIDE)),
        "every request from the proxy's side, 127.0.0.2: {all:?} ({calls:?})"
    );
}

#[test]
#[ignore = "needs tinyproxy: tests/run.sh installs it"]
fn a_proxy_that_refuses_or_is_not_there_is_named() {
    let s = start();
    let dir = tempfile::tempdir().expect("tmp");
    let ctx = ctx(&s, Encryption::None, &no_progress);
    // It lets CONNECT through to port 1 only: 403 for the emulator's.
    let proxy = Tinyproxy::start(Some(1), "");
    let server = server_via(&s, &proxy.url(), "", &dir);
    let http = HttpSettings::from_config(&server).expect("settings");
    let client = AwareIdClient::new(&server, &http).expect("client");
    let reason = unavailable(enroll_astronaut(&client, &ctx, "alice").expect_err("refused"));
    assert!(
        reason.contains(&format!("the proxy {} refused", proxy.url())) && reason.contains("403"),
        "{reason}"
    );
    // Nothing got past it.
    assert_eq!(calls(&s.emulator), Vec::<String>::new());

    // A proxy that is not there: the address no longer listens.
    let gone = proxy.url();
    drop(proxy);
    let server = server_via(&s, &gone, "", &dir);
    let http = HttpSettings::from_config(&server).expect("settings");
    let client = AwareIdClient::new(&server, &http).expect("client");
    let reason = unavailable(enroll_astronaut(&client, &ctx, "alice").expect_err("no proxy"));
    assert!(
        reason.contains(&format!("through the proxy {gone}")),
        "{reason}"
    );
    assert_eq!(calls(&s.emulator), Vec::<String>::new());
}

#[test]
#[ignore = "needs tinyproxy: tests/run.sh installs it"]
fn a_proxy_password_is_a_secret_that_opens_the_proxy() {
    let s = start();
    let dir = tempfile::tempdir().expect("tmp");
    let ctx = ctx(&s, Encryption::None, &no_progress);
    let proxy = Tinyproxy::start(Some(s.emulator.addr().port()), "BasicAuth door s3cretPass");
    // Without the password: 407, named.
    let server = server_via(&s, &proxy.url(), "", &dir);
    let http = HttpSettings::from_config(&server).expect("settings");
    let client = AwareIdClient::new(&server, &http).expect("client");
    let reason = unavailable(enroll_astronaut(&client, &ctx, "carol").expect_err("407"));
    assert!(
        reason.contains("407") && reason.contains(&proxy.url()),
        "{reason}"
    );
    // With it, from a credential file as a terminal keeps it.
    let creds = dir.path().join("proxy_credentials");
    std::fs::write(&creds, "door:s3cretPass\n").expect("credential");
    let toml = dir.path().join("server.toml");
    std::fs::write(
        &toml,
        format!(
            "[server]\nbase_url = \"{}\"\ncustomer_name = \"{}\"\nclient_id = \"{}\"\n\
             client_secret = \"{}\"\napikey = \"{}\"\nca_file = \"{}\"\nproxy = \"{}\"\n\
             proxy_credentials_file = \"{}\"\n",
            s.server.base_url,
            s.server.customer_name,
            s.server.client_id,
            s.server.client_secret.expose(),
            s.server.apikey.expose(),
            server.ca_file,
            proxy.url(),
            creds.display()
        ),
    )
    .expect("config");
    let cfg = facecapture::config::Config::load(
        Some(&toml),
        &facecapture::config::Environment::default(),
        facecapture::config::Need::Daemon,
    )
    .expect("config with proxy credentials");
    assert_eq!(cfg.server.proxy_credentials.expose(), "door:s3cretPass");
    assert!(!format!("{cfg:?}").contains("s3cretPass"), "never printed");
    let http = HttpSettings::from_config(&cfg.server).expect("settings");
    let client = AwareIdClient::new(&cfg.server, &http).expect("client");
    enroll_astronaut(&client, &ctx, "carol").expect("enroll with the proxy's password");
    assert!(
        peers(&s).iter().all(|p| *p == Some(PROXY_SIDE)),
        "{:?}",
        peers(&s)
    );
}

#[test]
#[ignore = "needs tinyproxy: tests/run.sh installs it"]
fn https_proxy_and_no_proxy_from_the_environment_when_the_key_is_unset() {
    let s = start();
    let proxy = Tinyproxy::start(Some(s.emulator.addr().port()), "");
    let dir = tempfile::tempdir().expect("tmp");
    s.emulator.write_out(dir.path()).expect("emulator files");
    let config = dir.path().join("facecaptured.toml");
    let trigger = |env: &[(&str, &str)]| {
        let mut c = Command::new(common::program::facecapturectl());
        c.arg("--config")
            .arg(&config)
            .args(["trigger-enroll", "dora", "dora@example.com"]);
        for v in [
            "HTTPS_PROXY",
            "https_proxy",
            "HTTP_PROXY",
            "http_proxy",
            "ALL_PROXY",
        ] {
            c.env_remove(v);
        }
        c.env_remove("all_proxy")
            .env_remove("NO_PROXY")
            .env_remove("no_proxy");
        c.envs(env.iter().copied());
        let o = c.output().expect("facecapturectl");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    trigger(&[("HTTPS_PROXY", &proxy.url())]);
    let through = peers(&s);
    assert!(
        !through.is_empty() && through.iter().all(|p| *p == Some(PROXY_SIDE)),
        "{through:?}"
    );
    // NO_PROXY names the emulator's host: straight there.
    s.emulator.clear_requests();
    trigger(&[("HTTPS_PROXY", &proxy.url()), ("NO_PROXY", "127.0.0.1")]);
    let direct = peers(&s);
    assert!(
        !direct.is_empty()
            && direct
                .iter()
                .all(|p| *p == Some(IpAddr::V4(Ipv4Addr::LOCALHOST))),
        "{direct:?}"
    );
}

#[test]
#[ignore = "needs tinyproxy: tests/run.sh installs it"]
fn the_daemon_enrolls_through_the_proxy_and_names_one_that_refuses() {
    let proxy = Tinyproxy::start(Some(1), "");
    // The daemon's [server] gets the proxy; the emulator's port is not let through.
    let s = daemon::start_with(&format!("[server]\nproxy = \"{}\"\n", proxy.url()));
    let o = s
        .daemon
        .ctl(&["enroll", "erin", "--email", "erin@example.com"]);
    assert!(!o.status.success());
    let err = daemon::stderr(&o);
    assert!(
        err.contains("ServerUnavailable")
            && err.contains(&format!("the proxy {} refused", proxy.url())),
        "{err}"
    );
    assert!(s.emulator.requests().is_empty());
    s.daemon.wait_log("AwareID calls go through a proxy");

    let open = Tinyproxy::start(None, "");
    let s = daemon::start_with(&format!("[server]\nproxy = \"{}\"\n", open.url()));
    let o = s
        .daemon
        .ctl(&["enroll", "erin", "--email", "erin@example.com"]);
    assert!(o.status.success(), "{}", daemon::stderr(&o));
    let all: Vec<_> = s.emulator.requests().iter().map(|r| r.peer).collect();
    assert!(
        !all.is_empty() && all.iter().all(|p| *p == Some(PROXY_SIDE)),
        "{all:?}"
    );
}
