//! `Secret`: a string that is never printed and is zeroed when dropped, for the
//! client secret, API keys, the QR AES key, tokens and registration codes (held
//! by config, the AwareID client, storage and the workflows).

use serde::Deserialize;
use std::fmt;
use zeroize::Zeroizing;

/// A secret string: `Debug` shows `<secret>` (or `<unset>`), the memory is zeroed
/// when dropped.
///
/// ```
/// use facecapture::secret::Secret;
/// let token = Secret::new("eyJhbGciOi...");
/// assert_eq!(format!("{token:?}"), "<secret>");
/// assert_eq!(token.expose(), "eyJhbGciOi...");
/// assert_eq!(format!("{:?}", Secret::default()), "<unset>");
/// ```
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Takes `value` in.
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// The secret itself, to send or store; never to log.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is empty (unset).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "<unset>"
        } else {
            "<secret>"
        })
    }
}
