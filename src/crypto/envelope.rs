//! The face-data envelope (SPEC 4): `{"key", "iv", "p"}` replacing the value of
//! `faceLivenessData`. A fresh AES-256 key per message, wrapped with RSA-OAEP
//! (SHA-256, MGF1-SHA-256) under the key from `/getPublicKey`; the JSON of the
//! plain object sealed with AES-256-GCM (12-byte nonce, tag appended).

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use rsa::sha2::Sha256;
use rsa::{PrivateKey, PublicKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{b64, random_bytes, unb64};

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

/// Why an envelope cannot be made or opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    /// getrandom failed.
    #[error("no random source available")]
    Random,
    /// RSA-OAEP or AES-GCM failed while sealing.
    #[error("RSA-OAEP wrapping of the data key failed")]
    Wrap,
    /// The named field is not base64.
    #[error("envelope field {0} is not valid base64")]
    Base64(&'static str),
    /// The key does not unwrap with this private key.
    #[error("the data key does not unwrap with this private key")]
    Unwrap,
    /// The nonce is not 12 bytes.
    #[error("the envelope nonce is not 12 bytes")]
    Nonce,
    /// The ciphertext does not authenticate.
    #[error("the envelope ciphertext does not authenticate")]
    Open,
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

/// Opens an envelope with the server's private key (the emulator's side).
pub fn open(server_key: &PrivateKey, env: &Envelope) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    let wrapped = unb64(&env.key).map_err(|_| EnvelopeError::Base64("key"))?;
    let nonce = unb64(&env.iv).map_err(|_| EnvelopeError::Base64("iv"))?;
    let sealed = unb64(&env.p).map_err(|_| EnvelopeError::Base64("p"))?;
    let key = Zeroizing::new(
        server_key
            .oaep_decrypt::<Sha256>(&wrapped)
            .map_err(|_| EnvelopeError::Unwrap)?,
    );
    let nonce: [u8; 12] = nonce.try_into().map_err(|_| EnvelopeError::Nonce)?;
    let cipher = Aes256Gcm::new_from_slice(&key).map_err(|_| EnvelopeError::Unwrap)?;
    cipher
        .decrypt(&Nonce::from(nonce), sealed.as_slice())
        .map(Zeroizing::new)
        .map_err(|_| EnvelopeError::Open)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::LazyLock;

    static SERVER: LazyLock<PrivateKey> =
        LazyLock::new(|| crate::crypto::new_rsa_key(2048).expect("keygen"));

    #[test]
    fn seal_then_open() {
        let msg = br#"{"video":{"workflow_data":{"workflow":"hotel2"}}}"#;
        let env = seal(&SERVER.to_public_key(), msg).expect("seal");
        assert_eq!(unb64(&env.iv).expect("iv").len(), 12);
        assert_eq!(unb64(&env.key).expect("key").len(), 256);
        assert_eq!(unb64(&env.p).expect("p").len(), msg.len() + 16);
        assert_eq!(&open(&SERVER, &env).expect("open")[..], &msg[..]);
        // Every message gets a fresh key and nonce.
        let again = seal(&SERVER.to_public_key(), msg).expect("seal");
        assert_ne!(env.key, again.key);
        assert_ne!(env.iv, again.iv);
    }

    #[test]
    fn tampering_is_detected() {
        let env = seal(&SERVER.to_public_key(), b"frames").expect("seal");
        let mut p = unb64(&env.p).expect("p");
        p[0] ^= 1;
        let bad = Envelope {
            p: b64(&p),
            ..env.clone()
        };
        assert_eq!(open(&SERVER, &bad), Err(EnvelopeError::Open));
        let bad = Envelope {
            iv: b64(&[0u8; 8]),
            ..env.clone()
        };
        assert_eq!(open(&SERVER, &bad), Err(EnvelopeError::Nonce));
        let bad = Envelope {
            key: "!!".into(),
            ..env
        };
        assert_eq!(open(&SERVER, &bad), Err(EnvelopeError::Base64("key")));
    }
}
