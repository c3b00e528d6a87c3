//! `facecaptured provision` with the real `systemd-creds` (systemd 252's host
//! key, kept in a private file through `$SYSTEMD_CREDENTIAL_SECRET`): a new
//! terminal, the migration of one that ran plain, a second run, a disk moved to a
//! board with another host key, and the secrets sealed with their plain files
//! gone. The TPM2 path is the booted-system test's (tests/system, swtpm).

use facecapture::crypto::device::DeviceKey;
use facecapture::crypto::sealed::{Protection, SealedIdentity};
use facecapture::storage::Storage;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "common/program.rs"]
mod program;

use program::DAEMON;

struct Board {
    dir: tempfile::TempDir,
    /// This board's systemd host key.
    host_key: PathBuf,
}

impl Board {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        let host_key = dir.path().join("credential.secret");
        std::fs::create_dir(dir.path().join("creds")).expect("creds");
        Self { dir, host_key }
    }
    fn creds(&self) -> PathBuf {
        self.dir.path().join("creds")
    }
    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }
    fn provision(&self, extra: &[&str]) -> Output {
        let creds = self.creds();
        let state = self.state();
        let mut args = vec![
            "provision",
            "--no-restart",
            "--credentials-dir",
            creds.to_str().expect("utf-8"),
            "--state-dir",
            state.to_str().expect("utf-8"),
        ];
        args.extend_from_slice(extra);
        Command::new(DAEMON)
            .args(&args)
            .env("SYSTEMD_CREDENTIAL_SECRET", &self.host_key)
            .env("RUNTIME_DIRECTORY", self.run())
            .output()
            .expect("run facecaptured provision")
    }
    /// The provisioning unit's RuntimeDirectory=: this start's result.
    fn run(&self) -> PathBuf {
        let run = self.dir.path().join("run");
        std::fs::create_dir_all(&run).expect("run");
        run
    }
    fn decrypt(&self, name: &str) -> Result<Vec<u8>, String> {
        let out = Command::new("systemd-creds")
            .args(["decrypt", &format!("--name={name}")])
            .arg(self.creds().join(format!("{name}.cred")))
            .arg("-")
            .env("SYSTEMD_CREDENTIAL_SECRET", &self.host_key)
            .output()
            .expect("systemd-creds");
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(text(&out.stderr))
        }
    }
    fn sealed_identity(&self) -> SealedIdentity {
        SealedIdentity::parse(&self.decrypt("device_key").expect("decrypt")).expect("payload")
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "provision failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Every byte under `dir`, file by file.
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).expect("dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            all.extend(all_bytes(&path));
        } else {
            all.extend(std::fs::read(&path).expect("read"));
        }
    }
    all
}

fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The private scalar of a P-256 key, as any copy of the key holds it.
fn scalar(key: &DeviceKey) -> Vec<u8> {
    key.scalar_bytes().to_vec()
}

#[test]
fn a_new_terminal_gets_a_sealed_key_and_sealed_secrets() {
    let board = Board::new();
    std::fs::write(board.creds().join("client_secret"), "s3cret-client\n").expect("write");
    std::fs::write(board.creds().join("apikey"), "key-0123456789").expect("write");
    let out = ok(&board.provision(&["--with-key", "host"]));
    assert!(out.contains("protection: host-key"), "{out}");
    assert!(
        out.contains("device key: a new key, sealed (host-key)"),
        "{out}"
    );
    assert!(
        out.contains("client_secret: sealed (host-key)") && out.contains("plain file"),
        "{out}"
    );
    assert!(out.contains("aes_key: not given"), "{out}");

    // The plain files are gone and no file holds a value in plain form.
    assert!(!board.creds().join("client_secret").exists());
    assert!(!board.creds().join("apikey").exists());
    let disk = all_bytes(board.dir.path());
    for value in ["s3cret-client", "key-0123456789"] {
        assert!(!holds(&disk, value.as_bytes()), "{value} in plain form");
    }
    assert_eq!(
        board.decrypt("client_secret").expect("decrypt"),
        b"s3cret-client\n"
    );
    let id = board.sealed_identity();
    assert_eq!(id.protection, Protection::HostKey);
    assert_eq!(id.device_id.len(), 32);
    assert!(!holds(&disk, &scalar(&id.key)), "the key in plain form");
    // No database was made (it would belong to root).
    assert!(!board.state().exists());

    // A second run keeps everything.
    let again = ok(&board.provision(&["--with-key", "host"]));
    assert!(
        again.contains(&format!(
            "device key: kept, sealed earlier (host-key) in {}",
            board.creds().join("device_key.cred").display()
        )),
        "{again}"
    );
    assert!(again.contains("client_secret: sealed earlier"), "{again}");
    assert_eq!(board.sealed_identity().device_id, id.device_id);
}

#[test]
fn a_terminal_that_ran_plain_keeps_its_id_and_key_and_the_row_is_scrubbed() {
    let board = Board::new();
    let (device_id, plain_key) = {
        let mut storage = Storage::open(&board.state()).expect("db");
        let (id, key) = storage
            .device_identity(|| {
                Ok((
                    "5c1e2f8a93474d0ba61f33e27d90c458".into(),
                    DeviceKey::generate().expect("key"),
                ))
            })
            .expect("plain identity");
        (id, key)
    };
    let secret = scalar(&plain_key);
    assert!(holds(&all_bytes(&board.state()), &secret));

    let out = ok(&board.provision(&["--with-key", "host"]));
    assert!(out.contains("device key: moved from the database"), "{out}");
    assert!(out.contains("the database row is scrubbed"), "{out}");
    let id = board.sealed_identity();
    assert_eq!(id.device_id, device_id);
    assert_eq!(
        id.key.public_key_b64().expect("pub"),
        plain_key.public_key_b64().expect("pub")
    );
    assert!(
        !holds(&all_bytes(&board.state()), &secret),
        "the database still holds the key"
    );
    let storage = Storage::open(&board.state()).expect("db");
    assert!(matches!(
        storage.stored_identity(),
        Ok(Some((ref stored, None))) if *stored == device_id
    ));
}

#[test]
fn a_disk_on_another_board_does_not_open_and_nothing_changes() {
    let board = Board::new();
    ok(&board.provision(&["--with-key", "host"]));
    let sealed = std::fs::read(board.creds().join("device_key.cred")).expect("cred");
    // This start's result for the daemon: the key that opened here.
    assert_eq!(
        std::fs::read(board.run().join("device_key.cred")).expect("run cred"),
        sealed
    );
    assert!(!board.run().join("provisioning").exists());
    std::fs::write(board.creds().join("apikey"), "key-0123456789").expect("write");
    ok(&board.provision(&["--with-key", "host"]));
    assert_eq!(
        std::fs::read(board.run().join("apikey.cred")).expect("run apikey"),
        std::fs::read(board.creds().join("apikey.cred")).expect("apikey")
    );

    // The same disk, another board: another host key.
    let other = Board {
        host_key: board.dir.path().join("other-board.secret"),
        dir: board.dir,
    };
    let out = other.provision(&["--with-key", "host"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("does not open on this board"), "{err}");
    assert!(err.contains("--new-key"), "{err}");
    assert_eq!(
        std::fs::read(other.creds().join("device_key.cred")).expect("cred"),
        sealed
    );
    // The daemon's start gets no key, and why (its credential "provisioning"):
    // it serves and answers Unprovisioned at once, instead of not starting.
    assert!(!other.run().join("device_key.cred").exists());
    assert!(
        !other.run().join("apikey.cred").exists(),
        "a secret that would not open"
    );
    let why = std::fs::read_to_string(other.run().join("provisioning")).expect("why");
    assert!(why.contains("does not open on this board"), "{why}");

    // --new-key makes a new identity there.
    let out = ok(&other.provision(&["--with-key", "host", "--new-key"]));
    assert!(out.contains("device key: a new key"), "{out}");
    assert!(other.decrypt("device_key").is_ok());
    assert!(
        !other.run().join("provisioning").exists(),
        "a stale failure"
    );
    assert!(other.run().join("device_key.cred").exists());
}

#[test]
fn bad_requests_name_what_is_wrong() {
    let board = Board::new();
    let out = board.provision(&["--secret", "password=/dev/null"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("--secret password"));

    let out = board.provision(&["--secret", "apikey"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("expected NAME=FILE"));

    std::fs::write(board.creds().join("apikey"), "\n").expect("write");
    let out = board.provision(&["--with-key", "host"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("secret apikey"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains("is empty"));

    // This machine has no TPM2: asking for one says so.
    if !Path::new("/sys/class/tpmrm")
        .read_dir()
        .is_ok_and(|mut d| d.next().is_some())
    {
        std::fs::remove_file(board.creds().join("apikey")).expect("rm");
        let out = board.provision(&["--with-key", "tpm2"]);
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains("no usable TPM2"),
            "{}",
            text(&out.stderr)
        );
    }
}

/// The daemon on a terminal whose key was sealed away: without the credential
/// (removed, or a disk on another board that systemd could not open it for) and
/// with another terminal's, it stops with EX_CONFIG and says why. It never makes
/// a new key by itself.
#[test]
fn the_daemon_refuses_a_sealed_row_without_its_own_credential() {
    let board = Board::new();
    ok(&board.provision(&["--with-key", "host"]));
    let mine = board.sealed_identity();
    Storage::open(&board.state())
        .expect("db")
        .adopt_sealed(&mine)
        .expect("adopt");
    let config = board.dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nbase_url = \"https://127.0.0.1:9\"\ncustomer_name = \"c\"\nclient_id = \"d\"\n\
             client_secret = \"s\"\napikey = \"k\"\n[dbus]\nbus = \"session\"\n\
             [storage]\nstate_dir = \"{}\"\n",
            board.state().display()
        ),
    )
    .expect("config");
    let daemon = |creds: Option<&Path>| {
        let mut cmd = Command::new(DAEMON);
        cmd.arg("--config")
            .arg(&config)
            .env_remove("CREDENTIALS_DIRECTORY")
            .env_remove("JOURNAL_STREAM")
            .env_remove("STATE_DIRECTORY");
        if let Some(dir) = creds {
            cmd.env("CREDENTIALS_DIRECTORY", dir);
        }
        cmd.output().expect("run facecaptured")
    };

    let out = daemon(None);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("the device key was sealed into the credential device_key")
            && err.contains("Nothing will be signed"),
        "{err}"
    );
    assert!(matches!(
        Storage::open(&board.state()).expect("db").stored_identity(),
        Ok(Some((_, None)))
    ));

    let other = tempfile::tempdir().expect("creds");
    let theirs = SealedIdentity {
        device_id: "0123456789abcdef0123456789abcdef".into(),
        key: DeviceKey::generate().expect("key"),
        protection: Protection::Tpm2,
    };
    std::fs::write(
        other.path().join("device_key"),
        &theirs.to_payload().expect("payload")[..],
    )
    .expect("write");
    let out = daemon(Some(other.path()));
    assert_eq!(out.status.code(), Some(78), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!(
            "the sealed device key is for device {}",
            theirs.device_id
        )),
        "{}",
        text(&out.stderr)
    );

    std::fs::write(other.path().join("device_key"), "not json").expect("write");
    let out = daemon(Some(other.path()));
    assert_eq!(out.status.code(), Some(78));
    assert!(
        text(&out.stderr).contains(
            "device_key: the credential device_key is not a facecaptured device-key payload"
        ),
        "{}",
        text(&out.stderr)
    );
}

/// A root file's bytes.
const SHADOW: &str = "root:$y$secret:20000::::::\n";

/// The daemon's user as these tests play it: the owner of the state directory.
const DAEMON_UID: u32 = 65534;

/// Whether this test runs as root (it chowns, as provision does); if not it
/// says SKIPPED, which tests/run.sh counts as a failure.
fn as_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        println!("SKIPPED {test}: needs root (provision chowns the daemon's files)");
    }
    root
}

fn chown_tree(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid)).expect("chown");
    if path.is_dir() && !path.is_symlink() {
        for entry in std::fs::read_dir(path).expect("dir").flatten() {
            chown_tree(&entry.path(), uid);
        }
    }
}

impl Board {
    /// A terminal that ran plain (a database with its key), its state
    /// directory and database the daemon's user's.
    fn ran_plain(&self) {
        let mut storage = Storage::open(&self.state()).expect("db");
        storage
            .device_identity(|| {
                Ok((
                    "5c1e2f8a93474d0ba61f33e27d90c458".into(),
                    DeviceKey::generate().expect("key"),
                ))
            })
            .expect("plain identity");
        drop(storage);
        chown_tree(&self.state(), DAEMON_UID);
    }

    /// A root file outside the state directory (a stand-in for /etc/shadow),
    /// holding `content`: an empty one is what SQLite takes for an empty
    /// database, and would have written its schema into.
    fn root_file(&self, content: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.path().join("shadow");
        std::fs::write(&path, content).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        path
    }
}

/// The root file is as it was: root's, 0600, its bytes unchanged.
fn untouched(path: &Path, content: &str) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path).expect("target");
    assert_eq!(
        (meta.uid(), meta.gid()),
        (0, 0),
        "{} changed owner",
        path.display()
    );
    assert_eq!(
        meta.mode() & 0o7777,
        0o600,
        "{} changed mode",
        path.display()
    );
    assert_eq!(std::fs::read_to_string(path).expect("read"), content);
}

fn refused(out: &Output, path: &Path, problem: &str) {
    let err = text(&out.stderr);
    assert!(
        !out.status.success(),
        "provision accepted {}: {err}",
        path.display()
    );
    assert!(
        err.contains(&path.display().to_string()) && err.contains(problem),
        "the refusal names neither {} nor {problem:?}: {err}",
        path.display()
    );
    assert!(err.contains("never follows a link"), "{err}");
}

#[test]
fn a_link_planted_on_any_database_name_is_refused_and_its_target_keeps_its_owner() {
    if !as_root("a_link_planted_on_any_database_name_is_refused") {
        return;
    }
    for name in [
        "facecaptured.db",
        "facecaptured.db-wal",
        "facecaptured.db-shm",
    ] {
        let board = Board::new();
        board.ran_plain();
        let content = if name == "facecaptured.db" {
            ""
        } else {
            SHADOW
        };
        let target = board.root_file(content);
        let planted = board.state().join(name);
        let _ = std::fs::remove_file(&planted);
        std::os::unix::fs::symlink(&target, &planted).expect("plant");
        let out = board.provision(&["--with-key", "host"]);
        refused(&out, &planted, "is a symbolic link");
        untouched(&target, content);
        // Nothing was sealed either.
        assert!(!board.creds().join("device_key.cred").exists(), "{name}");
    }
}

#[test]
fn a_dangling_link_hard_link_or_strangers_file_is_refused() {
    use std::os::unix::fs::MetadataExt;
    if !as_root("a_dangling_link_hard_link_or_strangers_file_is_refused") {
        return;
    }
    // A dangling link on the WAL's name: SQLite as root would have made a root
    // file wherever it points.
    let board = Board::new();
    board.ran_plain();
    let nowhere = board.dir.path().join("made-by-root");
    let wal = board.state().join("facecaptured.db-wal");
    std::os::unix::fs::symlink(&nowhere, &wal).expect("plant");
    refused(
        &board.provision(&["--with-key", "host"]),
        &wal,
        "is a symbolic link",
    );
    assert!(!nowhere.exists(), "root made a file through the link");

    // A hard link to a root file (a kernel without protected_hardlinks lets the
    // daemon's user make one).
    let board = Board::new();
    board.ran_plain();
    let target = board.root_file("");
    let db = board.state().join("facecaptured.db");
    std::fs::remove_file(&db).expect("rm");
    std::fs::hard_link(&target, &db).expect("link");
    refused(
        &board.provision(&["--with-key", "host"]),
        &db,
        "has 2 hard links",
    );
    untouched(&target, "");

    // A database owned by neither the daemon's user nor root.
    let board = Board::new();
    board.ran_plain();
    let db = board.state().join("facecaptured.db");
    std::os::unix::fs::lchown(&db, Some(4242), Some(4242)).expect("chown");
    refused(
        &board.provision(&["--with-key", "host"]),
        &db,
        "is owned by uid 4242",
    );
    assert_eq!(std::fs::metadata(&db).expect("db").uid(), 4242);

    // The state directory itself a link, and a FIFO in the database's place.
    let board = Board::new();
    let elsewhere = board.dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).expect("dir");
    std::os::unix::fs::symlink(&elsewhere, board.state()).expect("plant");
    refused(
        &board.provision(&["--with-key", "host"]),
        &board.state(),
        "is a symbolic link",
    );
    let board = Board::new();
    std::fs::create_dir(board.state()).expect("state");
    let db = board.state().join("facecaptured.db");
    let c = std::ffi::CString::new(db.to_str().expect("utf-8")).expect("path");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    refused(&board.provision(&["--with-key", "host"]), &db, "is a FIFO");
}

#[test]
fn the_database_goes_back_to_the_daemons_user_and_a_lax_credentials_dir_is_refused() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !as_root("the_database_goes_back_to_the_daemons_user") {
        return;
    }
    let board = Board::new();
    board.ran_plain();
    ok(&board.provision(&["--with-key", "host"]));
    for entry in std::fs::read_dir(board.state()).expect("state").flatten() {
        let meta = entry.metadata().expect("meta");
        assert_eq!(meta.uid(), DAEMON_UID, "{}", entry.path().display());
    }

    // A credentials directory others may write to could have a link planted in
    // it too: refused before anything is sealed.
    let board = Board::new();
    std::fs::set_permissions(board.creds(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    std::fs::write(board.creds().join("apikey"), "key-0123456789").expect("write");
    let out = board.provision(&["--with-key", "host"]);
    let err = text(&out.stderr);
    assert!(!out.status.success() && err.contains("mode 0777"), "{err}");
    assert!(board.creds().join("apikey").exists(), "the plain file went");
}

/// The site identity (docs/identity.md): `facecapturectl site new-identity`
/// makes a 0600 file; provision seals it like the device key, removes the plain
/// file and leaves no copy of its keys on the disk; a later run keeps it; a file
/// that is not one is refused by name, without quoting it.
#[test]
fn a_site_identity_is_sealed_and_its_plain_file_removed() {
    use facecapture::crypto::site::SiteIdentity;
    use std::os::unix::fs::PermissionsExt;
    let board = Board::new();
    let file = board.dir.path().join("site.json");
    let made = Command::new(program::facecapturectl())
        .args(["site", "new-identity", "--out"])
        .arg(&file)
        .output()
        .expect("facecapturectl");
    assert!(made.status.success(), "{}", text(&made.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&made.stdout).expect("json");
    let meta = std::fs::metadata(&file).expect("file");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let site = SiteIdentity::parse(&std::fs::read(&file).expect("read")).expect("identity");
    assert_eq!(printed["device_id"], site.device_id.as_str());
    // A second run never overwrites a site's identity.
    let again = Command::new(program::facecapturectl())
        .args(["site", "new-identity", "--out"])
        .arg(&file)
        .output()
        .expect("facecapturectl");
    assert_eq!(again.status.code(), Some(1));
    let plain_file = std::fs::read(&file).expect("read");

    let out = ok(&board.provision(&[
        "--with-key",
        "host",
        "--site-identity",
        file.to_str().expect("utf-8"),
    ]));
    assert!(
        out.contains(&format!(
            "site identity: sealed (host-key) into {}",
            board.creds().join("site_identity.cred").display()
        )) && out.contains(&format!("site device id {}", site.device_id)),
        "{out}"
    );
    assert!(!file.exists(), "the plain file is removed");
    let sealed =
        SiteIdentity::parse(&board.decrypt("site_identity").expect("decrypt")).expect("payload");
    assert_eq!(sealed.device_id, site.device_id);
    assert_eq!(sealed.protection, Some(Protection::HostKey));
    assert_eq!(
        sealed.user_tag("alice").expect("tag"),
        site.user_tag("alice").expect("tag")
    );
    assert!(board.run().join("site_identity.cred").exists());
    let disk = all_bytes(board.dir.path());
    assert!(
        !holds(&disk, &scalar(&site.key)),
        "the site key in plain form"
    );
    assert!(!holds(&disk, &plain_file[40..90]), "the file's text");

    let out = ok(&board.provision(&["--with-key", "host"]));
    assert!(
        out.contains("site identity: kept, sealed earlier (host-key)"),
        "{out}"
    );

    let bad = board.dir.path().join("not-a-site.json");
    std::fs::write(
        &bad,
        "{\"format\":\"facecaptured-site-identity/1\",\"secret\":\"hunter2\"}",
    )
    .expect("write");
    let out = board.provision(&["--site-identity", bad.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("--site-identity {}", bad.display()))
            && err.contains("facecapturectl site new-identity")
            && !err.contains("hunter2"),
        "{err}"
    );
    assert!(bad.exists(), "a refused file is left where it was");
}
