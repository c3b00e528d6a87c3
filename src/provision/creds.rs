//! `systemd-creds` as provisioning runs it: sealing a value into a credential
//! file (through a pipe, never a file; written beside it and renamed into
//! place, 0600, synced) and opening one, with systemd-creds' own error line.

use super::{Protection, ProvisionError, Request, io};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use zeroize::Zeroizing;

/// Seals `value` as the credential `name` into `out`, with the host key and,
/// for `Protection::Tpm2`, the TPM.
pub(super) fn encrypt(
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

/// Opens the credential `name` sealed in `path`.
pub(super) fn decrypt(
    req: &Request,
    path: &Path,
    name: &str,
) -> Result<Zeroizing<Vec<u8>>, ProvisionError> {
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
}
