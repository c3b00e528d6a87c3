//! The sessionCallbackURL decoder (`crypto::qr::decode`), two ways. Byte 0 even:
//! the input is the URL itself (scanned or given over D-Bus: anything), checked
//! against a fixed key pair. Odd: the input, split at 0xff, is the host, apikey
//! and session token that a holder of the signing key put in a QR code (signed
//! and encrypted here, by the emulator's server side), so the fuzzer reaches
//! the decrypted payload's parser;
//! what decodes must be what was encoded (the host in lower case).
#![no_main]

use awareid_emulator::server_crypto::{encode_qr, new_rsa_key};
use facecapture::crypto::qr::{QrKeys, decode};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

const AES: [u8; 32] = [0x42; 32];
static SIGNER: LazyLock<rsa::PrivateKey> = LazyLock::new(|| new_rsa_key(2048).expect("keygen"));
static KEYS: LazyLock<QrKeys> = LazyLock::new(|| QrKeys::new(SIGNER.to_public_key(), AES));

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let allowed = ["awareid.example.com".to_owned()];
    if mode % 2 == 0 {
        let url = String::from_utf8_lossy(rest);
        let _ = decode(&url, &KEYS, &allowed);
        let _ = decode(&url, &KEYS, &[]);
        return;
    }
    let mut parts = rest.split(|&b| b == 0xff).map(String::from_utf8_lossy);
    let (host, apikey, token) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let Ok(url) = encode_qr(&host, &apikey, &token, &SIGNER, &AES, Some([7; 16])) else {
        return;
    };
    // What decodes is what was encoded: the host as AwareID compares it (in
    // lower case), each field whole when none holds the '&' that separates them.
    let whole = ![&host, &apikey, &token].iter().any(|f| f.contains('&'));
    if let Ok(cb) = decode(&url, &KEYS, &[])
        && whole
    {
        assert_eq!(cb.host, host.to_ascii_lowercase(), "the host");
        assert_eq!(
            (cb.apikey.as_str(), cb.session_token.as_str()),
            (&*apikey, &*token),
            "a QR code decodes to what it holds"
        );
    }
});
