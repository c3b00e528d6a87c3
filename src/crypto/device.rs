//! The terminal's device identity (docs/identity.md): the deviceId derived from
//! /etc/machine-id the way systemd derives app-specific ids, and the ECDSA P-256
//! device key whose public half goes to addDevice and which signs the authToken for
//! verifyDevice.

use hmac::{Hmac, KeyInit, Mac};
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use sha2::Sha256;
use std::fmt;
use zeroize::Zeroizing;

use super::{b64, unb64};

/// The fixed application id the deviceId is derived for (a random UUID chosen once
/// for this product, as `systemd-id128 new` would print). Changing it changes every
/// terminal's deviceId.
pub const APP_ID: [u8; 16] = [
    0x5c, 0x1e, 0x2f, 0x8a, 0x93, 0x47, 0x4d, 0x0b, 0xa6, 0x1f, 0x33, 0xe2, 0x7d, 0x90, 0xc4, 0x58,
];

/// Why a device id, key or signature cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeviceError {
    /// /etc/machine-id is not a machine id.
    #[error("machine id is not 32 hexadecimal digits")]
    BadMachineId,
    /// getrandom failed.
    #[error("no random source available")]
    Random,
    /// The stored key does not parse.
    #[error("the stored device key is not a PKCS#8 P-256 key")]
    BadKey,
    /// A public key (from a request) does not parse.
    #[error("the device public key is not a base64 DER P-256 SubjectPublicKeyInfo")]
    BadPublicKey,
    /// A signature (from a request) does not parse.
    #[error("the signature is not base64 DER ECDSA")]
    BadSignatureEncoding,
}

/// Derives the app-specific deviceId from a machine id (the text of
/// /etc/machine-id): HMAC-SHA-256 keyed by the 16 machine-id bytes over [`APP_ID`],
/// first 16 bytes, marked as a v4 UUID, printed as 32 lowercase hex digits. This is
/// `sd_id128_get_machine_app_specific()`; the raw machine id never leaves the box.
pub fn derive_device_id(machine_id: &str) -> Result<String, DeviceError> {
    let text = machine_id.trim();
    if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(DeviceError::BadMachineId);
    }
    let mut key = Zeroizing::new([0u8; 16]);
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
            .map_err(|_| DeviceError::BadMachineId)?;
    }
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key[..])
        .map_err(|_| DeviceError::BadMachineId)?;
    mac.update(&APP_ID);
    let digest = mac.finalize().into_bytes();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    Ok(id.iter().map(|b| format!("{b:02x}")).collect())
}

/// This terminal's deviceId: [`derive_device_id`] of /etc/machine-id, or a
/// random one when the machine has none (a warning says so; the caller stores
/// it, so it never changes).
pub fn this_machine_device_id() -> Result<String, DeviceError> {
    if let Some(id) = std::fs::read_to_string("/etc/machine-id")
        .ok()
        .and_then(|m| derive_device_id(&m).ok())
    {
        return Ok(id);
    }
    tracing::warn!("no usable /etc/machine-id: the device id is random");
    let bytes = super::random_bytes::<16>().map_err(|_| DeviceError::Random)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The device's ECDSA P-256 key.
pub struct DeviceKey(SigningKey);

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceKey { .. }")
    }
}

impl DeviceKey {
    /// Makes a new key from the operating system's random source.
    pub fn generate() -> Result<Self, DeviceError> {
        // Rejection sampling: a random 32-byte string is a valid scalar with
        // overwhelming probability; retry the rare one that is not.
        for _ in 0..16 {
            let bytes =
                Zeroizing::new(super::random_bytes::<32>().map_err(|_| DeviceError::Random)?);
            if let Ok(key) = SigningKey::from_slice(&bytes[..]) {
                return Ok(Self(key));
            }
        }
        Err(DeviceError::Random)
    }

    /// Loads the key from its PKCS#8 DER form.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, DeviceError> {
        SigningKey::from_pkcs8_der(der)
            .map(Self)
            .map_err(|_| DeviceError::BadKey)
    }

    /// The PKCS#8 DER form for storage (0600, never logged).
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, DeviceError> {
        self.0
            .to_pkcs8_der()
            .map(|doc| Zeroizing::new(doc.as_bytes().to_vec()))
            .map_err(|_| DeviceError::BadKey)
    }

    /// The private scalar's 32 bytes, as any copy of the key holds them (the
    /// PKCS#8 form, a database row): for checks that no copy is left on disk.
    #[doc(hidden)]
    pub fn scalar_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.0.to_bytes().to_vec())
    }

    /// addDevice's `publicKey`: base64 of the DER SubjectPublicKeyInfo.
    pub fn public_key_b64(&self) -> Result<String, DeviceError> {
        self.0
            .verifying_key()
            .to_public_key_der()
            .map(|doc| b64(doc.as_bytes()))
            .map_err(|_| DeviceError::BadKey)
    }

    /// verifyDevice's `signature`: base64 of the DER ECDSA-P256-SHA-256 signature
    /// over the UTF-8 bytes of the authToken.
    pub fn sign_auth_token(&self, auth_token: &str) -> String {
        let signature: Signature = self.0.sign(auth_token.as_bytes());
        b64(signature.to_der().as_bytes())
    }
}

/// Checks that addDevice's `publicKey` is a base64 DER P-256 SubjectPublicKeyInfo.
pub fn check_public_key(public_key_b64: &str) -> Result<(), DeviceError> {
    let der = unb64(public_key_b64).map_err(|_| DeviceError::BadPublicKey)?;
    VerifyingKey::from_public_key_der(&der)
        .map(|_| ())
        .map_err(|_| DeviceError::BadPublicKey)
}

/// The server's side of verifyDevice: does `signature_b64` sign `auth_token` under
/// the device key registered with addDevice?
pub fn verify_auth_token(
    public_key_b64: &str,
    auth_token: &str,
    signature_b64: &str,
) -> Result<bool, DeviceError> {
    let der = unb64(public_key_b64).map_err(|_| DeviceError::BadPublicKey)?;
    let key = VerifyingKey::from_public_key_der(&der).map_err(|_| DeviceError::BadPublicKey)?;
    let sig = unb64(signature_b64).map_err(|_| DeviceError::BadSignatureEncoding)?;
    let sig = Signature::from_der(&sig).map_err(|_| DeviceError::BadSignatureEncoding)?;
    Ok(key.verify(auth_token.as_bytes(), &sig).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_id_is_stable_app_specific_and_not_the_machine_id() {
        let machine = "0123456789abcdef0123456789abcdef\n";
        let id = derive_device_id(machine).expect("id");
        assert_eq!(id, derive_device_id(machine).expect("id"));
        assert_eq!(id.len(), 32);
        assert_ne!(id, machine.trim());
        assert_eq!(&id[12..13], "4", "UUID version nibble");
        assert!(matches!(&id[16..17], "8" | "9" | "a" | "b"), "UUID variant");
        assert_ne!(
            id,
            derive_device_id("fedcba9876543210fedcba9876543210").expect("id")
        );
    }

    /// Cross-checked against systemd: `systemd-id128 machine-id --app-specific=
    /// 5c1e2f8a93474d0ba61f33e27d90c458` on a machine whose id is
    /// 0123456789abcdef0123456789abcdef.
    #[test]
    fn device_id_matches_hmac_construction() {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&[
            0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
            0xcd, 0xef,
        ])
        .expect("key");
        mac.update(&APP_ID);
        let d = mac.finalize().into_bytes();
        let id = derive_device_id("0123456789ABCDEF0123456789abcdef").expect("id");
        assert_eq!(
            &id[..12],
            &d[..6]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
    }

    #[test]
    fn bad_machine_ids() {
        for bad in [
            "",
            "xyz",
            "0123456789abcdef0123456789abcde",
            "0123456789abcdef0123456789abcdefg",
        ] {
            assert_eq!(
                derive_device_id(bad),
                Err(DeviceError::BadMachineId),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn sign_and_verify_round_trip_through_storage() {
        let key = DeviceKey::generate().expect("key");
        let stored = key.to_pkcs8_der().expect("der");
        let key = DeviceKey::from_pkcs8_der(&stored).expect("load");
        let public = key.public_key_b64().expect("pub");
        let sig = key.sign_auth_token("b8bf6f22-6f93-4bcb-a5b6-871b689c6750");
        assert!(
            verify_auth_token(&public, "b8bf6f22-6f93-4bcb-a5b6-871b689c6750", &sig)
                .expect("verify")
        );
        assert!(!verify_auth_token(&public, "another-token", &sig).expect("verify"));
        let other = DeviceKey::generate()
            .expect("key")
            .public_key_b64()
            .expect("pub");
        assert!(
            !verify_auth_token(&other, "b8bf6f22-6f93-4bcb-a5b6-871b689c6750", &sig)
                .expect("verify")
        );
        assert_eq!(
            DeviceKey::from_pkcs8_der(b"junk").err(),
            Some(DeviceError::BadKey)
        );
        assert_eq!(
            verify_auth_token("!!", "t", &sig),
            Err(DeviceError::BadPublicKey)
        );
    }
}
