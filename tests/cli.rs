//! The binaries as an operator runs them: --help/--version, --check-config, and
//! facecapturectl's offline tools against the AwareID emulator on loopback HTTPS.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "common/program.rs"]
mod program;

use program::DAEMON;

/// facecapturectl: the program called through its link.
fn ctl() -> &'static str {
    program::facecapturectl().to_str().expect("a UTF-8 path")
}

fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/faces")
        .join(name)
        .display()
        .to_string()
}

/// The emulator in this process, its certificate, QR keys, secrets and a
/// facecaptured.toml written out for the command-line tools to use.
struct LocalServer {
    _emulator: awareid_emulator::Emulator,
    dir: tempfile::TempDir,
}

impl LocalServer {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        let emulator =
            awareid_emulator::Emulator::start(Default::default()).expect("emulator starts");
        emulator.write_out(dir.path()).expect("emulator files");
        Self {
            _emulator: emulator,
            dir,
        }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("facecaptured.toml")
    }
}

#[test]
fn every_binary_answers_help_and_version() {
    // One program, two names: each name answers as its own program.
    for (bin, usage) in [
        (ctl(), "Usage: facecapturectl [OPTIONS] <COMMAND>"),
        (DAEMON, "Usage: facecaptured [OPTIONS] [COMMAND]"),
    ] {
        let help = run(bin, &["--help"]);
        assert!(help.status.success(), "{bin} --help");
        assert!(
            text(&help.stdout).contains(usage),
            "{bin}: {}",
            text(&help.stdout)
        );
        let version = run(bin, &["--version"]);
        assert!(version.status.success());
        assert!(
            text(&version.stdout).contains(env!("CARGO_PKG_VERSION")),
            "{bin}"
        );
    }
    let usage = run(ctl(), &["no-such-command"]);
    assert_eq!(usage.status.code(), Some(2), "usage errors exit 2");
}

#[test]
fn check_config_names_the_bad_key_in_one_line() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/facecaptured.toml");
    let out = run(
        DAEMON,
        &[
            "--check-config",
            "--config",
            example.to_str().expect("path"),
        ],
    );
    // EX_CONFIG, which the unit does not restart on.
    assert_eq!(out.status.code(), Some(78));
    let err = text(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("server.client_secret") && err.contains("missing secret"),
        "{err}"
    );

    let dir = tempfile::tempdir().expect("tmp");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[capture]\nframez = 3\n").expect("write");
    let out = run(
        DAEMON,
        &["--check-config", "--config", bad.to_str().expect("path")],
    );
    assert_eq!(out.status.code(), Some(78));
    assert!(
        text(&out.stderr).contains("capture.framez: unknown key"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn offline_tools_against_the_emulator() {
    let emu = LocalServer::start();
    let cfg = emu.config();
    let cfg = cfg.to_str().expect("path");

    let ok = run(DAEMON, &["--check-config", "--config", cfg]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).contains("configuration OK"));

    let png = emu.dir.path().join("qr.png");
    let out = run(
        ctl(),
        &[
            "--config",
            cfg,
            "trigger-enroll",
            "alice",
            "alice@example.com",
            "--png",
            png.to_str().expect("p"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let url = stdout
        .lines()
        .find(|l| l.starts_with("https://127.0.0.1:"))
        .expect("the URL is printed")
        .to_owned();
    assert!(url.contains("/onboarding?data="), "{url}");
    assert!(
        stdout.contains('█') || stdout.contains('▀') || stdout.contains('▄'),
        "a QR code is drawn"
    );

    for input in [url.as_str(), png.to_str().expect("png")] {
        let out = run(ctl(), &["--config", cfg, "qr", "decode", input]);
        assert!(out.status.success(), "{input}: {}", text(&out.stderr));
        let v: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).expect("json");
        assert!(
            v["host"].as_str().expect("host").starts_with("127.0.0.1:"),
            "{v}"
        );
        assert_eq!(v["apikey"], "<masked>");
        assert!(
            v["session_token"].as_str().is_some_and(|t| t.len() == 36),
            "{v}"
        );
        assert!(!text(&out.stdout).contains("emulator-apikey"));
    }

    // A tampered URL is refused with the reason, exit 1.
    let mut tampered = url.clone();
    let last = tampered.pop().expect("char");
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let out = run(ctl(), &["--config", cfg, "qr", "decode", &tampered]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("signature") || err.contains("base64"), "{err}");

    let out = run(ctl(), &["--config", cfg, "trigger-authenticate", "nobody"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("User is not enrolled"),
        "{}",
        text(&out.stderr)
    );
}

/// AwareID's certificate is checked against the system's roots (Debian's
/// ca-certificates; SSL_CERT_FILE points the store elsewhere, as OpenSSL's
/// programs read it) beside server.ca_file: without the key, the emulator is
/// trusted when the system's store holds its certificate, and refused, with a
/// warning that names the two ways out, when the store is empty.
#[test]
fn without_server_ca_file_the_systems_roots_decide() {
    let emu = LocalServer::start();
    let cert = emu.dir.path().join("emulator-cert.pem");
    let cfg = std::fs::read_to_string(emu.config()).expect("config");
    let without: String = cfg
        .lines()
        .filter(|l| !l.starts_with("ca_file"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(without, cfg, "the emulator's config names its certificate");
    let cfg = emu.dir.path().join("system-roots.toml");
    std::fs::write(&cfg, without).expect("write");
    let trigger = |store: &Path| {
        Command::new(ctl())
            .args(["--config", cfg.to_str().expect("path")])
            .args(["trigger-authenticate", "nobody"])
            .env("SSL_CERT_FILE", store)
            .env_remove("SSL_CERT_DIR")
            .env("RUST_LOG", "warn")
            .output()
            .expect("run")
    };
    // Trusted: the call reaches the emulator, which answers for the user.
    let out = trigger(&cert);
    let err = text(&out.stderr);
    assert!(err.contains("User is not enrolled"), "{err}");
    // An empty store: refused before any request, and said.
    let empty = emu.dir.path().join("no-roots.pem");
    std::fs::write(&empty, "").expect("write");
    let out = trigger(&empty);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(!err.contains("User is not enrolled"), "{err}");
    assert!(
        err.contains("no trusted root certificates") && err.contains("ca-certificates"),
        "{err}"
    );
}

#[test]
fn detect_prints_one_json_line_per_image() {
    let out = run(
        ctl(),
        &["detect", &fixture("astronaut.jpg"), &fixture("no-face.jpg")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0]["image"]
            .as_str()
            .expect("image")
            .ends_with("astronaut.jpg")
    );
    let face = &lines[0]["faces"][0];
    for k in ["x", "y", "width", "height", "score"] {
        assert!(face[k].is_number(), "{k} in {face}");
    }
    assert_eq!(lines[1]["faces"].as_array().expect("faces").len(), 0);
    let out = run(ctl(), &["detect", "/nonexistent.jpg"]);
    assert_eq!(out.status.code(), Some(1));
}
