//! The one way this crate takes a `std::sync::Mutex`: tolerant of poisoning.
//!
//! A panic in one operation while it held a lock must not take every later call
//! of a long-running daemon down with it; the data under these locks is valid
//! after any panic (whole values are replaced, never half-written).

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, taking the guard even if a panic poisoned it.
///
/// ```
/// let m = std::sync::Mutex::new(1);
/// *facecapture::lock::lock(&m) += 1;
/// assert_eq!(*facecapture::lock::lock(&m), 2);
/// ```
pub fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
