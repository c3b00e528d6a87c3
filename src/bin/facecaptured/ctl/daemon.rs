//! facecapturectl's daemon commands (docs/cli.md): calls to org.facecapture.FaceCapture1
//! with the Progress and CaptureFeedback signals shown live on stderr and the
//! result as one JSON line on stdout.

use super::cli::Call;
use facecapture_dbus::{CaptureFeedback, EnrollmentStatus, Error, FaceCapture1Proxy, Progress};
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
pub fn dbus_error(e: zbus::Error) -> String {
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
    let conn = connect(session).await?;
    let proxy = FaceCapture1Proxy::new(&conn).await.map_err(dbus_error)?;
    let (stop, watcher) = show_signals(&proxy).await?;
    let result = perform(&proxy, call).await;
    // Signals sent before the reply are printed before the result.
    let _ = stop.send(());
    let _ = watcher.await;
    let value = result?;
    println!("{value}");
    verdict(&value)
}

/// A connection to the system bus, or the session bus with `--session`.
async fn connect(session: bool) -> Result<zbus::Connection, String> {
    let builder = if session {
        zbus::connection::Builder::session()
    } else {
        zbus::connection::Builder::system()
    };
    builder
        .method_timeout(CALL_TIMEOUT)
        .build()
        .await
        .map_err(|e| {
            format!(
                "cannot reach the {} bus: {e}",
                if session { "session" } else { "system" }
            )
        })
}

/// Prints Progress and CaptureFeedback on stderr while the call runs, until
/// told to stop (then what was queued before the reply, and no more).
async fn show_signals(
    proxy: &FaceCapture1Proxy<'_>,
) -> Result<
    (
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ),
    String,
> {
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
    Ok((stop, watcher))
}

/// Makes the call: its result as the JSON line to print.
async fn perform(proxy: &FaceCapture1Proxy<'_>, call: Call) -> Result<serde_json::Value, String> {
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
        Call::List => proxy.list_site_enrollments().await.map(|list| {
            serde_json::Value::Array(
                list.into_iter()
                    .map(|e| serde_json::json!({"username": e.username, "server_host": e.server_host, "enrolled_at": e.enrolled_at, "standing": e.standing, "door": e.door}))
                    .collect(),
            )
        }),
        Call::Remove { username } => proxy
            .remove_enrollment(&username)
            .await
            .map(|()| serde_json::json!({"removed": username})),
        Call::Status => status(proxy).await,
        Call::Stats => proxy.get_statistics().await.map(|stats| {
            serde_json::json!(stats.into_iter().collect::<std::collections::BTreeMap<_, _>>())
        }),
        Call::Cancel => proxy.cancel().await.map(|()| serde_json::json!({"cancel": "requested"})),
        Call::CameraCheck { seconds, snapshot } => {
            if snapshot.is_some() && !is_root() {
                return Err("--snapshot is for root only: the frame is a picture of a person's \
                            face (biometric data)"
                    .into());
            }
            match proxy.camera_check(seconds, snapshot.is_some()).await {
                Ok(reply) => {
                    for line in &reply.report.advice {
                        eprintln!("advice: {line}");
                    }
                    if let Some(path) = &snapshot {
                        save_snapshot(path, &reply.frame)?;
                        eprintln!("snapshot: {} (biometric data: delete it when done)", path.display());
                    }
                    Ok(report_json(&reply.report))
                }
                Err(e) => Err(e),
            }
        }
    };
    result.map_err(dbus_error)
}

/// The exit status a printed result stands for: a refusal or an incomplete
/// enrollment is a failed operation.
fn verdict(value: &serde_json::Value) -> Result<(), String> {
    if value.get("granted") == Some(&serde_json::Value::Bool(false)) {
        return Err("access not granted".into());
    }
    let complete = |s: &serde_json::Value| {
        s.as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .and_then(EnrollmentStatus::from_wire)
            == Some(EnrollmentStatus::Complete)
    };
    if value.get("enrollment_status").is_some_and(|s| !complete(s)) {
        return Err("enrollment not complete".into());
    }
    Ok(())
}

async fn status(proxy: &FaceCapture1Proxy<'_>) -> zbus::Result<serde_json::Value> {
    let mut status = serde_json::json!({
        "state": proxy.state().await?,
        "device_id": proxy.device_id().await?,
        // (null from a daemon older than the property)
        "device_key_protection": proxy.device_key_protection().await.ok(),
        "camera_available": proxy.camera_available().await?,
        "version": proxy.version().await?,
    });
    // Only on a door of a site (and a daemon that has the property).
    if let Some(site) = proxy.site().await.ok().filter(|s| !s.door.is_empty()) {
        status["site"] = serde_json::json!({
            "door": site.door,
            "connected": site.connected,
            "last_contact": site.last_contact,
            "revision": site.revision,
            "outbox": site.outbox,
            "max_stale_s": site.max_stale_s,
        });
    }
    Ok(status)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Writes the snapshot for root alone (0600, replacing an older one).
fn save_snapshot(path: &std::path::Path, png: &[u8]) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if png.is_empty() {
        return Err("the daemon sent no snapshot".into());
    }
    let _ = std::fs::remove_file(path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(png))
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn report_json(r: &facecapture_dbus::CameraReport) -> serde_json::Value {
    serde_json::json!({
        "device": r.device, "driver": r.driver, "card": r.card, "format": r.format,
        "width": r.width, "height": r.height,
        "fps_granted": r.fps_granted, "fps_measured": r.fps_measured, "fps_judged": r.fps_judged,
        "judge_ms_median": r.judge_ms_median,
        "seconds": r.seconds, "frames": r.frames, "bad_frames": r.bad_frames,
        "dropped_frames": r.dropped_frames, "face_share": r.face_share,
        "compliant_share": r.compliant_share, "face_width_median": r.face_width_median,
        "min_face_px": r.min_face_px, "face_x_median": r.face_x_median,
        "face_y_median": r.face_y_median, "brightness_median": r.brightness_median,
        "dark_share_median": r.dark_share_median,
        "face_brightness_median": r.face_brightness_median,
        "sharpness_median": r.sharpness_median, "sharpness_min": r.sharpness_min,
        "commonest_feedback": r.commonest_feedback,
        "feedback_counts": r.feedback_counts.iter().collect::<std::collections::BTreeMap<_, _>>(),
        "advice": r.advice,
    })
}
