//! awareid-emulator: a local AwareID-compatible server for development, demos and
//! tests. See the `awareid_emulator` library.

use awareid_emulator::{EmulatorConfig, run};
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "awareid-emulator",
    version,
    about = "Local AwareID-compatible server (HTTPS, self-signed) for development and tests"
)]
struct Args {
    /// Address to listen on (loopback; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Serve plain HTTP instead of HTTPS.
    #[arg(long)]
    plain_http: bool,
    /// Write the certificate, QR keys, secrets and a facecaptured.toml here.
    #[arg(long)]
    out_dir: Option<PathBuf>,
    #[arg(long, default_value = "emulated")]
    customer_name: String,
    #[arg(long, default_value = "door-terminal")]
    client_id: String,
    #[arg(long, default_value = "emulator-client-secret")]
    client_secret: String,
    #[arg(long, default_value = "emulator-apikey")]
    apikey: String,
    /// Lifetime of access tokens, in seconds.
    #[arg(long, default_value_t = 300)]
    token_ttl_s: u64,
    /// Faces narrower than this (px) do not count in submitted frames.
    #[arg(long, default_value_t = 60)]
    min_face_px: u32,
    /// Another name (host name or IP address) for the certificate to cover
    /// besides 127.0.0.1 and localhost, such as 10.0.2.2 for a qemu guest
    /// reaching this loopback through user networking. Repeatable.
    #[arg(long = "cert-name", value_name = "NAME")]
    cert_names: Vec<String>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    facecapture::logging::init("awareid-emulator");
    if !args.listen.ip().is_loopback() {
        eprintln!(
            "awareid-emulator: --listen must be a loopback address, got {}",
            args.listen
        );
        return std::process::ExitCode::from(2);
    }
    let cfg = EmulatorConfig {
        listen: args.listen,
        tls: !args.plain_http,
        customer_name: args.customer_name,
        client_id: args.client_id,
        client_secret: args.client_secret,
        apikey: args.apikey,
        token_ttl: Duration::from_secs(args.token_ttl_s.max(1)),
        min_face_px: args.min_face_px,
        cert_names: args.cert_names,
        ..EmulatorConfig::default()
    };
    let shutdown = async {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    match run(cfg, args.out_dir.as_deref(), shutdown).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("awareid-emulator: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
