//! `facecaptured provision`: the root step that seals the terminal's device key
//! and the tenant's secrets with systemd's credentials (issue 11). The daemon
//! runs unprivileged and cannot reach the TPM or systemd's host key, so this is
//! where the key is made (or moved out of the database of a terminal that ran
//! plain), sealed with `systemd-creds encrypt`, and where plain secret files are
//! sealed and removed. The unit reads the results with `LoadCredentialEncrypted=`.
//!
//! What it does, in order, each step printed as one line:
//! 1. chooses the protection: `tpm2` (`--with-key=host+tpm2`) when the board has
//!    a usable TPM2, `host-key` (`--with-key=host`) otherwise;
//! 2. the device key: keeps a sealed one that opens here; else moves the
//!    database's plain key into the credential and scrubs the row; else makes a
//!    new one (the device id from /etc/machine-id);
//! 3. each secret (`client_secret`, `apikey`, `aes_key`) given with `--secret` or
//!    found as a plain file in the credentials directory is sealed into
//!    `<name>.cred`; the plain file is overwritten and removed.
//!
//! Secrets and keys pass to `systemd-creds` through a pipe, never a file.

use crate::crypto::device::{DeviceKey, this_machine_device_id};
use crate::crypto::sealed::{self, Protection, SealedIdentity};
use crate::storage::{DB_FILE, Storage};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use zeroize::Zeroizing;

/// The secrets the daemon reads as credentials, by name.
pub const SECRETS: [&str; 4] = ["client_secret", "apikey", "aes_key", "proxy_credentials"];

/// The largest secret accepted (the daemon's own limit for a credential).
const MAX_SECRET: u64 = 64 * 1024;

/// Which key `systemd-creds` seals with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithKey {
    /// TPM2 when the board has a usable one, the host key otherwise.
    Auto,
    /// TPM2 (with the host key); an error when there is no usable TPM2.
    Tpm2,
    /// systemd's host key only.
    Host,
}

/// What to provision, and where.
#[derive(Debug, Clone)]
pub struct Request {
    /// Where the sealed credentials go (the unit's `LoadCredentialEncrypted=`
    /// directory, /etc/facecaptured/credentials).
    pub credentials_dir: PathBuf,
    /// The daemon's state directory, with the database (/var/lib/facecaptured).
    pub state_dir: PathBuf,
    /// Which key to seal with.
    pub with_key: WithKey,
    /// Make a new device key even if one exists (a replacement board, a TPM that
    /// was cleared): every enrollment must be made again.
    pub new_key: bool,
    /// Secrets given on the command line: name and path (`-` for stdin).
    pub secrets: Vec<(String, PathBuf)>,
    /// TPM2 PCRs the seal is bound to, as `systemd-creds --tpm2-pcrs=` takes them;
    /// empty keeps systemd's default, PCR 7 (the Secure Boot state). systemd 252
    /// cannot seal to no PCR at all: such a credential never opens again ("TPM2
    /// PCR bank invalid or not supported").
    pub tpm2_pcrs: String,
    /// The `systemd-creds` program.
    pub systemd_creds: PathBuf,
}

impl Default for Request {
    fn default() -> Self {
        Self {
            credentials_dir: PathBuf::from("/etc/facecaptured/credentials"),
            state_dir: PathBuf::from("/var/lib/facecaptured"),
            with_key: WithKey::Auto,
            new_key: false,
            secrets: Vec::new(),
            tpm2_pcrs: String::new(),
            systemd_creds: PathBuf::from("systemd-creds"),
        }
    }
}

/// Why provisioning stopped. Each says what to do; nothing is half-written (a
/// credential is written whole and renamed into place).
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// `systemd-creds` failed.
    #[error("systemd-creds {action} {path}: {message}")]
    Creds {
        /// `encrypt`, `decrypt` or `has-tpm2`.
        action: &'static str,
        /// The credential.
        path: PathBuf,
        /// Its standard error.
        message: String,
    },
    /// `--with-key tpm2` on a board without a usable TPM2.
    #[error("--with-key tpm2: this board has no usable TPM2 (systemd-creds has-tpm2: {0})")]
    NoTpm2(String),
    /// The sealed key exists but does not open here.
    #[error(
        "the sealed device key {path} does not open on this board ({message}): it was sealed \
         on another board or to a TPM whose state is gone. Restore the right TPM, or make a \
         new key with --new-key and enroll everyone again"
    )]
    KeyDoesNotOpen {
        /// The credential.
        path: PathBuf,
        /// What systemd-creds said.
        message: String,
    },
    /// A credential opens but does not hold what it should.
    #[error("{path}: {problem}")]
    BadCredential {
        /// The credential.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The database names a sealed key, and its credential file is gone.
    #[error(
        "the database says the device key was sealed, but there is no {path}: restore that \
         file, or make a new key with --new-key and enroll everyone again"
    )]
    KeyMissing {
        /// The missing credential.
        path: PathBuf,
    },
    /// `--secret` named something that is not one of [`SECRETS`].
    #[error(
        "--secret {0}: the name must be one of client_secret, apikey, aes_key, proxy_credentials"
    )]
    UnknownSecret(String),
    /// A secret to seal is empty, too large or unreadable.
    #[error("secret {name} from {path}: {problem}")]
    BadSecret {
        /// Its name.
        name: String,
        /// Where it was read from.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The database could not be opened or updated.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// The device identity could not be made or read.
    #[error("device identity: {0}")]
    Identity(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ProvisionError + '_ {
    move |source| ProvisionError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What was done, one line per step, for the operator.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// How the device key is sealed now.
    pub protection: Option<Protection>,
    /// The terminal's device id.
    pub device_id: String,
    /// One line per step, as printed.
    pub lines: Vec<String>,
    /// Whether a credential changed (the running service should restart).
    pub changed: bool,
}

/// The credential file of `name` in `dir`.
pub fn credential_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.cred"))
}

/// Runs the whole provisioning.
pub fn provision(req: &Request) -> Result<Report, ProvisionError> {
    for (name, _) in &req.secrets {
        if !SECRETS.contains(&name.as_str()) {
            return Err(ProvisionError::UnknownSecret(name.clone()));
        }
    }
    std::fs::create_dir_all(&req.credentials_dir).map_err(io(&req.credentials_dir))?;
    let protection = choose(req)?;
    let mut report = Report {
        protection: Some(protection),
        ..Report::default()
    };
    report.lines.push(format!(
        "protection: {} ({})",
        protection.as_str(),
        match protection {
            Protection::Tpm2 => "sealed to this board's TPM2 and systemd's host key",
            _ => "sealed with systemd's host key; no usable TPM2 on this board",
        }
    ));
    device_key(req, protection, &mut report)?;
    for name in SECRETS {
        secret(req, protection, name, &mut report)?;
    }
    Ok(report)
}

/// `auto` takes TPM2 when the kernel has a TPM2 resource manager and systemd's
/// TPM2 support is there (`systemd-creds has-tpm2` says `+driver`, `+system`,
/// `+subsystem`; the `firmware` line is about EFI measurement, which boards
/// without UEFI never have, and does not matter to sealing).
fn choose(req: &Request) -> Result<Protection, ProvisionError> {
    if req.with_key == WithKey::Host {
        return Ok(Protection::HostKey);
    }
    let out = Command::new(&req.systemd_creds)
        .arg("has-tpm2")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(io(&req.systemd_creds))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let has = |what: &str| text.lines().any(|l| l.trim() == format!("+{what}"));
    let usable = out.status.success() || (has("driver") && has("system") && has("subsystem"));
    match (usable, req.with_key) {
        (true, _) => Ok(Protection::Tpm2),
        (false, WithKey::Tpm2) => Err(ProvisionError::NoTpm2(
            text.split_whitespace().collect::<Vec<_>>().join(" "),
        )),
        (false, _) => Ok(Protection::HostKey),
    }
}

fn device_key(
    req: &Request,
    protection: Protection,
    report: &mut Report,
) -> Result<(), ProvisionError> {
    let cred = credential_path(&req.credentials_dir, sealed::CREDENTIAL);
    let db = req.state_dir.join(DB_FILE);
    // Never create the database here: it would belong to root.
    let mut storage = if db.exists() {
        Some(Storage::open(&req.state_dir)?)
    } else {
        None
    };
    let stored = match &storage {
        Some(s) => s.stored_identity()?,
        None => None,
    };

    if cred.exists() && !req.new_key {
        let payload = decrypt(req, &cred, sealed::CREDENTIAL).map_err(|e| match e {
            ProvisionError::Creds { message, .. } => ProvisionError::KeyDoesNotOpen {
                path: cred.clone(),
                message,
            },
            e => e,
        })?;
        let kept = SealedIdentity::parse(&payload).map_err(|e| ProvisionError::BadCredential {
            path: cred.clone(),
            problem: format!("the credential {e}"),
        })?;
        let mut line = format!(
            "device key: kept, sealed earlier ({}) in {}; device id {}",
            kept.protection.as_str(),
            cred.display(),
            kept.device_id
        );
        if let (Some(s), Some((_, Some(_)))) = (storage.as_mut(), &stored) {
            s.adopt_sealed(&kept)?;
            line.push_str("; the database's plain copy is scrubbed");
        }
        if storage.is_some() {
            fix_owner(&req.state_dir)?;
        }
        report.device_id = kept.device_id;
        report.lines.push(line);
        return Ok(());
    }

    let (device_id, key, how) = match stored {
        Some((id, Some(key))) if !req.new_key => (id, key, "moved from the database"),
        Some((_, None)) if !req.new_key => return Err(ProvisionError::KeyMissing { path: cred }),
        Some((id, _)) => (
            id,
            new_key()?,
            "a new key (every enrollment must be made again)",
        ),
        None => (
            this_machine_device_id().map_err(|e| ProvisionError::Identity(e.to_string()))?,
            new_key()?,
            "a new key",
        ),
    };
    let identity = SealedIdentity {
        device_id,
        key,
        protection,
    };
    let payload = identity
        .to_payload()
        .map_err(|e| ProvisionError::Identity(e.to_string()))?;
    encrypt(req, protection, sealed::CREDENTIAL, &payload, &cred)?;
    let mut line = format!(
        "device key: {how}, sealed ({}) into {}; device id {}",
        protection.as_str(),
        cred.display(),
        identity.device_id
    );
    if let Some(s) = storage.as_mut() {
        if s.stored_identity()?.is_some_and(|(_, key)| key.is_some()) {
            s.scrub_key()?;
            line.push_str("; the database row is scrubbed");
        }
        fix_owner(&req.state_dir)?;
    }
    report.device_id = identity.device_id;
    report.lines.push(line);
    report.changed = true;
    Ok(())
}

fn new_key() -> Result<DeviceKey, ProvisionError> {
    DeviceKey::generate().map_err(|e| ProvisionError::Identity(e.to_string()))
}

fn secret(
    req: &Request,
    protection: Protection,
    name: &str,
    report: &mut Report,
) -> Result<(), ProvisionError> {
    let cred = credential_path(&req.credentials_dir, name);
    let plain = req.credentials_dir.join(name);
    let given = req.secrets.iter().rev().find(|(n, _)| n == name);
    let (value, from) = match given {
        Some((_, path)) => (read_secret(name, path)?, path.clone()),
        None if plain.is_file() => (read_secret(name, &plain)?, plain.clone()),
        None if cred.exists() => {
            report.lines.push(format!(
                "{name}: sealed earlier in {}, kept",
                cred.display()
            ));
            return Ok(());
        }
        None => {
            report.lines.push(format!(
                "{name}: not given (put it in {} or pass --secret {name}=FILE)",
                plain.display()
            ));
            return Ok(());
        }
    };
    if value.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ProvisionError::BadSecret {
            name: name.to_owned(),
            path: from,
            problem: "is empty".into(),
        });
    }
    encrypt(req, protection, name, &value, &cred)?;
    let mut line = format!(
        "{name}: sealed ({}) into {}",
        protection.as_str(),
        cred.display()
    );
    // The plain file in the credentials directory goes, whichever way the value came.
    if plain.is_file() {
        shred(&plain)?;
        line.push_str(&format!("; the plain file {} is removed", plain.display()));
    }
    report.lines.push(line);
    report.changed = true;
    Ok(())
}

fn read_secret(name: &str, path: &Path) -> Result<Zeroizing<Vec<u8>>, ProvisionError> {
    let bad = |problem: String| ProvisionError::BadSecret {
        name: name.to_owned(),
        path: path.to_owned(),
        problem,
    };
    let mut value = Zeroizing::new(Vec::new());
    let read = if path == Path::new("-") {
        std::io::stdin()
            .take(MAX_SECRET + 1)
            .read_to_end(&mut value)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(MAX_SECRET + 1).read_to_end(&mut value))
    };
    read.map_err(|e| bad(e.to_string()))?;
    if value.len() as u64 > MAX_SECRET {
        return Err(bad("is larger than 64 KiB".into()));
    }
    Ok(value)
}

/// Overwrites a plain secret file with zeros, syncs it and removes it. On a
/// journalling file system or flash this narrows, not closes, the window in
/// which the old blocks hold the value: `--secret NAME=-` never writes it.
fn shred(path: &Path) -> Result<(), ProvisionError> {
    let len = std::fs::metadata(path).map_err(io(path))?.len();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io(path))?;
    f.write_all(&vec![0u8; len as usize]).map_err(io(path))?;
    f.sync_all().map_err(io(path))?;
    drop(f);
    std::fs::remove_file(path).map_err(io(path))
}

fn encrypt(
    req: &Request,
    protection: Protection,
    name: &str,
    value: &[u8],
    out: &Path,
) -> Result<(), ProvisionError> {
    let tmp = out.with_extension("cred.new");
    let mut cmd = Command::new(&req.systemd_creds);
    cmd.arg("encrypt").arg(format!("--name={name}"));
    match protection {
        Protection::Tpm2 => {
            cmd.arg("--with-key=host+tpm2");
            if !req.tpm2_pcrs.is_empty() {
                cmd.arg(format!("--tpm2-pcrs={}", req.tpm2_pcrs));
            }
        }
        _ => {
            cmd.arg("--with-key=host");
        }
    }
    cmd.arg("-").arg(&tmp);
    let creds_err = |message: String| ProvisionError::Creds {
        action: "encrypt",
        path: out.to_owned(),
        message,
    };
    run_with_input(cmd, value)
        .map_err(creds_err)
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })?;
    let f = std::fs::File::open(&tmp).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(io(&tmp))?;
    std::fs::rename(&tmp, out).map_err(io(out))?;
    if let Some(dir) = out.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
    }
    Ok(())
}

fn decrypt(req: &Request, path: &Path, name: &str) -> Result<Zeroizing<Vec<u8>>, ProvisionError> {
    let mut cmd = Command::new(&req.systemd_creds);
    cmd.arg("decrypt")
        .arg(format!("--name={name}"))
        .arg(path)
        .arg("-");
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .output()
        .map_err(io(&req.systemd_creds))?;
    let value = Zeroizing::new(out.stdout);
    if !out.status.success() {
        return Err(ProvisionError::Creds {
            action: "decrypt",
            path: path.to_owned(),
            message: last_line(&out.stderr),
        });
    }
    Ok(value)
}

fn run_with_input(mut cmd: Command, input: &[u8]) -> Result<(), String> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let write = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(input))
        .unwrap_or(Ok(()));
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(last_line(&out.stderr));
    }
    write.map_err(|e| e.to_string())
}

/// The last line systemd-creds printed (its error), without the media warning.
fn last_line(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr)
        .lines()
        .rfind(|l| !l.trim().is_empty() && !l.contains("not located on encrypted media"))
        .unwrap_or("failed without a message")
        .trim()
        .to_owned()
}

/// The database and its WAL files keep the state directory's owner (the daemon's
/// user) after root has written them.
fn fix_owner(state_dir: &Path) -> Result<(), ProvisionError> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(state_dir).map_err(io(state_dir))?;
    for suffix in ["", "-wal", "-shm"] {
        let path = state_dir.join(format!("{DB_FILE}{suffix}"));
        if path.exists() {
            std::os::unix::fs::chown(&path, Some(meta.uid()), Some(meta.gid()))
                .map_err(io(&path))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_line_skips_the_media_warning() {
        let err = b"Embedded credential name 'x' does not match filename 'y', refusing.\n\
                    Credential secret file '/var/lib/systemd/credential.secret' is not located on encrypted media, using anyway.\n";
        assert_eq!(
            last_line(err),
            "Embedded credential name 'x' does not match filename 'y', refusing."
        );
        assert_eq!(last_line(b""), "failed without a message");
    }

    #[test]
    fn an_unknown_secret_name_is_refused_before_anything_is_done() {
        let tmp = tempfile::tempdir().expect("tmp");
        let req = Request {
            credentials_dir: tmp.path().join("creds"),
            state_dir: tmp.path().join("state"),
            secrets: vec![("password".into(), "-".into())],
            ..Request::default()
        };
        let e = provision(&req).expect_err("unknown");
        assert!(e.to_string().contains("--secret password"), "{e}");
        assert!(!req.credentials_dir.exists());
    }
}
