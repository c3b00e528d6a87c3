//! QR codes as pictures: rendering a sessionCallbackURL to PNG (the emulator's
//! `qrcodeImage`) or to the terminal (facecapturectl), and finding one in a
//! grayscale picture with rxing, a ZXing port that reads the dense, tilted codes a
//! door camera sees.

use image::{GrayImage, ImageFormat, Luma};
use qrcode::{EcLevel, QrCode};
use std::io::Cursor;

/// Why a QR code cannot be drawn.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QrImageError {
    /// The text is too long for a QR code.
    #[error("the text does not fit in a QR code")]
    TooLong,
    /// The PNG encoder failed.
    #[error("PNG encoding failed")]
    Encode,
}

fn code(text: &str) -> Result<QrCode, QrImageError> {
    QrCode::with_error_correction_level(text, EcLevel::L).map_err(|_| QrImageError::TooLong)
}

/// A PNG of the QR code, 4 px per module with the quiet zone (as the seed's
/// 400x400 sample image).
pub fn to_png(text: &str) -> Result<Vec<u8>, QrImageError> {
    let img: GrayImage = code(text)?
        .render::<Luma<u8>>()
        .module_dimensions(4, 4)
        .build();
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png)
        .map_err(|_| QrImageError::Encode)?;
    Ok(out.into_inner())
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
    fn png_round_trip_of_a_dense_code() {
        // As long as a real sessionCallbackURL: 352 bytes of payload.
        let url = format!(
            "https://awareid-dev.aware-apis.com/onboarding?data={}",
            "aB3-_x9".repeat(67)
        );
        let png = to_png(&url).expect("png");
        let img = image::load_from_memory(&png)
            .expect("decode png")
            .to_luma8();
        assert!(img.width() >= 300, "{}", img.width());
        assert_eq!(find_in(&img).as_deref(), Some(url.as_str()));
    }

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
        assert_eq!(to_png(&"x".repeat(5000)), Err(QrImageError::TooLong));
    }
}
