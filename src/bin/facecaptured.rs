//! facecaptured: the door terminal's face-capture daemon (D-Bus service
//! `org.facecapture.FaceCapture1`; see ARCHITECTURE.md).

use clap::Parser;
use facecapture::config::{Config, Environment, Need};
use facecapture::daemon::engine::StartError;
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
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Seal the device key and the tenant's secrets with systemd-creds (run as
    /// root, once after installing and again after changing a secret).
    ///
    /// Makes the device key, or moves a database's plain key into the sealed
    /// credential and scrubs the row; seals client_secret, apikey and aes_key
    /// found as plain files in the credentials directory or given with --secret,
    /// and removes the plain files; restarts a running service.
    Provision {
        /// What to seal with: tpm2 (with systemd's host key), host (host key
        /// only), or auto (tpm2 when the board has a usable TPM2).
        #[arg(long, value_name = "KEY", default_value = "auto", value_parser = ["auto", "tpm2", "host"])]
        with_key: String,
        /// A secret to seal: client_secret, apikey or aes_key, from FILE (`-`
        /// reads stdin, so the value never touches the disk). Repeatable.
        #[arg(long, value_name = "NAME=FILE")]
        secret: Vec<String>,
        /// Make a new device key even if one exists (a replacement board or a
        /// cleared TPM); every person must then be enrolled again.
        #[arg(long)]
        new_key: bool,
        /// TPM2 PCRs to bind the seal to (systemd-creds --tpm2-pcrs=, e.g.
        /// 0+7); by default systemd's, PCR 7 (the Secure Boot state).
        #[arg(long, value_name = "PCRS", default_value = "")]
        tpm2_pcrs: String,
        /// Where the credentials are.
        #[arg(
            long,
            value_name = "DIR",
            default_value = "/etc/facecaptured/credentials"
        )]
        credentials_dir: PathBuf,
        /// The daemon's state directory (its database).
        #[arg(long, value_name = "DIR", default_value = "/var/lib/facecaptured")]
        state_dir: PathBuf,
        /// Do not restart a running facecaptured.service afterwards.
        #[arg(long)]
        no_restart: bool,
    },
}

fn provision(command: Command) -> ExitCode {
    let Command::Provision {
        with_key,
        secret,
        new_key,
        tpm2_pcrs,
        credentials_dir,
        state_dir,
        no_restart,
    } = command;
    use facecapture::provision::{Request, WithKey};
    let mut secrets = Vec::new();
    for s in &secret {
        match s.split_once('=') {
            Some((name, path)) if !path.is_empty() => secrets.push((name.to_owned(), path.into())),
            _ => {
                eprintln!("facecaptured provision: --secret {s}: expected NAME=FILE");
                return ExitCode::from(2);
            }
        }
    }
    let req = Request {
        credentials_dir,
        state_dir,
        with_key: match with_key.as_str() {
            "tpm2" => WithKey::Tpm2,
            "host" => WithKey::Host,
            _ => WithKey::Auto,
        },
        new_key,
        secrets,
        tpm2_pcrs,
        ..Request::default()
    };
    match facecapture::provision::provision(&req) {
        Ok(report) => {
            for line in &report.lines {
                println!("{line}");
            }
            if report.changed && !no_restart && std::path::Path::new("/run/systemd/system").exists()
            {
                let restarted = std::process::Command::new("systemctl")
                    .args(["try-restart", "facecaptured.service"])
                    .status()
                    .is_ok_and(|s| s.success());
                println!(
                    "service: {}",
                    if restarted {
                        "facecaptured.service restarted if it was running"
                    } else {
                        "could not restart facecaptured.service; restart it to use the new credentials"
                    }
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("facecaptured provision: {e}");
            ExitCode::FAILURE
        }
    }
}

/// sysexits(3) EX_CONFIG: the configuration is missing or wrong.
const EX_CONFIG: u8 = 78;

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(command) = args.command {
        return provision(command);
    }
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
    let path = args.config.clone();
    let reload: facecapture::daemon::Reload =
        Box::new(move || Config::load(path.as_deref(), &Environment::from_process(), Need::Daemon));
    match runtime.block_on(facecapture::daemon::run(cfg, reload)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ StartError::Identity(_)) => {
            // Like a configuration error: not retried by systemd, nothing signed.
            tracing::error!(key = "device_key", "{e}");
            ExitCode::from(EX_CONFIG)
        }
        Err(e) => {
            tracing::error!(error = %e, "facecaptured stopped");
            ExitCode::FAILURE
        }
    }
}
