//! The paths root touches on the daemon's behalf, never followed: the daemon's
//! state directory and its database files (checked, then opened `O_NOFOLLOW`
//! and checked again by descriptor), and the root-only credentials directory.

use super::{ProvisionError, io};
use crate::storage::DB_FILE;
use std::path::{Path, PathBuf};

/// The database's files in the state directory: the database, its WAL and its
/// shared-memory index.
const DB_NAMES: [&str; 3] = ["", "-wal", "-shm"];

/// The daemon's state directory as root may touch it: a real directory (not a
/// link), whose owner (the daemon's user) is whom the database belongs to, and
/// whose database files are each a regular file with one link, owned by that
/// user or by root. Each open checks again what it opened (`O_NOFOLLOW`, then
/// `fstat` of the descriptor): this check names a problem early, the opens are
/// what make a link planted meanwhile harmless.
pub(super) struct StateDir {
    path: PathBuf,
    uid: u32,
    gid: u32,
    pub(super) has_database: bool,
}

impl StateDir {
    /// `None` when there is no state directory yet (the daemon has never run).
    pub(super) fn check(path: &Path) -> Result<Option<Self>, ProvisionError> {
        use std::os::unix::fs::MetadataExt;
        let meta = match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            r => r.map_err(io(path))?,
        };
        if !meta.is_dir() {
            return Err(unsafe_path(path, kind_of(&meta)));
        }
        let mut dir = Self {
            path: path.to_owned(),
            uid: meta.uid(),
            gid: meta.gid(),
            has_database: false,
        };
        for suffix in DB_NAMES {
            let name = dir.path.join(format!("{DB_FILE}{suffix}"));
            match std::fs::symlink_metadata(&name) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                r => dir.check_file(&name, &r.map_err(io(&name))?)?,
            }
            if suffix.is_empty() {
                dir.has_database = true;
            }
        }
        Ok(Some(dir))
    }

    /// A database file root may open: a regular file, one link, owned by the
    /// daemon's user or by root.
    fn check_file(&self, path: &Path, meta: &std::fs::Metadata) -> Result<(), ProvisionError> {
        use std::os::unix::fs::MetadataExt;
        if !meta.file_type().is_file() {
            return Err(unsafe_path(path, kind_of(meta)));
        }
        if meta.nlink() != 1 {
            return Err(unsafe_path(
                path,
                format!("has {} hard links (a database file has one)", meta.nlink()),
            ));
        }
        if meta.uid() != self.uid && meta.uid() != 0 {
            return Err(unsafe_path(
                path,
                format!(
                    "is owned by uid {}, neither the state directory's owner (uid {}) nor root",
                    meta.uid(),
                    self.uid
                ),
            ));
        }
        Ok(())
    }

    /// The database and its WAL files keep the state directory's owner (the
    /// daemon's user) after root has written them: each is opened without
    /// following a link, checked through its descriptor, and that descriptor
    /// is chowned, so a name swapped for a link meanwhile changes nothing.
    pub(super) fn fix_owner(&self) -> Result<(), ProvisionError> {
        use std::os::unix::fs::OpenOptionsExt;
        for suffix in DB_NAMES {
            let path = self.path.join(format!("{DB_FILE}{suffix}"));
            let file = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
                .open(&path);
            let file = match file {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                    return Err(unsafe_path(&path, "is a symbolic link".into()));
                }
                Err(e) => return Err(io(&path)(e)),
            };
            self.check_file(&path, &file.metadata().map_err(io(&path))?)?;
            std::os::unix::fs::fchown(&file, Some(self.uid), Some(self.gid)).map_err(io(&path))?;
        }
        Ok(())
    }
}

/// The credentials directory holds the sealed secrets and, for a moment, plain
/// ones: only root (the user provision runs as) may change it.
pub(super) fn root_only_dir(path: &Path) -> Result<(), ProvisionError> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path).map_err(io(path))?;
    if !meta.is_dir() {
        return Err(unsafe_path(path, kind_of(&meta)));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(unsafe_path(
            path,
            format!("is owned by uid {}, not by root (uid {me})", meta.uid()),
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(unsafe_path(
            path,
            format!(
                "may be changed by others than root (mode {:04o}; make it 0700)",
                meta.mode() & 0o7777
            ),
        ));
    }
    Ok(())
}

pub(super) fn unsafe_path(path: &Path, problem: String) -> ProvisionError {
    ProvisionError::Unsafe {
        path: path.to_owned(),
        problem,
    }
}

/// What a file is, for a refusal: "is a symbolic link", "is a directory", ...
pub(super) fn kind_of(meta: &std::fs::Metadata) -> String {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    let what = if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_file() {
        "a regular file"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a device node"
    };
    format!("is {what}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Storage;

    /// A state directory with a database in it, and a file outside it holding
    /// `content` for a link to point at.
    fn state_and_target(content: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
        let tmp = tempfile::tempdir().expect("tmp");
        let state = tmp.path().join("state");
        drop(Storage::open(&state).expect("db"));
        let target = tmp.path().join("root-file");
        std::fs::write(&target, content).expect("write");
        (tmp, state, target)
    }

    /// The race: a name swapped for a link after the check. The chown opens
    /// the name itself without following it, so the check is not what protects.
    #[test]
    fn a_name_swapped_for_a_link_after_the_check_is_not_followed() {
        use std::os::unix::fs::MetadataExt;
        let (_tmp, state, target) = state_and_target("x");
        let before = std::fs::metadata(&target).expect("meta");
        let checked = StateDir::check(&state).expect("check").expect("there");
        assert!(checked.has_database);
        for name in ["facecaptured.db-wal", "facecaptured.db"] {
            let path = state.join(name);
            let _ = std::fs::remove_file(&path);
            std::os::unix::fs::symlink(&target, &path).expect("swap");
            let e = checked.fix_owner().expect_err("followed a link");
            assert!(
                matches!(&e, ProvisionError::Unsafe { path: p, problem } if *p == path && problem == "is a symbolic link"),
                "{e}"
            );
            let after = std::fs::metadata(&target).expect("meta");
            assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
            std::fs::remove_file(&path).expect("rm");
        }
    }

    /// SQLite itself refuses a link on the database's name, and on the WAL's
    /// when it opens it, after any check root made.
    #[test]
    fn sqlite_refuses_links_planted_after_the_check() {
        let (tmp, state, target) = state_and_target("not to be written");
        let wal = state.join(format!("{DB_FILE}-wal"));
        std::os::unix::fs::symlink(&target, &wal).expect("plant");
        let opened = Storage::open_existing_nofollow(&state).and_then(|s| s.stored_identity());
        assert!(opened.is_err(), "SQLite followed the WAL link");
        assert_eq!(
            std::fs::read_to_string(&target).expect("read"),
            "not to be written"
        );
        std::fs::remove_file(&wal).expect("rm");

        let db = state.join(DB_FILE);
        let real = tmp.path().join("real.db");
        std::fs::rename(&db, &real).expect("mv");
        std::os::unix::fs::symlink(&real, &db).expect("plant");
        let e = Storage::open_existing_nofollow(&state).expect_err("followed the db link");
        assert!(e.to_string().contains(&db.display().to_string()), "{e}");
    }
}
