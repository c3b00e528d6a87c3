//! Cryptography the terminal needs, built only from RustCrypto crates: decoding
//! the QR `sessionCallbackURL` (docs/qr.md), sealing the face-data envelope (docs/face-data.md),
//! the terminal's device identity (docs/identity.md) and its keys sealed at rest. Nothing
//! here is hand-rolled. The server's half (making QR codes, opening envelopes,
//! RSA key generation) is not the product's: it is in the emulator's crate.

pub mod device;
pub mod envelope;
pub mod qr;
pub mod sealed;
pub mod site;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// Standard base64 with padding, as AwareID's JSON uses.
pub fn b64(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// Decodes standard base64 (padding required).
pub fn unb64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    STANDARD.decode(text)
}

/// Unpadded base64url, as the QR `data` parameter uses.
pub fn b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Fills a buffer from the operating system's random source.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], getrandom::Error> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out)?;
    Ok(out)
}
