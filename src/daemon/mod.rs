//! The daemon: builds the engine, takes the bus name, tells systemd it is ready,
//! keeps the watchdog fed from the main loop, and on SIGTERM cancels the
//! operation in flight and exits.

pub mod audit;
pub mod engine;
pub mod errors;
pub mod readonly;
pub mod service;

use crate::config::{Bus, Config};
use std::sync::Arc;

pub use facecapture_dbus::{BUS_NAME, OBJECT_PATH};

/// systemd's watchdog period, as sd_watchdog_enabled(3) reads it: WATCHDOG_USEC,
/// for this process when WATCHDOG_PID is ours or unset.
fn watchdog_period() -> Option<std::time::Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    match std::env::var("WATCHDOG_PID") {
        Ok(pid) if pid.parse::<u32>().ok() != Some(std::process::id()) => None,
        _ if usec == 0 => None,
        _ => Some(std::time::Duration::from_micros(usec)),
    }
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(config: Config) -> Result<(), engine::StartError> {
    let started = std::time::Instant::now();
    let bus = config.dbus.bus;
    let engine = Arc::new(
        tokio::task::spawn_blocking(move || engine::Engine::new(config))
            .await
            .map_err(|e| engine::StartError::Other(e.to_string()))??,
    );
    let device_id = engine.device_id().to_owned();
    let protection = engine.protection();
    if protection == crate::crypto::sealed::Protection::Plain {
        tracing::warn!(
            device_key_protection = protection.as_str(),
            "the device key is stored in plain form in the database: for development only; \
             run facecaptured provision (as root) to seal it"
        );
    }
    // The textfile exists from the start (its counters at zero), so node_exporter
    // shows a terminal that has served nobody yet.
    {
        let engine = engine.clone();
        tokio::task::spawn_blocking(move || engine.write_metrics());
    }
    let builder = match bus {
        Bus::System => zbus::connection::Builder::system(),
        Bus::Session => zbus::connection::Builder::session(),
    };
    let conn = builder
        .serve_at(OBJECT_PATH, service::FaceCapture::served(engine))
        .name(BUS_NAME)
        .build()
        .await
        .map_err(|e| engine::StartError::Other(format!("D-Bus: cannot take {BUS_NAME}: {e}")))?;
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    tracing::info!(
        bus = ?bus,
        name = BUS_NAME,
        device_id = device_id.as_str(),
        device_key_protection = protection.as_str(),
        startup_ms = started.elapsed().as_millis() as u64,
        "ready"
    );

    // The watchdog is fed from this loop: if it stalls, systemd restarts us. So
    // does an operation stuck past its timeout and grace (see
    // FaceCapture::overrun): the loop stops feeding it.
    let mut watchdog = watchdog_period().map(|period| tokio::time::interval(period / 2));
    let served = conn
        .object_server()
        .interface::<_, service::Served>(OBJECT_PATH)
        .await
        .map_err(|e| engine::StartError::Other(format!("D-Bus: the object is not served: {e}")))?;
    let mut stuck_logged = false;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| engine::StartError::Other(e.to_string()))?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = async {
                match watchdog.as_mut() {
                    Some(t) => { t.tick().await; }
                    None => std::future::pending::<()>().await,
                }
            } => {
                match served.get().await.overrun(std::time::Instant::now()) {
                    None => {
                        stuck_logged = false;
                        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
                    }
                    Some((operation, age)) => {
                        if !stuck_logged {
                            tracing::error!(
                                operation,
                                age_s = age.as_secs(),
                                "the operation is stuck past daemon.operation_timeout_s and its grace; \
                                 the watchdog is no longer fed, so systemd restarts the daemon"
                            );
                            stuck_logged = true;
                        }
                    }
                }
            }
        }
    }
    tracing::info!("stopping");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    served.get().await.cancel_current();
    // The cancelled operation's reply goes out and its blocking work ends at its
    // next cancel check; then the connection closes (bounded: systemd's stop
    // timeout is longer).
    if tokio::time::timeout(std::time::Duration::from_secs(5), conn.graceful_shutdown())
        .await
        .is_err()
    {
        tracing::warn!("an operation did not end within 5 s of SIGTERM");
    }
    Ok(())
}
