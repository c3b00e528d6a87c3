//! `facecapturectl doctor`: the field checks (the library's `facecapture::doctor`).
//! Here: the configuration on disk (what a restart or reload would load), the
//! clock, the daemon's bus name; then the daemon's own findings (`Diagnose`), or,
//! with the daemon down, the camera and the disk checked from here.

use facecapture::config::{Config, DEFAULT_PATH, Environment, Need};
use facecapture::doctor::{self, Finding, fail, pass};
use facecapture_dbus::{BUS_NAME, FaceCapture1Proxy};
use std::path::Path;

/// Runs every check, prints one line each (and what to do under a failed one);
/// Err when any failed.
pub fn run(cfg_path: Option<&Path>, session: bool) -> Result<(), String> {
    let mut findings = Vec::new();
    let file = match cfg_path {
        Some(p) => p.display().to_string(),
        None if Path::new(DEFAULT_PATH).is_file() => DEFAULT_PATH.to_owned(),
        None => format!("no {DEFAULT_PATH}, the defaults"),
    };
    let config = match Config::load(cfg_path, &Environment::from_process(), Need::Nothing) {
        Ok(c) if c.server.base_url.is_empty() => {
            findings.push(fail(
                "config",
                format!("{file}: server.base_url is not set"),
                "set server.base_url to the AwareID tenant's URL",
            ));
            Some(c)
        }
        Ok(c) => {
            findings.push(pass(
                "config",
                format!(
                    "{file} loads: server {}, camera {:?} {}",
                    c.server.base_url,
                    c.camera.source,
                    match c.camera.source {
                        facecapture::config::CameraSource::V4l => &c.camera.device,
                        facecapture::config::CameraSource::Files => &c.camera.path,
                    }
                ),
            ));
            Some(c)
        }
        Err(e) => {
            findings.push(fail(
                "config",
                format!("{file}: {e}"),
                "fix the key it names (facecaptured --check-config checks it as the daemon \
                 would); the daemon keeps the configuration it started with until then",
            ));
            None
        }
    };
    findings.push(doctor::clock());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let from_daemon = runtime.block_on(ask_daemon(session));
    match from_daemon {
        Ok(daemon) => findings.extend(daemon),
        Err(bus) => {
            findings.push(bus);
            // The daemon is down: what can be checked without it.
            if let Some(c) = &config {
                findings.push(doctor::camera_opens(&c.camera));
                findings.push(doctor::disk(&c.storage.state_dir));
            }
        }
    }
    let mut failed = 0;
    for f in &findings {
        print(f);
        failed += usize::from(!f.passed);
    }
    if failed == 0 {
        println!("all {} checks passed", findings.len());
        Ok(())
    } else {
        Err(format!("{failed} of {} checks failed", findings.len()))
    }
}

fn print(f: &Finding) {
    let mark = if f.passed { "ok  " } else { "FAIL" };
    println!("{mark} {}: {}", f.check, f.detail);
    if !f.passed && !f.advice.is_empty() {
        println!("     do: {}", f.advice);
    }
}

/// The daemon's bus name and its findings; Err(the failed `daemon` finding).
async fn ask_daemon(session: bool) -> Result<Vec<Finding>, Finding> {
    let which = if session { "session" } else { "system" };
    let builder = if session {
        zbus::connection::Builder::session()
    } else {
        zbus::connection::Builder::system()
    };
    let conn = builder.build().await.map_err(|e| {
        fail(
            "daemon",
            format!("cannot reach the {which} bus: {e}"),
            "is dbus running? systemctl status dbus",
        )
    })?;
    let bus = zbus::fdo::DBusProxy::new(&conn)
        .await
        .map_err(|e| fail("daemon", e.to_string(), ""))?;
    let name =
        zbus::names::BusName::try_from(BUS_NAME).map_err(|e| fail("daemon", e.to_string(), ""))?;
    // Asked without activating the service: doctor reports, it does not start.
    if !bus.name_has_owner(name).await.unwrap_or(false) {
        return Err(fail(
            "daemon",
            format!("nothing owns {BUS_NAME} on the {which} bus"),
            "systemctl status facecaptured; journalctl -u facecaptured -b (its config: \
             and device identity lines say why it stopped)",
        ));
    }
    let proxy = FaceCapture1Proxy::new(&conn)
        .await
        .map_err(|e| fail("daemon", e.to_string(), ""))?;
    let version = proxy.version().await.unwrap_or_default();
    let mut findings = vec![pass(
        "daemon",
        format!("facecaptured {version} owns {BUS_NAME} on the {which} bus"),
    )];
    match proxy.diagnose().await {
        Ok(more) => findings.extend(more),
        Err(e) => findings.push(fail(
            "diagnose",
            super::daemon::dbus_error(e),
            "Diagnose needs the facecapture-admin group (or root)",
        )),
    }
    Ok(findings)
}
