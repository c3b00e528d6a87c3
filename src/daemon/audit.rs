//! The audit trail: every access decision the terminal takes is one log record with
//! a journald `MESSAGE_ID` and the fields an auditor filters on (`USERNAME`,
//! `OPERATION`, `OUTCOME`, `REASON`, `DURATION_MS`, `DEVICE_ID`). The message
//! catalog `systemd/facecaptured.catalog` (installed in /usr/lib/systemd/catalog/)
//! explains each id, so `journalctl -x` shows what a record means and
//! `journalctl MESSAGE_ID=<id>` lists every record of one kind. This module owns the
//! ids and the one function that writes a record; the service and the engine call
//! it where a decision is taken. Each operation's record also counts it in the
//! metrics (`crate::metrics`).

use super::engine::Enrolled;
use crate::awareid::wire::STATUS_COMPLETE;
use crate::workflow::AuthOutcome;
use facecapture_dbus::{Error, Operation};
use zbus::DBusError as _;

/// The kinds of record, each with its journald `MESSAGE_ID` (a 128-bit id made once
/// with `systemd-id128 new`; the catalog file holds the same ids, and a test holds
/// them together).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// A first enrollment was stored.
    EnrollmentStored,
    /// A re-enrollment replaced the stored registration code.
    EnrollmentReplaced,
    /// An enrollment was removed (RemoveEnrollment).
    EnrollmentRemoved,
    /// An enrollment ended without a stored code (AwareID refused it, a capture or
    /// server failure, cancelled).
    EnrollmentFailed,
    /// A person was granted access.
    AccessGranted,
    /// An authentication ended without a grant (no match, not live, not enrolled,
    /// a failure, cancelled).
    AccessRefused,
    /// A QR code was refused before its session began (not ours, tampered, expired,
    /// a host not allowed, the other method's code, the session refused).
    QrSessionRefused,
    /// The camera could not be used any more (unplugged, failed, cannot open).
    CameraLost,
}

impl Record {
    /// Every kind, in the catalog's order.
    pub const ALL: [Record; 8] = [
        Record::EnrollmentStored,
        Record::EnrollmentReplaced,
        Record::EnrollmentRemoved,
        Record::EnrollmentFailed,
        Record::AccessGranted,
        Record::AccessRefused,
        Record::QrSessionRefused,
        Record::CameraLost,
    ];

    /// The journald `MESSAGE_ID` (32 lowercase hex digits).
    pub const fn message_id(self) -> &'static str {
        match self {
            Record::EnrollmentStored => "e11b873d14c140dda1b1ac3a477c27af",
            Record::EnrollmentReplaced => "1482e6dd22d944a2b9aec5b25424eac3",
            Record::EnrollmentRemoved => "bc3af9d13a064d148949b1a9d943465d",
            Record::EnrollmentFailed => "47424841db02491aa530995b50ee109d",
            Record::AccessGranted => "8446d3cfc56a4acf8e060d4bed6f0ad9",
            Record::AccessRefused => "7d2b23f4b0fb4d4fbd1b46e803ba81ec",
            Record::QrSessionRefused => "3eda7024bba5430cb951b74727b97fe9",
            Record::CameraLost => "09d911efab844cf89fb2d005c93d6603",
        }
    }

    /// The `OUTCOME` field: one word an auditor filters on.
    pub const fn outcome(self) -> &'static str {
        match self {
            Record::EnrollmentStored => "stored",
            Record::EnrollmentReplaced => "replaced",
            Record::EnrollmentRemoved => "removed",
            Record::EnrollmentFailed => "failed",
            Record::AccessGranted => "granted",
            Record::AccessRefused => "refused",
            Record::QrSessionRefused => "qr-refused",
            Record::CameraLost => "camera-lost",
        }
    }

    /// The record's message (MESSAGE=).
    const fn message(self) -> &'static str {
        match self {
            Record::EnrollmentStored => "enrollment stored",
            Record::EnrollmentReplaced => "enrollment replaced",
            Record::EnrollmentRemoved => "enrollment removed",
            Record::EnrollmentFailed => "enrollment failed",
            Record::AccessGranted => "access granted",
            Record::AccessRefused => "access refused",
            Record::QrSessionRefused => "QR session refused",
            Record::CameraLost => "camera lost",
        }
    }
}

/// One decision, as the record carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision<'a> {
    /// What kind of decision.
    pub record: Record,
    /// The operation that took it (`enroll`, ..., `remove-enrollment`).
    pub operation: &'static str,
    /// Who it concerns ("" when nobody is known: a refused QR code, the camera).
    pub username: &'a str,
    /// Why, in words ("" for a grant or a stored enrollment). Never a secret: error
    /// messages name what went wrong, never a code, token or face data.
    pub reason: String,
    /// How long the operation took, in milliseconds.
    pub duration_ms: u64,
}

/// Writes `decision` as one record for the terminal `device_id`.
pub fn record(decision: &Decision<'_>, device_id: &str) {
    let Decision {
        record,
        operation,
        username,
        reason,
        duration_ms,
    } = decision;
    let username = if username.is_empty() { "-" } else { username };
    let message = match (username, reason.is_empty()) {
        ("-", true) => record.message().to_owned(),
        ("-", false) => format!("{}: {reason}", record.message()),
        (user, true) => format!("{}: {user}", record.message()),
        (user, false) => format!("{}: {user}: {reason}", record.message()),
    };
    let reason = if reason.is_empty() { "-" } else { reason };
    if *record != Record::CameraLost
        && let Some(m) = crate::metrics::global()
    {
        m.operation(
            operation,
            record.outcome(),
            std::time::Duration::from_millis(*duration_ms),
        );
    }
    tracing::info!(
        message_id = record.message_id(),
        operation,
        username,
        outcome = record.outcome(),
        reason,
        duration_ms = *duration_ms,
        device_id,
        "{message}"
    );
}

/// The decision an operation's failure `error` stands for: an enrollment failed, an
/// access refused, or for a QR method whose session never began (`username` is not
/// known yet), a QR session refused. `None` for Busy (no operation ran).
pub fn failure<'a>(
    operation: Operation,
    username: &'a str,
    error: &Error,
    duration_ms: u64,
) -> Option<Decision<'a>> {
    // Busy: no operation ran; the camera check decides nothing about anyone.
    if matches!(error, Error::Busy(_)) || operation == Operation::CameraCheck {
        return None;
    }
    let qr = matches!(operation, Operation::EnrollQr | Operation::AuthenticateQr);
    let record = if matches!(error, Error::QrInvalid(_)) || (qr && username.is_empty()) {
        Record::QrSessionRefused
    } else if matches!(operation, Operation::Enroll | Operation::EnrollQr) {
        Record::EnrollmentFailed
    } else {
        Record::AccessRefused
    };
    Some(Decision {
        record,
        operation: operation.as_str(),
        username,
        reason: format!(
            "{}: {}",
            error.kind(),
            error.description().unwrap_or_default()
        ),
        duration_ms,
    })
}

/// The decision an enrollment that ended with AwareID's answer stands for, as the
/// engine settled it: stored, replaced (the user was enrolled before), or failed
/// (no code stored: the enrollment status says why).
pub fn enrolled(operation: Operation, enrolled: &Enrolled, duration_ms: u64) -> Decision<'_> {
    let outcome = &enrolled.outcome;
    let (record, reason) = match (enrolled.stored, enrolled.replaced) {
        (true, false) => (Record::EnrollmentStored, String::new()),
        (true, true) => (Record::EnrollmentReplaced, String::new()),
        (false, _) => (
            Record::EnrollmentFailed,
            format!(
                "enrollment_status {}{}",
                outcome.enrollment_status,
                if outcome.liveness { "" } else { ", not live" }
            ),
        ),
    };
    Decision {
        record,
        operation: operation.as_str(),
        username: &outcome.username,
        reason,
        duration_ms,
    }
}

/// The decision verifyFace's answer stands for: granted, or refused and why.
pub fn authenticated(
    operation: Operation,
    outcome: &AuthOutcome,
    duration_ms: u64,
) -> Decision<'_> {
    let record = if outcome.granted {
        Record::AccessGranted
    } else {
        Record::AccessRefused
    };
    Decision {
        record,
        operation: operation.as_str(),
        username: &outcome.username,
        reason: refusal(outcome.liveness, outcome.matched, outcome.auth_status),
        duration_ms,
    }
}

/// Why verifyFace's answer is no grant, in words (`""` for a grant).
///
/// ```
/// use facecapture::daemon::audit::refusal;
/// assert_eq!(refusal(true, true, 2), "");
/// assert_eq!(refusal(false, true, 3), "not live (auth_status 3)");
/// assert_eq!(refusal(true, false, 3), "no match (auth_status 3)");
/// ```
pub fn refusal(liveness: bool, matched: bool, auth_status: i32) -> String {
    match (liveness, matched, auth_status) {
        (true, true, STATUS_COMPLETE) => String::new(),
        (false, true, s) => format!("not live (auth_status {s})"),
        (true, false, s) => format!("no match (auth_status {s})"),
        (false, false, s) => format!("not live, no match (auth_status {s})"),
        (true, true, s) => format!("auth_status {s}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The catalog as shipped: its entries, each id with its text.
    fn catalog() -> Vec<(String, String)> {
        let text = include_str!("../../systemd/facecaptured.catalog");
        text.split("\n-- ")
            .skip(1)
            .map(|entry| {
                let (id, body) = entry.split_once('\n').unwrap_or((entry, ""));
                (id.trim().to_owned(), body.to_owned())
            })
            .collect()
    }

    #[test]
    fn every_record_has_a_unique_id_and_a_catalog_entry() {
        let entries = catalog();
        assert_eq!(entries.len(), Record::ALL.len(), "catalog entries");
        let mut seen = std::collections::HashSet::new();
        for r in Record::ALL {
            let id = r.message_id();
            assert_eq!(id.len(), 32, "{r:?}");
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
            assert!(seen.insert(id), "{r:?}'s id is used twice");
            let (_, body) = entries
                .iter()
                .find(|(e, _)| e == id)
                .unwrap_or_else(|| panic!("no catalog entry for {r:?} ({id})"));
            assert!(body.contains("Subject: "), "{r:?}: no Subject");
            assert!(body.contains("Defined-By: facecaptured"), "{r:?}");
        }
    }

    #[test]
    fn failures_are_refusals_of_the_operation_they_ended() {
        let f = |op, user, e: Error| failure(op, user, &e, 5).map(|d| d.record);
        let timeout = || Error::CaptureTimeout("no face".into());
        assert_eq!(
            f(Operation::Authenticate, "alice", timeout()),
            Some(Record::AccessRefused)
        );
        assert_eq!(
            f(Operation::Enroll, "alice", timeout()),
            Some(Record::EnrollmentFailed)
        );
        assert_eq!(
            f(Operation::AuthenticateQr, "", timeout()),
            Some(Record::QrSessionRefused)
        );
        assert_eq!(
            f(Operation::AuthenticateQr, "bob", timeout()),
            Some(Record::AccessRefused)
        );
        assert_eq!(
            f(Operation::EnrollQr, "bob", Error::QrInvalid("x".into())),
            Some(Record::QrSessionRefused)
        );
        assert_eq!(f(Operation::Enroll, "a", Error::Busy("x".into())), None);
        assert_eq!(f(Operation::CameraCheck, "", timeout()), None);
        let d = failure(Operation::Authenticate, "alice", &timeout(), 7).expect("decision");
        assert_eq!(d.reason, "CaptureTimeout: no face");
        assert_eq!(d.duration_ms, 7);
    }
}
