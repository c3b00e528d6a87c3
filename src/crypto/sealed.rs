//! The device identity as it travels in the sealed systemd credential
//! `device_key`: what `facecaptured provision` seals with `systemd-creds encrypt`
//! and what the daemon reads back from `$CREDENTIALS_DIRECTORY` (docs/identity.md; issue
//! 11). The payload is a small JSON object: the format tag, the device id, the
//! protection it was sealed with and the PKCS#8 DER key in base64. systemd's
//! authenticated encryption covers all of it, so the protection named inside
//! cannot be changed without the credential failing to open.
//!
//! ```
//! use facecapture::crypto::device::DeviceKey;
//! use facecapture::crypto::sealed::{Protection, SealedIdentity};
//!
//! let id = SealedIdentity {
//!     device_id: "5c1e2f8a93474d0ba61f33e27d90c458".into(),
//!     key: DeviceKey::generate().unwrap(),
//!     protection: Protection::Tpm2,
//! };
//! let payload = id.to_payload().unwrap();
//! let back = SealedIdentity::parse(&payload).unwrap();
//! assert_eq!(back.device_id, id.device_id);
//! assert_eq!(back.protection.as_str(), "tpm2");
//! ```

use super::device::DeviceKey;
use super::{b64, unb64};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The format tag; a later format gets a new one.
pub const FORMAT: &str = "facecaptured-device-key/1";

/// The credential's name, in `LoadCredentialEncrypted=` and `--name=`.
pub const CREDENTIAL: &str = "device_key";

/// How the device key is protected at rest (the `DeviceKeyProtection` property).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protection {
    /// Sealed to this board's TPM2 (and systemd's host key): another board, or
    /// this one with its TPM cleared, cannot open it.
    Tpm2,
    /// Sealed with systemd's host key, `/var/lib/systemd/credential.secret`, on
    /// the same disk: it protects against reading the credential file alone
    /// (a backup, a copied /etc), not against a copy of the whole disk.
    HostKey,
    /// A plain row in the database: for development only.
    Plain,
    /// No usable key this start: provisioning failed (the sealed key does not
    /// open on this board). The daemon signs nothing. Never in a payload.
    Unusable,
}

impl Protection {
    /// The property's value: `tpm2`, `host-key`, `plain` or `unusable`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tpm2 => "tpm2",
            Self::HostKey => "host-key",
            Self::Plain => "plain",
            Self::Unusable => "unusable",
        }
    }

    /// Whether a sealed payload may carry it: only the sealed kinds.
    fn sealed(self) -> bool {
        matches!(self, Self::Tpm2 | Self::HostKey)
    }
}

/// Why a `device_key` credential's payload cannot be used (each message follows "the
/// device_key credential ").
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealedError {
    /// Not our JSON.
    #[error("is not a facecaptured device-key payload (JSON): {0}")]
    NotPayload(String),
    /// Another payload format version.
    #[error("has format {0:?}; this build reads {FORMAT:?}")]
    Format(String),
    /// The device id is malformed.
    #[error("holds a device id that is not 32 lowercase hexadecimal digits")]
    DeviceId,
    /// The key is malformed.
    #[error("holds a key that is not a base64 PKCS#8 P-256 key")]
    Key,
    /// It claims no protection.
    #[error("says protection \"plain\" or \"unusable\", which a sealed credential never has")]
    Plain,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    format: String,
    device_id: String,
    protection: Protection,
    key_pkcs8: Zeroizing<String>,
}

/// A device identity with the protection it was sealed with.
#[derive(Debug)]
pub struct SealedIdentity {
    /// The terminal's device id.
    pub device_id: String,
    /// The P-256 key that signs verifyDevice.
    pub key: DeviceKey,
    /// How it was sealed.
    pub protection: Protection,
}

/// Whether `id` is a device id as [`super::device::derive_device_id`] prints it.
pub fn is_device_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl SealedIdentity {
    /// Reads a decrypted credential's bytes.
    pub fn parse(payload: &[u8]) -> Result<Self, SealedError> {
        // A payload that is not UTF-8 is not ours; the error never quotes it.
        let text = std::str::from_utf8(payload)
            .map_err(|_| SealedError::NotPayload("not UTF-8 text".into()))?;
        let p: Payload = crate::awareid::wire::parse_json(text).map_err(SealedError::NotPayload)?;
        if p.format != FORMAT {
            return Err(SealedError::Format(p.format));
        }
        if !is_device_id(&p.device_id) {
            return Err(SealedError::DeviceId);
        }
        if !p.protection.sealed() {
            return Err(SealedError::Plain);
        }
        let der = Zeroizing::new(unb64(&p.key_pkcs8).map_err(|_| SealedError::Key)?);
        let key = DeviceKey::from_pkcs8_der(&der).map_err(|_| SealedError::Key)?;
        Ok(Self {
            device_id: p.device_id,
            key,
            protection: p.protection,
        })
    }

    /// The bytes to seal (zeroed when dropped).
    pub fn to_payload(&self) -> Result<Zeroizing<Vec<u8>>, SealedError> {
        if !self.protection.sealed() {
            return Err(SealedError::Plain);
        }
        let der = self.key.to_pkcs8_der().map_err(|_| SealedError::Key)?;
        let p = Payload {
            format: FORMAT.to_owned(),
            device_id: self.device_id.clone(),
            protection: self.protection,
            key_pkcs8: Zeroizing::new(b64(&der)),
        };
        serde_json::to_vec(&p)
            .map(Zeroizing::new)
            .map_err(|e| SealedError::NotPayload(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(protection: Protection) -> SealedIdentity {
        SealedIdentity {
            device_id: "5c1e2f8a93474d0ba61f33e27d90c458".into(),
            key: DeviceKey::generate().expect("key"),
            protection,
        }
    }

    #[test]
    fn the_payload_round_trips_with_the_same_key() {
        let id = identity(Protection::HostKey);
        let back = SealedIdentity::parse(&id.to_payload().expect("payload")).expect("parse");
        assert_eq!(back.protection, Protection::HostKey);
        assert_eq!(
            back.key.public_key_b64().expect("pub"),
            id.key.public_key_b64().expect("pub")
        );
    }

    #[test]
    fn bad_payloads_are_named() {
        let good = identity(Protection::Tpm2).to_payload().expect("payload");
        let mut v: serde_json::Value = serde_json::from_slice(&good).expect("json");
        let with = |field: &str, value: serde_json::Value| {
            let mut v = v.clone();
            v[field] = value;
            SealedIdentity::parse(&serde_json::to_vec(&v).expect("json")).unwrap_err()
        };
        assert_eq!(
            with("format", "facecaptured-device-key/9".into()),
            SealedError::Format("facecaptured-device-key/9".into())
        );
        assert_eq!(with("device_id", "5C1E".into()), SealedError::DeviceId);
        assert_eq!(with("protection", "plain".into()), SealedError::Plain);
        assert_eq!(with("key_pkcs8", "AAAA".into()), SealedError::Key);
        assert!(matches!(
            with("protection", "rot13".into()),
            SealedError::NotPayload(_)
        ));
        v["extra"] = 1.into();
        assert!(matches!(
            SealedIdentity::parse(&serde_json::to_vec(&v).expect("json")),
            Err(SealedError::NotPayload(_))
        ));
        assert!(matches!(
            SealedIdentity::parse(b"\n"),
            Err(SealedError::NotPayload(_))
        ));
        assert!(identity(Protection::Plain).to_payload().is_err());
    }
}
