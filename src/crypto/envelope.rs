//! The face-data envelope (docs/face-data.md): `{"key", "iv", "p"}` replacing the value of
//! `faceLivenessData`. A fresh AES-256 key per message, wrapped with RSA-OAEP
//! (SHA-256, MGF1-SHA-256) under the key from `/getPublicKey`; the JSON of the
//! plain object sealed with AES-256-GCM (12-byte nonce, tag appended).
//!
//! Only sealing lives here: opening is the server's side (the emulator's
//! `server_crypto::open_envelope`, where the round trip is tested).

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use rsa::PublicKey;
use rsa::sha2::Sha256;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{b64, random_bytes};

/// The sealed faceLivenessData, as sent in its place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// The AES key, RSA-OAEP wrapped, base64.
    pub key: String,
    /// The 12-byte GCM nonce, base64.
    pub iv: String,
    /// The ciphertext with its tag, base64.
    pub p: String,
}

/// Why an envelope cannot be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    /// getrandom failed.
    #[error("no random source available")]
    Random,
    /// RSA-OAEP or AES-GCM failed while sealing.
    #[error("RSA-OAEP wrapping of the data key failed")]
    Wrap,
}

/// Seals `plaintext` (the JSON of faceLivenessData) for the holder of `server_key`.
pub fn seal(server_key: &PublicKey, plaintext: &[u8]) -> Result<Envelope, EnvelopeError> {
    let key = Zeroizing::new(random_bytes::<32>().map_err(|_| EnvelopeError::Random)?);
    let nonce = random_bytes::<12>().map_err(|_| EnvelopeError::Random)?;
    let wrapped = server_key
        .oaep_encrypt::<Sha256>(&key[..])
        .map_err(|_| EnvelopeError::Wrap)?;
    let cipher = Aes256Gcm::new_from_slice(&key[..]).map_err(|_| EnvelopeError::Wrap)?;
    let sealed = cipher
        .encrypt(&Nonce::from(nonce), plaintext)
        .map_err(|_| EnvelopeError::Wrap)?;
    Ok(Envelope {
        key: b64(&wrapped),
        iv: b64(&nonce),
        p: b64(&sealed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::unb64;

    #[test]
    fn a_fresh_key_and_nonce_per_message() {
        let server = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).expect("keygen");
        let msg = br#"{"video":{"workflow_data":{"workflow":"hotel2"}}}"#;
        let env = seal(&server.to_public_key(), msg).expect("seal");
        assert_eq!(unb64(&env.iv).expect("iv").len(), 12);
        assert_eq!(unb64(&env.key).expect("key").len(), 256);
        assert_eq!(unb64(&env.p).expect("p").len(), msg.len() + 16);
        let again = seal(&server.to_public_key(), msg).expect("seal");
        assert_ne!(env.key, again.key);
        assert_ne!(env.iv, again.iv);
        assert_ne!(env.p, again.p);
    }
}
