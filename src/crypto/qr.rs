//! The QR code's `sessionCallbackURL` (SPEC 3): decoding for the terminal and
//! encoding for the emulator's trigger endpoints.
//!
//! `https://<host>/onboarding?data=<D>`, D = unpadded base64url of
//! `signature(256) || C`. The RSA-2048 PKCS#1 v1.5 SHA-256 signature over C is
//! checked before anything is decrypted. C is AES-256-CBC/PKCS#7 whose first block
//! is the IV. The plaintext is `host&apikey&sessionToken[&...]`.

use aes::Aes256;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use rsa::pkcs8::DecodePublicKey;
use rsa::sha2::Sha256;
use rsa::{PrivateKey, PublicKey};
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

/// The emulator's side: signs and encrypts `host&apikey&sessionToken` into a
/// sessionCallbackURL exactly as AwareID does. `iv` is random unless given (tests).
pub fn encode(
    host: &str,
    apikey: &str,
    session_token: &str,
    signing: &PrivateKey,
    aes_key: &[u8; 32],
    iv: Option<[u8; 16]>,
) -> Result<String, QrEncodeError> {
    let iv = match iv {
        Some(iv) => iv,
        None => super::random_bytes::<16>().map_err(|_| QrEncodeError::Random)?,
    };
    let plain = Zeroizing::new(format!("{host}&{apikey}&{session_token}"));
    let encryptor =
        cbc::Encryptor::<Aes256>::new_from_slices(aes_key, &iv).map_err(|_| QrEncodeError::Key)?;
    let mut c = iv.to_vec();
    c.extend_from_slice(&encryptor.encrypt_padded_vec::<Pkcs7>(plain.as_bytes()));
    let signature = signing
        .pkcs1v15_sign::<Sha256>(&c)
        .map_err(|_| QrEncodeError::Sign)?;
    let mut raw = signature;
    raw.extend_from_slice(&c);
    Ok(format!(
        "https://{host}/onboarding?data={}",
        super::b64url(&raw)
    ))
}

/// Why a sessionCallbackURL cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum QrEncodeError {
    /// getrandom failed.
    #[error("no random source")]
    Random,
    /// The AES key or IV has the wrong length.
    #[error("bad AES key or IV length")]
    Key,
    /// RSA signing failed.
    #[error("RSA signing failed")]
    Sign,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::LazyLock;

    // One 2048-bit key pair per test binary: generation takes a while in debug builds.
    static SIGNER: LazyLock<PrivateKey> =
        LazyLock::new(|| crate::crypto::new_rsa_key(2048).expect("keygen"));
    static OTHER_SIGNER: LazyLock<PrivateKey> =
        LazyLock::new(|| crate::crypto::new_rsa_key(2048).expect("keygen"));
    const AES: [u8; 32] = [7u8; 32];
    const IV: [u8; 16] = [3u8; 16];

    fn keys() -> QrKeys {
        QrKeys::new(SIGNER.to_public_key(), AES)
    }

    fn sample() -> String {
        encode(
            "awareid.example.com",
            "api-KEY",
            "aa73e547-0f1b",
            &SIGNER,
            &AES,
            Some(IV),
        )
        .expect("encode")
    }

    fn raw_of(url: &str) -> Vec<u8> {
        let d = url.split("data=").nth(1).expect("data");
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, d).expect("b64")
    }

    fn url_of(raw: &[u8]) -> String {
        format!(
            "https://awareid.example.com/onboarding?data={}",
            crate::crypto::b64url(raw)
        )
    }

    #[test]
    fn round_trip() {
        let cb = decode(&sample(), &keys(), &[]).expect("decode");
        assert_eq!(cb.host, "awareid.example.com");
        assert_eq!(cb.apikey, "api-KEY");
        assert_eq!(cb.session_token, "aa73e547-0f1b");
        let dbg = format!("{cb:?}");
        assert!(
            !dbg.contains("api-KEY") && !dbg.contains("aa73e547"),
            "{dbg}"
        );
    }

    #[test]
    fn extra_empty_fields_are_accepted() {
        let url = encode("h.example", "k", "t&&", &SIGNER, &AES, None).expect("encode");
        let cb = decode(&url, &keys(), &[]).expect("decode");
        assert_eq!(cb.session_token, "t");
    }

    #[test]
    fn flipped_signature_byte() {
        let mut raw = raw_of(&sample());
        raw[10] ^= 0x01;
        assert_eq!(
            decode(&url_of(&raw), &keys(), &[]),
            Err(QrError::BadSignature)
        );
    }

    #[test]
    fn flipped_ciphertext_byte_fails_the_signature_before_decryption() {
        let mut raw = raw_of(&sample());
        let last = raw.len() - 1;
        raw[last] ^= 0x80;
        assert_eq!(
            decode(&url_of(&raw), &keys(), &[]),
            Err(QrError::BadSignature)
        );
    }

    #[test]
    fn wrong_aes_key() {
        let wrong = QrKeys::new(SIGNER.to_public_key(), [9u8; 32]);
        assert_eq!(decode(&sample(), &wrong, &[]), Err(QrError::BadPadding));
    }

    #[test]
    fn wrong_signing_key() {
        let url = encode(
            "awareid.example.com",
            "k",
            "t",
            &OTHER_SIGNER,
            &AES,
            Some(IV),
        )
        .expect("encode");
        assert_eq!(decode(&url, &keys(), &[]), Err(QrError::BadSignature));
    }

    #[test]
    fn truncated_payload() {
        let raw = raw_of(&sample());
        assert_eq!(
            decode(&url_of(&raw[..200]), &keys(), &[]),
            Err(QrError::TooShort(200))
        );
        assert_eq!(
            decode(&url_of(&raw[..raw.len() - 5]), &keys(), &[]),
            Err(QrError::BadLength(raw.len() - 5 - SIG_LEN))
        );
        // Cutting the text to a length no base64 string can have.
        let url = sample();
        let start = url.find("data=").expect("data") + 5;
        let mut cut = url.len() - 1;
        while (cut - start) % 4 != 1 {
            cut -= 1;
        }
        assert_eq!(decode(&url[..cut], &keys(), &[]), Err(QrError::BadBase64));
    }

    #[test]
    fn not_base64() {
        let url = "https://awareid.example.com/onboarding?data=@@@not*base64@@@";
        assert_eq!(decode(url, &keys(), &[]), Err(QrError::BadBase64));
    }

    #[test]
    fn too_few_fields() {
        let url = encode(
            "awareid.example.com",
            "only-two",
            "",
            &SIGNER,
            &AES,
            Some(IV),
        )
        .expect("encode");
        assert_eq!(decode(&url, &keys(), &[]), Err(QrError::TooFewFields(2)));
    }

    #[test]
    fn host_outside_allowed_hosts() {
        let allowed = vec!["other.example.com".to_owned()];
        assert_eq!(
            decode(&sample(), &keys(), &allowed),
            Err(QrError::HostNotAllowed("awareid.example.com".into()))
        );
        let allowed = vec!["AwareID.example.com".to_owned()];
        assert!(decode(&sample(), &keys(), &allowed).is_ok());
    }

    #[test]
    fn host_with_path_or_userinfo_is_refused() {
        for host in [
            "evil.example/x",
            "user@evil.example",
            "https://evil.example",
            "",
        ] {
            let url = encode(host, "k", "t", &SIGNER, &AES, Some(IV)).expect("encode");
            match decode(&url, &keys(), &[]) {
                Err(QrError::BadHost(_))
                | Err(QrError::TooFewFields(_))
                | Err(QrError::NotCallbackUrl(_)) => {}
                other => panic!("{host:?} gave {other:?}"),
            }
        }
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
                matches!(decode(url, &keys(), &[]), Err(QrError::NotCallbackUrl(_))),
                "{url}"
            );
        }
        let long = format!("https://a.example/onboarding?data={}", "A".repeat(5000));
        assert!(matches!(
            decode(&long, &keys(), &[]),
            Err(QrError::NotCallbackUrl(_))
        ));
    }

    /// The seed's own sample URL is well-formed (256-byte signature, 6 AES blocks);
    /// without AwareID's key it must fail exactly at the signature.
    #[test]
    fn seed_sample_is_well_formed_but_not_ours() {
        let seed = "https://awareid-dev.aware-apis.com/onboarding?data=jgTW40dmoG6Hp_d6Rg7YaZ97vfGSlV5BcBJvLvqXVmhoQ2Hg2DcC2Kvr9AkTZ38ZkyIfiSj80QFxOWs1YeckYsp3D0D9vS46wppl1Zdt-tpiAdzlvBKA2DBfcj7rf0VePWUn1vKdIPgEoWAulqRxZ_mNakFB7FijLg0QJ8kYsB6w0Nk1A4m9QtLGIdHcuGn9XJnxooQHyr2yhtUsgfOo2FrRXYmFIF7ZNwxYd56miFCs-yuD6eZZcvZ1M01Wje7ji0NYUWVpdes-DA_P0cKgsLPX5sV7SyPSlf9kmoCQz7Ag20kAKkOf-LFFKQmgnJ3362nXIEovxS8vp4BCClu7vIfEVCE2s1zS7zNwrDuRfFdViVAQMMxDMe77LnbKbfvLqUhiv--wPFyV9Iier1EDSL9y5kikOw_PGSyuRzvbQKuoNdGj-IqVZYZ_5QivOFqq_OEt8jaX1zZxAiQ8uXRt3g";
        assert_eq!(decode(seed, &keys(), &[]), Err(QrError::BadSignature));
    }
}
