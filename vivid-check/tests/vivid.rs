//! The `v4l` source against a real V4L2 driver: Debian's kernel booted under qemu
//! with `vivid` (tests/vivid/boot.sh), running this crate's program (src/main.rs) inside:
//! webcam capture with format negotiation and every format vivid offers, a face
//! photo through vivid's HDMI
//! loopback into a compliant package, and Disconnect mid-stream giving
//! CameraUnavailable with the next operation working again; once with vivid's
//! single-planar nodes and once with `multiplanar=2`.
//!
//! It needs qemu, Debian's kernel with vivid and a static busybox, so it is
//! `#[ignore]`d: a plain `cargo test` lists it as ignored, and tests/run.sh (which
//! installs them) runs it with `--include-ignored`. Run that way without them, it
//! fails naming what is missing.

use std::path::PathBuf;
use std::process::Command;

/// Boots the guest (vivid single- or multi-planar) and checks every step.
fn against_vivid(multiplanar: bool) {
    let program = env!("CARGO_BIN_EXE_vivid-check");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vivid/boot.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(program)
        .env("VIVID_MULTIPLANAR", if multiplanar { "1" } else { "0" })
        .output()
        .expect("run boot.sh");
    let console = String::from_utf8_lossy(&out.stdout);
    let errors = String::from_utf8_lossy(&out.stderr);
    assert_ne!(
        out.status.code(),
        Some(77),
        "the vivid test cannot run: {errors}"
    );
    let checks: Vec<&str> = console
        .lines()
        .filter(|l| l.starts_with("VIVID-"))
        .collect();
    println!("{}", checks.join("\n"));
    assert!(out.status.success(), "guest failed:\n{console}\n{errors}");
    let api = if multiplanar {
        "VIVID-API multi-planar"
    } else {
        "VIVID-API single-planar"
    };
    assert!(
        checks.iter().any(|l| l.trim_end() == api),
        "{api} missing:\n{console}"
    );
    // The steps every run must pass (shared with tests/boards.sh for ARM).
    for step in include_str!("../../tests/vivid/expected").lines() {
        assert!(
            checks.iter().any(|l| l.starts_with(step)),
            "{step} missing:\n{console}"
        );
    }
}

#[test]
#[ignore = "needs qemu-system-x86, linux-image-amd64, busybox-static (tests/run.sh installs them)"]
fn v4l_source_against_vivid_under_qemu() {
    against_vivid(false);
}

/// vivid with `multiplanar=2`: the nodes offer only the multi-planar API, as the
/// capture nodes of MIPI CSI receivers do.
#[test]
#[ignore = "needs qemu-system-x86, linux-image-amd64, busybox-static (tests/run.sh installs them)"]
fn v4l_source_against_multiplanar_vivid_under_qemu() {
    against_vivid(true);
}
