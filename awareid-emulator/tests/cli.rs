//! The emulator as a demo or a test script runs it: --help and --version, and
//! what it writes out for a terminal (the certificate, QR keys, secrets and a
//! facecaptured.toml that facecaptured accepts).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const EMULATOR: &str = env!("CARGO_BIN_EXE_awareid-emulator");

#[test]
fn answers_help_and_version() {
    let help = Command::new(EMULATOR).arg("--help").output().expect("run");
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("Usage:"));
    let version = Command::new(EMULATOR)
        .arg("--version")
        .output()
        .expect("run");
    assert!(version.status.success());
    assert!(String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")));
    let bad = Command::new(EMULATOR)
        .args(["--listen", "192.0.2.1:8443"])
        .output()
        .expect("run");
    assert!(!bad.status.success(), "a non-loopback address is refused");
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("loopback"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[test]
fn writes_out_a_terminal_configuration() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut child = Command::new(EMULATOR)
        .args(["--listen", "127.0.0.1:0", "--out-dir"])
        .arg(dir.path())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // It logs that it listens once everything is written out.
    let stderr = child.stderr.take().expect("stderr");
    let listening = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("awareid-emulator listening"));
    let config = dir.path().join("facecaptured.toml");
    let loaded = facecapture::config::Config::load(
        Some(&config),
        &facecapture::config::Environment::default(),
        facecapture::config::Need::Daemon,
    );
    let _ = child.kill();
    let _ = child.wait();
    let listening = listening.expect("the emulator logged that it listens");
    let cfg = loaded.expect("facecaptured accepts the configuration it wrote");
    assert!(
        cfg.server.base_url.starts_with("https://127.0.0.1:"),
        "{}",
        cfg.server.base_url
    );
    assert!(listening.contains(&cfg.server.base_url), "{listening}");
}
