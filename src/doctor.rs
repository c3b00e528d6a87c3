//! `facecapturectl doctor`: the checks of what usually breaks in the field, each
//! with what to do about it. The daemon runs the ones that need its seat for
//! `Diagnose` (the credentials it decrypted, the camera it owns, AwareID with its
//! secrets and proxy, its state directory); facecapturectl adds the configuration
//! on disk, the bus name and the clock, and when the daemon is down it checks the
//! camera and the disk itself.

use crate::camera::{self, Next};
use crate::config::CameraConfig;
use std::path::Path;
use std::time::{Instant, SystemTime};

pub use facecapture_dbus::Finding;

/// Less free space than this in the state directory fails: SQLite needs room for
/// its journal, and journald for the logs.
pub const MIN_FREE_BYTES: u64 = 64 * 1024 * 1024;
/// No terminal's clock is right before this (2026-01-01T00:00:00Z, before this
/// release): earlier is a clock reset to the epoch or a firmware date.
const NOT_BEFORE_UNIX: u64 = 1_767_225_600;

/// A passing finding.
pub fn pass(check: &str, detail: impl Into<String>) -> Finding {
    Finding {
        check: check.into(),
        passed: true,
        detail: detail.into(),
        advice: String::new(),
    }
}

/// A failing finding, with what to do.
pub fn fail(check: &str, detail: impl Into<String>, advice: impl Into<String>) -> Finding {
    Finding {
        check: check.into(),
        passed: false,
        detail: detail.into(),
        advice: advice.into(),
    }
}

/// The kernel's clock discipline, as adjtimex(2) reads it: whether an NTP client
/// (systemd-timesyncd, chrony) has synchronised it. This is what timedatectl's
/// "System clock synchronized" shows.
fn kernel_clock_synchronised() -> std::io::Result<bool> {
    // SAFETY: a zeroed timex with modes 0 only reads; adjtimex fills it.
    let mut t: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: a valid timex.
    let state = unsafe { libc::adjtimex(&mut t) };
    if state < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(state != libc::TIME_ERROR && t.status & libc::STA_UNSYNC == 0)
}

/// A door's link to its site's hub (only on a door of a site).
pub fn site(
    door: &str,
    hub: &[String],
    state: &crate::site::SiteState,
    max_stale_s: u64,
) -> Finding {
    let detail = format!(
        "door {door}: revision {} applied, {} entries waiting for the hub",
        state.applied, state.outbox
    );
    if state.connected {
        return pass("site", format!("linked to the hub; {detail}"));
    }
    let since = if state.last_contact == 0 {
        "never heard from".to_owned()
    } else {
        format!(
            "last heard from {}s ago",
            crate::clock::unix_now().saturating_sub(state.last_contact)
        )
    };
    let limit = if max_stale_s == 0 {
        "it decides from its own copy meanwhile, with no limit (site.max_stale_s = 0)".to_owned()
    } else {
        format!(
            "it decides from its own copy for site.max_stale_s = {max_stale_s}s after the last \
             contact, then answers SiteStale"
        )
    };
    fail(
        "site",
        format!("the hub ({}) is {since}; {detail}; {limit}", hub.join(", ")),
        "check the door's network path to the hub (journalctl -u facecaptured says why the \
         link is down: refused credentials, TLS, the bucket) and the hub itself",
    )
}

/// The clock: synchronised by NTP, and not before this release. TLS to AwareID
/// fails on a board without a battery-backed clock that came up after a power cut
/// with the wrong time.
pub fn clock() -> Finding {
    let now = SystemTime::now();
    let unix = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let shown = chrono::DateTime::from_timestamp(unix as i64, 0).map_or_else(
        || unix.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    );
    if unix < NOT_BEFORE_UNIX {
        return fail(
            "clock",
            format!("the clock reads {shown}, before this release: it was reset"),
            "TLS certificates are not valid yet at that time: set the time \
             (timedatectl set-time, or let systemd-timesyncd reach its NTP servers: \
             timedatectl timesync-status), and fit a clock battery if the board has none",
        );
    }
    match kernel_clock_synchronised() {
        Ok(true) => pass("clock", format!("{shown}, synchronised (NTP)")),
        Ok(false) => fail(
            "clock",
            format!("{shown}, not synchronised by NTP"),
            "a board without a clock battery starts with the wrong time after a power cut, \
             and TLS to AwareID fails: timedatectl set-ntp true, and check that \
             systemd-timesyncd reaches its servers (timedatectl timesync-status; a site \
             firewall may block UDP 123)",
        ),
        Err(e) => fail(
            "clock",
            format!("{shown}; cannot read the clock's state: {e}"),
            "check with timedatectl",
        ),
    }
}

/// Free space in `dir` (the state directory).
pub fn disk(dir: &Path) -> Finding {
    let free = match free_bytes(dir) {
        Ok(free) => free,
        Err(e) => {
            return fail(
                "disk",
                format!("{}: {e}", dir.display()),
                "the state directory must exist (systemd-tmpfiles --create)",
            );
        }
    };
    let shown = format!(
        "{:.1} MiB free in {}",
        free as f64 / 1048576.0,
        dir.display()
    );
    if free < MIN_FREE_BYTES {
        fail(
            "disk",
            shown,
            format!(
                "at least {} MiB are needed (the enrollment database and the journal): \
                 journalctl --vacuum-size=50M, and remove what else fills the card",
                MIN_FREE_BYTES / 1048576
            ),
        )
    } else {
        pass("disk", shown)
    }
}

fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("the path holds a NUL byte"))?;
    // SAFETY: a zeroed statvfs, filled by the call.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a valid statvfs.
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // (u32 on armhf, u64 on the 64-bit targets.)
    #[allow(clippy::useless_conversion)]
    let (blocks, size) = (u64::from(st.f_bavail), u64::from(st.f_frsize));
    Ok(blocks.saturating_mul(size))
}

/// Opens the configured camera and waits for one frame (at most the capture
/// pipeline's stall limit).
pub fn camera_opens(config: &CameraConfig) -> Finding {
    let started = Instant::now();
    match camera::open(config) {
        Ok(mut source) => camera_delivers(source.as_mut(), started),
        Err(e) => camera_unavailable(&e),
    }
}

/// The camera that could not be opened, with what to check.
pub fn camera_unavailable(e: &camera::CameraError) -> Finding {
    fail(
        "camera",
        e.to_string(),
        "check camera.device (v4l2-ctl --list-devices), the cable, and that no other \
         program holds the camera",
    )
}

/// Waits for a frame from an opened `source`.
pub fn camera_delivers(source: &mut dyn camera::FrameSource, started: Instant) -> Finding {
    let deadline = Instant::now() + crate::capture::STALL;
    loop {
        match source.next_frame(deadline) {
            Ok(Next::Frame(f)) => {
                let info = source.info();
                return pass(
                    "camera",
                    format!(
                        "{} ({}, {}) delivered a {}x{} {} frame in {} ms",
                        source.name(),
                        if info.driver.is_empty() {
                            "-"
                        } else {
                            &info.driver
                        },
                        if info.card.is_empty() {
                            "-"
                        } else {
                            &info.card
                        },
                        f.width,
                        f.height,
                        f.format.name(),
                        started.elapsed().as_millis()
                    ),
                );
            }
            Ok(Next::Bad(_)) => continue,
            Ok(Next::Deadline) => {
                return fail(
                    "camera",
                    format!(
                        "{} opened but sent no frame in {} s",
                        source.name(),
                        crate::capture::STALL.as_secs()
                    ),
                    "replug the camera; on a USB hub, try a port of its own",
                );
            }
            Err(e) => {
                return fail("camera", e.to_string(), "replug the camera and try again");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_space_is_measured_and_a_missing_directory_named() {
        let dir = tempfile::tempdir().expect("tmp");
        let f = disk(dir.path());
        assert_eq!(f.check, "disk");
        assert!(f.detail.contains("MiB free in"), "{f:?}");
        let gone = disk(&dir.path().join("missing"));
        assert!(!gone.passed && gone.detail.contains("missing"), "{gone:?}");
        assert!(gone.advice.contains("systemd-tmpfiles"));
    }

    #[test]
    fn the_clock_check_reads_the_kernel_state() {
        let f = clock();
        // Either state is possible on a test machine; what it says must match it.
        let synced = kernel_clock_synchronised().expect("adjtimex reads");
        assert_eq!(f.passed, synced, "{f:?}");
        assert_eq!(f.detail.contains("not synchronised"), !synced, "{f:?}");
        assert!(f.detail.contains(" UTC"), "{f:?}");
    }

    #[test]
    fn a_camera_that_is_not_there_fails_with_advice() {
        let f = camera_opens(&CameraConfig {
            device: "/dev/video-none".into(),
            ..CameraConfig::default()
        });
        assert!(!f.passed && f.detail.contains("/dev/video-none"), "{f:?}");
        assert!(f.advice.contains("v4l2-ctl"));
    }
}
