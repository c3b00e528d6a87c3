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

fn encode_jpeg(img: &Rgb8, quality: u8) -> Result<Zeroizing<Vec<u8>>, CaptureError> {
    let mut out = Zeroizing::new(Vec::with_capacity(64 * 1024));
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut *out, quality.clamp(1, 100))
        .encode_image(&**img)
        .map_err(|e| CaptureError::Encode(e.to_string()))?;
    Ok(out)
}
