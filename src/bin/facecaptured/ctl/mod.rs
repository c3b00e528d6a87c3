//! facecapturectl: the operator's CLI (docs/cli.md), the part of the one program
//! that runs when it is called by that name (`/usr/bin/facecapturectl` is a link
//! to `facecaptured`, as busybox's applets are). Daemon commands (`enroll`,
//! `enroll-qr`, `authenticate`, `authenticate-qr`, `list`, `remove`, `status`,
//! `stats`, `cancel`, `camera-check`, `doctor`) and offline tools (`detect`,
//! `qr decode`, `site new-identity`, `site create-bucket`, `trigger-enroll`,
//! `trigger-authenticate`). Exit status: 0 ok, 1 operation failed, 2 usage.

mod cli;
mod daemon;
mod doctor;

use clap::Parser;
use cli::{Args, Command, QrCommand, SiteCommand};
use facecapture::awareid::wire::{
    TriggerAuthenticateRequest, TriggerEnrollRequest, TriggerResponse,
};
use facecapture::awareid::{AwareIdClient, HttpSettings};
use facecapture::config::{Config, Environment, Need};
use std::path::Path;
use std::process::ExitCode;

/// facecapturectl's `main`.
pub fn main() -> ExitCode {
    let args = Args::parse();
    facecapture::logging::init("facecapturectl");
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("facecapturectl: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: Option<&Path>, need: Need) -> Result<Config, String> {
    Config::load(path, &Environment::from_process(), need).map_err(|e| e.to_string())
}

fn run(args: Args) -> Result<(), String> {
    let cfg_path = args.config.as_deref();
    let session = args.session;
    match args.command {
        Command::Daemon(call) => daemon::run(call, session),
        Command::Doctor => doctor::run(cfg_path, session),
        Command::Detect {
            images,
            min_face_px,
        } => {
            let cfg = load(cfg_path, Need::Nothing)?;
            let min = min_face_px.unwrap_or(cfg.capture.min_face_px).max(20);
            let mut detector = facecapture::detect::Detector::from_config(&cfg.capture)
                .map_err(|e| e.to_string())?;
            let mut failed = false;
            for path in images {
                match facecapture::capture::detect_file(&path, &mut detector, min) {
                    Ok(faces) => {
                        println!(
                            "{}",
                            serde_json::json!({"image": path.display().to_string(), "faces": faces})
                        );
                    }
                    Err(e) => {
                        eprintln!("facecapturectl: {}: {e}", path.display());
                        failed = true;
                    }
                }
            }
            if failed {
                Err("some images could not be read".into())
            } else {
                Ok(())
            }
        }
        Command::Qr {
            command: QrCommand::Decode { input },
        } => {
            let cfg = load(cfg_path, Need::Nothing)?;
            let keys = cfg
                .qr_keys()
                .map_err(|e| e.to_string())?
                .ok_or("qr.signing_public_key and qr.aes_key must be configured")?;
            let url = if input.starts_with("https://") || input.starts_with("http://") {
                input
            } else {
                let img = image::open(&input).map_err(|e| format!("{input}: {e}"))?;
                facecapture::qrimage::find_in(&img.to_luma8())
                    .ok_or_else(|| format!("{input}: no QR code found"))?
            };
            let cb = facecapture::crypto::qr::decode(&url, &keys, &cfg.qr_allowed_hosts())
                .map_err(|e| e.to_string())?;
            println!(
                "{}",
                serde_json::json!({"host": cb.host, "session_token": cb.session_token, "apikey": "<masked>"})
            );
            Ok(())
        }
        Command::Site {
            command: SiteCommand::NewIdentity { out },
        } => new_site_identity(&out),
        Command::Site {
            command: SiteCommand::CreateBucket { replicas },
        } => {
            let cfg = load(cfg_path, Need::Nothing)?;
            if !cfg.site.enabled() {
                return Err("site.hub is not set in the configuration".into());
            }
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime
                .block_on(facecapture::site::create_bucket(&cfg.site, replicas.into()))
                .map_err(|e| e.to_string())?;
            println!(
                "{}",
                serde_json::json!({"bucket": cfg.site.bucket, "replicas": replicas})
            );
            Ok(())
        }
        Command::TriggerEnroll {
            username,
            email,
            png,
        } => {
            let client = client(cfg_path)?;
            let resp = client
                .trigger_enroll(&TriggerEnrollRequest {
                    username,
                    email,
                    notify_options: None,
                })
                .map_err(|e| e.to_string())?;
            show(&resp, png.as_deref())
        }
        Command::TriggerAuthenticate { username, png } => {
            let client = client(cfg_path)?;
            let resp = client
                .trigger_authenticate(&TriggerAuthenticateRequest {
                    username,
                    notify_options: None,
                })
                .map_err(|e| e.to_string())?;
            show(&resp, png.as_deref())
        }
    }
}

/// `site new-identity --out FILE`: a new file only (`O_EXCL`), 0600 from its
/// creation, synced before the device id is printed.
fn new_site_identity(out: &Path) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let site = facecapture::crypto::site::SiteIdentity::generate().map_err(|e| e.to_string())?;
    let bytes = site.to_file().map_err(|e| e.to_string())?;
    let named = |e: std::io::Error| format!("{}: {e}", out.display());
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(out)
        .map_err(named)?;
    file.write_all(&bytes).map_err(named)?;
    file.sync_all().map_err(named)?;
    println!(
        "{}",
        serde_json::json!({"site_identity": out.display().to_string(), "device_id": site.device_id})
    );
    Ok(())
}

fn client(cfg_path: Option<&Path>) -> Result<AwareIdClient, String> {
    let cfg = load(cfg_path, Need::Daemon)?;
    let http = HttpSettings::from_config(&cfg.server).map_err(|e| e.to_string())?;
    AwareIdClient::new(&cfg.server, &http).map_err(|e| e.to_string())
}

fn show(resp: &TriggerResponse, png: Option<&Path>) -> Result<(), String> {
    let url = resp.session_callback_url.as_deref().unwrap_or_default();
    let qr = facecapture::qrimage::to_terminal(url).map_err(|e| e.to_string())?;
    println!("{qr}");
    println!("{url}");
    if let Some(path) = png {
        let image = resp
            .qrcode_image
            .as_deref()
            .ok_or("the server sent no qrcodeImage")?;
        let bytes = facecapture::crypto::unb64(image).map_err(|_| "qrcodeImage is not base64")?;
        std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}
