//! Secrets: each from its key, its `<key>_file`, or the systemd credential of
//! the same name (never from the environment under systemd), read with a size
//! limit; and the credentials only systemd hands over (the sealed device key,
//! provisioning's failure).

use super::{Config, ConfigError, Environment, PROVISIONING_CREDENTIAL, Secret, bad};
use std::path::Path;

/// Largest secret or key file we read.
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// The secret keys and the credentials that carry them.
const SECRET_KEYS: [(&str, &str); 5] = [
    ("server.client_secret", "client_secret"),
    ("server.apikey", "apikey"),
    ("server.proxy_credentials", "proxy_credentials"),
    ("qr.aes_key", "aes_key"),
    ("site.hub_credentials", "hub_credentials"),
];

impl Config {
    pub(super) fn resolve_secrets(&mut self, env: &Environment) -> Result<(), ConfigError> {
        // A unit's Environment= is shown to every user by `systemctl show`.
        if env.under_systemd {
            for (key, credential) in SECRET_KEYS {
                let var = format!("FACECAPTURED__{}", key.replace('.', "__").to_uppercase());
                if env.vars.iter().any(|(k, _)| *k == var) {
                    return Err(bad(
                        key,
                        format!(
                            "a secret in the environment ({var}) is shown to every user by \
                             systemctl show: under systemd secrets come as credentials only; put \
                             it in /etc/facecaptured/credentials/{credential} and restart the \
                             service, which seals it, and remove the variable"
                        ),
                    ));
                }
            }
        }
        let creds = env.credentials_dir.as_deref();
        // Each secret key's value and _file, in SECRET_KEYS' order.
        let fields = [
            (
                &mut self.server.client_secret,
                self.server.client_secret_file.as_deref(),
            ),
            (&mut self.server.apikey, self.server.apikey_file.as_deref()),
            (
                &mut self.server.proxy_credentials,
                self.server.proxy_credentials_file.as_deref(),
            ),
            (&mut self.qr.aes_key, self.qr.aes_key_file.as_deref()),
            (
                &mut self.site.hub_credentials,
                self.site.hub_credentials_file.as_deref(),
            ),
        ];
        for ((key, credential), (value, file)) in SECRET_KEYS.into_iter().zip(fields) {
            resolve(key, value, file, creds, credential)?;
        }
        // Not config keys: only systemd puts them there (LoadCredentialEncrypted=,
        // LoadCredential=).
        let mut failed = Secret::default();
        resolve(
            PROVISIONING_CREDENTIAL,
            &mut failed,
            None,
            creds,
            PROVISIONING_CREDENTIAL,
        )?;
        self.storage.provisioning_failed = failed.expose().trim().to_owned();
        resolve(
            "device_key",
            &mut self.storage.device_key,
            None,
            creds,
            crate::crypto::sealed::CREDENTIAL,
        )?;
        resolve(
            "site_identity",
            &mut self.storage.site_identity,
            None,
            creds,
            crate::crypto::site::CREDENTIAL,
        )
    }
}

/// Fills `value` from `file` (`<key>_file`), or when still empty from the
/// credential `credential` in `creds`; a key set both ways is refused.
fn resolve(
    key: &str,
    value: &mut Secret,
    file: Option<&Path>,
    creds: Option<&Path>,
    credential: &str,
) -> Result<(), ConfigError> {
    if let Some(file) = file {
        if !value.is_empty() {
            return Err(bad(key, format!("is set both directly and as {key}_file")));
        }
        *value =
            Secret::new(read_limited(&format!("{key}_file"), file)?.trim_end_matches(['\n', '\r']));
        return Ok(());
    }
    if value.is_empty()
        && let Some(dir) = creds
    {
        let path = dir.join(credential);
        if path.exists() {
            *value = Secret::new(
                read_limited(&format!("{key} (credential {credential})"), &path)?
                    .trim_end_matches(['\n', '\r']),
            );
        }
    }
    Ok(())
}

/// The text of `path`, at most 64 KiB; errors name `key`.
pub(super) fn read_limited(key: &str, path: &Path) -> Result<String, ConfigError> {
    use std::io::Read;
    let file = std::fs::File::open(path)
        .map_err(|e| bad(key, format!("cannot read {}: {e}", path.display())))?;
    let mut text = String::new();
    file.take(MAX_SECRET_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| bad(key, format!("cannot read {}: {e}", path.display())))?;
    if text.len() as u64 > MAX_SECRET_FILE {
        return Err(bad(
            key,
            format!("{} is larger than 64 KiB", path.display()),
        ));
    }
    Ok(text)
}
