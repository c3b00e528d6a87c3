//! Raw camera frames: the pixel formats a source delivers, a frame as it came
//! from the driver, and pictures wiped when dropped (every buffer that holds
//! face pixels is). Their conversions (to gray for detection, to colour for
//! packaging) are [`convert`]'s.

mod convert;

pub use convert::rgb_to_yuyv;

use image::{GrayImage, ImageBuffer, Luma, Pixel, Rgb};
use std::ops::{Deref, DerefMut};
use zeroize::{Zeroize, Zeroizing};

/// Pixel formats a frame source delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// Motion JPEG: each frame a JPEG image (USB webcams).
    Mjpg,
    /// Packed 4:2:2, Y0 U Y1 V.
    Yuyv,
    /// 8-bit luma only (IR cameras).
    Grey,
    /// 4:2:0, a Y plane then interleaved UV.
    Nv12,
    /// Packed 8-bit RGB: the `files` source's decoded non-JPEG images.
    Rgb24,
    /// JPEG frames under the fourcc `JPEG` (some boards' drivers): as `Mjpg`.
    Jpeg,
    /// Packed 4:2:2, U Y0 V Y1.
    Uyvy,
    /// 4:2:0, a Y plane then interleaved VU.
    Nv21,
    /// 4:2:2, a Y plane then interleaved UV, one chroma row per luma row.
    Nv16,
    /// 10-bit luma in 16-bit little-endian words (IR modules).
    Y10,
    /// 16-bit little-endian luma (IR modules).
    Y16,
}

const ALL: [PixelFormat; 11] = [
    PixelFormat::Mjpg,
    PixelFormat::Yuyv,
    PixelFormat::Grey,
    PixelFormat::Nv12,
    PixelFormat::Rgb24,
    PixelFormat::Jpeg,
    PixelFormat::Uyvy,
    PixelFormat::Nv21,
    PixelFormat::Nv16,
    PixelFormat::Y10,
    PixelFormat::Y16,
];

impl PixelFormat {
    /// The V4L2 fourcc name used in `camera.formats` (four characters: `Y10 `
    /// and `Y16 ` end in a space, which `from_name` does not require).
    pub fn name(self) -> &'static str {
        match self {
            Self::Mjpg => "MJPG",
            Self::Yuyv => "YUYV",
            Self::Grey => "GREY",
            Self::Nv12 => "NV12",
            Self::Rgb24 => "RGB3",
            Self::Jpeg => "JPEG",
            Self::Uyvy => "UYVY",
            Self::Nv21 => "NV21",
            Self::Nv16 => "NV16",
            Self::Y10 => "Y10 ",
            Self::Y16 => "Y16 ",
        }
    }

    /// Every format the camera code converts.
    pub fn all() -> &'static [Self] {
        &ALL
    }

    /// The format named by its fourcc as `camera.formats` spells it (`"Y10 "` or
    /// `"Y10"`).
    pub fn from_name(name: &str) -> Option<Self> {
        ALL.into_iter()
            .find(|f| f.name().trim_end() == name.trim_end())
    }

    /// The V4L2 fourcc code.
    pub fn fourcc(self) -> u32 {
        u32::from_le_bytes(self.name().as_bytes().try_into().unwrap_or([0; 4]))
    }

    /// The format of a V4L2 fourcc code, if the camera code converts it.
    pub fn from_fourcc(code: u32) -> Option<Self> {
        std::str::from_utf8(&code.to_le_bytes())
            .ok()
            .and_then(Self::from_name)
    }

    /// Bytes of a packed row, for the uncompressed formats.
    fn min_stride(self, width: u32) -> usize {
        match self {
            Self::Yuyv | Self::Uyvy | Self::Y10 | Self::Y16 => width as usize * 2,
            Self::Rgb24 => width as usize * 3,
            // Interleaved chroma pairs: an odd width still needs a whole last pair.
            Self::Nv12 | Self::Nv21 | Self::Nv16 => (width as usize).div_ceil(2) * 2,
            Self::Grey | Self::Mjpg | Self::Jpeg => width as usize,
        }
    }

    /// Rows of `min_stride` bytes a frame of `height` rows holds.
    fn rows(self, height: usize) -> usize {
        match self {
            Self::Nv12 | Self::Nv21 => height + height.div_ceil(2),
            Self::Nv16 => height * 2,
            _ => height,
        }
    }
}

/// A frame as the source delivered it.
pub struct RawFrame {
    /// The pixel format.
    pub format: PixelFormat,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes per row (uncompressed formats; 0 means packed).
    pub stride: u32,
    /// The bytes, wiped when dropped (they are face data).
    pub data: Zeroizing<Vec<u8>>,
    /// Capture time, ms since the Unix epoch.
    pub captured_ms: f64,
}

impl std::fmt::Debug for RawFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RawFrame {{ {} {}x{}, {} bytes }}",
            self.format.name(),
            self.width,
            self.height,
            self.data.len()
        )
    }
}

/// Why a frame cannot be used. The pipeline skips such frames and counts them.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// Fewer bytes than the format and size need.
    #[error("short {format} frame: {got} bytes, {want} needed for {width}x{height}")]
    Short {
        /// The format's name.
        format: &'static str,
        /// The stream's width.
        width: u32,
        /// The stream's height.
        height: u32,
        /// Bytes delivered.
        got: usize,
        /// Bytes needed.
        want: usize,
    },
    /// The JPEG does not decode (the decoder's reason).
    #[error("corrupt JPEG frame: {0}")]
    Jpeg(String),
    /// A JPEG of another size than the stream's.
    #[error("JPEG frame is {got_w}x{got_h}, the stream is {width}x{height}")]
    Size {
        /// The stream's width.
        width: u32,
        /// The stream's height.
        height: u32,
        /// The JPEG's width.
        got_w: u32,
        /// The JPEG's height.
        got_h: u32,
    },
    /// The driver set V4L2_BUF_FLAG_ERROR.
    #[error("the driver flagged the frame as corrupt")]
    Flagged,
    /// Zero width, height or bytes.
    #[error("frame has no pixels")]
    Empty,
}

/// An image buffer that is zeroed when dropped: frames hold biometric data.
pub struct Wiped<P: Pixel<Subpixel = u8>>(pub ImageBuffer<P, Vec<u8>>);

impl<P: Pixel<Subpixel = u8>> Drop for Wiped<P> {
    fn drop(&mut self) {
        let bytes: &mut [u8] = &mut self.0;
        bytes.zeroize();
    }
}

impl<P: Pixel<Subpixel = u8>> Deref for Wiped<P> {
    type Target = ImageBuffer<P, Vec<u8>>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<P: Pixel<Subpixel = u8>> DerefMut for Wiped<P> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// A grayscale picture wiped on drop.
pub type Gray = Wiped<Luma<u8>>;
/// An RGB picture wiped on drop.
pub type Rgb8 = Wiped<Rgb<u8>>;

/// Wraps a grayscale image (e.g. a test photo) as a GREY frame.
pub fn grey_frame(img: &GrayImage, captured_ms: f64) -> RawFrame {
    RawFrame {
        format: PixelFormat::Grey,
        width: img.width(),
        height: img.height(),
        stride: 0,
        data: Zeroizing::new(img.as_raw().clone()),
        captured_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fourcc_names_round_trip() {
        for &f in PixelFormat::all() {
            assert_eq!(PixelFormat::from_fourcc(f.fourcc()), Some(f));
            assert_eq!(PixelFormat::from_name(f.name()), Some(f));
        }
        // V4L2's YUYV and Y10 codes; the trailing space of "Y10 " is optional.
        assert_eq!(PixelFormat::Yuyv.fourcc(), 0x5659_5559);
        assert_eq!(PixelFormat::Y10.fourcc(), 0x2030_3159);
        assert_eq!(PixelFormat::from_name("Y10"), Some(PixelFormat::Y10));
        assert_eq!(PixelFormat::from_name("H264"), None);
    }
}
