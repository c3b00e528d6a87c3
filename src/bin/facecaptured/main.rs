//! facecaptured: the door terminal's face-capture daemon (D-Bus service
//! `org.facecapture.FaceCapture1`; see ARCHITECTURE.md), and the one program of
//! the package: called as `facecapturectl` (the package's link to it) it is the
//! operator's CLI ([`ctl`]). One program links the library once: on arm64 the
//! two names cost what the daemon alone did.

mod cli;
mod ctl;

use clap::Parser;
use cli::{Args, Command};
use facecapture::config::{Config, Environment, Need};
use facecapture::daemon::engine::StartError;
use std::process::ExitCode;

fn provision(command: Command) -> ExitCode {
    let Command::Provision {
        with_key,
        secret,
        site_identity,
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
        site_identity,
        tpm2_pcrs,
        // systemd's RuntimeDirectory= (the provisioning unit's): this start's
        // result for the daemon's unit.
        runtime_dir: std::env::var_os("RUNTIME_DIRECTORY")
            .filter(|d| !d.is_empty())
            .map(std::path::PathBuf::from),
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

/// The name the program answers to when called by it: the operator's CLI.
const CTL_NAME: &str = "facecapturectl";

/// Whether the program was called as facecapturectl: the last component of
/// argv\[0\] (a link's own name, not its target's), as busybox chooses its applet.
fn called_as_ctl(argv0: Option<&std::ffi::OsStr>) -> bool {
    argv0
        .map(std::path::Path::new)
        .and_then(std::path::Path::file_name)
        .is_some_and(|name| name == CTL_NAME)
}

fn main() -> ExitCode {
    if called_as_ctl(std::env::args_os().next().as_deref()) {
        return ctl::main();
    }
    // Keys, tokens and frames live in this process's memory: no core dump of
    // it (systemd-coredump would keep one on disk), and no ptrace or
    // /proc/PID/mem by another process of the same user.
    // SAFETY: prctl(PR_SET_DUMPABLE, 0) takes no pointers and cannot fail here.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
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

#[cfg(test)]
mod tests {
    use super::called_as_ctl;
    use std::ffi::OsStr;

    #[test]
    fn the_name_called_by_chooses_the_program() {
        for ctl in [
            "facecapturectl",
            "/usr/bin/facecapturectl",
            "./facecapturectl",
        ] {
            assert!(called_as_ctl(Some(OsStr::new(ctl))), "{ctl}");
        }
        for daemon in [
            "facecaptured",
            "/usr/bin/facecaptured",
            "/tmp/facecapturectl/facecaptured",
            "facecapturectl2",
            "",
        ] {
            assert!(!called_as_ctl(Some(OsStr::new(daemon))), "{daemon}");
        }
        assert!(!called_as_ctl(None));
    }
}
