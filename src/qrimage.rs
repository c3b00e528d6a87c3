//! QR codes as pictures: drawing a sessionCallbackURL on the terminal
//! (facecapturectl; the emulator's PNG `qrcodeImage` is the server's side, in
//! its `server_crypto`), and finding one in a grayscale picture with rxing, a
//! ZXing port that reads the dense, tilted codes a door camera sees.

use image::GrayImage;
use qrcode::{EcLevel, QrCode};

/// Why a QR code cannot be drawn.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QrImageError {
    /// The text is too long for a QR code.
    #[error("the text does not fit in a QR code")]
    TooLong,
}

fn code(text: &str) -> Result<QrCode, QrImageError> {
    QrCode::with_error_correction_level(text, EcLevel::L).map_err(|_| QrImageError::TooLong)
}

/// The QR code as Unicode half blocks, for a terminal.
pub fn to_terminal(text: &str) -> Result<String, QrImageError> {
    use qrcode::render::unicode::Dense1x2;
    Ok(code(text)?
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .build())
}

/// The text of the first QR code found in a grayscale picture.
pub fn find_in(gray: &GrayImage) -> Option<String> {
    let (w, h) = gray.dimensions();
    if w == 0 || h == 0 {
        return None;
    }
    rxing::helpers::detect_in_luma_slice(gray.as_raw(), w, h, Some(rxing::BarcodeFormat::QR_CODE))
        .ok()
        .map(|r| r.getText().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_code_in_a_face_photo() {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/faces/astronaut.jpg");
        assert_eq!(find_in(&image::open(p).expect("fixture").to_luma8()), None);
        assert_eq!(find_in(&GrayImage::new(0, 0)), None);
    }

    #[test]
    fn terminal_rendering_has_rows() {
        let t = to_terminal("https://h.example/onboarding?data=abc").expect("render");
        assert!(t.lines().count() > 10);
    }

    #[test]
    fn too_long_is_an_error() {
        assert_eq!(to_terminal(&"x".repeat(5000)), Err(QrImageError::TooLong));
    }
}
