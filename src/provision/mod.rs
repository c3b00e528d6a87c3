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
//! 3. the site identity (docs/identity.md), when `--site-identity` gives one, is
//!    sealed into `site_identity.cred` the same way, and the plain file given is
//!    overwritten and removed; one sealed earlier is checked to open here;
//! 4. each secret (`client_secret`, `apikey`, `aes_key`) given with `--secret` or
//!    found as a plain file in the credentials directory is sealed into
//!    `<name>.cred`; the plain file is overwritten and removed.
//!
//! Secrets and keys pass to `systemd-creds` through a pipe, never a file.

use crate::crypto::device::{DeviceKey, this_machine_device_id};
use crate::crypto::sealed::{self, Protection, SealedIdentity};
use crate::crypto::site::{self, SiteIdentity};
use crate::storage::Storage;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use zeroize::Zeroizing;

mod creds;
mod state_dir;

use creds::{decrypt, encrypt};
use state_dir::{StateDir, kind_of, root_only_dir, unsafe_path};

/// The secrets the daemon reads as credentials, by name.
pub const SECRETS: [&str; 5] = [
    "client_secret",
    "apikey",
    "aes_key",
    "proxy_credentials",
    "hub_credentials",
];

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
    /// The site identity to seal (`--site-identity`: a file `facecapturectl
    /// site new-identity` made, or `-` for stdin); the file is removed once sealed.
    pub site_identity: Option<PathBuf>,
    /// TPM2 PCRs the seal is bound to, as `systemd-creds --tpm2-pcrs=` takes them;
    /// empty keeps systemd's default, PCR 7 (the Secure Boot state). systemd 252
    /// cannot seal to no PCR at all: such a credential never opens again ("TPM2
    /// PCR bank invalid or not supported").
    pub tpm2_pcrs: String,
    /// The `systemd-creds` program.
    pub systemd_creds: PathBuf,
    /// Where this start's results go for the daemon's unit (systemd's
    /// `$RUNTIME_DIRECTORY`, /run/facecaptured-provision; root's): the sealed
    /// credentials once the device key opened here, or the file `provisioning`
    /// saying why provisioning failed. The daemon then starts either way, and a door
    /// controller hears at once why it cannot be served, instead of waiting
    /// out D-Bus activation. `None`: neither is written (a manual run).
    pub runtime_dir: Option<PathBuf>,
    /// The TPM2 resource manager's node: its presence means the board has a TPM.
    pub tpm_device: PathBuf,
    /// The TPM2 libraries systemd-creds loads (it only suggests them): a board
    /// with a TPM but without them seals with the host key alone, and says so.
    pub tpm2_libraries: Vec<String>,
}

/// The libraries systemd 252 and later load for TPM2 (`dlopen`).
pub const TPM2_LIBRARIES: [&str; 3] = ["libtss2-esys.so.0", "libtss2-rc.so.0", "libtss2-mu.so.0"];

/// The Debian packages that hold [`TPM2_LIBRARIES`] (Debian 12's; Debian 13's
/// carry a t64 suffix), for the advice.
const TPM2_PACKAGES: &str = "libtss2-esys-3.0.2-0 libtss2-rc0 libtss2-mu0 on Debian 12, \
     libtss2-esys-3.0.2-0t64 libtss2-rc0t64 libtss2-mu-4.0.1-0t64 on Debian 13";

impl Default for Request {
    fn default() -> Self {
        Self {
            credentials_dir: PathBuf::from("/etc/facecaptured/credentials"),
            state_dir: PathBuf::from("/var/lib/facecaptured"),
            with_key: WithKey::Auto,
            new_key: false,
            secrets: Vec::new(),
            site_identity: None,
            tpm2_pcrs: String::new(),
            systemd_creds: PathBuf::from("systemd-creds"),
            runtime_dir: None,
            tpm_device: PathBuf::from("/dev/tpmrm0"),
            tpm2_libraries: TPM2_LIBRARIES.iter().map(|l| (*l).to_owned()).collect(),
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
        "--secret {0}: the name must be one of client_secret, apikey, aes_key, \
         proxy_credentials, hub_credentials"
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
    /// The site identity given cannot be used.
    #[error(
        "--site-identity {path}: the file {problem}; give the file facecapturectl site \
         new-identity made"
    )]
    BadSiteIdentity {
        /// Where it was read from.
        path: PathBuf,
        /// What is wrong with it (never its content).
        problem: String,
    },
    /// A name provision would touch is not what it must be (a link, another
    /// owner's file, a directory others may change). Provision runs as root in
    /// the daemon's state directory, which the daemon's user could fill with
    /// links to any root file: it refuses rather than follow them.
    #[error(
        "{path}: {problem}; provision runs as root and never follows a link or touches a \
         file the daemon's user could have put in its place: remove it (the daemon makes \
         its database anew) or put the original back"
    )]
    Unsafe {
        /// The path refused.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
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

/// The file in the runtime directory that says why provisioning failed (the
/// daemon's credential [`crate::config::PROVISIONING_CREDENTIAL`]).
pub const FAILED_FILE: &str = crate::config::PROVISIONING_CREDENTIAL;

/// Runs the whole provisioning, and leaves its result for the daemon's start
/// in `req.runtime_dir` (see [`Request::runtime_dir`]).
pub fn provision(req: &Request) -> Result<Report, ProvisionError> {
    let Some(run) = &req.runtime_dir else {
        return provision_here(req);
    };
    // Every sealed credential goes to the daemon through here, and only once
    // the device key opened: on a cloned disk the secrets, sealed to the same
    // TPM, would not open either, and systemd would refuse the daemon's start.
    let names: Vec<&str> = [sealed::CREDENTIAL, site::CREDENTIAL]
        .into_iter()
        .chain(SECRETS)
        .collect();
    let failed = run.join(FAILED_FILE);
    for stale in names
        .iter()
        .map(|n| credential_path(run, n))
        .chain([failed.clone()])
    {
        match std::fs::remove_file(&stale) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&stale)(e)),
            _ => {}
        }
    }
    let result = provision_here(req).and_then(|report| {
        for name in &names {
            let sealed = credential_path(&req.credentials_dir, name);
            match std::fs::read(&sealed) {
                Ok(bytes) => write_file(&credential_path(run, name), &bytes)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&sealed)(e)),
            }
        }
        Ok(report)
    });
    if let Err(e) = &result {
        // Not secret: a path and what systemd-creds or the check said.
        write_file(&failed, format!("{e}\n").as_bytes())?;
    }
    result
}

/// Writes `bytes` to `path` whole, 0600: a new temporary file beside it
/// (`O_EXCL`, a random name), synced and renamed into place.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ProvisionError> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let mut tmp = tempfile::Builder::new()
        .prefix(".provision")
        .tempfile_in(dir)
        .map_err(io(dir))?;
    tmp.write_all(bytes).map_err(io(path))?;
    tmp.as_file().sync_all().map_err(io(path))?;
    tmp.persist(path).map_err(|e| io(path)(e.error))?;
    Ok(())
}

/// The provisioning itself.
fn provision_here(req: &Request) -> Result<Report, ProvisionError> {
    for (name, _) in &req.secrets {
        if !SECRETS.contains(&name.as_str()) {
            return Err(ProvisionError::UnknownSecret(name.clone()));
        }
    }
    std::fs::create_dir_all(&req.credentials_dir).map_err(io(&req.credentials_dir))?;
    root_only_dir(&req.credentials_dir)?;
    let (protection, why) = choose(req)?;
    let mut report = Report {
        protection: Some(protection),
        ..Report::default()
    };
    report
        .lines
        .push(format!("protection: {} ({why})", protection.as_str()));
    device_key(req, protection, &mut report)?;
    site_identity(req, protection, &mut report)?;
    for name in SECRETS {
        secret(req, protection, name, &mut report)?;
    }
    Ok(report)
}

/// `auto` takes TPM2 when the kernel has a TPM2 resource manager and systemd's
/// TPM2 support is there (`systemd-creds has-tpm2` says `+driver`, `+system`,
/// `+subsystem`; the `firmware` line is about EFI measurement, which boards
/// without UEFI never have, and does not matter to sealing) and the TPM2
/// libraries systemd loads are installed. A board whose TPM goes unused says
/// so, with what to install. The protection, and why, for the report.
fn choose(req: &Request) -> Result<(Protection, String), ProvisionError> {
    if req.with_key == WithKey::Host {
        return Ok((
            Protection::HostKey,
            "sealed with systemd's host key, as --with-key host asks".into(),
        ));
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
    let present = req.tpm_device.exists();
    let missing: Vec<&str> = req
        .tpm2_libraries
        .iter()
        .map(String::as_str)
        .filter(|l| !library_loads(l))
        .collect();
    let unusable = if present && !missing.is_empty() {
        Some(format!(
            "this board has a TPM2 ({}), but the TPM2 libraries systemd-creds loads are not \
             installed ({}): install {TPM2_PACKAGES}, then provision with --new-key (everyone \
             enrolled again) to seal to it",
            req.tpm_device.display(),
            missing.join(", ")
        ))
    } else if present && !usable {
        Some(format!(
            "this board has a TPM2 ({}), but systemd-creds cannot use it (has-tpm2: {})",
            req.tpm_device.display(),
            text.split_whitespace().collect::<Vec<_>>().join(" ")
        ))
    } else {
        None
    };
    match (usable && unusable.is_none(), req.with_key, unusable) {
        (true, _, _) => Ok((
            Protection::Tpm2,
            "sealed to this board's TPM2 and systemd's host key".into(),
        )),
        (false, WithKey::Tpm2, why) => {
            Err(ProvisionError::NoTpm2(why.unwrap_or_else(|| {
                text.split_whitespace().collect::<Vec<_>>().join(" ")
            })))
        }
        (false, _, Some(why)) => {
            tracing::warn!("{why}");
            Ok((
                Protection::HostKey,
                format!("sealed with systemd's host key only: {why}"),
            ))
        }
        (false, _, None) => Ok((
            Protection::HostKey,
            "sealed with systemd's host key; no TPM2 on this board".into(),
        )),
    }
}

/// Whether the dynamic loader finds `name` (as systemd-creds's `dlopen` would).
fn library_loads(name: &str) -> bool {
    let Ok(c) = std::ffi::CString::new(name) else {
        return false;
    };
    // SAFETY: a NUL-terminated name; the handle, if any, is closed at once. The
    // libraries are the system's own (ld.so.cache), as systemd-creds loads them.
    unsafe {
        let handle = libc::dlopen(c.as_ptr(), libc::RTLD_LAZY | libc::RTLD_LOCAL);
        if handle.is_null() {
            return false;
        }
        libc::dlclose(handle);
    }
    true
}

fn device_key(
    req: &Request,
    protection: Protection,
    report: &mut Report,
) -> Result<(), ProvisionError> {
    let cred = credential_path(&req.credentials_dir, sealed::CREDENTIAL);
    // Never create the database here (it would belong to root), and never open a
    // name the daemon's user could have replaced with a link.
    let state = StateDir::check(&req.state_dir)?;
    let mut storage = match &state {
        Some(state) if state.has_database => Some(Storage::open_existing_nofollow(&req.state_dir)?),
        _ => None,
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
        close(storage, state.as_ref())?;
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
    if let Some(s) = storage.as_mut()
        && s.stored_identity()?.is_some_and(|(_, key)| key.is_some())
    {
        s.scrub_key()?;
        line.push_str("; the database row is scrubbed");
    }
    close(storage, state.as_ref())?;
    report.device_id = identity.device_id;
    report.lines.push(line);
    report.changed = true;
    Ok(())
}

/// Closes the database (SQLite checkpoints its WAL), then gives its files back
/// to the daemon's user.
fn close(storage: Option<Storage>, state: Option<&StateDir>) -> Result<(), ProvisionError> {
    if let (Some(storage), Some(state)) = (storage, state) {
        drop(storage);
        state.fix_owner()?;
    }
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

/// Seals the site identity given, or checks that one sealed earlier opens here
/// (a site identity that does not open stops provisioning, as the device key's
/// does: the daemon would otherwise sign for the site with nothing).
fn site_identity(
    req: &Request,
    protection: Protection,
    report: &mut Report,
) -> Result<(), ProvisionError> {
    let cred = credential_path(&req.credentials_dir, site::CREDENTIAL);
    let Some(path) = &req.site_identity else {
        if !cred.exists() {
            report
                .lines
                .push("site identity: none (this terminal is not in a site)".into());
            return Ok(());
        }
        let payload = decrypt(req, &cred, site::CREDENTIAL)?;
        let kept = SiteIdentity::parse(&payload).map_err(|e| ProvisionError::BadCredential {
            path: cred.clone(),
            problem: format!("the site_identity credential {e}"),
        })?;
        report.lines.push(format!(
            "site identity: kept, sealed earlier ({}) in {}; site device id {}",
            kept.protection.map_or("?", Protection::as_str),
            cred.display(),
            kept.device_id
        ));
        return Ok(());
    };
    let bad = |problem: String| ProvisionError::BadSiteIdentity {
        path: path.clone(),
        problem,
    };
    let bytes = read_secret(site::CREDENTIAL, path).map_err(|e| match e {
        ProvisionError::BadSecret { problem, .. } => bad(problem),
        e => e,
    })?;
    let given = SiteIdentity::parse(&bytes).map_err(|e| bad(e.to_string()))?;
    let payload = given
        .to_payload(protection)
        .map_err(|e| bad(e.to_string()))?;
    encrypt(req, protection, site::CREDENTIAL, &payload, &cred)?;
    let mut line = format!(
        "site identity: sealed ({}) into {}; site device id {}",
        protection.as_str(),
        cred.display(),
        given.device_id
    );
    if path != Path::new("-") {
        shred(path)?;
        line.push_str(&format!("; the plain file {} is removed", path.display()));
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
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io(path))?;
    let meta = f.metadata().map_err(io(path))?;
    if !meta.is_file() {
        return Err(unsafe_path(path, kind_of(&meta)));
    }
    // A secret file is at most MAX_SECRET bytes (read_secret refused larger).
    let len = usize::try_from(meta.len().min(MAX_SECRET)).unwrap_or(0);
    f.write_all(&vec![0u8; len]).map_err(io(path))?;
    f.sync_all().map_err(io(path))?;
    drop(f);
    std::fs::remove_file(path).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// A board with a TPM but without the libraries systemd-creds loads seals
    /// with the host key and says why, with what to install (issue 27, item 10);
    /// --with-key tpm2 is refused with the same words.
    #[test]
    fn a_tpm_without_its_libraries_is_named() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().expect("tmp");
        let creds = tmp.path().join("systemd-creds");
        std::fs::write(
            &creds,
            "#!/bin/sh\nprintf 'yes\\n+firmware\\n+driver\\n+system\\n+subsystem\\n'\n",
        )
        .expect("script");
        std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let tpm = tmp.path().join("tpmrm0");
        std::fs::write(&tpm, "").expect("node");
        let mut req = Request {
            systemd_creds: creds,
            tpm_device: tpm,
            tpm2_libraries: vec!["libfacecapture-no-such-tss2.so.0".into()],
            ..Request::default()
        };
        let (p, why) = choose(&req).expect("auto");
        assert_eq!(p, Protection::HostKey);
        assert!(why.contains("libfacecapture-no-such-tss2.so.0"), "{why}");
        assert!(why.contains("libtss2-esys-3.0.2-0"), "{why}");
        req.with_key = WithKey::Tpm2;
        let e = choose(&req).expect_err("tpm2 asked for");
        assert!(e.to_string().contains("libtss2-rc0"), "{e}");
        // With its libraries (libc stands in for them), the TPM is used.
        req.with_key = WithKey::Auto;
        req.tpm2_libraries = vec!["libc.so.6".into()];
        assert_eq!(choose(&req).expect("auto").0, Protection::Tpm2);
        // No TPM: the host key, and no advice.
        req.tpm_device = tmp.path().join("none");
        req.tpm2_libraries = vec!["libfacecapture-no-such-tss2.so.0".into()];
        let (p, why) = choose(&req).expect("auto");
        assert_eq!((p, why.contains("install")), (Protection::Tpm2, false));
    }
}
