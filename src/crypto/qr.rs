//! The QR code's `sessionCallbackURL` (docs/qr.md), decoded for the terminal. Making
//! one is the server's side (the emulator's `server_crypto::encode_qr`, where the
//! round trip and the tampering cases are tested).
//!
//! `https://<host>/onboarding?data=<D>`, D = unpadded base64url of
//! `signature(256) || C`. The RSA-2048 PKCS#1 v1.5 SHA-256 signature over C is
//! checked before anything is decrypted. C is AES-256-CBC/PKCS#7 whose first block
//! is the IV. The plaintext is `host&apikey&sessionToken[&...]`.

use aes::Aes256;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeDecrypt, KeyIvInit};
use rsa::PublicKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::sha2::Sha256;
use std::fmt;
use zeroize::{Zeroize, Zeroizing};

const SIG_LEN: usize = 256;
const BLOCK: usize = 16;
/// A QR URL longer than this is not one of ours (the seed's is ~520 characters).
const MAX_URL_LEN: usize = 4096;

/// Why a sessionCallbackURL was refused. Each cause is distinct so that an operator
/// (and a test) can tell a forged code from a misconfigured key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QrError {
    /// Not an https URL with a data parameter.
    #[error("not a sessionCallbackURL: {0}")]
    NotCallbackUrl(String),
    /// The data parameter does not decode.
    #[error("the data parameter is not valid base64url")]
    BadBase64,
    /// Too short for a signature and one AES block.
    #[error("the data parameter is too short ({0} bytes) to hold a signature and ciphertext")]
    TooShort(usize),
    /// The ciphertext is not whole AES blocks.
    #[error("the ciphertext length ({0} bytes) is not a whole number of AES blocks")]
    BadLength(usize),
    /// The RSA signature does not verify.
    #[error("the signature does not verify with the configured QR signing key")]
    BadSignature,
    /// The plaintext's padding is wrong.
    #[error("decryption failed: bad padding (wrong AES key?)")]
    BadPadding,
    /// The plaintext is not UTF-8.
    #[error("the decrypted payload is not UTF-8 text")]
    NotText,
    /// Fewer than three &-separated fields.
    #[error("the decrypted payload has {0} fields; host, apikey and session token are needed")]
    TooFewFields(usize),
    /// The host is not a host name or address.
    #[error("the QR host {0:?} is not a valid host name")]
    BadHost(String),
    /// The host is not in `qr.allowed_hosts`.
    #[error("the QR host {0:?} is not in qr.allowed_hosts")]
    HostNotAllowed(String),
}

/// The keys a terminal needs to trust a QR code: AwareID's verifying key and the
/// shared AES key. Deployment configuration, never compiled in.
#[derive(Clone)]
pub struct QrKeys {
    verifying: PublicKey,
    aes_key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for QrKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("QrKeys { .. }")
    }
}

impl QrKeys {
    /// The keys from the QR signer's public key and the AES key.
    pub fn new(verifying: PublicKey, aes_key: [u8; 32]) -> Self {
        Self {
            verifying,
            aes_key: Zeroizing::new(aes_key),
        }
    }

    /// Parses the verifying key from PEM (SubjectPublicKeyInfo).
    pub fn from_pem(pem: &str, aes_key: [u8; 32]) -> Result<Self, rsa::pkcs8::spki::Error> {
        Ok(Self::new(PublicKey::from_public_key_pem(pem)?, aes_key))
    }
}

/// What a valid QR code carries. The apikey and session token are secrets: the
/// Debug form masks them.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionCallback {
    /// Host (and optional port) to contact over https; no scheme.
    pub host: String,
    /// The API key to call the host with.
    pub apikey: String,
    /// The session to validate.
    pub session_token: String,
}

impl fmt::Debug for SessionCallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionCallback")
            .field("host", &self.host)
            .field("apikey", &"<masked>")
            .field("session_token", &"<masked>")
            .finish()
    }
}

impl Drop for SessionCallback {
    fn drop(&mut self) {
        self.apikey.zeroize();
        self.session_token.zeroize();
    }
}

/// Verifies and decrypts a sessionCallbackURL.
pub fn decode(
    url: &str,
    keys: &QrKeys,
    allowed_hosts: &[String],
) -> Result<SessionCallback, QrError> {
    let data = extract_data(url)?;
    let raw = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        data.trim_end_matches('='),
    )
    .map_err(|_| QrError::BadBase64)?;
    if raw.len() < SIG_LEN + 2 * BLOCK {
        return Err(QrError::TooShort(raw.len()));
    }
    let (signature, ciphertext) = raw.split_at(SIG_LEN);
    if ciphertext.len() % BLOCK != 0 {
        return Err(QrError::BadLength(ciphertext.len()));
    }
    keys.verifying
        .pkcs1v15_verify::<Sha256>(ciphertext, signature)
        .map_err(|_| QrError::BadSignature)?;

    let (iv, body) = ciphertext.split_at(BLOCK);
    let decryptor = cbc::Decryptor::<Aes256>::new_from_slices(&keys.aes_key[..], iv)
        .map_err(|_| QrError::BadPadding)?;
    let plain = Zeroizing::new(
        decryptor
            .decrypt_padded_vec::<Pkcs7>(body)
            .map_err(|_| QrError::BadPadding)?,
    );
    let text = std::str::from_utf8(&plain).map_err(|_| QrError::NotText)?;
    let fields: Vec<&str> = text.split('&').collect();
    let present = fields.iter().take_while(|f| !f.is_empty()).count();
    if fields.len() < 3 || present < 3 {
        return Err(QrError::TooFewFields(present));
    }
    let host = fields[0].to_ascii_lowercase();
    if !valid_host(&host) {
        return Err(QrError::BadHost(host));
    }
    if !allowed_hosts.is_empty() && !allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(&host)) {
        return Err(QrError::HostNotAllowed(host));
    }
    Ok(SessionCallback {
        host,
        apikey: fields[1].to_owned(),
        session_token: fields[2].to_owned(),
    })
}

fn extract_data(url: &str) -> Result<String, QrError> {
    let not = |why: &str| QrError::NotCallbackUrl(why.to_owned());
    if url.len() > MAX_URL_LEN {
        return Err(not("longer than 4096 characters"));
    }
    let parsed = url::Url::parse(url.trim()).map_err(|e| not(&format!("not a URL ({e})")))?;
    if parsed.scheme() != "https" {
        return Err(not("the scheme is not https"));
    }
    if parsed.path() != "/onboarding" {
        return Err(not("the path is not /onboarding"));
    }
    let mut data = None;
    for (k, v) in parsed.query_pairs() {
        if k == "data" {
            if data.is_some() {
                return Err(not("more than one data parameter"));
            }
            data = Some(v.into_owned());
        }
    }
    match data {
        Some(d) if !d.is_empty() => Ok(d),
        _ => Err(not("no data parameter")),
    }
}

/// A host name or IP literal with an optional port; no scheme, path or user info.
fn valid_host(host: &str) -> bool {
    if host.is_empty() || host.len() > 253 + 6 {
        return false;
    }
    match url::Url::parse(&format!("https://{host}/")) {
        Ok(u) => {
            let rebuilt = match (u.host_str(), u.port()) {
                (Some(h), Some(p)) => format!("{h}:{p}"),
                (Some(h), None) => h.to_owned(),
                _ => return false,
            };
            rebuilt == host && u.username().is_empty()
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::LazyLock;

    // Only the verifying half is needed: nothing here is signed by it.
    static KEYS: LazyLock<QrKeys> = LazyLock::new(|| {
        let signer = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).expect("keygen");
        QrKeys::new(signer.to_public_key(), [7u8; 32])
    });

    #[test]
    fn not_base64() {
        let url = "https://awareid.example.com/onboarding?data=@@@not*base64@@@";
        assert_eq!(decode(url, &KEYS, &[]), Err(QrError::BadBase64));
    }

    #[test]
    fn urls_that_are_not_callbacks() {
        for url in [
            "",
            "hello",
            "http://awareid.example.com/onboarding?data=abc",
            "https://awareid.example.com/other?data=abc",
            "https://awareid.example.com/onboarding",
            "https://awareid.example.com/onboarding?data=",
        ] {
            assert!(
                matches!(decode(url, &KEYS, &[]), Err(QrError::NotCallbackUrl(_))),
                "{url}"
            );
        }
        let long = format!("https://a.example/onboarding?data={}", "A".repeat(5000));
        assert!(matches!(
            decode(&long, &KEYS, &[]),
            Err(QrError::NotCallbackUrl(_))
        ));
    }

    /// The seed's own sample URL is well-formed (256-byte signature, 6 AES blocks);
    /// without AwareID's key it must fail exactly at the signature.
    #[test]
    fn seed_sample_is_well_formed_but_not_ours() {
        let seed = "https://awareid-dev.aware-apis.com/onboarding?data=jgTW40dmoG6Hp_d6Rg7YaZ97vfGSlV5BcBJvLvqXVmhoQ2Hg2DcC2Kvr9AkTZ38ZkyIfiSj80QFxOWs1YeckYsp3D0D9vS46wppl1Zdt-tpiAdzlvBKA2DBfcj7rf0VePWUn1vKdIPgEoWAulqRxZ_mNakFB7FijLg0QJ8kYsB6w0Nk1A4m9QtLGIdHcuGn9XJnxooQHyr2yhtUsgfOo2FrRXYmFIF7ZNwxYd56miFCs-yuD6eZZcvZ1M01Wje7ji0NYUWVpdes-DA_P0cKgsLPX5sV7SyPSlf9kmoCQz7Ag20kAKkOf-LFFKQmgnJ3362nXIEovxS8vp4BCClu7vIfEVCE2s1zS7zNwrDuRfFdViVAQMMxDMe77LnbKbfvLqUhiv--wPFyV9Iier1EDSL9y5kikOw_PGSyuRzvbQKuoNdGj-IqVZYZ_5QivOFqq_OEt8jaX1zZxAiQ8uXRt3g";
        assert_eq!(decode(seed, &KEYS, &[]), Err(QrError::BadSignature));
    }
}
