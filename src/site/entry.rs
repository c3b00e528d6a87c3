//! An entry of the site's bucket as it travels (docs/identity.md): the key
//! `<door>.<user tag>`, under the prefix the hub lets only that door write, and
//! the value sealed with the site's key, the key name as associated data. What
//! comes from the hub is untrusted: a value that does not open, names another
//! door than its key, or carries a field out of bounds is refused by name.
//!
//! ```
//! use facecapture::crypto::site::SiteIdentity;
//! use facecapture::site::entry::{self, Fact};
//! use facecapture::storage::Change;
//!
//! let site = SiteIdentity::generate().unwrap();
//! let queued = entry::seal(&site, "front", &Fact::Removed { username: "ann".into() }).unwrap();
//! assert!(queued.key.starts_with("front."));
//! let back = entry::open(&site, &queued.key, &queued.value, 9).unwrap();
//! assert_eq!((back.door.as_str(), back.revision), ("front", 9));
//! assert!(matches!(back.change, Change::Removed { ref username } if username == "ann"));
//! ```

use crate::crypto::site::SiteIdentity;
use crate::secret::Secret;
use crate::storage::{Change, Enrollment, Queued, SiteEntry};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The value's format tag.
pub const FORMAT: &str = "facecaptured-site-entry/1";

/// The largest value accepted from the hub.
pub const MAX_VALUE: usize = 4096;

/// The longest username, code, host or device id in a value.
const MAX_FIELD: usize = 256;

/// What a door says about a user (now: the entry carries the time it is
/// sealed, in milliseconds, which orders enrollments made at once).
#[derive(Debug)]
pub enum Fact<'a> {
    /// Enrolled here (the stored enrollment).
    Enrolled(&'a Enrollment),
    /// Removed here.
    Removed {
        /// Whom.
        username: String,
    },
}

/// Why an entry from the hub is not applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EntryError {
    /// The key is not `<door>.<tag>`.
    #[error("key {0:?} is not <door>.<user tag>")]
    Key(String),
    /// The value does not open with the site's key under its name.
    #[error("key {0:?}: the value does not open with this site's key (another site's, or changed)")]
    Seal(String),
    /// The value opens but is not an entry.
    #[error("key {key:?}: the value {problem}")]
    Value {
        /// The entry's key.
        key: String,
        /// What is wrong.
        problem: String,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Value {
    format: String,
    username: String,
    removed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    registration_code: Option<Zeroizing<String>>,
    #[serde(default)]
    server_host: String,
    #[serde(default)]
    device_id: String,
    at_ms: i64,
    door: String,
}

/// The key of `door`'s entry for the user tagged `tag`.
pub fn key(door: &str, tag: &str) -> String {
    format!("{door}.{tag}")
}

/// Seals what `door` says about a user into the entry it queues for the hub.
pub fn seal(site: &SiteIdentity, door: &str, fact: &Fact<'_>) -> Result<Queued, String> {
    let value = match fact {
        Fact::Enrolled(e) => Value {
            format: FORMAT.into(),
            username: e.username.clone(),
            removed: false,
            registration_code: Some(Zeroizing::new(e.registration_code.expose().to_owned())),
            server_host: e.server_host.clone(),
            device_id: e.device_id.clone(),
            at_ms: crate::clock::unix_now_ms(),
            door: door.into(),
        },
        Fact::Removed { username } => Value {
            format: FORMAT.into(),
            username: username.clone(),
            removed: true,
            registration_code: None,
            server_host: String::new(),
            device_id: String::new(),
            at_ms: crate::clock::unix_now_ms(),
            door: door.into(),
        },
    };
    let tag = site.user_tag(&value.username).map_err(|e| e.to_string())?;
    let key = key(door, &tag);
    let (at, removed) = (value.at_ms, value.removed);
    let plain = Zeroizing::new(serde_json::to_vec(&value).map_err(|e| e.to_string())?);
    let value = site.seal(&key, &plain).map_err(|e| e.to_string())?;
    Ok(Queued {
        tag,
        key,
        value,
        at,
        removed,
    })
}

/// Opens the entry `key` at `revision` from the hub.
pub fn open(
    site: &SiteIdentity,
    key: &str,
    sealed: &[u8],
    revision: u64,
) -> Result<SiteEntry, EntryError> {
    let (door, tag) = key
        .split_once('.')
        .filter(|(d, t)| {
            crate::config::is_site_name(d)
                && t.len() == 32
                && t.bytes().all(|b| b.is_ascii_hexdigit())
        })
        .ok_or_else(|| EntryError::Key(key.chars().take(80).collect()))?;
    let bad = |problem: &str| EntryError::Value {
        key: key.to_owned(),
        problem: problem.to_owned(),
    };
    if sealed.len() > MAX_VALUE {
        return Err(bad("is larger than 4 KiB"));
    }
    let plain = site
        .open(key, sealed)
        .map_err(|_| EntryError::Seal(key.to_owned()))?;
    let v: Value =
        serde_json::from_slice(&plain).map_err(|_| bad("is not a facecaptured site entry"))?;
    if v.format != FORMAT {
        return Err(bad("has another format"));
    }
    if v.door != door {
        return Err(bad("names another door than its key"));
    }
    let fields = [&v.username, &v.server_host, &v.device_id];
    if v.username.is_empty() || fields.iter().any(|f| f.len() > MAX_FIELD) {
        return Err(bad(
            "has an empty username or a field longer than 256 bytes",
        ));
    }
    if site.user_tag(&v.username).ok().as_deref() != Some(tag) {
        return Err(bad("names another user than its key"));
    }
    let change = match (v.removed, v.registration_code) {
        (true, _) => Change::Removed {
            username: v.username,
        },
        (false, Some(code)) if !code.is_empty() && code.len() <= MAX_FIELD => {
            Change::Enrolled(Enrollment {
                username: v.username,
                registration_code: Secret::new(code.as_str()),
                server_host: v.server_host,
                device_id: v.device_id,
                enrolled_at: v.at_ms.div_euclid(1000),
                reenroll_started_at: None,
                door: door.to_owned(),
            })
        }
        (false, _) => return Err(bad("is an enrollment without a registration code")),
    };
    Ok(SiteEntry {
        tag: tag.to_owned(),
        door: door.to_owned(),
        revision,
        at_ms: v.at_ms,
        change,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann() -> Enrollment {
        Enrollment {
            username: "ann".into(),
            registration_code: Secret::new("code-ann-1"),
            server_host: "awareid.example.com".into(),
            device_id: "5c1e2f8a93474d0ba61f33e27d90c458".into(),
            enrolled_at: 1_764_000_000,
            reenroll_started_at: None,
            door: "front".into(),
        }
    }

    #[test]
    fn an_enrollment_travels_sealed_and_comes_back_whole() {
        let site = SiteIdentity::generate().expect("site");
        let q = seal(&site, "front", &Fact::Enrolled(&ann())).expect("seal");
        assert_eq!(q.key, format!("front.{}", q.tag));
        for secret in [&b"code-ann-1"[..], b"ann", b"awareid"] {
            assert!(!q.value.windows(secret.len()).any(|w| w == secret));
            assert!(!q.key.as_bytes().windows(secret.len()).any(|w| w == secret));
        }
        let back = open(&site, &q.key, &q.value, 3).expect("open");
        let Change::Enrolled(e) = back.change else {
            panic!("not an enrollment")
        };
        assert_eq!(e.registration_code.expose(), "code-ann-1");
        assert_eq!(e.door, "front");
        assert!(back.at_ms / 1000 >= 1_764_000_000);
    }

    #[test]
    fn what_the_hub_could_forge_or_move_is_refused_by_name() {
        let site = SiteIdentity::generate().expect("site");
        let q = seal(&site, "front", &Fact::Enrolled(&ann())).expect("seal");
        // Moved under another door's key: the seal binds the key.
        let moved = format!("side.{}", q.tag);
        assert_eq!(
            open(&site, &moved, &q.value, 1).unwrap_err(),
            EntryError::Seal(moved.clone())
        );
        // Another site's entry.
        let other = SiteIdentity::generate().expect("other");
        assert!(matches!(
            open(&other, &q.key, &q.value, 1),
            Err(EntryError::Seal(_))
        ));
        // Keys outside the layout.
        for key in ["front", "front.ABC", "fr ont.0123", "a.b.c"] {
            assert!(
                matches!(open(&site, key, &q.value, 1), Err(EntryError::Key(_))),
                "{key}"
            );
        }
        // A door that seals a value naming another door, or another user, under
        // its own key.
        let forged = |value: serde_json::Value| {
            let key = format!("front.{}", q.tag);
            let sealed = site
                .seal(&key, &serde_json::to_vec(&value).expect("json"))
                .expect("seal");
            open(&site, &key, &sealed, 1).unwrap_err()
        };
        let base = serde_json::json!({"format": FORMAT, "username": "ann", "removed": false,
            "registration_code": "c", "at_ms": 1, "door": "front"});
        let mut v = base.clone();
        v["door"] = "side".into();
        assert!(forged(v).to_string().contains("names another door"));
        let mut v = base.clone();
        v["username"] = "bob".into();
        assert!(forged(v).to_string().contains("names another user"));
        let mut v = base.clone();
        v["registration_code"] = serde_json::Value::Null;
        assert!(
            forged(v)
                .to_string()
                .contains("without a registration code")
        );
        let mut v = base;
        v["extra"] = 1.into();
        assert!(
            forged(v)
                .to_string()
                .contains("is not a facecaptured site entry")
        );
        assert!(
            open(&site, &q.key, &vec![0; MAX_VALUE + 1], 1)
                .unwrap_err()
                .to_string()
                .contains("larger than 4 KiB")
        );
    }
}
