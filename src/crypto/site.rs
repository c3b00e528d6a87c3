//! The site identity (docs/identity.md, "The site identity"): the deviceId and
//! P-256 key every terminal of a site signs with, so that AwareID answers an
//! enrollment made at one door at every door, and the 32-byte key that seals the
//! site's replicated enrollments on the hub. Made once by `facecapturectl site
//! new-identity` (a 0600 file), sealed on each terminal by `facecaptured
//! provision --site-identity`, read by the daemon from the credential
//! `site_identity`.
//!
//! On the hub a reader sees neither a username nor a registration code:
//! [`SiteIdentity::user_tag`] names a person by a keyed hash, and
//! [`SiteIdentity::seal`] encrypts a value with AES-256-GCM, the entry's key name
//! its associated data (a value moved to another key does not open).
//!
//! ```
//! use facecapture::crypto::site::SiteIdentity;
//!
//! let site = SiteIdentity::generate().unwrap();
//! let back = SiteIdentity::parse(&site.to_file().unwrap()).unwrap();
//! assert_eq!(back.device_id, site.device_id);
//! let tag = site.user_tag("alice").unwrap();
//! assert_eq!(tag, back.user_tag("alice").unwrap());
//! assert_ne!(tag, site.user_tag("bob").unwrap());
//! let sealed = site.seal("door.front.x", b"code").unwrap();
//! assert_eq!(&back.open("door.front.x", &sealed).unwrap()[..], b"code");
//! assert!(back.open("door.side.x", &sealed).is_err());
//! ```

use super::device::DeviceKey;
use super::sealed::{Protection, is_device_id};
use super::{b64, unb64};
use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::fmt;
use zeroize::Zeroizing;

/// The format tag of the file and of the sealed credential.
pub const FORMAT: &str = "facecaptured-site-identity/1";

/// The credential's name, in `LoadCredentialEncrypted=` and `--name=`.
pub const CREDENTIAL: &str = "site_identity";

/// The largest site identity file read (it is about 400 bytes).
pub const MAX_FILE: u64 = 16 * 1024;

const NONCE: usize = 12;

/// Why a site identity, or a value sealed with it, cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SiteError {
    /// Not our JSON.
    #[error("is not a facecaptured site identity (JSON): {0}")]
    NotIdentity(String),
    /// Another format version.
    #[error("has format {0:?}; this build reads {FORMAT:?}")]
    Format(String),
    /// The device id is malformed.
    #[error("holds a device id that is not 32 lowercase hexadecimal digits")]
    DeviceId,
    /// The signing key is malformed.
    #[error("holds a key that is not a base64 PKCS#8 P-256 key")]
    Key,
    /// The enrollment key is not 32 bytes of base64.
    #[error("holds an enrollment key that is not 32 bytes in base64")]
    EnrollmentKey,
    /// A sealed payload claims no protection.
    #[error("says protection \"plain\" or \"unusable\", which a sealed credential never has")]
    Plain,
    /// No random source.
    #[error("no random source available")]
    Random,
    /// A sealed value does not open: another site's key, another entry's name,
    /// or changed bytes.
    #[error("a sealed value does not open with this site's key under its name")]
    Open,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    format: String,
    device_id: String,
    key_pkcs8: Zeroizing<String>,
    enrollment_key: Zeroizing<String>,
    /// Only in the sealed credential: how provision sealed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    protection: Option<Protection>,
}

/// A site's identity.
pub struct SiteIdentity {
    /// The deviceId every terminal of the site registers and signs as.
    pub device_id: String,
    /// The P-256 key addDevice registers and verifyDevice signs with.
    pub key: DeviceKey,
    enrollment_key: Zeroizing<[u8; 32]>,
    /// How it is sealed on this terminal (`None` in the plain file).
    pub protection: Option<Protection>,
}

impl fmt::Debug for SiteIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SiteIdentity")
            .field("device_id", &self.device_id)
            .field("protection", &self.protection)
            .finish_non_exhaustive()
    }
}

impl SiteIdentity {
    /// Makes a new identity from the operating system's random source: a random
    /// deviceId (a v4 UUID as 32 hex digits), key and enrollment key.
    pub fn generate() -> Result<Self, SiteError> {
        let mut id = super::random_bytes::<16>().map_err(|_| SiteError::Random)?;
        id[6] = (id[6] & 0x0f) | 0x40;
        id[8] = (id[8] & 0x3f) | 0x80;
        Ok(Self {
            device_id: id.iter().map(|b| format!("{b:02x}")).collect(),
            key: DeviceKey::generate().map_err(|_| SiteError::Random)?,
            enrollment_key: Zeroizing::new(
                super::random_bytes::<32>().map_err(|_| SiteError::Random)?,
            ),
            protection: None,
        })
    }

    /// Reads the file `site new-identity` wrote, or the sealed credential's
    /// payload (which also names its protection). The error never quotes it.
    pub fn parse(bytes: &[u8]) -> Result<Self, SiteError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| SiteError::NotIdentity("not UTF-8 text".into()))?;
        let f: File = crate::awareid::wire::parse_json(text).map_err(SiteError::NotIdentity)?;
        if f.format != FORMAT {
            return Err(SiteError::Format(f.format));
        }
        if !is_device_id(&f.device_id) {
            return Err(SiteError::DeviceId);
        }
        if matches!(f.protection, Some(Protection::Plain | Protection::Unusable)) {
            return Err(SiteError::Plain);
        }
        let der = Zeroizing::new(unb64(&f.key_pkcs8).map_err(|_| SiteError::Key)?);
        let key = DeviceKey::from_pkcs8_der(&der).map_err(|_| SiteError::Key)?;
        let raw = Zeroizing::new(unb64(&f.enrollment_key).map_err(|_| SiteError::EnrollmentKey)?);
        let enrollment_key: [u8; 32] = raw[..].try_into().map_err(|_| SiteError::EnrollmentKey)?;
        Ok(Self {
            device_id: f.device_id,
            key,
            enrollment_key: Zeroizing::new(enrollment_key),
            protection: f.protection,
        })
    }

    /// The file's bytes (no protection named), zeroed when dropped.
    pub fn to_file(&self) -> Result<Zeroizing<Vec<u8>>, SiteError> {
        self.encode(None)
    }

    /// The credential's payload, sealed with `protection`.
    pub fn to_payload(&self, protection: Protection) -> Result<Zeroizing<Vec<u8>>, SiteError> {
        if matches!(protection, Protection::Plain | Protection::Unusable) {
            return Err(SiteError::Plain);
        }
        self.encode(Some(protection))
    }

    fn encode(&self, protection: Option<Protection>) -> Result<Zeroizing<Vec<u8>>, SiteError> {
        let der = self.key.to_pkcs8_der().map_err(|_| SiteError::Key)?;
        let f = File {
            format: FORMAT.to_owned(),
            device_id: self.device_id.clone(),
            key_pkcs8: Zeroizing::new(b64(&der)),
            enrollment_key: Zeroizing::new(b64(&self.enrollment_key[..])),
            protection,
        };
        let mut out = serde_json::to_vec(&f).map_err(|e| SiteError::NotIdentity(e.to_string()))?;
        out.push(b'\n');
        Ok(Zeroizing::new(out))
    }

    /// A subkey of the enrollment key for one purpose (HMAC-SHA-256 as a PRF
    /// over a fixed label), so that the tag and the seal never share a key.
    fn subkey(&self, label: &[u8]) -> Result<Zeroizing<[u8; 32]>, SiteError> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.enrollment_key[..])
            .map_err(|_| SiteError::EnrollmentKey)?;
        mac.update(label);
        Ok(Zeroizing::new(mac.finalize().into_bytes().into()))
    }

    /// How the hub names `username`: 32 hex digits of a keyed hash. The same on
    /// every terminal of the site; useless to whoever lacks the site's key.
    pub fn user_tag(&self, username: &str) -> Result<String, SiteError> {
        let key = self.subkey(b"facecaptured site user tag v1")?;
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key[..])
            .map_err(|_| SiteError::EnrollmentKey)?;
        mac.update(username.as_bytes());
        Ok(mac.finalize().into_bytes()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect())
    }

    fn cipher(&self) -> Result<Aes256Gcm, SiteError> {
        let key = self.subkey(b"facecaptured site entry seal v1")?;
        Aes256Gcm::new_from_slice(&key[..]).map_err(|_| SiteError::EnrollmentKey)
    }

    /// Seals `plain` for the hub's entry `name`: a random 12-byte nonce, then
    /// the AES-256-GCM ciphertext and tag, `name` as associated data.
    pub fn seal(&self, name: &str, plain: &[u8]) -> Result<Vec<u8>, SiteError> {
        let nonce = super::random_bytes::<NONCE>().map_err(|_| SiteError::Random)?;
        let sealed = self
            .cipher()?
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plain,
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| SiteError::Open)?;
        Ok([&nonce[..], &sealed].concat())
    }

    /// Opens what [`Self::seal`] made for the entry `name`.
    pub fn open(&self, name: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SiteError> {
        if sealed.len() < NONCE {
            return Err(SiteError::Open);
        }
        let (nonce, body) = sealed.split_at(NONCE);
        let nonce: [u8; NONCE] = nonce.try_into().map_err(|_| SiteError::Open)?;
        self.cipher()?
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: body,
                    aad: name.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SiteError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_round_trips_and_the_payload_names_its_protection() {
        let site = SiteIdentity::generate().expect("site");
        assert!(is_device_id(&site.device_id));
        let back = SiteIdentity::parse(&site.to_file().expect("file")).expect("parse");
        assert_eq!(back.protection, None);
        assert_eq!(
            back.key.public_key_b64().expect("pub"),
            site.key.public_key_b64().expect("pub")
        );
        let sealed = site.to_payload(Protection::Tpm2).expect("payload");
        assert_eq!(
            SiteIdentity::parse(&sealed).expect("parse").protection,
            Some(Protection::Tpm2)
        );
        assert_eq!(
            site.to_payload(Protection::Plain).unwrap_err(),
            SiteError::Plain
        );
        // Two sites never share a tag or a seal.
        let other = SiteIdentity::generate().expect("site");
        assert_ne!(
            site.user_tag("alice").expect("tag"),
            other.user_tag("alice").expect("tag")
        );
        let v = site.seal("k", b"v").expect("seal");
        assert_eq!(other.open("k", &v).unwrap_err(), SiteError::Open);
    }

    #[test]
    fn bad_files_are_named_and_never_quoted() {
        let good = SiteIdentity::generate()
            .expect("site")
            .to_file()
            .expect("file");
        let v: serde_json::Value = serde_json::from_slice(&good).expect("json");
        let with = |field: &str, value: serde_json::Value| {
            let mut v = v.clone();
            v[field] = value;
            SiteIdentity::parse(&serde_json::to_vec(&v).expect("json")).unwrap_err()
        };
        assert_eq!(
            with("format", "facecaptured-device-key/1".into()),
            SiteError::Format("facecaptured-device-key/1".into())
        );
        assert_eq!(with("device_id", "AB".into()), SiteError::DeviceId);
        assert_eq!(with("key_pkcs8", "AAAA".into()), SiteError::Key);
        assert_eq!(
            with("enrollment_key", crate::crypto::b64(&[1; 31]).into()),
            SiteError::EnrollmentKey
        );
        assert_eq!(with("protection", "plain".into()), SiteError::Plain);
        let err = with("extra", 1.into());
        assert!(matches!(err, SiteError::NotIdentity(_)), "{err:?}");
        let key = v["enrollment_key"].as_str().expect("key").to_owned();
        assert!(!err.to_string().contains(&key));
        assert!(matches!(
            SiteIdentity::parse(&[0xff, 0xfe]),
            Err(SiteError::NotIdentity(_))
        ));
    }

    #[test]
    fn a_sealed_value_opens_only_under_its_name_and_unchanged() {
        let site = SiteIdentity::generate().expect("site");
        let a = site.seal("door.t1.aa", b"secret code").expect("seal");
        let b = site.seal("door.t1.aa", b"secret code").expect("seal");
        assert_ne!(a, b, "a fresh nonce each time");
        assert!(!a.windows(6).any(|w| w == b"secret"));
        assert_eq!(
            &site.open("door.t1.aa", &a).expect("open")[..],
            b"secret code"
        );
        assert_eq!(site.open("door.t2.aa", &a).unwrap_err(), SiteError::Open);
        let mut flipped = a.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(
            site.open("door.t1.aa", &flipped).unwrap_err(),
            SiteError::Open
        );
        assert_eq!(
            site.open("door.t1.aa", &a[..5]).unwrap_err(),
            SiteError::Open
        );
        assert_eq!(site.user_tag("alice").expect("tag").len(), 32);
    }
}
