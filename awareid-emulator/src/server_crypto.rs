//! The server's half of the cryptography, which a terminal never does: making
//! sessionCallbackURLs (docs/qr.md) and their QR pictures, opening face-data
//! envelopes (docs/face-data.md), and RSA key pairs. The terminal's half (decoding QR URLs,
//! sealing envelopes, the device identity) is `facecapture::crypto`; the tests
//! here are the round trips between the two.

use aes::Aes256;
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeEncrypt, KeyIvInit};
use facecapture::crypto::envelope::Envelope;
use facecapture::crypto::{b64url, random_bytes, unb64};
use image::{GrayImage, ImageFormat, Luma};
use qrcode::{EcLevel, QrCode};
use rsa::PrivateKey;
use rsa::sha2::Sha256;
use std::io::Cursor;
use zeroize::Zeroizing;

/// Makes a new RSA key pair from the operating system's random source (the
/// server's key and the QR-signing key).
pub fn new_rsa_key(bits: usize) -> Result<PrivateKey, rsa::Error> {
    PrivateKey::new(&mut getrandom::SysRng, bits)
}

/// Signs and encrypts `host&apikey&sessionToken` into a sessionCallbackURL
/// exactly as AwareID does (docs/qr.md). `iv` is random unless given (tests).
pub fn encode_qr(
    host: &str,
    apikey: &str,
    session_token: &str,
    signing: &PrivateKey,
    aes_key: &[u8; 32],
    iv: Option<[u8; 16]>,
) -> Result<String, QrEncodeError> {
    let iv = match iv {
        Some(iv) => iv,
        None => random_bytes::<16>().map_err(|_| QrEncodeError::Random)?,
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
    Ok(format!("https://{host}/onboarding?data={}", b64url(&raw)))
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

/// Why a face-data envelope does not open.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpenError {
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

/// Opens a face-data envelope (docs/face-data.md) with the server's private key.
pub fn open_envelope(
    server_key: &PrivateKey,
    env: &Envelope,
) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    let wrapped = unb64(&env.key).map_err(|_| OpenError::Base64("key"))?;
    let nonce = unb64(&env.iv).map_err(|_| OpenError::Base64("iv"))?;
    let sealed = unb64(&env.p).map_err(|_| OpenError::Base64("p"))?;
    let key = Zeroizing::new(
        server_key
            .oaep_decrypt::<Sha256>(&wrapped)
            .map_err(|_| OpenError::Unwrap)?,
    );
    let nonce: [u8; 12] = nonce.try_into().map_err(|_| OpenError::Nonce)?;
    let cipher = Aes256Gcm::new_from_slice(&key).map_err(|_| OpenError::Unwrap)?;
    cipher
        .decrypt(&Nonce::from(nonce), sealed.as_slice())
        .map(Zeroizing::new)
        .map_err(|_| OpenError::Open)
}

/// Why a QR picture cannot be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QrPngError {
    /// The text is too long for a QR code.
    #[error("the text does not fit in a QR code")]
    TooLong,
    /// The PNG encoder failed.
    #[error("PNG encoding failed")]
    Encode,
}

/// A PNG of the QR code, 4 px per module with the quiet zone (as the seed's
/// 400x400 sample image).
pub fn qr_png(text: &str) -> Result<Vec<u8>, QrPngError> {
    let img: GrayImage = QrCode::with_error_correction_level(text, EcLevel::L)
        .map_err(|_| QrPngError::TooLong)?
        .render::<Luma<u8>>()
        .module_dimensions(4, 4)
        .build();
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png)
        .map_err(|_| QrPngError::Encode)?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    //! What the server makes, the terminal takes (facecapture's decoders), and
    //! what is tampered with, it refuses.
    use super::*;
    use facecapture::crypto::b64;
    use facecapture::crypto::envelope::seal;
    use facecapture::crypto::qr::{QrError, QrKeys, decode};
    use std::sync::LazyLock;

    // The signature's length (RSA-2048).
    const SIG_LEN: usize = 256;

    // One 2048-bit key pair per test binary: generation takes a while in debug builds.
    static SIGNER: LazyLock<PrivateKey> = LazyLock::new(|| new_rsa_key(2048).expect("keygen"));
    static OTHER_SIGNER: LazyLock<PrivateKey> =
        LazyLock::new(|| new_rsa_key(2048).expect("keygen"));
    const AES: [u8; 32] = [7u8; 32];
    const IV: [u8; 16] = [3u8; 16];

    fn keys() -> QrKeys {
        QrKeys::new(SIGNER.to_public_key(), AES)
    }

    fn sample() -> String {
        encode_qr(
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
            b64url(raw)
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
        let url = encode_qr("h.example", "k", "t&&", &SIGNER, &AES, None).expect("encode");
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
        let url = encode_qr(
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
    fn too_few_fields() {
        let url = encode_qr(
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
            let url = encode_qr(host, "k", "t", &SIGNER, &AES, Some(IV)).expect("encode");
            match decode(&url, &keys(), &[]) {
                Err(QrError::BadHost(_))
                | Err(QrError::TooFewFields(_))
                | Err(QrError::NotCallbackUrl(_)) => {}
                other => panic!("{host:?} gave {other:?}"),
            }
        }
    }

    static SERVER: LazyLock<PrivateKey> = LazyLock::new(|| new_rsa_key(2048).expect("keygen"));

    #[test]
    fn seal_then_open() {
        let msg = br#"{"video":{"workflow_data":{"workflow":"hotel2"}}}"#;
        let env = seal(&SERVER.to_public_key(), msg).expect("seal");
        assert_eq!(unb64(&env.iv).expect("iv").len(), 12);
        assert_eq!(unb64(&env.key).expect("key").len(), 256);
        assert_eq!(unb64(&env.p).expect("p").len(), msg.len() + 16);
        assert_eq!(&open_envelope(&SERVER, &env).expect("open")[..], &msg[..]);
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
        assert_eq!(open_envelope(&SERVER, &bad), Err(OpenError::Open));
        let bad = Envelope {
            iv: b64(&[0u8; 8]),
            ..env.clone()
        };
        assert_eq!(open_envelope(&SERVER, &bad), Err(OpenError::Nonce));
        let bad = Envelope {
            key: "!!".into(),
            ..env
        };
        assert_eq!(open_envelope(&SERVER, &bad), Err(OpenError::Base64("key")));
    }

    #[test]
    fn png_round_trip_of_a_dense_code() {
        // As long as a real sessionCallbackURL: 352 bytes of payload.
        let url = format!(
            "https://awareid-dev.aware-apis.com/onboarding?data={}",
            "aB3-_x9".repeat(67)
        );
        let png = qr_png(&url).expect("png");
        let img = image::load_from_memory(&png)
            .expect("decode png")
            .to_luma8();
        assert!(img.width() >= 300, "{}", img.width());
        assert_eq!(
            facecapture::qrimage::find_in(&img).as_deref(),
            Some(url.as_str())
        );
    }

    #[test]
    fn too_long_for_a_qr_code() {
        assert_eq!(qr_png(&"x".repeat(5000)), Err(QrPngError::TooLong));
    }
}
