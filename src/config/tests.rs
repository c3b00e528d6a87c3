//! The configuration's own tests: loading, secrets, validation.

use super::*;
use std::io::Write;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    let mut f = std::fs::File::create(&p).expect("create");
    f.write_all(text.as_bytes()).expect("write");
    p
}

const GOOD: &str = r#"
[server]
base_url = "https://awareid.example.com"
customer_name = "acme"
client_id = "door"
client_secret = "s3cret"
apikey = "k3y"
"#;

fn load(text: &str, env: &Environment) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().expect("tmp");
    let p = write(dir.path(), "c.toml", text);
    Config::load(Some(&p), env, Need::Daemon)
}

#[test]
fn defaults_match_the_spec() {
    let c = load(GOOD, &Environment::default()).expect("load");
    assert_eq!(c.server.timeout_s, 15);
    assert_eq!(c.server.keep_warm_s, 45);
    assert_eq!(c.camera.device, "/dev/video0");
    assert_eq!(
        (c.camera.width, c.camera.height, c.camera.fps),
        (640, 480, 30)
    );
    assert_eq!(c.camera.formats, ["MJPG", "YUYV", "GREY"]);
    assert_eq!(c.capture, CaptureConfig::default());
    assert_eq!(
        (c.capture.frames, c.capture.timeout_s, c.capture.min_face_px),
        (3, 10, 100)
    );
    assert_eq!(c.face.workflow, "hotel2");
    assert_eq!(c.face.encryption, Encryption::Envelope);
    assert_eq!(c.dbus.bus, Bus::System);
    assert_eq!(c.storage.state_dir, PathBuf::from("/var/lib/facecaptured"));
    assert_eq!(c.daemon.operation_timeout_s, 20);
    assert_eq!(c.server.client_secret.expose(), "s3cret");
    assert!(!format!("{c:?}").contains("s3cret"));
}

#[test]
fn the_proxy_is_checked_and_its_credentials_are_a_secret() {
    let with = |extra: &str, env: &Environment| {
        load(
            &GOOD.replace("[server]\n", &format!("[server]\n{extra}\n")),
            env,
        )
    };
    let none = Environment::default();
    let c = with("proxy = \"http://proxy.example:3128\"", &none).expect("proxy");
    let p = c.server.proxy_settings().expect("valid").expect("set");
    assert_eq!(
        (p.https, p.host.as_str(), p.port),
        (false, "proxy.example", 3128)
    );
    assert!(p.credentials.is_none());
    let c = with("proxy = \"https://[::1]\"", &none).expect("https proxy");
    let p = c.server.proxy_settings().expect("valid").expect("set");
    assert_eq!((p.https, p.host.as_str(), p.port), (true, "::1", 443));
    assert_eq!(
        with("", &none).expect("none").server.proxy_settings(),
        Ok(None)
    );
    for (proxy, says) in [
        ("socks5://proxy.example:1080", "http:// or https://"),
        (
            "http://door:pw@proxy.example:3128",
            "server.proxy_credentials",
        ),
        ("http://proxy.example:3128/path", "no path"),
        ("proxy.example:3128", "http:// or https://"),
        ("http://", "not a URL"),
    ] {
        let e = with(&format!("proxy = \"{proxy}\""), &none).expect_err(proxy);
        assert_eq!(e.key, "server.proxy", "{proxy}: {e}");
        assert!(e.problem.contains(says), "{proxy}: {e}");
        assert!(
            !e.to_string().contains("pw@"),
            "credentials never shown: {e}"
        );
    }
    // The credentials: a systemd credential, user:password, only with a proxy.
    let dir = tempfile::tempdir().expect("tmp");
    write(dir.path(), "proxy_credentials", "door:pa:ss\n");
    let env = Environment {
        credentials_dir: Some(dir.path().to_owned()),
        ..Environment::default()
    };
    let c = with("proxy = \"http://proxy.example:3128\"", &env).expect("credential");
    let p = c.server.proxy_settings().expect("valid").expect("set");
    let (user, password) = p.credentials.expect("credentials");
    assert_eq!((user.as_str(), password.expose()), ("door", "pa:ss"));
    assert!(!format!("{c:?}").contains("pa:ss"));
    let e = with("", &env).expect_err("credentials without a proxy");
    assert_eq!(e.key, "server.proxy_credentials");
    let e = with(
        "proxy = \"http://proxy.example:3128\"\nproxy_credentials = \"nocolon\"",
        &none,
    )
    .expect_err("not user:password");
    assert!(e.to_string().contains("user:password"), "{e}");
    assert!(!e.to_string().contains("nocolon"), "{e}");
}

#[test]
fn environment_overrides_file_and_state_directory_wins() {
    let env = Environment {
        vars: vec![
            ("FACECAPTURED__CAPTURE__FRAMES".into(), "5".into()),
            (
                "FACECAPTURED__QR__ALLOWED_HOSTS".into(),
                "a.example,b.example".into(),
            ),
            ("FACECAPTURED__SERVER__APIKEY".into(), "12345".into()),
        ],
        credentials_dir: None,
        state_dir: Some("/run/state".into()),
        under_systemd: false,
    };
    let c = load(GOOD, &env).expect("load");
    assert_eq!(c.capture.frames, 5);
    assert_eq!(c.qr.allowed_hosts, ["a.example", "b.example"]);
    assert_eq!(c.server.apikey.expose(), "12345");
    assert_eq!(c.storage.state_dir, PathBuf::from("/run/state"));
}

/// Under systemd a secret in the environment is refused (issue 27, item 9):
/// `systemctl show` prints a unit's Environment= to every user.
#[test]
fn under_systemd_secrets_do_not_come_from_the_environment() {
    let mut env = Environment {
        vars: vec![("FACECAPTURED__SERVER__APIKEY".into(), "12345".into())],
        under_systemd: true,
        ..Environment::default()
    };
    let e = load(GOOD, &env).expect_err("a secret in the environment");
    assert_eq!(e.key, "server.apikey");
    assert!(
        e.to_string().contains("FACECAPTURED__SERVER__APIKEY"),
        "{e}"
    );
    assert!(!e.to_string().contains("12345"), "{e}");
    env.vars = vec![("FACECAPTURED__QR__AES_KEY".into(), "x".into())];
    assert_eq!(load(GOOD, &env).expect_err("aes").key, "qr.aes_key");
    // Other keys still may, and outside systemd secrets too (a developer's shell).
    env.vars = vec![("FACECAPTURED__CAPTURE__FRAMES".into(), "5".into())];
    assert_eq!(load(GOOD, &env).expect("frames").capture.frames, 5);
    env.vars = vec![("FACECAPTURED__SERVER__APIKEY".into(), "12345".into())];
    env.under_systemd = false;
    assert_eq!(
        load(GOOD, &env).expect("a shell").server.apikey.expose(),
        "12345"
    );
}

/// A start whose provisioning failed gets no secrets (sealed to the same
/// TPM, they did not open either), only why: it loads without them, to
/// answer Unprovisioned.
#[test]
fn a_failed_provisioning_needs_no_secrets() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("provisioning"), "the key does not open\n").expect("w");
    std::fs::write(dir.path().join("client_secret"), "\n").expect("w");
    let env = Environment {
        credentials_dir: Some(dir.path().to_owned()),
        ..Environment::default()
    };
    let text = "[server]\nbase_url = \"https://awareid.example.com\"\n\
                customer_name = \"acme\"\nclient_id = \"door\"\n\
                [qr]\nsigning_public_key = \"/etc/facecaptured/qr.pem\"\n";
    let c = load(text, &env).expect("loads without secrets");
    assert_eq!(c.storage.provisioning_failed, "the key does not open");
    std::fs::remove_file(dir.path().join("provisioning")).expect("rm");
    let e = load(text, &env).expect_err("a normal start needs them");
    assert_eq!(e.key, "server.client_secret");
}

#[test]
fn any_qr_host_is_asked_for_alone() {
    let env = Environment::default();
    let c = load(&format!("{GOOD}\n[qr]\nallowed_hosts = [\"*\"]\n"), &env).expect("*");
    assert!(c.qr_allowed_hosts().is_empty());
    let e = load(
        &format!("{GOOD}\n[qr]\nallowed_hosts = [\"*\", \"a.example\"]\n"),
        &env,
    )
    .expect_err("* with a host");
    assert_eq!(e.key, "qr.allowed_hosts");
    let e = load(
        &format!("{GOOD}\n[qr]\nallowed_hosts = [\"*.example\"]\n"),
        &env,
    )
    .expect_err("a wildcard");
    assert!(e.to_string().contains("not a host name"), "{e}");
}

#[test]
fn unknown_keys_and_wrong_types_name_the_key() {
    let e = load(
        &format!("{GOOD}\n[camera]\nwidht = 640\n"),
        &Environment::default(),
    )
    .expect_err("unknown");
    assert_eq!(e.key, "camera.widht", "{e}");
    assert!(e.problem.contains("unknown"), "{e}");
    let e = load(
        &format!("{GOOD}\n[camera]\nwidth = \"wide\"\n"),
        &Environment::default(),
    )
    .expect_err("type");
    assert_eq!(e.key, "camera.width", "{e}");
    let e = load(
        &format!("{GOOD}\n[bogus]\nx = 1\n"),
        &Environment::default(),
    )
    .expect_err("section");
    assert_eq!(e.key, "bogus", "{e}");
    let e = load(
        &format!("{GOOD}\n[face]\nencryption = \"rot13\"\n"),
        &Environment::default(),
    )
    .expect_err("enum");
    assert_eq!(e.key, "face.encryption", "{e}");
}

#[test]
fn secrets_from_files_and_credentials() {
    let dir = tempfile::tempdir().expect("tmp");
    let secret = write(dir.path(), "secret", "from-file\n");
    let text = GOOD.replace(
        "client_secret = \"s3cret\"",
        &format!("client_secret_file = {:?}", secret),
    );
    let c = load(&text, &Environment::default()).expect("load");
    assert_eq!(c.server.client_secret.expose(), "from-file");

    let creds = tempfile::tempdir().expect("tmp");
    write(creds.path(), "apikey", "from-credential");
    let text = GOOD.replace("apikey = \"k3y\"", "");
    let env = Environment {
        credentials_dir: Some(creds.path().into()),
        ..Default::default()
    };
    assert_eq!(
        load(&text, &env).expect("load").server.apikey.expose(),
        "from-credential"
    );

    let e = load(&text, &Environment::default()).expect_err("missing");
    assert_eq!(e.key, "server.apikey");
    assert!(e.problem.contains("missing secret"), "{e}");

    let text = GOOD.replace(
        "client_secret = \"s3cret\"",
        "client_secret_file = \"/nonexistent/x\"",
    );
    let e = load(&text, &Environment::default()).expect_err("unreadable");
    assert_eq!(e.key, "server.client_secret_file");
    let text = format!("{GOOD}client_secret_file = {:?}\n", secret);
    assert!(
        load(&text, &Environment::default())
            .expect_err("both")
            .problem
            .contains("both")
    );
}

#[test]
fn base_url_must_be_https_off_loopback() {
    for ok in [
        "https://a.example",
        "http://127.0.0.1:8080",
        "http://localhost:1",
        "http://[::1]:9",
    ] {
        assert!(check_base_url(ok).is_ok(), "{ok}");
    }
    for bad in [
        "http://a.example",
        "ftp://a.example",
        "https://u:p@a.example",
        "nonsense",
        "",
    ] {
        assert_eq!(
            check_base_url(bad).expect_err(bad).key,
            "server.base_url",
            "{bad}"
        );
    }
    let e = load(
        &GOOD.replace("https://", "http://"),
        &Environment::default(),
    )
    .expect_err("http");
    assert!(e.to_string().contains("must be https"), "{e}");
}

#[test]
fn qr_keys_need_both_and_a_32_byte_aes_key() {
    let dir = tempfile::tempdir().expect("tmp");
    let key = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).expect("key");
    let pem = {
        use rsa::pkcs8::EncodePublicKey;
        key.to_public_key()
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .expect("pem")
    };
    let pem_path = write(dir.path(), "qr.pem", &pem);
    let good_aes = crate::crypto::b64(&[1u8; 32]);
    let qr = |aes: &str| {
        format!("{GOOD}\n[qr]\nsigning_public_key = {pem_path:?}\naes_key = \"{aes}\"\n")
    };
    let c = load(&qr(&good_aes), &Environment::default()).expect("load");
    assert!(c.qr_keys().expect("keys").is_some());
    let e = load(
        &qr(&crate::crypto::b64(&[1u8; 16])),
        &Environment::default(),
    )
    .expect_err("short");
    assert_eq!(e.key, "qr.aes_key");
    assert!(e.problem.contains("32 bytes, got 16"), "{e}");
    let e = load(&qr("###"), &Environment::default()).expect_err("b64");
    assert!(e.problem.contains("base64"), "{e}");
    let e = load(
        &format!(
            "{GOOD}\n[qr]\nsigning_public_key = \"/nonexistent.pem\"\naes_key = \"{good_aes}\"\n"
        ),
        &Environment::default(),
    )
    .expect_err("unreadable");
    assert_eq!(e.key, "qr.signing_public_key");
    let e = load(
        &format!("{GOOD}\n[qr]\naes_key = \"{good_aes}\"\n"),
        &Environment::default(),
    )
    .expect_err("half");
    assert_eq!(e.key, "qr.signing_public_key");
    // The AES key is a credential only the service opens: the daemon needs it,
    // an offline tool (or doctor) reading the same file does not.
    let half = format!("{GOOD}\n[qr]\nsigning_public_key = {pem_path:?}\n");
    assert_eq!(
        load(&half, &Environment::default())
            .expect_err("daemon")
            .key,
        "qr.aes_key"
    );
    let p = write(dir.path(), "half.toml", &half);
    let c = Config::load(Some(&p), &Environment::default(), Need::Nothing)
        .expect("an offline tool loads it");
    assert_eq!(c.qr_keys().expect_err("when used").key, "qr.aes_key");
}

#[test]
fn every_convertible_fourcc_is_a_known_format() {
    let c = load(
        &format!(
            "{GOOD}\n[camera]\nformats = [\"JPEG\", \"UYVY\", \"NV21\", \"NV16\", \"Y10 \", \"Y16\"]\n"
        ),
        &Environment::default(),
    )
    .expect("formats");
    assert_eq!(c.camera.formats.len(), 6);
    for name in KNOWN_FORMATS {
        assert!(
            crate::camera::v4l2::format_named(name, true).is_some(),
            "{name} has no conversion"
        );
    }
    let e = load(
        &format!("{GOOD}\n[camera]\nformats = [\"YU12\"]\n"),
        &Environment::default(),
    )
    .expect_err("YU12");
    assert!(e.problem.contains("known: MJPG, JPEG, YUYV"), "{e}");
}

#[test]
fn ranges_and_enums() {
    for (section, line, key) in [
        ("camera", "rotation = 45", "camera.rotation"),
        ("camera", "formats = [\"H264\"]", "camera.formats"),
        ("camera", "source = \"files\"", "camera.path"),
        ("capture", "frames = 0", "capture.frames"),
        ("capture", "jpeg_quality = 101", "capture.jpeg_quality"),
        (
            "daemon",
            "operation_timeout_s = 30",
            "daemon.operation_timeout_s",
        ),
        (
            "daemon",
            "metrics_textfile = \"/var/lib/m.txt\"",
            "daemon.metrics_textfile",
        ),
        (
            "daemon",
            "metrics_textfile = \"m.prom\"",
            "daemon.metrics_textfile",
        ),
        ("face", "workflow = \"\"", "face.workflow"),
        ("storage", "state_dir = \"relative\"", "storage.state_dir"),
        ("dbus", "bus = \"user\"", "dbus.bus"),
    ] {
        let e = load(
            &format!("{GOOD}\n[{section}]\n{line}\n"),
            &Environment::default(),
        )
        .expect_err(line);
        assert_eq!(e.key, key, "{line}: {e}");
    }
}

#[test]
fn keep_warm_is_off_or_between_10_s_and_an_hour() {
    let with = |line: &str| {
        load(
            &GOOD.replace("[server]\n", &format!("[server]\n{line}\n")),
            &Environment::default(),
        )
    };
    for ok in [0, 10, 3600] {
        let c = with(&format!("keep_warm_s = {ok}")).expect("in range");
        assert_eq!(c.server.keep_warm_s, ok);
    }
    for bad in [1, 9, 3601] {
        let e = with(&format!("keep_warm_s = {bad}")).expect_err("out of range");
        assert_eq!(e.key, "server.keep_warm_s", "{bad}: {e}");
    }
}

#[test]
fn missing_config_file_is_named() {
    let e = Config::load(
        Some(Path::new("/nonexistent/c.toml")),
        &Environment::default(),
        Need::Nothing,
    )
    .expect_err("missing");
    assert_eq!(e.key, "--config");
}

#[test]
fn the_example_config_is_complete_and_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/facecaptured.toml");
    let c = Config::load(Some(&path), &Environment::default(), Need::Nothing)
        .expect("example config loads");
    assert_eq!(c.capture.frames, 3);
}

/// The keys `Config` accepts, as serde names them when refusing an unknown one.
fn accepted_keys() -> std::collections::BTreeSet<String> {
    // "unknown field `zz`, expected one of `a`, `b`" (or "expected `a`").
    let expected = |value: serde_json::Value| -> Vec<String> {
        let e = serde_json::from_value::<Config>(value).expect_err("an unknown key");
        let text = e.to_string();
        let (_, list) = text.split_once("expected").expect("the accepted names");
        list.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    let mut keys = std::collections::BTreeSet::new();
    for section in expected(serde_json::json!({"zz_unknown": 1})) {
        for key in expected(serde_json::json!({section.as_str(): {"zz_unknown": 1}})) {
            keys.insert(format!("{section}.{key}"));
        }
    }
    keys
}

#[test]
fn docs_config_lists_every_key_and_only_those() {
    let doc = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/config.md"));
    let listed: std::collections::BTreeSet<String> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`'))
        .map(|(key, _)| key.to_owned())
        .filter(|key| key.contains('.'))
        .collect();
    let accepted = accepted_keys();
    assert!(accepted.len() > 30, "{accepted:?}");
    let missing: Vec<_> = accepted.difference(&listed).collect();
    let extra: Vec<_> = listed.difference(&accepted).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "docs/config.md lacks {missing:?} and lists {extra:?}, which the configuration does not accept"
    );
    // And a key not in the table is refused, named.
    for key in ["daemon.nope", "camera.widht"] {
        let (section, name) = key.split_once('.').expect("section.key");
        let e = load(
            &format!("{GOOD}\n[{section}]\n{name} = 1\n"),
            &Environment::default(),
        )
        .expect_err(key);
        assert_eq!(e.key, key, "{e}");
    }
}
