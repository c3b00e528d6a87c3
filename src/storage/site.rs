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

use super::{Enrollment, Storage, StorageError, upsert};
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
}

/// Adds `q` to the outbox (inside the caller's transaction).
pub(super) fn queue(tx: &Transaction<'_>, q: &Queued) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO site_outbox (tag, key, value, queued_at) VALUES (?1, ?2, ?3, ?4)",
        params![q.tag, q.key, q.value, crate::clock::unix_now()],
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
    fn site_err(&self) -> impl Fn(rusqlite::Error) -> StorageError + '_ {
        |source| StorageError::Db {
            path: self.path.clone(),
            source,
        }
    }

    /// The highest revision of the hub's bucket this door has applied (0:
    /// none); a watch resumes after it.
    pub fn site_applied(&mut self) -> Result<u64, StorageError> {
        let path = self.path.clone();
        let err = |source| StorageError::Db {
            path: path.clone(),
            source,
        };
        let tx = self.db.transaction().map_err(err)?;
        applied(&tx).map_err(err)
    }

    /// When the hub was last heard from (Unix seconds; 0: never).
    pub fn site_contact(&mut self) -> Result<i64, StorageError> {
        self.db
            .query_row("SELECT contact FROM site_state WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()
            .map(|c| c.unwrap_or(0))
            .map_err(self.site_err())
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
            .map_err(self.site_err())
    }

    /// Applies `entry` by the site's rule (see the module doc), with its
    /// revision, in one transaction.
    pub fn apply_site(&mut self, entry: &SiteEntry) -> Result<Applied, StorageError> {
        let path = self.path.clone();
        let err = |source| StorageError::Db {
            path: path.clone(),
            source,
        };
        let tx = self.db.transaction().map_err(err)?;
        let applied = apply(&tx, entry).map_err(err)?;
        set_applied(&tx, entry.revision).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(applied)
    }

    /// Records that `revision` was seen without an entry to apply (one that
    /// does not open with the site's key, or a key outside the site's layout).
    pub fn skip_site(&mut self, revision: u64) -> Result<(), StorageError> {
        let path = self.path.clone();
        let err = |source| StorageError::Db {
            path: path.clone(),
            source,
        };
        let tx = self.db.transaction().map_err(err)?;
        set_applied(&tx, revision).map_err(err)?;
        tx.commit().map_err(err)
    }

    /// The oldest entry waiting for the hub, with its sequence number.
    pub fn outbox_first(&self) -> Result<Option<(i64, Queued)>, StorageError> {
        self.db
            .query_row(
                "SELECT seq, tag, key, value FROM site_outbox ORDER BY seq LIMIT 1",
                [],
                |r| {
                    Ok((
                        r.get(0)?,
                        Queued {
                            tag: r.get(1)?,
                            key: r.get(2)?,
                            value: r.get(3)?,
                        },
                    ))
                },
            )
            .optional()
            .map_err(self.site_err())
    }

    /// How many entries wait for the hub.
    pub fn outbox_len(&self) -> Result<u64, StorageError> {
        self.db
            .query_row("SELECT count(*) FROM site_outbox", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(self.site_err())
    }

    /// The hub took the outbox's entry `seq` (at `revision`): it leaves the
    /// outbox, and is recorded as this door's entry for its user, so that
    /// older entries arriving later lose to it.
    pub fn outbox_sent(&mut self, seq: i64, door: &str, revision: u64) -> Result<(), StorageError> {
        let path = self.path.clone();
        let err = |source| StorageError::Db {
            path: path.clone(),
            source,
        };
        let tx = self.db.transaction().map_err(err)?;
        let tag: Option<String> = tx
            .query_row("SELECT tag FROM site_outbox WHERE seq = ?1", [seq], |r| {
                r.get(0)
            })
            .optional()
            .map_err(err)?;
        if let Some(tag) = tag {
            tx.execute("DELETE FROM site_outbox WHERE seq = ?1", [seq])
                .map_err(err)?;
            record(&tx, &tag, door, revision, None).map_err(err)?;
        }
        tx.commit().map_err(err)
    }
}

/// Records `door`'s entry for `tag` at `revision` (its `removed` flag kept when
/// `removed` is `None`).
fn record(
    tx: &Transaction<'_>,
    tag: &str,
    door: &str,
    revision: u64,
    removed: Option<bool>,
) -> rusqlite::Result<()> {
    let revision = i64::try_from(revision).unwrap_or(i64::MAX);
    tx.execute(
        "INSERT INTO site_entries (tag, door, revision, removed) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(tag, door) DO UPDATE SET revision = max(revision, excluded.revision),
             removed = CASE WHEN excluded.revision >= revision AND ?5 THEN excluded.removed
                            ELSE removed END",
        params![
            tag,
            door,
            revision,
            removed.unwrap_or(false),
            removed.is_some()
        ],
    )
    .map(|_| ())
}

fn apply(tx: &Transaction<'_>, entry: &SiteEntry) -> rusqlite::Result<Applied> {
    let newest: Option<i64> = tx.query_row(
        "SELECT max(revision) FROM site_entries WHERE tag = ?1",
        [&entry.tag],
        |r| r.get(0),
    )?;
    let newest = newest.map_or(0, |n| u64::try_from(n).unwrap_or(0));
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
    record(tx, &entry.tag, &entry.door, entry.revision, Some(removed))?;
    if newest > entry.revision {
        return Ok(Applied::Superseded);
    }
    let pending: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM site_outbox WHERE tag = ?1)",
        [&entry.tag],
        |r| r.get(0),
    )?;
    if pending {
        return Ok(Applied::Pending);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn enrolled(user: &str, code: &str, door: &str, revision: u64) -> SiteEntry {
        SiteEntry {
            tag: format!("tag-{user}"),
            door: door.into(),
            revision,
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
                s.apply_site(&all[i]).expect("apply");
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
            s.apply_site(&enrolled("ann", "A1", "t1", 2))
                .expect("apply"),
            Applied::Stored
        );
        assert_eq!(
            s.apply_site(&enrolled("ann", "A1", "t1", 2))
                .expect("apply"),
            Applied::Seen
        );
        assert_eq!(
            s.apply_site(&enrolled("ann", "A0", "t2", 1))
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
        };
        s.put_enrollment_queued(&mine, Some(&q)).expect("queue");
        assert_eq!(s.outbox_len().expect("len"), 1);
        assert_eq!(
            s.apply_site(&removed("ann", "t1", 4)).expect("apply"),
            Applied::Pending
        );
        assert_eq!(code(&s, "ann").as_deref(), Some("A3"));
        let (seq, first) = s.outbox_first().expect("first").expect("queued");
        assert_eq!(first, q);
        s.outbox_sent(seq, "t3", 7).expect("sent");
        assert_eq!(s.outbox_len().expect("len"), 0);
        // Its echo from the hub is seen; an older one from elsewhere loses.
        assert_eq!(
            s.apply_site(&enrolled("ann", "A3", "t3", 7))
                .expect("apply"),
            Applied::Seen
        );
        assert_eq!(
            s.apply_site(&enrolled("ann", "A2", "t2", 6))
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
}
