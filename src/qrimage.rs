//! QR codes as pictures: drawing a sessionCallbackURL on the terminal
//! (facecapturectl; the emulator's PNG `qrcodeImage` is the server's side, in
//! its `server_crypto`), and finding one in a grayscale picture with rxing, a
//! ZXing port that reads the dense, tilted codes a door camera sees, helped
//! where a camera's picture is soft: a sharpened frame, then the region around
//! three finder patterns enlarged (benches/qr_sweep.rs measures each step
//! against zxing-cpp).

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
///
/// Three tries, each only when the one before found nothing: the picture as
/// it is; sharpened (an unsharp mask, which restores the module edges a
/// defocused or noisy camera softens); and the region where the sharpened
/// picture shows a code's three finder patterns, enlarged twice and sharpened
/// again, for codes whose modules are under 2 px or blurred into each other.
/// A frame with no code costs the first two tries and a finder search.
pub fn find_in(gray: &GrayImage) -> Option<String> {
    let (w, h) = gray.dimensions();
    if w == 0 || h == 0 {
        return None;
    }
    decode(gray).or_else(|| {
        let sharp = sharpened(gray);
        decode(&sharp).or_else(|| {
            let region = code_region(&sharp)?;
            decode(&enlarged(&region))
        })
    })
}

/// The unsharp mask: how much of each pixel's difference from its blur it
/// adds back. Chosen on benches/qr_sweep.rs with a Gaussian blur of 1.5 px:
/// amount 2 read the most at every blur level (1 px and amount 1 read 13 of
/// 108 codes at blur 1.5 px, these 22). The blur is now [`binomial_blur`].
const SHARPEN_AMOUNT: i16 = 2;
/// How far around the finder patterns' centres the region reaches, in
/// modules: 3.5 to the symbol's edge, the quiet zone, and slack for a tilt.
const REGION_MARGIN_MODULES: f32 = 9.0;

/// The largest region enlarged (px a side): a code filling the frame needs no
/// enlarging.
const REGION_MAX: u32 = 400;

/// `gray` with an unsharp mask: each pixel plus [`SHARPEN_AMOUNT`] times its
/// difference from [`binomial_blur`].
fn sharpened(gray: &GrayImage) -> GrayImage {
    let blurred = binomial_blur(gray);
    let mut out = gray.clone();
    for (o, &b) in out.iter_mut().zip(blurred.iter()) {
        let v = i16::from(*o) + SHARPEN_AMOUNT * (i16::from(*o) - i16::from(b));
        *o = v.clamp(0, 255) as u8;
    }
    out
}

/// The 9-tap binomial kernel (1 8 28 56 70 56 28 8 1) / 256: a Gaussian of
/// sigma 1.41 px in integers.
const BINOMIAL: [u16; 9] = [1, 8, 28, 56, 70, 56, 28, 8, 1];

/// `gray` blurred by [`BINOMIAL`] across and then down, the edges repeated:
/// the unsharp mask's blur, in 16-bit integers the compiler vectorises (a
/// tenth of the instructions of `imageops::blur`'s floating-point Gaussian of
/// sigma 1.5, which was a third of what a frame without a code cost).
fn binomial_blur(gray: &GrayImage) -> GrayImage {
    const R: usize = BINOMIAL.len() / 2;
    let (w, h) = (gray.width() as usize, gray.height() as usize);
    if w == 0 || h == 0 {
        return gray.clone();
    }
    let mut across = vec![0u8; w * h];
    let mut padded = vec![0u8; w + 2 * R];
    for (src, dst) in gray
        .as_raw()
        .chunks_exact(w)
        .zip(across.chunks_exact_mut(w))
    {
        padded[R..R + w].copy_from_slice(src);
        let (first, last) = (src[0], src[w - 1]);
        padded[..R].fill(first);
        padded[R + w..].fill(last);
        for (x, d) in dst.iter_mut().enumerate() {
            let taps = &padded[x..x + BINOMIAL.len()];
            let sum: u16 = taps
                .iter()
                .zip(BINOMIAL)
                .map(|(&p, k)| u16::from(p) * k)
                .sum();
            *d = ((u32::from(sum) + 128) >> 8) as u8;
        }
    }
    let mut out = GrayImage::new(w as u32, h as u32);
    let mut sums = vec![0u16; w];
    for (y, dst) in out.chunks_exact_mut(w).enumerate() {
        sums.fill(0);
        for (i, k) in BINOMIAL.into_iter().enumerate() {
            let row = (y + i).saturating_sub(R).min(h - 1);
            for (s, &p) in sums.iter_mut().zip(&across[row * w..(row + 1) * w]) {
                *s += u16::from(p) * k;
            }
        }
        for (d, &s) in dst.iter_mut().zip(&sums) {
            *d = ((u32::from(s) + 128) >> 8) as u8;
        }
    }
    out
}

fn decode(gray: &GrayImage) -> Option<String> {
    let (w, h) = gray.dimensions();
    rxing::helpers::detect_in_luma_slice(gray.as_raw(), w, h, Some(rxing::BarcodeFormat::QR_CODE))
        .ok()
        .map(|r| r.getText().to_owned())
}

/// The part of `gray` around a QR code's three finder patterns (their
/// parallelogram's fourth corner included), if three are found.
fn code_region(gray: &GrayImage) -> Option<GrayImage> {
    use rxing::qrcode::detector::{FinderPattern, FinderPatternFinder};
    use rxing::{BinaryBitmap, DecodeHints, Luma8LuminanceSource, Point};
    let (w, h) = gray.dimensions();
    let source = Luma8LuminanceSource::new(gray.as_raw().clone(), w, h).ok()?;
    let bitmap = BinaryBitmap::new(rxing::common::HybridBinarizer::new(source));
    let matrix = bitmap.get_black_matrix();
    let hints = DecodeHints {
        TryHarder: Some(true),
        ..DecodeHints::default()
    };
    let info = FinderPatternFinder::new(matrix).find(&hints).ok()?;
    let at = |p: &FinderPattern| Point::from(p);
    let (tl, tr, bl) = (
        at(info.getTopLeft()),
        at(info.getTopRight()),
        at(info.getBottomLeft()),
    );
    let br = Point::new(tr.x + bl.x - tl.x, tr.y + bl.y - tl.y);
    let margin = info.getTopLeft().getEstimatedModuleSize().max(1.0) * REGION_MARGIN_MODULES;
    let (xs, ys) = ([tl.x, tr.x, bl.x, br.x], [tl.y, tr.y, bl.y, br.y]);
    let lo = |v: [f32; 4]| v.into_iter().fold(f32::INFINITY, f32::min) - margin;
    let hi = |v: [f32; 4], limit: u32| {
        (v.into_iter().fold(f32::NEG_INFINITY, f32::max) + margin).min(limit as f32)
    };
    // Finite, clamped to the frame: the casts cannot wrap.
    let (x0, y0) = (lo(xs).max(0.0), lo(ys).max(0.0));
    let (x1, y1) = (hi(xs, w), hi(ys, h));
    if !(x1 - x0 >= 16.0 && y1 - y0 >= 16.0) {
        return None;
    }
    let (x0, y0, cw, ch) = (x0 as u32, y0 as u32, (x1 - x0) as u32, (y1 - y0) as u32);
    if cw > REGION_MAX || ch > REGION_MAX {
        return None;
    }
    Some(image::imageops::crop_imm(gray, x0, y0, cw, ch).to_image())
}

/// `region` twice as large (Catmull-Rom), sharpened.
fn enlarged(region: &GrayImage) -> GrayImage {
    let (w, h) = region.dimensions();
    let large = image::imageops::resize(
        region,
        w * 2,
        h * 2,
        image::imageops::FilterType::CatmullRom,
    );
    image::imageops::unsharpen(&large, 2.0, 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_blur_is_the_binomial_kernel_across_and_down() {
        // Flat stays flat, edges included.
        let flat = GrayImage::from_pixel(13, 11, image::Luma([200]));
        assert_eq!(binomial_blur(&flat), flat);
        // A bright column spreads across by the kernel and not down.
        let line = GrayImage::from_fn(21, 5, |x, _| image::Luma([if x == 10 { 255 } else { 0 }]));
        let b = binomial_blur(&line);
        for (i, k) in BINOMIAL.iter().enumerate() {
            let want = ((u32::from(*k) * 255 + 128) >> 8) as u8;
            assert_eq!(b.get_pixel(6 + i as u32, 2)[0], want, "tap {i}");
            assert_eq!(b.get_pixel(6 + i as u32, 0)[0], want, "top row, tap {i}");
        }
        assert_eq!(b.get_pixel(5, 2)[0], 0);
        assert_eq!(binomial_blur(&GrayImage::new(0, 0)).dimensions(), (0, 0));
        assert_eq!(binomial_blur(&GrayImage::new(1, 1)).dimensions(), (1, 1));
    }

    #[test]
    fn no_code_in_a_face_photo() {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/faces/astronaut.jpg");
        assert_eq!(find_in(&image::open(p).expect("fixture").to_luma8()), None);
        assert_eq!(find_in(&GrayImage::new(0, 0)), None);
    }

    /// A sessionCallbackURL's length (an RSA-2048 signature, the encrypted
    /// session, base64url): version 14, 73 modules.
    fn callback_url() -> String {
        const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut x = 0x2545_f491_u32;
        let data: String = (0..448)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                B64[(x % 64) as usize] as char
            })
            .collect();
        format!("https://awareid.example.com/onboarding?data={data}")
    }

    /// `text`'s code as a card (dark gray on light gray) whose symbol is
    /// `width` px, in the astronaut photo, the frame blurred by `blur` px.
    fn scene(text: &str, width: u32, blur: f32) -> GrayImage {
        let code = QrCode::with_error_correction_level(text, EcLevel::L).expect("code");
        let modules = code.width() as u32;
        let card = code
            .render::<image::Luma<u8>>()
            .dark_color(image::Luma([35]))
            .light_color(image::Luma([215]))
            .module_dimensions(4, 4)
            .build();
        let side = width * (modules + 8) / modules;
        let card =
            image::imageops::resize(&card, side, side, image::imageops::FilterType::Triangle);
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/faces/astronaut.jpg");
        let mut frame = image::open(p).expect("fixture").to_luma8();
        image::imageops::overlay(&mut frame, &card, 330, 180);
        image::imageops::blur(&frame, blur)
    }

    #[test]
    fn a_small_soft_code_is_read_where_the_plain_reader_fails() {
        let url = callback_url();
        for (width, blur) in [(130, 0.6), (200, 1.3)] {
            let frame = scene(&url, width, blur);
            assert_eq!(
                decode(&frame),
                None,
                "{width} px, blur {blur}: the plain reader reads this one; make it harder"
            );
            assert_eq!(
                find_in(&frame).as_deref(),
                Some(url.as_str()),
                "{width} px, blur {blur}"
            );
        }
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
