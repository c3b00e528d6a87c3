//! The site's enrollments as this door holds them (docs/identity.md, "A site
//! with many doors"): which entries of the hub's bucket it has applied, the
//! last revision it applied (so a watch resumes from there after a restart),
//! and the outbox of its own entries the hub has not confirmed yet.
//!
//! One rule decides among a user's entries, on every door alike: the newest by
//! the hub's revision wins, a removal included. An entry is applied in one
//! transaction with the revision it carries, so a crash never leaves a row
//! applied and its revision forgotten, or the reverse. A user this door
//! enrolled or removed whose entry waits in the outbox keeps its local row:
//! that entry will reach the hub with a newer revision than any it sees now.
//!
//! Two doors that enroll the same person at once both get a code from AwareID,
//! and AwareID keeps only the one it issued last; the hub may order their
//! entries the other way round (a door that was cut off publishes late). So
//! between two enrollments the one made later (`at_ms`, the door's clock when
//! it stored addFace's answer) stands: a door whose own pending enrollment is older than
//! one arriving drops it, and a door whose own enrollment is newer than one
//! arriving with a newer revision publishes its own again, which then wins by
//! the rule on every door.

use super::{Enrollment, Storage, StorageError, db_err, upsert};
use rusqlite::{OptionalExtension, Transaction, params};

/// An entry of the site's bucket, opened.
#[derive(Debug)]
pub struct SiteEntry {
    /// The user's tag (the keyed hash the hub names them by).
    pub tag: String,
    /// The door that wrote it (its key's prefix, which the hub's permissions
    /// hold to that door).
    pub door: String,
    /// The hub's revision of the entry.
    pub revision: u64,
    /// When the writing door sealed it (Unix milliseconds, its clock).
    pub at_ms: i64,
    /// What it says.
    pub change: Change,
}

impl SiteEntry {
    /// Whom it is about.
    pub fn username(&self) -> &str {
        match &self.change {
            Change::Enrolled(e) => &e.username,
            Change::Removed { username } => username,
        }
    }
}

/// What an entry says about its user.
#[derive(Debug)]
pub enum Change {
    /// Enrolled (or enrolled again) at `door`, with this code.
    Enrolled(Enrollment),
    /// Removed.
    Removed {
        /// Whom.
        username: String,
    },
}

/// What applying an entry did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// It won: the enrollment is stored here.
    Stored,
    /// It won: the user's enrollment is gone from here.
    Removed,
    /// A newer entry for the same user was applied before: nothing changed.
    Superseded,
    /// This door's own entry for the user waits in the outbox: the local row
    /// stays (it will win once published).
    Pending,
    /// Applied before (a watch that resumed over it): nothing changed.
    Seen,
    /// An older enrollment than this door's own for the same user: this
    /// door's entry is queued again, to win by the rule (see the module doc).
    Reasserted,
}

/// One of this door's entries waiting for the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// The user's tag.
    pub tag: String,
    /// The entry's key in the bucket (`<door>.<tag>`).
    pub key: String,
    /// The sealed value.
    pub value: Vec<u8>,
    /// When it was sealed (Unix milliseconds).
    pub at: i64,
    /// Whether it is a removal.
    pub removed: bool,
}

/// An outbox row's tag, key, value, at and removed, from column `first` on.
fn queued_at(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Queued> {
    Ok(Queued {
        tag: r.get(first)?,
        key: r.get(first + 1)?,
        value: r.get(first + 2)?,
        at: r.get(first + 3)?,
        removed: r.get(first + 4)?,
    })
}

/// Adds `q` to the outbox (inside the caller's transaction).
pub(super) fn queue(tx: &Transaction<'_>, q: &Queued) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO site_outbox (tag, key, value, at, removed, queued_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            q.tag,
            q.key,
            q.value,
            q.at,
            q.removed,
            crate::clock::unix_now()
        ],
    )
    .map(|_| ())
}

/// The highest revision applied, inside a transaction.
fn applied(tx: &Transaction<'_>) -> rusqlite::Result<u64> {
    let rev: Option<i64> = tx
        .query_row("SELECT applied FROM site_state WHERE id = 1", [], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(rev.map_or(0, |r| u64::try_from(r).unwrap_or(0)))
}

fn set_applied(tx: &Transaction<'_>, revision: u64) -> rusqlite::Result<()> {
    let revision = i64::try_from(revision).unwrap_or(i64::MAX);
    tx.execute(
        "INSERT INTO site_state (id, applied) VALUES (1, ?1)
         ON CONFLICT(id) DO UPDATE SET applied = max(applied, excluded.applied)",
        [revision],
    )
    .map(|_| ())
}

impl Storage {
    /// The highest revision of the hub's bucket this door has applied (0:
    /// none); a watch resumes after it.
    pub fn site_applied(&mut self) -> Result<u64, StorageError> {
        let err = db_err(&self.path);
        let tx = self.db.transaction().map_err(err)?;
        applied(&tx).map_err(err)
    }

    /// Forgets which of the hub's entries were applied (a bucket made again
    /// starts its revisions over); the enrollments and the outbox stay.
    pub fn reset_site(&mut self) -> Result<(), StorageError> {
        let err = db_err(&self.path);
        let tx = self.db.transaction().map_err(err)?;
        tx.execute_batch("DELETE FROM site_entries; UPDATE site_state SET applied = 0;")
            .map_err(err)?;
        tx.commit().map_err(err)
    }

    /// When the hub was last heard from (Unix seconds; 0: never).
    pub fn site_contact(&mut self) -> Result<i64, StorageError> {
        self.db
            .query_row("SELECT contact FROM site_state WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()
            .map(|c| c.unwrap_or(0))
            .map_err(db_err(&self.path))
    }

    /// Records that the hub was heard from at `at`.
    pub fn set_site_contact(&mut self, at: i64) -> Result<(), StorageError> {
        self.db
            .execute(
                "INSERT INTO site_state (id, applied, contact) VALUES (1, 0, ?1)
                 ON CONFLICT(id) DO UPDATE SET contact = excluded.contact",
                [at],
            )
            .map(|_| ())
            .map_err(db_err(&self.path))
    }

    /// Applies `entry` by the site's rule (see the module doc), with its
    /// revision, in one transaction; `door` is this door's name.
    pub fn apply_site(&mut self, entry: &SiteEntry, door: &str) -> Result<Applied, StorageError> {
        let mut applied = self.apply_site_batch(std::slice::from_ref(entry), &[], door)?;
        Ok(applied.pop().unwrap_or(Applied::Seen))
    }

    /// Applies `entries` in order, and records `skipped` revisions (entries
    /// refused), all in one transaction (a catch-up commits once per batch,
    /// not once per entry); what each entry did, in order.
    pub fn apply_site_batch(
        &mut self,
        entries: &[SiteEntry],
        skipped: &[u64],
        door: &str,
    ) -> Result<Vec<Applied>, StorageError> {
        let err = db_err(&self.path);
        let tx = self.db.transaction().map_err(err)?;
        let mut done = Vec::with_capacity(entries.len());
        for entry in entries {
            done.push(apply(&tx, entry, door).map_err(err)?);
        }
        let last = entries
            .iter()
            .map(|e| e.revision)
            .chain(skipped.iter().copied())
            .max();
        if let Some(revision) = last {
            set_applied(&tx, revision).map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(done)
    }

    /// Records that `revision` was seen without an entry to apply (one that
    /// does not open with the site's key, or a key outside the site's layout).
    pub fn skip_site(&mut self, revision: u64) -> Result<(), StorageError> {
        let err = db_err(&self.path);
        let tx = self.db.transaction().map_err(err)?;
        set_applied(&tx, revision).map_err(err)?;
        tx.commit().map_err(err)
    }

    /// The oldest entry waiting for the hub, with its sequence number.
    pub fn outbox_first(&self) -> Result<Option<(i64, Queued)>, StorageError> {
        self.db
            .query_row(
                "SELECT seq, tag, key, value, at, removed FROM site_outbox ORDER BY seq LIMIT 1",
                [],
                |r| Ok((r.get(0)?, queued_at(r, 1)?)),
            )
            .optional()
            .map_err(db_err(&self.path))
    }

    /// How many entries wait for the hub.
    pub fn outbox_len(&self) -> Result<u64, StorageError> {
        self.db
            .query_row("SELECT count(*) FROM site_outbox", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(db_err(&self.path))
    }

    /// The hub took the outbox's entry `seq` (at `revision`): it leaves the
    /// outbox, and is recorded as this door's entry for its user, so that
    /// older entries arriving later lose to it.
    pub fn outbox_sent(&mut self, seq: i64, door: &str, revision: u64) -> Result<(), StorageError> {
        let err = db_err(&self.path);
        let tx = self.db.transaction().map_err(err)?;
        let sent: Option<Queued> = tx
            .query_row(
                "SELECT tag, key, value, at, removed FROM site_outbox WHERE seq = ?1",
                [seq],
                |r| queued_at(r, 0),
            )
            .optional()
            .map_err(err)?;
        if let Some(q) = sent {
            tx.execute("DELETE FROM site_outbox WHERE seq = ?1", [seq])
                .map_err(err)?;
            let own = Own {
                key: &q.key,
                value: &q.value,
            };
            record(&tx, &q.tag, door, revision, q.removed, q.at, Some(own)).map_err(err)?;
        }
        tx.commit().map_err(err)
    }
}

/// This door's own entry as the hub took it: kept, to be published again.
struct Own<'a> {
    key: &'a str,
    value: &'a [u8],
}

/// Records `door`'s entry for `tag` at `revision` (an older revision than the
/// one recorded changes nothing).
fn record(
    tx: &Transaction<'_>,
    tag: &str,
    door: &str,
    revision: u64,
    removed: bool,
    at: i64,
    own: Option<Own<'_>>,
) -> rusqlite::Result<()> {
    let revision = i64::try_from(revision).unwrap_or(i64::MAX);
    tx.execute(
        "INSERT INTO site_entries (tag, door, revision, removed, at, key, value)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT(tag, door) DO UPDATE SET revision = excluded.revision,
             removed = excluded.removed, at = excluded.at, key = excluded.key,
             value = excluded.value
         WHERE excluded.revision >= site_entries.revision",
        params![
            tag,
            door,
            revision,
            removed,
            at,
            own.as_ref().map(|o| o.key),
            own.as_ref().map(|o| o.value)
        ],
    )
    .map(|_| ())
}

fn newest_revision(tx: &Transaction<'_>, tag: &str) -> rusqlite::Result<u64> {
    let newest: Option<i64> = tx.query_row(
        "SELECT max(revision) FROM site_entries WHERE tag = ?1",
        [tag],
        |r| r.get(0),
    )?;
    Ok(newest.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
}

fn apply(tx: &Transaction<'_>, entry: &SiteEntry, door: &str) -> rusqlite::Result<Applied> {
    let newest = newest_revision(tx, &entry.tag)?;
    let known: Option<i64> = tx
        .query_row(
            "SELECT revision FROM site_entries WHERE tag = ?1 AND door = ?2",
            params![entry.tag, entry.door],
            |r| r.get(0),
        )
        .optional()?;
    if known.is_some_and(|k| u64::try_from(k).unwrap_or(0) >= entry.revision) {
        return Ok(Applied::Seen);
    }
    let removed = matches!(entry.change, Change::Removed { .. });
    record(
        tx,
        &entry.tag,
        &entry.door,
        entry.revision,
        removed,
        entry.at_ms,
        None,
    )?;
    if newest > entry.revision {
        return Ok(Applied::Superseded);
    }
    if let Some(held) = concurrent(tx, entry, door, newest)? {
        return Ok(held);
    }
    match &entry.change {
        Change::Enrolled(e) => {
            upsert(tx, e)?;
            Ok(Applied::Stored)
        }
        Change::Removed { username } => {
            tx.execute("DELETE FROM enrollments WHERE username = ?1", [username])?;
            Ok(Applied::Removed)
        }
    }
}

/// This door's own entry for the user against `entry`, the newest by revision:
/// `Some` when the local row stays (see the module doc), `None` when `entry`
/// is applied.
fn concurrent(
    tx: &Transaction<'_>,
    entry: &SiteEntry,
    door: &str,
    newest_before: u64,
) -> rusqlite::Result<Option<Applied>> {
    let at = match &entry.change {
        Change::Enrolled(_) => Some(entry.at_ms),
        Change::Removed { .. } => None,
    };
    let pending: Option<(i64, bool)> = tx
        .query_row(
            "SELECT at, removed FROM site_outbox WHERE tag = ?1 ORDER BY seq DESC LIMIT 1",
            [&entry.tag],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match (pending, at) {
        // An older enrollment of ours, not yet published, than the one arriving:
        // AwareID has retired its code. It goes; the arriving one stands.
        (Some((ours, false)), Some(theirs)) if ours < theirs => {
            tx.execute("DELETE FROM site_outbox WHERE tag = ?1", [&entry.tag])?;
            return Ok(None);
        }
        (Some(_), _) => return Ok(Some(Applied::Pending)),
        (None, None) => return Ok(None),
        (None, Some(_)) => {}
    }
    if entry.door == door {
        return Ok(None);
    }
    /// This door's own entry for the user, as recorded when the hub took it.
    struct Recorded {
        revision: i64,
        removed: bool,
        at: i64,
        key: Option<String>,
        value: Option<Vec<u8>>,
    }
    let own: Option<Recorded> = tx
        .query_row(
            "SELECT revision, removed, at, key, value FROM site_entries
             WHERE tag = ?1 AND door = ?2",
            params![entry.tag, door],
            |r| {
                Ok(Recorded {
                    revision: r.get(0)?,
                    removed: r.get(1)?,
                    at: r.get(2)?,
                    key: r.get(3)?,
                    value: r.get(4)?,
                })
            },
        )
        .optional()?;
    let Some(Recorded {
        revision,
        removed: false,
        at: ours,
        key: Some(key),
        value: Some(value),
    }) = own
    else {
        return Ok(None);
    };
    // Ours was the user's newest entry until this older enrollment arrived
    // with a newer revision: ours is asserted again.
    let ours_newest = u64::try_from(revision).unwrap_or(0) == newest_before;
    if ours_newest && at.is_some_and(|theirs| theirs < ours) {
        queue(
            tx,
            &Queued {
                tag: entry.tag.clone(),
                key,
                value,
                at: ours,
                removed: false,
            },
        )?;
        return Ok(Some(Applied::Reasserted));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn enrolled(user: &str, code: &str, door: &str, revision: u64) -> SiteEntry {
        enrolled_at(user, code, door, revision, revision as i64 * 1000)
    }

    fn enrolled_at(user: &str, code: &str, door: &str, revision: u64, at_ms: i64) -> SiteEntry {
        SiteEntry {
            tag: format!("tag-{user}"),
            door: door.into(),
            revision,
            at_ms,
            change: Change::Enrolled(Enrollment {
                username: user.into(),
                registration_code: Secret::new(code),
                server_host: "awareid.example.com".into(),
                device_id: "5c1e2f8a93474d0ba61f33e27d90c458".into(),
                enrolled_at: 1_764_000_000,
                reenroll_started_at: None,
                door: door.into(),
            }),
        }
    }

    fn removed(user: &str, door: &str, revision: u64) -> SiteEntry {
        SiteEntry {
            tag: format!("tag-{user}"),
            door: door.into(),
            revision,
            at_ms: revision as i64 * 1000,
            change: Change::Removed {
                username: user.into(),
            },
        }
    }

    fn code(s: &Storage, user: &str) -> Option<String> {
        s.enrollment(user)
            .expect("read")
            .map(|e| e.registration_code.expose().to_owned())
    }

    /// Every door applies the same entries in any order and ends alike: the
    /// newest revision wins, removals included, and the applied revision is
    /// the highest seen.
    #[test]
    fn the_newest_revision_wins_in_any_order() {
        let entries = || {
            vec![
                enrolled("ann", "A1", "t1", 1),
                enrolled("ann", "A2", "t2", 3),
                removed("bob", "t2", 5),
                enrolled("bob", "B1", "t1", 4),
                enrolled("cy", "C1", "t3", 6),
                removed("cy", "t1", 2),
            ]
        };
        let mut results = Vec::new();
        for order in [[0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0], [2, 0, 4, 1, 5, 3]] {
            let dir = tempfile::tempdir().expect("tmp");
            let mut s = Storage::open(dir.path()).expect("open");
            let all = entries();
            for i in order {
                s.apply_site(&all[i], "t9").expect("apply");
            }
            assert_eq!(s.site_applied().expect("applied"), 6);
            results.push((code(&s, "ann"), code(&s, "bob"), code(&s, "cy")));
            let ann = s.enrollment("ann").expect("read").expect("ann");
            assert_eq!(ann.door, "t2");
        }
        assert!(results.iter().all(|r| *r == results[0]), "{results:?}");
        assert_eq!(results[0], (Some("A2".into()), None, Some("C1".into())));
    }

    #[test]
    fn an_entry_seen_again_changes_nothing_and_an_outboxed_user_keeps_its_row() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut s = Storage::open(dir.path()).expect("open");
        assert_eq!(
            s.apply_site(&enrolled("ann", "A1", "t1", 2), "t9")
                .expect("apply"),
            Applied::Stored
        );
        assert_eq!(
            s.apply_site(&enrolled("ann", "A1", "t1", 2), "t9")
                .expect("apply"),
            Applied::Seen
        );
        assert_eq!(
            s.apply_site(&enrolled("ann", "A0", "t2", 1), "t9")
                .expect("apply"),
            Applied::Superseded
        );
        assert_eq!(code(&s, "ann").as_deref(), Some("A1"));

        // This door (t3) enrolls ann again while the hub is away: its row
        // stays against what arrives meanwhile, until its own entry is sent.
        let Change::Enrolled(mut mine) = enrolled("ann", "A3", "t3", 0).change else {
            unreachable!()
        };
        mine.door = "t3".into();
        let q = Queued {
            tag: "tag-ann".into(),
            key: "t3.tag-ann".into(),
            value: vec![1, 2, 3],
            at: 9_000,
            removed: false,
        };
        s.put_enrollment_queued(&mine, Some(&q)).expect("queue");
        assert_eq!(s.outbox_len().expect("len"), 1);
        assert_eq!(
            s.apply_site(&removed("ann", "t1", 4), "t9").expect("apply"),
            Applied::Pending
        );
        assert_eq!(code(&s, "ann").as_deref(), Some("A3"));
        let (seq, first) = s.outbox_first().expect("first").expect("queued");
        assert_eq!(first, q);
        s.outbox_sent(seq, "t3", 7).expect("sent");
        assert_eq!(s.outbox_len().expect("len"), 0);
        // Its echo from the hub is seen; an older one from elsewhere loses.
        assert_eq!(
            s.apply_site(&enrolled("ann", "A3", "t3", 7), "t9")
                .expect("apply"),
            Applied::Seen
        );
        assert_eq!(
            s.apply_site(&enrolled("ann", "A2", "t2", 6), "t9")
                .expect("apply"),
            Applied::Superseded
        );
        assert_eq!(code(&s, "ann").as_deref(), Some("A3"));

        // The applied revision and the outbox survive a reopening.
        s.remove_queued("ann", Some(&q)).expect("remove");
        drop(s);
        let mut s = Storage::open(dir.path()).expect("reopen");
        assert_eq!(s.site_applied().expect("applied"), 7);
        assert_eq!(s.outbox_len().expect("len"), 1);
        assert_eq!(code(&s, "ann"), None);
    }

    /// Two doors enrolled ann at once; AwareID kept the code it issued last
    /// (t2's, sealed later). Whatever order the hub gave their entries, every
    /// door ends with t2's code.
    #[test]
    fn between_enrollments_made_at_once_the_later_stands() {
        let queued = |door: &str, at: i64| Queued {
            tag: "tag-ann".into(),
            key: format!("{door}.tag-ann"),
            value: vec![7],
            at,
            removed: false,
        };
        let row = |door: &str, code: &str| {
            let Change::Enrolled(e) = enrolled("ann", code, door, 0).change else {
                unreachable!()
            };
            e
        };
        // t1 (the older code, at 1000) was cut off and publishes late: the hub
        // has t2's (at 2000) at revision 10, t1's at revision 11.
        let t2_entry = enrolled_at("ann", "B", "t2", 10, 2_000);
        let t1_entry = enrolled_at("ann", "A", "t1", 11, 1_000);

        // At t2: its own is on the hub (10); t1's arrives newer by revision but
        // older by time: t2 asserts its own again.
        let dir = tempfile::tempdir().expect("tmp");
        let mut t2 = Storage::open(dir.path()).expect("open");
        t2.put_enrollment_queued(&row("t2", "B"), Some(&queued("t2", 2_000)))
            .expect("queue");
        let (seq, _) = t2.outbox_first().expect("first").expect("queued");
        t2.outbox_sent(seq, "t2", 10).expect("sent");
        assert_eq!(
            t2.apply_site(&t1_entry, "t2").expect("apply"),
            Applied::Reasserted
        );
        assert_eq!(code(&t2, "ann").as_deref(), Some("B"));
        let (seq, again) = t2.outbox_first().expect("first").expect("again");
        assert_eq!((again.key.as_str(), again.at), ("t2.tag-ann", 2_000));
        t2.outbox_sent(seq, "t2", 12).expect("sent");

        // At t1: its own older one waits in the outbox when t2's arrives: it
        // is dropped, t2's applies, and t2's assertion later is applied too.
        let dir = tempfile::tempdir().expect("tmp");
        let mut t1 = Storage::open(dir.path()).expect("open");
        t1.put_enrollment_queued(&row("t1", "A"), Some(&queued("t1", 1_000)))
            .expect("queue");
        assert_eq!(
            t1.apply_site(&t2_entry, "t1").expect("apply"),
            Applied::Stored
        );
        assert_eq!(t1.outbox_len().expect("len"), 0);
        assert_eq!(code(&t1, "ann").as_deref(), Some("B"));

        // At t3, in the hub's order: t2's (10), t1's (11), t2's again (12).
        let dir = tempfile::tempdir().expect("tmp");
        let mut t3 = Storage::open(dir.path()).expect("open");
        for e in [t2_entry, t1_entry, enrolled_at("ann", "B", "t2", 12, 2_000)] {
            t3.apply_site(&e, "t3").expect("apply");
        }
        assert_eq!(code(&t3, "ann").as_deref(), Some("B"));

        // A removal is ordered by revision alone: no assertion against it.
        assert_eq!(
            t2.apply_site(&removed("ann", "t3", 13), "t2")
                .expect("apply"),
            Applied::Removed
        );
        assert_eq!(t2.outbox_len().expect("len"), 0);
    }
}
