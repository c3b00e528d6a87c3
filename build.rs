//! Finds rustface's face model inside the rustface package that Cargo resolved, so
//! the binary embeds exactly the model that ships with the detector crate.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!("cargo:rerun-if-changed=build.rs");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    // Offline first (a fetched or vendored tree has every package); cargo metadata
    // also wants other platforms' manifests, so fall back to letting it fetch them.
    let metadata = |offline: bool| {
        let mut cmd = Command::new(&cargo);
        cmd.args(["metadata", "--format-version", "1", "--manifest-path"])
            .arg(PathBuf::from(&manifest).join("Cargo.toml"));
        if offline {
            cmd.arg("--offline");
        }
        cmd.output().expect("run cargo metadata")
    };
    let mut out = metadata(true);
    if !out.status.success() {
        out = metadata(false);
    }
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cargo metadata JSON");
    let manifest_path = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|p| p["name"] == "rustface")
        .and_then(|p| p["manifest_path"].as_str())
        .expect("rustface is a dependency");
    let model = PathBuf::from(manifest_path)
        .parent()
        .expect("package dir")
        .join("model/seeta_fd_frontal_v1.0.bin");
    assert!(
        model.is_file(),
        "rustface model missing at {}",
        model.display()
    );
    println!("cargo:rerun-if-changed={}", model.display());
    println!(
        "cargo:rustc-env=FACECAPTURE_RUSTFACE_MODEL={}",
        model.display()
    );
}
