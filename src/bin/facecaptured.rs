//! facecaptured: the door terminal's face-capture daemon (D-Bus service
//! `org.facecapture.FaceCapture1`; see ARCHITECTURE.md).

use clap::Parser;
use facecapture::config::{Config, Environment, Need};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "facecaptured",
    version,
    about = "Face capture daemon for door terminals (D-Bus, V4L2, AwareID)"
)]
struct Args {
    /// Configuration file (default: /etc/facecaptured/config.toml if present).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Validate the configuration and exit (for ExecStartPre= and operators).
    #[arg(long)]
    check_config: bool,
}

/// sysexits(3) EX_CONFIG: the configuration is missing or wrong.
const EX_CONFIG: u8 = 78;

fn main() -> ExitCode {
    let args = Args::parse();
    let target = facecapture::logging::init("facecaptured");
    let cfg = match Config::load(
        args.config.as_deref(),
        &Environment::from_process(),
        Need::Daemon,
    ) {
        Ok(cfg) => cfg,
        Err(e) => {
            // One line naming the key: a structured journal entry under systemd,
            // a plain line on stderr otherwise.
            match target {
                facecapture::logging::Target::Journald => tracing::error!(key = %e.key, "{e}"),
                facecapture::logging::Target::Stderr => eprintln!("facecaptured: {e}"),
            }
            // EX_CONFIG: the unit's RestartPreventExitStatus= keeps systemd from
            // retrying a configuration that cannot work until the operator fixes it.
            return ExitCode::from(EX_CONFIG);
        }
    };
    if args.check_config {
        println!(
            "configuration OK: server {}, camera {:?}, state in {}",
            cfg.server.base_url,
            cfg.camera.source,
            cfg.storage.state_dir.display()
        );
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(4)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(facecapture::daemon::run(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "facecaptured stopped");
            ExitCode::FAILURE
        }
    }
}
