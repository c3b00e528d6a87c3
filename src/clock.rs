//! The wall clock, read one way: Unix time for stored rows and package timestamps.
//! A clock before 1970 (a board without an RTC before NTP) reads as 0, not a panic.

use std::time::{SystemTime, UNIX_EPOCH};

fn since_epoch() -> std::time::Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Seconds since the Unix epoch (enrolled-at, the re-enrollment mark).
///
/// ```
/// assert!(facecapture::clock::unix_now() > 1_700_000_000);
/// ```
pub fn unix_now() -> i64 {
    i64::try_from(since_epoch().as_secs()).unwrap_or(i64::MAX)
}

/// Milliseconds since the Unix epoch, as the Face SDK package's timestamps are.
pub fn unix_ms() -> f64 {
    since_epoch().as_secs_f64() * 1000.0
}

/// Whole milliseconds since the Unix epoch (the order of a site's entries made
/// at once).
pub fn unix_now_ms() -> i64 {
    i64::try_from(since_epoch().as_millis()).unwrap_or(i64::MAX)
}
