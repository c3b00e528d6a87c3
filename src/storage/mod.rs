//! Local storage: the terminal's device identity (device id and P-256 key) and
//! its enrollments (username, registration code, server host, device id, enrolled
//! at), in SQLite under the state directory (0700; database 0600). WAL with
//! synchronous=FULL: a change returns only once committed to disk, so a SIGKILL or
//! a power cut never loses a committed enrollment nor leaves half of one. The
//! schema is versioned (`PRAGMA user_version`) and migrated in order on open.
//! `secure_delete` is on, so a removed enrollment's code or a scrubbed key is
//! overwritten with zeros, not left in a free page.
//!
//! The device key lives here only on a terminal that was never provisioned
//! (protection `plain`). Once `facecaptured provision` has sealed it into the
//! credential `device_key`, the row keeps the device id and an empty key.

use crate::clock::unix_now;
use crate::crypto::device::DeviceKey;
use crate::crypto::sealed::SealedIdentity;
use crate::secret::Secret;
use rusqlite::{Connection, OptionalExtension, params};
use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The database's file name in the state directory.
pub const DB_FILE: &str = "facecaptured.db";

/// Each entry takes the schema from version i to i + 1.
const MIGRATIONS: &[&str] = &[
    // 1: the device identity (one row) and the enrollments.
    "CREATE TABLE device (
         id INTEGER PRIMARY KEY CHECK (id = 1),
         device_id TEXT NOT NULL,
         key_pkcs8 BLOB NOT NULL,
         created_at INTEGER NOT NULL
     );
     CREATE TABLE enrollments (
         username TEXT PRIMARY KEY NOT NULL,
         registration_code TEXT NOT NULL CHECK (registration_code <> ''),
         server_host TEXT NOT NULL,
         device_id TEXT NOT NULL,
         enrolled_at INTEGER NOT NULL
     );",
    // 2: a re-enrollment in flight: set before addFace is sent, cleared when the
    // new code is stored or the server's answer leaves the old one in force.
    "ALTER TABLE enrollments ADD COLUMN reenroll_started_at INTEGER;",
    // 3: the site (docs/identity.md): the door each enrollment was made at; the
    // site's entries this door has applied (by user tag and writing door, with
    // the hub's revision), the last revision applied, and the outbox of this
    // door's own entries not yet on the hub.
    "ALTER TABLE enrollments ADD COLUMN door TEXT NOT NULL DEFAULT '';
     CREATE TABLE site_entries (
         tag TEXT NOT NULL,
         door TEXT NOT NULL,
         revision INTEGER NOT NULL,
         removed INTEGER NOT NULL,
         at INTEGER NOT NULL,
         key TEXT,
         value BLOB,
         PRIMARY KEY (tag, door)
     );
     CREATE TABLE site_state (
         id INTEGER PRIMARY KEY CHECK (id = 1),
         applied INTEGER NOT NULL,
         contact INTEGER NOT NULL DEFAULT 0
     );
     CREATE TABLE site_outbox (
         seq INTEGER PRIMARY KEY AUTOINCREMENT,
         tag TEXT NOT NULL,
         key TEXT NOT NULL,
         value BLOB NOT NULL,
         at INTEGER NOT NULL,
         removed INTEGER NOT NULL,
         queued_at INTEGER NOT NULL
     );",
];

mod site;
pub use site::{Applied, Change, Queued, SiteEntry};

/// Why the store cannot be opened, read or written. Each names the file or
/// directory; the daemon maps them all to StorageError on D-Bus.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The state directory cannot be made, or its mode set to 0700.
    #[error("state directory {path}: {source}")]
    Dir {
        /// The state directory.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// SQLite failed (a full disk, a corrupt file, a locked database).
    #[error("database {path}: {source}")]
    Db {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The database was written by a newer build (a downgrade): it is left as
    /// it is rather than misread.
    #[error("database {path}: schema version {found} is newer than this build's {supported}")]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Its schema version.
        found: i64,
        /// The newest version this build knows.
        supported: usize,
    },
    /// A new device identity could not be made (no random source).
    #[error("cannot make a device identity: {0}")]
    Identity(String),
    /// The plain device key in the database does not parse.
    #[error("database {path}: the stored device key is unreadable")]
    BadKey {
        /// The database file.
        path: PathBuf,
    },
    /// The database names a sealed identity but the credential did not arrive.
    #[error(
        "the device key was sealed into the credential device_key, and this start did not \
         receive it: the credential file is missing or could not be opened here (another \
         board or TPM, or a cleared TPM). Nothing will be signed. On the terminal that was \
         provisioned, run facecaptured provision; on a replacement board, provision a new key \
         (facecaptured provision --new-key) and enroll everyone again"
    )]
    KeySealedElsewhere,
    /// The credential and the database belong to different terminals.
    #[error(
        "the sealed device key is for device {sealed}, but {path} belongs to device {stored}: \
         the credential and the database come from different terminals"
    )]
    OtherDevice {
        /// The database file.
        path: PathBuf,
        /// The credential's device id.
        sealed: String,
        /// The database's device id.
        stored: String,
    },
    /// The database holds a plain key other than the sealed one.
    #[error(
        "database {path} holds a different device key from the sealed one: run \
         facecaptured provision, which moves the database's key into the credential"
    )]
    OtherKey {
        /// The database file.
        path: PathBuf,
    },
}

/// What [`Storage::adopt_sealed`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adopted {
    /// No identity was stored: the sealed one is recorded (its id, no key).
    Recorded,
    /// The row already names the sealed identity and holds no key.
    Known,
    /// The row held the same key in plain form; it is scrubbed now.
    Scrubbed,
}

/// One enrollment as stored. The registration code is a secret.
#[derive(Debug)]
pub struct Enrollment {
    /// The AwareID username (the key: one enrollment per user).
    pub username: String,
    /// What addFace returned: authenticate's proof of enrollment.
    pub registration_code: Secret,
    /// The AwareID host it was enrolled with.
    pub server_host: String,
    /// The terminal's device id at enrollment.
    pub device_id: String,
    /// When, in Unix seconds.
    pub enrolled_at: i64,
    /// When a re-enrollment began (its addFace was about to be sent) and has not
    /// been settled since: AwareID may have retired this code.
    pub reenroll_started_at: Option<i64>,
    /// The door of the site it was made at (`site.door`); empty outside a site.
    pub door: String,
}

/// What `ListEnrollments` shows: no registration code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentInfo {
    /// As [`Enrollment::username`].
    pub username: String,
    /// As [`Enrollment::server_host`].
    pub server_host: String,
    /// As [`Enrollment::enrolled_at`].
    pub enrolled_at: i64,
    /// See [`Enrollment::reenroll_started_at`].
    pub reenroll_started_at: Option<i64>,
    /// As [`Enrollment::device_id`]: the identity it was made under.
    pub device_id: String,
    /// As [`Enrollment::door`].
    pub door: String,
}

/// The open store: one SQLite connection, owned by the daemon's engine.
pub struct Storage {
    path: PathBuf,
    db: Connection,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Storage({})", self.path.display())
    }
}

impl Storage {
    /// Opens (creating if needed) the database in `state_dir`, migrating its schema.
    pub fn open(state_dir: &Path) -> Result<Self, StorageError> {
        let dir_err = |source| StorageError::Dir {
            path: state_dir.to_owned(),
            source,
        };
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state_dir)
            .map_err(dir_err)?;
        // An existing directory (systemd's StateDirectory=) is tightened too.
        std::fs::set_permissions(state_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(dir_err)?;
        let path = state_dir.join(DB_FILE);
        // Created 0600 before SQLite opens it, so it is never readable by others.
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(dir_err)?;
        let db = Connection::open(&path).map_err(|source| StorageError::Db {
            path: path.clone(),
            source,
        })?;
        Self::ready(db, path)
    }

    /// Opens the existing database in `state_dir` as root does in `facecaptured
    /// provision`: nothing is created or re-permissioned, and SQLite refuses a
    /// symbolic link anywhere in the path (`SQLITE_OPEN_NOFOLLOW`; it opens the
    /// `-wal` and `-shm` files with `O_NOFOLLOW` too). The state directory belongs
    /// to the daemon's user, who could plant a link to any root file there.
    pub fn open_existing_nofollow(state_dir: &Path) -> Result<Self, StorageError> {
        use rusqlite::OpenFlags;
        let path = state_dir.join(DB_FILE);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let db = Connection::open_with_flags(&path, flags).map_err(|source| StorageError::Db {
            path: path.clone(),
            source,
        })?;
        Self::ready(db, path)
    }

    /// The connection's settings and the schema's migrations, for both opens.
    fn ready(mut db: Connection, path: PathBuf) -> Result<Self, StorageError> {
        let db_err = |source| StorageError::Db {
            path: path.clone(),
            source,
        };
        db.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db_err)?;
        db.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_err)?;
        db.pragma_update(None, "synchronous", "FULL")
            .map_err(db_err)?;
        db.pragma_update(None, "foreign_keys", "ON")
            .map_err(db_err)?;
        db.pragma_update(None, "secure_delete", "ON")
            .map_err(db_err)?;
        migrate(&mut db, &path)?;
        Ok(Self { path, db })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, source: rusqlite::Error) -> StorageError {
        StorageError::Db {
            path: self.path.clone(),
            source,
        }
    }

    /// The stored identity row: the device id and the key, `None` for the key once
    /// it has been sealed elsewhere.
    pub fn stored_identity(&self) -> Result<Option<(String, Option<DeviceKey>)>, StorageError> {
        let row: Option<(String, Zeroizing<Vec<u8>>)> = self
            .db
            .query_row(
                "SELECT device_id, key_pkcs8 FROM device WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, Zeroizing::new(r.get(1)?))),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some((id, der)) = row else {
            return Ok(None);
        };
        if der.is_empty() {
            return Ok(Some((id, None)));
        }
        let key = DeviceKey::from_pkcs8_der(&der).map_err(|_| StorageError::BadKey {
            path: self.path.clone(),
        })?;
        Ok(Some((id, Some(key))))
    }

    /// The terminal's identity in plain form (protection `plain`): the stored one,
    /// or a new one made by `create` and stored before it is returned. A row whose
    /// key was sealed away is [`StorageError::KeySealedElsewhere`]: a new key is
    /// never made behind the operator's back.
    pub fn device_identity(
        &mut self,
        create: impl FnOnce() -> Result<(String, DeviceKey), StorageError>,
    ) -> Result<(String, DeviceKey), StorageError> {
        match self.stored_identity()? {
            Some((id, Some(key))) => return Ok((id, key)),
            Some((_, None)) => return Err(StorageError::KeySealedElsewhere),
            None => {}
        }
        let (id, key) = create()?;
        let der = key.to_pkcs8_der().map_err(|_| StorageError::BadKey {
            path: self.path.clone(),
        })?;
        self.db
            .execute(
                "INSERT INTO device (id, device_id, key_pkcs8, created_at) VALUES (1, ?1, ?2, ?3)",
                params![id, &der[..], unix_now()],
            )
            .map_err(|e| self.err(e))?;
        Ok((id, key))
    }

    /// Takes the sealed identity as the terminal's: records its device id if none
    /// is stored, and scrubs a plain copy of the same key (the migration of a
    /// terminal provisioned after it ran plain). A different device id or key is
    /// refused: the credential belongs to another terminal.
    pub fn adopt_sealed(&mut self, sealed: &SealedIdentity) -> Result<Adopted, StorageError> {
        match self.stored_identity()? {
            None => {
                self.db
                    .execute(
                        "INSERT INTO device (id, device_id, key_pkcs8, created_at)
                         VALUES (1, ?1, X'', ?2)",
                        params![sealed.device_id, unix_now()],
                    )
                    .map_err(|e| self.err(e))?;
                Ok(Adopted::Recorded)
            }
            Some((stored, _)) if stored != sealed.device_id => Err(StorageError::OtherDevice {
                path: self.path.clone(),
                sealed: sealed.device_id.clone(),
                stored,
            }),
            Some((_, None)) => Ok(Adopted::Known),
            Some((_, Some(plain))) => {
                let mine = plain.public_key_b64().ok();
                if mine.is_none() || mine != sealed.key.public_key_b64().ok() {
                    return Err(StorageError::OtherKey {
                        path: self.path.clone(),
                    });
                }
                self.scrub_key()?;
                Ok(Adopted::Scrubbed)
            }
        }
    }

    /// Overwrites the plain key in the database: the row keeps the device id, the
    /// key's page is zeroed (secure_delete), the WAL is checkpointed and emptied,
    /// and VACUUM rewrites the file so no free page holds a copy.
    pub fn scrub_key(&mut self) -> Result<(), StorageError> {
        self.db
            .execute("UPDATE device SET key_pkcs8 = X'' WHERE id = 1", [])
            .map_err(|e| self.err(e))?;
        self.db
            .execute_batch(
                "PRAGMA wal_checkpoint(TRUNCATE); VACUUM; PRAGMA wal_checkpoint(TRUNCATE);",
            )
            .map_err(|e| self.err(e))
    }

    /// Stores (or replaces) an enrollment, committed when this returns.
    pub fn put_enrollment(&mut self, e: &Enrollment) -> Result<(), StorageError> {
        self.put_enrollment_queued(e, None)
    }

    /// Stores (or replaces) an enrollment and, in the same transaction, queues
    /// this door's entry for the site's hub when `queued` says one.
    pub fn put_enrollment_queued(
        &mut self,
        e: &Enrollment,
        queued: Option<&Queued>,
    ) -> Result<(), StorageError> {
        let err = db_err(&self.path);
        let tx = self.db.transaction().map_err(err)?;
        upsert(&tx, e).map_err(err)?;
        if let Some(q) = queued {
            site::queue(&tx, q).map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// The user's enrollment, if the terminal holds one.
    pub fn enrollment(&self, username: &str) -> Result<Option<Enrollment>, StorageError> {
        self.db
            .query_row(
                "SELECT username, registration_code, server_host, device_id, enrolled_at,
                        reenroll_started_at, door
                 FROM enrollments WHERE username = ?1",
                [username],
                |r| {
                    Ok(Enrollment {
                        username: r.get(0)?,
                        registration_code: Secret::new(r.get::<_, String>(1)?),
                        server_host: r.get(2)?,
                        device_id: r.get(3)?,
                        enrolled_at: r.get(4)?,
                        reenroll_started_at: r.get(5)?,
                        door: r.get(6)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Every enrollment, without codes, by username.
    pub fn list(&self) -> Result<Vec<EnrollmentInfo>, StorageError> {
        let mut stmt = self
            .db
            .prepare(
                "SELECT username, server_host, enrolled_at, reenroll_started_at, device_id, door
                 FROM enrollments ORDER BY username",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(EnrollmentInfo {
                    username: r.get(0)?,
                    server_host: r.get(1)?,
                    enrolled_at: r.get(2)?,
                    reenroll_started_at: r.get(3)?,
                    device_id: r.get(4)?,
                    door: r.get(5)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Records that a re-enrollment of `username` is about to send addFace (at
    /// `at`, unix seconds), committed when this returns; false when the user has
    /// no enrollment here (a first enrollment has no old code to lose).
    pub fn mark_reenrollment(&mut self, username: &str, at: i64) -> Result<bool, StorageError> {
        self.db
            .execute(
                "UPDATE enrollments SET reenroll_started_at = ?2 WHERE username = ?1",
                params![username, at],
            )
            .map(|n| n > 0)
            .map_err(|e| self.err(e))
    }

    /// Settles a re-enrollment: the stored code is known to be in force.
    pub fn clear_reenrollment(&mut self, username: &str) -> Result<(), StorageError> {
        self.db
            .execute(
                "UPDATE enrollments SET reenroll_started_at = NULL WHERE username = ?1",
                [username],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Removes an enrollment; false when there was none.
    pub fn remove(&mut self, username: &str) -> Result<bool, StorageError> {
        self.remove_queued(username, None)
    }

    /// Removes an enrollment and, in the same transaction, queues this door's
    /// removal entry for the site's hub when `queued` says one (queued even when
    /// this door held no row: another door may); false when there was none.
    pub fn remove_queued(
        &mut self,
        username: &str,
        queued: Option<&Queued>,
    ) -> Result<bool, StorageError> {
        let err = db_err(&self.path);
        let tx = self.db.transaction().map_err(err)?;
        let removed = tx
            .execute("DELETE FROM enrollments WHERE username = ?1", [username])
            .map_err(err)?;
        if let Some(q) = queued {
            site::queue(&tx, q).map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(removed > 0)
    }
}

/// Names `path` in a SQLite error (for a transaction, which holds the
/// connection while the path is still needed).
fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> StorageError + Copy + '_ {
    move |source| StorageError::Db {
        path: path.to_owned(),
        source,
    }
}

/// Inserts or replaces `e` (its re-enrollment mark cleared).
fn upsert(tx: &rusqlite::Transaction<'_>, e: &Enrollment) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO enrollments (username, registration_code, server_host, device_id, enrolled_at, door)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(username) DO UPDATE SET
             registration_code = excluded.registration_code,
             server_host = excluded.server_host,
             device_id = excluded.device_id,
             enrolled_at = excluded.enrolled_at,
             door = excluded.door,
             reenroll_started_at = NULL",
        params![
            e.username,
            e.registration_code.expose(),
            e.server_host,
            e.device_id,
            e.enrolled_at,
            e.door
        ],
    )
    .map(|_| ())
}

fn migrate(db: &mut Connection, path: &Path) -> Result<(), StorageError> {
    let db_err = |source| StorageError::Db {
        path: path.to_owned(),
        source,
    };
    let version: i64 = db
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(db_err)?;
    if version > MIGRATIONS.len() as i64 {
        return Err(StorageError::TooNew {
            path: path.to_owned(),
            found: version,
            supported: MIGRATIONS.len(),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        let tx = db.transaction().map_err(db_err)?;
        tx.execute_batch(sql).map_err(db_err)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)
            .map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        tracing::info!(path = %path.display(), version = i + 1, "database schema migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enrollment(user: &str, code: &str) -> Enrollment {
        Enrollment {
            username: user.into(),
            registration_code: Secret::new(code),
            server_host: "awareid.example.com".into(),
            device_id: "5c1e2f8a93474d0ba61f33e27d90c458".into(),
            enrolled_at: 1_764_000_000,
            reenroll_started_at: None,
            door: String::new(),
        }
    }

    /// A store in `dir` holding alice's enrollment (code 123456).
    fn with_alice(dir: &Path) -> Storage {
        let mut s = Storage::open(dir).expect("open");
        s.put_enrollment(&enrollment("alice", "123456"))
            .expect("put");
        s
    }

    #[test]
    fn creates_a_private_directory_and_database() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("state");
        let s = Storage::open(&dir).expect("open");
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(s.path()), 0o600);
        let wal: String =
            s.db.pragma_query_value(None, "journal_mode", |r| r.get(0))
                .expect("pragma");
        assert_eq!(wal, "wal");
    }

    #[test]
    fn a_reenrollment_mark_survives_reopening_until_a_new_code_or_a_clear() {
        let tmp = tempfile::tempdir().expect("tmp");
        {
            let mut s = with_alice(tmp.path());
            assert!(s.mark_reenrollment("alice", 1_764_000_100).expect("mark"));
            // A first enrollment has no old code to lose: nothing to mark.
            assert!(!s.mark_reenrollment("nobody", 1).expect("mark"));
        }
        let mut s = Storage::open(tmp.path()).expect("reopen");
        let a = s.enrollment("alice").expect("get").expect("alice");
        assert_eq!(a.reenroll_started_at, Some(1_764_000_100));
        assert_eq!(
            a.registration_code.expose(),
            "123456",
            "the old code is kept"
        );
        assert_eq!(
            s.list().expect("list")[0].reenroll_started_at,
            Some(1_764_000_100)
        );
        let mark = |s: &Storage| {
            s.enrollment("alice")
                .expect("get")
                .expect("a")
                .reenroll_started_at
        };
        s.put_enrollment(&enrollment("alice", "654321"))
            .expect("new code");
        assert_eq!(mark(&s), None);
        s.mark_reenrollment("alice", 5).expect("mark");
        s.clear_reenrollment("alice").expect("clear");
        assert_eq!(mark(&s), None);
    }

    #[test]
    fn a_version_1_database_is_migrated_with_its_enrollments() {
        let tmp = tempfile::tempdir().expect("tmp");
        {
            let db = Connection::open(tmp.path().join(DB_FILE)).expect("v1");
            db.execute_batch(MIGRATIONS[0]).expect("schema 1");
            db.execute(
                "INSERT INTO enrollments VALUES ('carol', '424242', 'h', 'd', 1)",
                [],
            )
            .expect("row");
            db.pragma_update(None, "user_version", 1).expect("version");
        }
        let s = Storage::open(tmp.path()).expect("migrates");
        let version: i64 =
            s.db.pragma_query_value(None, "user_version", |r| r.get(0))
                .expect("pragma");
        assert_eq!(version, MIGRATIONS.len() as i64);
        let c = s.enrollment("carol").expect("get").expect("carol");
        assert_eq!(c.registration_code.expose(), "424242");
        assert_eq!(c.reenroll_started_at, None);
    }

    #[test]
    fn enrollments_survive_reopening_and_replace_by_username() {
        let tmp = tempfile::tempdir().expect("tmp");
        {
            let mut s = with_alice(tmp.path());
            s.put_enrollment(&enrollment("bob", "222222")).expect("put");
            s.put_enrollment(&enrollment("alice", "654321"))
                .expect("replace");
        }
        let mut s = Storage::open(tmp.path()).expect("reopen");
        let a = s.enrollment("alice").expect("get").expect("alice");
        assert_eq!(a.registration_code.expose(), "654321");
        let list = s.list().expect("list");
        assert_eq!(
            list.iter().map(|e| e.username.as_str()).collect::<Vec<_>>(),
            ["alice", "bob"]
        );
        assert!(s.remove("bob").expect("remove"));
        assert!(!s.remove("bob").expect("remove again"));
        assert!(s.enrollment("bob").expect("get").is_none());
        // An empty code is refused by the schema: nothing half-written.
        assert!(s.put_enrollment(&enrollment("carol", "")).is_err());
        assert!(s.enrollment("carol").expect("get").is_none());
    }

    #[test]
    fn the_device_identity_is_made_once() {
        let tmp = tempfile::tempdir().expect("tmp");
        let first = {
            let mut s = Storage::open(tmp.path()).expect("open");
            let (id, key) = s
                .device_identity(|| Ok(("id-1".into(), DeviceKey::generate().expect("key"))))
                .expect("create");
            assert_eq!(id, "id-1");
            key.public_key_b64().expect("pub")
        };
        let mut s = Storage::open(tmp.path()).expect("reopen");
        let (id, key) = s
            .device_identity(|| panic!("must not create again"))
            .expect("load");
        assert_eq!(id, "id-1");
        assert_eq!(key.public_key_b64().expect("pub"), first);
    }

    /// Every file of the database, as bytes on disk.
    fn on_disk(dir: &Path) -> Vec<u8> {
        let mut all = Vec::new();
        for entry in std::fs::read_dir(dir).expect("dir") {
            all.extend(std::fs::read(entry.expect("entry").path()).expect("read"));
        }
        all
    }

    fn holds(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn a_plain_key_is_scrubbed_when_the_sealed_one_is_adopted() {
        use crate::crypto::sealed::Protection;
        let tmp = tempfile::tempdir().expect("tmp");
        let id = "5c1e2f8a93474d0ba61f33e27d90c458";
        let mut s = Storage::open(tmp.path()).expect("open");
        let (_, key) = s
            .device_identity(|| Ok((id.into(), DeviceKey::generate().expect("key"))))
            .expect("create");
        s.put_enrollment(&enrollment("alice", "code-a"))
            .expect("put");
        let der = key.to_pkcs8_der().expect("der");
        let scalar = key.scalar_bytes();
        assert!(
            holds(&on_disk(tmp.path()), &scalar),
            "the plain key is on disk"
        );

        let sealed = SealedIdentity {
            device_id: id.into(),
            key: DeviceKey::from_pkcs8_der(&der).expect("same key"),
            protection: Protection::HostKey,
        };
        assert_eq!(s.adopt_sealed(&sealed).expect("adopt"), Adopted::Scrubbed);
        drop(s);
        let disk = on_disk(tmp.path());
        assert!(!holds(&disk, &scalar), "a copy of the key is left on disk");
        assert!(!holds(&disk, &der), "a DER copy of the key is left on disk");

        // The row keeps the id and the enrollments are intact.
        let mut s = Storage::open(tmp.path()).expect("reopen");
        assert_eq!(
            s.stored_identity().expect("row").map(|r| r.0),
            Some(id.into())
        );
        assert_eq!(
            s.enrollment("alice")
                .expect("get")
                .expect("kept")
                .registration_code
                .expose(),
            "code-a"
        );
        assert_eq!(s.adopt_sealed(&sealed).expect("again"), Adopted::Known);
        // Without the credential the daemon refuses; it never makes a new key.
        assert!(matches!(
            s.device_identity(|| panic!("must not create")),
            Err(StorageError::KeySealedElsewhere)
        ));
        // Another terminal's credential is refused.
        let other = SealedIdentity {
            device_id: "0".repeat(32),
            key: DeviceKey::generate().expect("key"),
            protection: Protection::Tpm2,
        };
        assert!(matches!(
            s.adopt_sealed(&other),
            Err(StorageError::OtherDevice { .. })
        ));
    }

    #[test]
    fn a_sealed_identity_is_recorded_without_its_key_and_another_key_is_refused() {
        use crate::crypto::sealed::Protection;
        let tmp = tempfile::tempdir().expect("tmp");
        let id = "5c1e2f8a93474d0ba61f33e27d90c458";
        let sealed = SealedIdentity {
            device_id: id.into(),
            key: DeviceKey::generate().expect("key"),
            protection: Protection::Tpm2,
        };
        let der = sealed.key.to_pkcs8_der().expect("der");
        let mut s = Storage::open(tmp.path()).expect("open");
        assert_eq!(s.adopt_sealed(&sealed).expect("adopt"), Adopted::Recorded);
        assert!(matches!(s.stored_identity(), Ok(Some((_, None)))));
        drop(s);
        assert!(!holds(&on_disk(tmp.path()), &der));

        // A plain row with a different key than the credential's is not scrubbed.
        let tmp = tempfile::tempdir().expect("tmp");
        let mut s = Storage::open(tmp.path()).expect("open");
        s.device_identity(|| Ok((id.into(), DeviceKey::generate().expect("key"))))
            .expect("create");
        assert!(matches!(
            s.adopt_sealed(&sealed),
            Err(StorageError::OtherKey { .. })
        ));
        assert!(matches!(s.stored_identity(), Ok(Some((_, Some(_))))));
    }

    #[test]
    fn a_newer_schema_is_refused_not_clobbered() {
        let tmp = tempfile::tempdir().expect("tmp");
        drop(Storage::open(tmp.path()).expect("open"));
        let db = Connection::open(tmp.path().join(DB_FILE)).expect("raw");
        db.pragma_update(None, "user_version", 99).expect("bump");
        drop(db);
        let e = Storage::open(tmp.path()).expect_err("too new");
        assert!(e.to_string().contains("schema version 99"), "{e}");
    }
}
