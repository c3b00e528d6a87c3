//! The daemon: builds the engine, takes the bus name, tells systemd it is ready,
//! keeps the watchdog fed from the main loop, reloads its configuration on
//! SIGHUP (`systemctl reload`: RELOADING=1, a new engine for the next operation,
//! READY=1; a configuration that does not load keeps the one in force), and on
//! SIGTERM cancels the operation in flight and exits.

pub mod args;
pub mod audit;
pub mod engine;
pub mod errors;
pub mod operation;
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

/// Loads the configuration again (on SIGHUP): the files, the environment and the
/// credentials, as at start.
pub type Reload = Box<dyn Fn() -> Result<Config, crate::config::ConfigError> + Send + Sync>;

/// Why a reload was refused: the new configuration's error (its `config:` line),
/// a setting that only a restart can change, or the engine it could not build.
#[derive(Debug, thiserror::Error)]
enum ReloadError {
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("dbus.bus cannot change on reload: restart the service")]
    Bus,
    #[error("the [site] section cannot change on reload: restart the service")]
    Site,
    #[error("{0}")]
    Start(#[from] engine::StartError),
}

fn reloaded(
    reload: &Reload,
    bus: Bus,
    old: &engine::Engine,
) -> Result<engine::Engine, ReloadError> {
    let config = reload()?;
    if config.dbus.bus != bus {
        return Err(ReloadError::Bus);
    }
    if &config.site != old.site_config() {
        return Err(ReloadError::Site);
    }
    let mut new = engine::Engine::new(config)?;
    // The link to the hub goes on, its state with it.
    new.adopt_hub(old.hub());
    Ok(new)
}

/// The engine in force, as the site's link reaches it: a reload replaces it.
struct Current(std::sync::RwLock<Arc<engine::Engine>>);

impl Current {
    fn get(&self) -> Arc<engine::Engine> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, engine: Arc<engine::Engine>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = engine;
    }
}

impl crate::site::Local for Current {
    fn with_storage(
        &self,
        f: &mut dyn FnMut(&mut crate::storage::Storage) -> Result<(), crate::storage::StorageError>,
    ) -> Result<(), crate::storage::StorageError> {
        crate::site::Local::with_storage(&*self.get(), f)
    }

    fn site_changed(&self) {
        crate::site::Local::site_changed(&*self.get());
    }
}

/// Keeps the way to AwareID ready for the next person (`server.keep_warm_s`),
/// on the engine in force: a turn right at the start (the token and the public
/// key in hand before the first person), then each time one is due. A failing
/// turn is warned of once and tried again after twice the interval, then four
/// times, up to 10 minutes: never a storm; the flows connect by themselves
/// meanwhile.
async fn keep_warm(current: Arc<Current>) {
    use std::time::Duration;
    let mut failing = 0u32;
    let mut ready = false;
    loop {
        let engine = current.get();
        let turn = tokio::task::spawn_blocking(move || engine.keep_warm())
            .await
            .ok()
            .flatten();
        let wait = match turn {
            // Off: looked at again, as a reload may turn it on.
            None => Duration::from_secs(60),
            Some((_, Ok(done), next)) => {
                if !ready {
                    tracing::info!(
                        done = ?done,
                        next_s = next.as_secs(),
                        "AwareID kept warm: the token and the public key are ready for the next person"
                    );
                }
                tracing::debug!(done = ?done, next_s = next.as_secs(), "AwareID kept warm");
                (failing, ready) = (0, true);
                next
            }
            Some((every, Err(e), _)) => {
                failing = failing.saturating_add(1);
                let wait = every
                    .saturating_mul(1 << failing.min(6))
                    .min(Duration::from_secs(600));
                if failing == 1 {
                    tracing::warn!(
                        error = %e,
                        retry_s = wait.as_secs(),
                        "AwareID cannot be kept warm; the next flow connects by itself"
                    );
                }
                ready = false;
                wait
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// The served object, as the main loop reaches it.
type ServedRef = zbus::object_server::InterfaceRef<service::Served>;

/// Runs the daemon until SIGTERM or SIGINT; `reload` loads the configuration
/// again on SIGHUP.
pub async fn run(config: Config, reload: Reload) -> Result<(), engine::StartError> {
    let started = std::time::Instant::now();
    let bus = config.dbus.bus;
    let engine = start_engine(config).await?;
    let device_id = engine.device_id().to_owned();
    let protection = engine.protection();
    let (site_device_id, site_protection) = engine
        .site_identity()
        .map_or(("", ""), |(id, p)| (id, p.as_str()));
    let (site_device_id, site_protection) = (site_device_id.to_owned(), site_protection);
    if let Some(hub) = engine.hub() {
        tracing::info!(
            door = hub.door.as_str(),
            hub = engine.site_config().hub.join(",").as_str(),
            max_stale_s = hub.max_stale_s,
            "this door is in a site: its enrollments are replicated through the hub"
        );
    }
    let current = Arc::new(Current(std::sync::RwLock::new(engine.clone())));
    if let Some(hub) = engine.hub() {
        tokio::spawn(crate::site::run(
            hub,
            engine.site_config().clone(),
            current.clone(),
        ));
    }
    tokio::spawn(keep_warm(current.clone()));
    let hub = engine.hub();
    let (conn, served) = serve(bus, engine).await?;
    if let Some(hub) = hub {
        // The Site property's PropertiesChanged, once per change of the link's
        // state (the hub is kept across reloads, so is this task).
        let served = served.clone();
        let mut changes = hub.subscribe();
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                let iface = served.get().await;
                if let Err(e) = iface.site_changed(served.signal_emitter()).await {
                    tracing::warn!(error = %e, "cannot emit a signal");
                }
            }
        });
    }
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    tracing::info!(
        bus = ?bus,
        name = BUS_NAME,
        device_id = device_id.as_str(),
        device_key_protection = protection.as_str(),
        site_device_id = site_device_id.as_str(),
        site_identity_protection = site_protection,
        startup_ms = started.elapsed().as_millis() as u64,
        "ready"
    );

    // The watchdog is fed from this loop: if it stalls, systemd restarts us. So
    // does an operation stuck past its timeout and grace (see
    // FaceCapture::overrun): the loop stops feeding it.
    let mut watchdog = watchdog_period().map(|period| tokio::time::interval(period / 2));
    let mut stuck_logged = false;
    let signal = |kind| {
        tokio::signal::unix::signal(kind).map_err(|e| engine::StartError::Other(e.to_string()))
    };
    let mut term = signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hup = signal(tokio::signal::unix::SignalKind::hangup())?;
    let reload = Arc::new(reload);
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = hup.recv() => apply_reload(&served, &reload, bus, &current).await,
            _ = tokio::signal::ctrl_c() => break,
            _ = async {
                match watchdog.as_mut() {
                    Some(t) => { t.tick().await; }
                    None => std::future::pending::<()>().await,
                }
            } => feed_watchdog(&served, &mut stuck_logged).await,
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

/// The engine of `config`, built off the async threads; warns of a plain
/// device key and writes the metrics textfile at once (its counters at zero,
/// so node_exporter shows a terminal that has served nobody yet).
async fn start_engine(config: Config) -> Result<Arc<engine::Engine>, engine::StartError> {
    let engine = Arc::new(
        tokio::task::spawn_blocking(move || engine::Engine::new(config))
            .await
            .map_err(|e| engine::StartError::Other(e.to_string()))??,
    );
    let protection = engine.protection();
    if protection == crate::crypto::sealed::Protection::Plain {
        tracing::warn!(
            device_key_protection = protection.as_str(),
            "the device key is stored in plain form in the database: for development only; \
             run facecaptured provision (as root) to seal it"
        );
    }
    let metrics = engine.clone();
    tokio::task::spawn_blocking(move || metrics.write_metrics());
    Ok(engine)
}

/// Serves the object over `engine` on `bus` and takes the bus name.
async fn serve(
    bus: Bus,
    engine: Arc<engine::Engine>,
) -> Result<(zbus::Connection, ServedRef), engine::StartError> {
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
    let served = conn
        .object_server()
        .interface::<_, service::Served>(OBJECT_PATH)
        .await
        .map_err(|e| engine::StartError::Other(format!("D-Bus: the object is not served: {e}")))?;
    Ok((conn, served))
}

/// SIGHUP: RELOADING=1, the configuration loaded again and a new engine put in
/// force for the next operation (or, when it does not load, the one in force
/// kept and the reason logged), READY=1.
async fn apply_reload(served: &ServedRef, reload: &Arc<Reload>, bus: Bus, current: &Current) {
    let mut states = vec![sd_notify::NotifyState::Reloading];
    states.extend(sd_notify::NotifyState::monotonic_usec_now().ok());
    let _ = sd_notify::notify(false, &states);
    let reload = reload.clone();
    let started = std::time::Instant::now();
    let old = current.get();
    let result = tokio::task::spawn_blocking(move || reloaded(&reload, bus, &old))
        .await
        .map_err(|e| ReloadError::Start(engine::StartError::Other(e.to_string())))
        .and_then(|r| r);
    match result {
        Ok(engine) => {
            let emitter = served.signal_emitter().clone();
            let engine = Arc::new(engine);
            current.set(engine.clone());
            served.get().await.replace_engine(&emitter, engine).await;
            tracing::info!(
                reload_ms = started.elapsed().as_millis() as u64,
                "configuration reloaded: the next operation uses it"
            );
        }
        Err(e) => {
            let key = match &e {
                ReloadError::Config(c) => c.key.clone(),
                ReloadError::Bus => "dbus.bus".into(),
                ReloadError::Site => "site".into(),
                ReloadError::Start(_) => String::new(),
            };
            tracing::error!(key, "{e}");
            tracing::warn!("reload refused: the configuration in force is kept");
        }
    }
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
}

/// A watchdog tick: WATCHDOG=1 unless an operation is stuck past its timeout
/// and grace, which is logged once.
async fn feed_watchdog(served: &ServedRef, stuck_logged: &mut bool) {
    match served.get().await.overrun(std::time::Instant::now()) {
        None => {
            *stuck_logged = false;
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
        }
        Some((operation, age)) => {
            if !*stuck_logged {
                tracing::error!(
                    operation,
                    age_s = age.as_secs(),
                    "the operation is stuck past daemon.operation_timeout_s and its grace; \
                     the watchdog is no longer fed, so systemd restarts the daemon"
                );
                *stuck_logged = true;
            }
        }
    }
}
