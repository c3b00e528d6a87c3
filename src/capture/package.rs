//! Packaging: compliant frames become the Face SDK's faceLivenessData (docs/face-data.md):
//! each rotated upright, scaled to the configured size, JPEG-encoded, base64'd,
//! with its capture time in ms, the workflow and the terminal's meta_data. The
//! intermediate pixels and JPEG bytes are wiped as soon as they are encoded.

use super::{CaptureError, Settings};
use crate::awareid::wire::{FaceLivenessData, MetaData};
use crate::camera::RawFrame;
use crate::camera::frame::{Rgb8, Wiped};
use image::imageops::{self, FilterType};
use zeroize::Zeroizing;

/// Builds the package from frames that passed the quality gate.
pub fn package(
    frames: &[RawFrame],
    settings: &Settings,
    username: &str,
) -> Result<FaceLivenessData, CaptureError> {
    let mut jpegs = Vec::with_capacity(frames.len());
    for frame in frames {
        let rgb = frame
            .to_rgb()
            .map_err(|e| CaptureError::Encode(e.to_string()))?;
        let upright = rotate(rgb, settings.rotation);
        let (w, h) = settings.output_size();
        let sized = if upright.dimensions() == (w, h) {
            upright
        } else {
            Wiped(imageops::resize(&*upright, w, h, FilterType::Triangle))
        };
        jpegs.push((
            encode_jpeg(&sized, settings.jpeg_quality)?,
            frame.captured_ms,
        ));
    }
    let refs: Vec<(&[u8], f64)> = jpegs.iter().map(|(j, t)| (&j[..], *t)).collect();
    Ok(FaceLivenessData::from_jpegs(
        &settings.workflow,
        0,
        &refs,
        MetaData::for_terminal(&settings.device_brand, username),
    ))
}

/// Rotates clockwise by 0, 90, 180 or 270 degrees.
pub fn rotate<P: image::Pixel<Subpixel = u8> + 'static>(img: Wiped<P>, degrees: u32) -> Wiped<P> {
    match degrees {
        90 => Wiped(imageops::rotate90(&*img)),
        180 => Wiped(imageops::rotate180(&*img)),
        270 => Wiped(imageops::rotate270(&*img)),
        _ => img,
    }
}

/// Encodes a frame as AwareID receives it: baseline JFIF at the configured
/// quality with the standard Huffman tables, chroma subsampled 4:2:0 (2x2, as
/// phone cameras' JPEGs and so the Face SDK's are). The same pixels at the same
/// quality, 15-18% fewer bytes on the uplink than the 4:2:2 of the image
/// crate's encoder (docs/face-data.md). Not the encoder's optimised Huffman
/// tables: with 4:2:0 they are ones that libjpeg reads and zune-jpeg misreads
/// (garbled pixels, no face), and nobody knows AwareID's decoder.
fn encode_jpeg(img: &Rgb8, quality: u8) -> Result<Zeroizing<Vec<u8>>, CaptureError> {
    let (w, h) = img.dimensions();
    let too_large = || CaptureError::Encode(format!("a {w}x{h} frame is too large for a JPEG"));
    let (w, h) = (
        u16::try_from(w).map_err(|_| too_large())?,
        u16::try_from(h).map_err(|_| too_large())?,
    );
    let mut out = Zeroizing::new(Vec::with_capacity(64 * 1024));
    let mut encoder = jpeg_encoder::Encoder::new(&mut *out, quality.clamp(1, 100));
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
    encoder
        .encode(img.as_raw(), w, h, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| CaptureError::Encode(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo() -> Rgb8 {
        let img = image::open(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/faces/astronaut.jpg"
        ))
        .expect("photo")
        .to_rgb8();
        Wiped(imageops::resize(&img, 640, 480, FilterType::Triangle))
    }

    /// The frame's components' sampling factors as the SOF0 segment declares
    /// them: (h, v).
    fn sampling(jpeg: &[u8]) -> Vec<(u8, u8)> {
        let sof = jpeg
            .windows(2)
            .position(|w| w == [0xff, 0xc0])
            .expect("a baseline SOF0");
        let n = usize::from(jpeg[sof + 9]);
        (0..n)
            .map(|i| {
                let c = &jpeg[sof + 10 + 3 * i..];
                (c[1] >> 4, c[1] & 0x0f)
            })
            .collect()
    }

    #[test]
    fn frames_go_as_baseline_4_2_0_in_fewer_bytes_and_decode_as_they_were() {
        let img = photo();
        let ours = encode_jpeg(&img, 90).expect("encode");
        // A JFIF file (its components YCbCr), luma 2x2 and both chroma 1x1: 4:2:0.
        assert_eq!(&ours[6..11], b"JFIF\0");
        assert_eq!(sampling(&ours), vec![(2, 2), (1, 1), (1, 1)]);
        // What the standard tables with 4:2:2 (the image crate's encoder) made.
        let mut standard = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut standard, 90)
            .encode_image(&*img)
            .expect("encode");
        assert!(
            ours.len() * 100 < standard.len() * 88,
            "{} bytes against {}",
            ours.len(),
            standard.len()
        );
        // It decodes (with zune-jpeg, as the image crate and the emulator do)
        // to the same picture, within JPEG's error at quality 90.
        let back = image::load_from_memory_with_format(&ours, image::ImageFormat::Jpeg)
            .expect("decodes")
            .to_rgb8();
        assert_eq!(back.dimensions(), (640, 480));
        let err: u64 = back
            .as_raw()
            .iter()
            .zip(img.as_raw())
            .map(|(a, b)| u64::from(a.abs_diff(*b)))
            .sum();
        let mean = err as f64 / img.as_raw().len() as f64;
        assert!(mean < 4.0, "mean error {mean:.2} per sample");
    }

    #[test]
    fn a_frame_too_large_for_a_jpeg_is_refused_by_its_size() {
        let huge = Wiped(image::RgbImage::new(70_000, 1));
        let e = encode_jpeg(&huge, 90).expect_err("refused");
        assert!(e.to_string().contains("70000x1"), "{e}");
    }
}
