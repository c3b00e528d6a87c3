//! facecapturectl's daemon commands (SPEC 7): calls to org.facecapture.FaceCapture1
//! with the Progress and CaptureFeedback signals shown live on stderr and the
//! result as one JSON line on stdout.

use crate::cli::Call;
use facecapture_dbus::{CaptureFeedback, Error, FaceCapture1Proxy, Progress};
use futures_util::{FutureExt, StreamExt};
use std::time::Duration;

/// Longer than the daemon's own operation timeout, so the daemon's answer is the one seen.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

pub fn run(call: Call, session: bool) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(call_daemon(call, session))
}

/// The daemon's errors by their type (`Busy: enroll is in progress`); the bus's own
/// (AccessDenied, no daemon) by their D-Bus name, with what to do about them.
fn dbus_error(e: zbus::Error) -> String {
    use zbus::DBusError;
    match Error::from(e) {
        Error::ZBus(zbus::Error::MethodError(name, msg, _)) => {
            let advice = match name.as_str() {
                "org.freedesktop.DBus.Error.AccessDenied" => {
                    " (the bus policy refuses this user: facecapture-admin may call every \
                     method, facecapture only Authenticate, AuthenticateWithQr and Cancel)"
                }
                "org.freedesktop.DBus.Error.ServiceUnknown" => {
                    " (is facecaptured running? systemctl status facecaptured)"
                }
                _ => "",
            };
            format!("D-Bus: {name}: {}{advice}", msg.unwrap_or_default())
        }
        Error::ZBus(e) => format!("D-Bus: {e}"),
        e => format!("{}: {}", e.kind(), e.description().unwrap_or_default()),
    }
}

async fn call_daemon(call: Call, session: bool) -> Result<(), String> {
    let builder = if session {
        zbus::connection::Builder::session()
    } else {
        zbus::connection::Builder::system()
    };
    let conn = builder
        .method_timeout(CALL_TIMEOUT)
        .build()
        .await
        .map_err(|e| {
            format!(
                "cannot reach the {} bus: {e}",
                if session { "session" } else { "system" }
            )
        })?;
    let proxy = FaceCapture1Proxy::new(&conn).await.map_err(dbus_error)?;

    // Show what the daemon does while the call runs.
    let mut progress = proxy.receive_progress().await.map_err(dbus_error)?;
    let mut feedback = proxy.receive_capture_feedback().await.map_err(dbus_error)?;
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let watcher = tokio::spawn(async move {
        let show_progress = |p: Progress| {
            if let Ok(a) = p.args() {
                eprintln!("progress: {} {}", a.operation(), a.step());
            }
        };
        let show_feedback = |f: CaptureFeedback| {
            if let Ok(a) = f.args() {
                eprintln!("feedback: {}", a.code());
            }
        };
        loop {
            tokio::select! {
                biased;
                Some(p) = progress.next() => show_progress(p),
                Some(f) = feedback.next() => show_feedback(f),
                _ = &mut stopped => {
                    // The daemon sends its signals before the reply, and the
                    // connection queues them in order: what came before the reply
                    // is already queued here.
                    while let Some(Some(p)) = progress.next().now_or_never() {
                        show_progress(p);
                    }
                    while let Some(Some(f)) = feedback.next().now_or_never() {
                        show_feedback(f);
                    }
                    break;
                }
                else => break,
            }
        }
    });

    let result = match call {
        Call::Enroll {
            username,
            email,
            phone,
            first,
            last,
        } => proxy
            .enroll(&username, &email, &phone, &first, &last)
            .await
            .map(|r| {
                serde_json::json!({"username": username, "enrollment_status": r.enrollment_status, "liveness": r.liveness})
            }),
        Call::EnrollQr { url } => proxy
            .enroll_with_qr(url.as_deref().unwrap_or_default())
            .await.map(|r| {
            serde_json::json!({"username": r.username, "enrollment_status": r.enrollment_status, "liveness": r.liveness})
        }),
        Call::Authenticate { username } => proxy.authenticate(&username).await.map(|a| {
            serde_json::json!({"username": username, "granted": a.granted, "liveness": a.liveness, "matched": a.matched, "match_score": a.match_score, "auth_status": a.auth_status})
        }),
        Call::AuthenticateQr { url } => proxy
            .authenticate_with_qr(url.as_deref().unwrap_or_default())
            .await.map(|a| {
            serde_json::json!({"username": a.username, "granted": a.granted, "liveness": a.liveness, "matched": a.matched, "match_score": a.match_score, "auth_status": a.auth_status})
        }),
        Call::List => proxy.list_enrollments().await.map(|list| {
            serde_json::Value::Array(
                list.into_iter()
                    .map(|e| serde_json::json!({"username": e.username, "server_host": e.server_host, "enrolled_at": e.enrolled_at, "standing": e.standing}))
                    .collect(),
            )
        }),
        Call::Remove { username } => proxy
            .remove_enrollment(&username)
            .await
            .map(|()| serde_json::json!({"removed": username})),
        Call::Status => status(&proxy).await,
        Call::Stats => proxy.get_statistics().await.map(|stats| {
            serde_json::json!(stats.into_iter().collect::<std::collections::BTreeMap<_, _>>())
        }),
        Call::Cancel => proxy.cancel().await.map(|()| serde_json::json!({"cancel": "requested"})),
    };
    // Signals sent before the reply are printed before the result.
    let _ = stop.send(());
    let _ = watcher.await;
    let value = result.map_err(dbus_error)?;
    println!("{value}");
    if value.get("granted") == Some(&serde_json::Value::Bool(false)) {
        return Err("access not granted".into());
    }
    if value
        .get("enrollment_status")
        .is_some_and(|s| s != &serde_json::json!(2))
    {
        return Err("enrollment not complete".into());
    }
    Ok(())
}

async fn status(proxy: &FaceCapture1Proxy<'_>) -> zbus::Result<serde_json::Value> {
    Ok(serde_json::json!({
        "state": proxy.state().await?,
        "device_id": proxy.device_id().await?,
        // (null from a daemon older than the property)
        "device_key_protection": proxy.device_key_protection().await.ok(),
        "camera_available": proxy.camera_available().await?,
        "version": proxy.version().await?,
    }))
}
