//! Frame conversions: the grayscale frame detection needs (fast paths: the Y
//! plane of YUYV/NV12/GREY, MJPEG decoded straight to luma) and the colour
//! image packaging encodes; and RGB packed as YUYV (tests, the vivid check).

use super::{FrameError, Gray, PixelFormat, RawFrame, Rgb8, Wiped};
use image::{GrayImage, RgbImage};
use zeroize::Zeroizing;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

/// Whether a JPEG's header ends in its first scan (SOS) without a Huffman
/// table (DHT) or the AVI1 APP0 mark that makes the decoder use the standard
/// ones. Anything that is not a well-formed header answers false and is left to
/// the decoder to judge.
fn huffman_tables_missing(jpeg: &[u8]) -> bool {
    let mut i = 2; // after SOI
    while let Some(&[0xff, marker]) = jpeg.get(i..i + 2) {
        match marker {
            0xff => i += 1, // fill byte
            0xc4 => return false,
            0xda => return true,
            0x01 | 0xd0..=0xd7 => i += 2,
            _ => {
                let Some(&[hi, lo]) = jpeg.get(i + 2..i + 4) else {
                    return false;
                };
                if marker == 0xe0 && jpeg.get(i + 4..i + 9) == Some(b"AVI1\0") {
                    return false;
                }
                i += 2 + u16::from_be_bytes([hi, lo]) as usize;
            }
        }
    }
    false
}

/// The frame with an APP0 "AVI1" segment after its SOI (a copy, wiped on drop).
fn with_avi1_mark(jpeg: &[u8]) -> Zeroizing<Vec<u8>> {
    const APP0_AVI1: [u8; 9] = [0xff, 0xe0, 0x00, 0x07, b'A', b'V', b'I', b'1', 0x00];
    let mut out = Zeroizing::new(Vec::with_capacity(jpeg.len() + APP0_AVI1.len()));
    out.extend_from_slice(&jpeg[..2]);
    out.extend_from_slice(&APP0_AVI1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

impl RawFrame {
    fn check(&self, rows: usize) -> Result<usize, FrameError> {
        if self.width == 0 || self.height == 0 {
            return Err(FrameError::Empty);
        }
        let min = self.format.min_stride(self.width);
        let stride = if self.stride == 0 {
            min
        } else {
            (self.stride as usize).max(min)
        };
        let want = stride * rows;
        if self.data.len() < want {
            return Err(FrameError::Short {
                format: self.format.name(),
                width: self.width,
                height: self.height,
                got: self.data.len(),
                want,
            });
        }
        Ok(stride)
    }

    fn decode_jpeg(&self, colorspace: ColorSpace) -> Result<Vec<u8>, FrameError> {
        // A frame cut short in transfer lacks its end-of-image marker (some cameras
        // pad after it with zeros). The decoder would fill the gap; skip it instead.
        let end = self.data.iter().rposition(|&b| b != 0).unwrap_or(0);
        if end < 1 || self.data[end - 1..=end] != [0xff, 0xd9] {
            return Err(FrameError::Jpeg("truncated: no end-of-image marker".into()));
        }
        let options = DecoderOptions::default()
            .jpeg_set_out_colorspace(colorspace)
            .set_max_width(8192)
            .set_max_height(8192);
        // A UVC MJPEG frame may leave out its Huffman tables: the standard ones of
        // ISO 10918-1 annex K.3 apply. The decoder fills them in for a stream that
        // says it is AVI1 MJPEG, so such a frame is given that APP0 mark.
        let marked;
        let data = if huffman_tables_missing(&self.data) {
            marked = with_avi1_mark(&self.data);
            &marked[..]
        } else {
            &self.data[..]
        };
        let mut dec = zune_jpeg::JpegDecoder::new_with_options(data, options);
        // The header first: a frame whose size is not the stream's is refused
        // before anything is allocated for its pixels (an 8192x8192 frame from
        // a hostile camera would take a gigabyte to decode).
        dec.decode_headers()
            .map_err(|e| FrameError::Jpeg(format!("{e:?}")))?;
        let (w, h) = dec
            .dimensions()
            .map(|(w, h)| {
                (
                    u32::try_from(w).unwrap_or(u32::MAX),
                    u32::try_from(h).unwrap_or(u32::MAX),
                )
            })
            .unwrap_or((0, 0));
        if (w, h) != (self.width, self.height) {
            return Err(FrameError::Size {
                width: self.width,
                height: self.height,
                got_w: w,
                got_h: h,
            });
        }
        let pixels = dec
            .decode()
            .map_err(|e| FrameError::Jpeg(format!("{e:?}")))?;
        let want = w as usize * h as usize * colorspace.num_components();
        if pixels.len() != want {
            return Err(FrameError::Jpeg(format!(
                "decoded {} bytes, expected {want}",
                pixels.len()
            )));
        }
        Ok(pixels)
    }

    /// The grayscale frame detection and the quality gate work on.
    pub fn to_gray(&self) -> Result<Gray, FrameError> {
        let (w, h) = (self.width, self.height);
        // Sized only once the data is known to hold the frame: the width and
        // height are the driver's word, and may be anything.
        let mut out = Vec::new();
        let reserve = |out: &mut Vec<u8>| out.reserve(w as usize * h as usize);
        match self.format {
            PixelFormat::Mjpg | PixelFormat::Jpeg => {
                let pixels = self.decode_jpeg(ColorSpace::Luma)?;
                out = pixels;
            }
            // The Y plane, as it is.
            PixelFormat::Grey | PixelFormat::Nv12 | PixelFormat::Nv21 | PixelFormat::Nv16 => {
                let stride = self.check(self.format.rows(h as usize))?;
                reserve(&mut out);
                for row in self.data.chunks(stride).take(h as usize) {
                    out.extend_from_slice(&row[..w as usize]);
                }
            }
            PixelFormat::Yuyv | PixelFormat::Uyvy => {
                let stride = self.check(h as usize)?;
                let first = usize::from(self.format == PixelFormat::Uyvy);
                reserve(&mut out);
                for row in self.data.chunks(stride).take(h as usize) {
                    out.extend(row[first..w as usize * 2].iter().step_by(2));
                }
            }
            PixelFormat::Y10 | PixelFormat::Y16 => {
                let stride = self.check(h as usize)?;
                reserve(&mut out);
                for row in self.data.chunks(stride).take(h as usize) {
                    out.extend(
                        row[..w as usize * 2]
                            .chunks_exact(2)
                            .map(|p| self.format.deep_to_8(p[0], p[1])),
                    );
                }
            }
            PixelFormat::Rgb24 => {
                let stride = self.check(h as usize)?;
                reserve(&mut out);
                for row in self.data.chunks(stride).take(h as usize) {
                    out.extend(
                        row[..w as usize * 3]
                            .chunks_exact(3)
                            .map(|p| luma(p[0], p[1], p[2])),
                    );
                }
            }
        }
        // Both lengths were checked above, so this cannot fail; wipe on the way out if it did.
        match GrayImage::from_raw(w, h, out) {
            Some(img) => Ok(Wiped(img)),
            None => Err(FrameError::Empty),
        }
    }

    /// The colour image packaging encodes (GREY frames give gray pixels in RGB).
    pub fn to_rgb(&self) -> Result<Rgb8, FrameError> {
        let (w, h) = (self.width as usize, self.height as usize);
        // As in to_gray: sized once the data is known to hold the frame.
        let mut out = Vec::new();
        let reserve = |out: &mut Vec<u8>| out.reserve(w * h * 3);
        match self.format {
            PixelFormat::Mjpg | PixelFormat::Jpeg => out = self.decode_jpeg(ColorSpace::RGB)?,
            PixelFormat::Rgb24 => {
                let stride = self.check(h)?;
                reserve(&mut out);
                for row in self.data.chunks(stride).take(h) {
                    out.extend_from_slice(&row[..w * 3]);
                }
            }
            PixelFormat::Grey => {
                let stride = self.check(h)?;
                reserve(&mut out);
                for row in self.data.chunks(stride).take(h) {
                    out.extend(row[..w].iter().flat_map(|&y| [y, y, y]));
                }
            }
            PixelFormat::Y10 | PixelFormat::Y16 => {
                let stride = self.check(h)?;
                reserve(&mut out);
                for row in self.data.chunks(stride).take(h) {
                    out.extend(row[..w * 2].chunks_exact(2).flat_map(|p| {
                        let y = self.format.deep_to_8(p[0], p[1]);
                        [y, y, y]
                    }));
                }
            }
            PixelFormat::Yuyv | PixelFormat::Uyvy => {
                let stride = self.check(h)?;
                // Where Y0, U, Y1 and V sit in a macropixel.
                let [y0, u, y1, v] = if self.format == PixelFormat::Yuyv {
                    [0, 1, 2, 3]
                } else {
                    [1, 0, 3, 2]
                };
                reserve(&mut out);
                for row in self.data.chunks(stride).take(h) {
                    let pairs = row[..w * 2].chunks_exact(4);
                    // An odd width ends with half a macropixel (one Y and U, no V):
                    // its pixel takes neutral red-difference chroma.
                    let half = pairs.remainder();
                    for q in pairs {
                        out.extend(yuv_to_rgb(q[y0], q[u], q[v]));
                        out.extend(yuv_to_rgb(q[y1], q[u], q[v]));
                    }
                    if half.len() == 2 {
                        out.extend(yuv_to_rgb(half[y0 % 2], half[u % 2], 128));
                    }
                }
            }
            PixelFormat::Nv12 | PixelFormat::Nv21 | PixelFormat::Nv16 => {
                let stride = self.check(self.format.rows(h))?;
                // NV21 stores V first; NV16 has a chroma row for every luma row.
                let (u, v) = if self.format == PixelFormat::Nv21 {
                    (1, 0)
                } else {
                    (0, 1)
                };
                let per_chroma_row = if self.format == PixelFormat::Nv16 {
                    1
                } else {
                    2
                };
                reserve(&mut out);
                let (y_plane, uv_plane) = self.data.split_at(stride * h);
                for (y, row) in y_plane.chunks(stride).take(h).enumerate() {
                    let uv = &uv_plane[(y / per_chroma_row) * stride..];
                    for (x, &luma) in row[..w].iter().enumerate() {
                        let c = (x / 2) * 2;
                        out.extend(yuv_to_rgb(luma, uv[c + u], uv[c + v]));
                    }
                }
            }
        }
        match RgbImage::from_raw(self.width, self.height, out) {
            Some(img) => Ok(Wiped(img)),
            None => Err(FrameError::Empty),
        }
    }
}

impl PixelFormat {
    /// An 8-bit gray level from a little-endian 16-bit `Y10 ` or `Y16 ` word:
    /// its top 8 significant bits (a `Y10 ` word over 1023 is clipped).
    fn deep_to_8(self, lo: u8, hi: u8) -> u8 {
        let v = u16::from_le_bytes([lo, hi]);
        match self {
            Self::Y10 => (v.min(1023) >> 2) as u8,
            _ => (v >> 8) as u8,
        }
    }
}

/// BT.601 luma from RGB, in integers.
fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((77 * u32::from(r) + 150 * u32::from(g) + 29 * u32::from(b) + 128) >> 8) as u8
}

/// BT.601 limited-range YCbCr to RGB, in integers.
fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let c = (i32::from(y) - 16).max(0) * 298;
    let d = i32::from(u) - 128;
    let e = i32::from(v) - 128;
    let clamp = |x: i32| ((x + 128) >> 8).clamp(0, 255) as u8;
    [
        clamp(c + 409 * e),
        clamp(c - 100 * d - 208 * e),
        clamp(c + 516 * d),
    ]
}

/// Packs an RGB image as YUYV (BT.601 limited range), as a webcam would send it.
pub fn rgb_to_yuyv(img: &RgbImage) -> Vec<u8> {
    let (w, h) = img.dimensions();
    let mut out = Vec::with_capacity(w as usize * h as usize * 2);
    for y in 0..h {
        for x in (0..w).step_by(2) {
            let p0 = img.get_pixel(x, y).0;
            let p1 = img.get_pixel((x + 1).min(w - 1), y).0;
            let (y0, u0, v0) = rgb_to_yuv(p0);
            let (y1, u1, v1) = rgb_to_yuv(p1);
            out.extend([
                y0,
                ((u16::from(u0) + u16::from(u1)) / 2) as u8,
                y1,
                ((u16::from(v0) + u16::from(v1)) / 2) as u8,
            ]);
        }
    }
    out
}

fn rgb_to_yuv([r, g, b]: [u8; 3]) -> (u8, u8, u8) {
    let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
    let y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16;
    let u = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128;
    let v = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128;
    (
        y.clamp(0, 255) as u8,
        u.clamp(0, 255) as u8,
        v.clamp(0, 255) as u8,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rgb_fixture() -> RgbImage {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/faces/astronaut.jpg");
        image::open(p).expect("fixture").to_rgb8()
    }

    fn frame(format: PixelFormat, w: u32, h: u32, data: Vec<u8>) -> RawFrame {
        RawFrame {
            format,
            width: w,
            height: h,
            stride: 0,
            data: Zeroizing::new(data),
            captured_ms: 0.0,
        }
    }

    /// The photo's BT.601 samples with one chroma pair per 2x2 block (taken from
    /// the block's top-left pixel), so 4:2:0 and 4:2:2 layouts hold the same
    /// picture: (width, height, Y plane, U and V per 2x2 block).
    fn yuv_blocks() -> (usize, usize, Vec<u8>, Vec<(u8, u8)>) {
        let rgb = image::imageops::crop_imm(&rgb_fixture(), 200, 100, 160, 120).to_image();
        let (w, h) = (rgb.width() as usize, rgb.height() as usize);
        let y = rgb.pixels().map(|p| rgb_to_yuv(p.0).0).collect();
        let mut uv = Vec::new();
        for by in (0..h).step_by(2) {
            for bx in (0..w).step_by(2) {
                let (_, u, v) = rgb_to_yuv(rgb.get_pixel(bx as u32, by as u32).0);
                uv.push((u, v));
            }
        }
        (w, h, y, uv)
    }

    /// Every YUV layout of the same samples converts to the same gray (the Y
    /// plane) and the same colours as YUYV, whose colours are checked above.
    #[test]
    fn uyvy_nv21_and_nv16_hold_the_same_picture_as_yuyv_and_nv12() {
        let (w, h, y, uv) = yuv_blocks();
        let chroma = |x: usize, row: usize| uv[(row / 2) * (w / 2) + x / 2];
        let mut packed = [Vec::new(), Vec::new()]; // YUYV, UYVY
        for row in 0..h {
            for x in (0..w).step_by(2) {
                let (u, v) = chroma(x, row);
                let (y0, y1) = (y[row * w + x], y[row * w + x + 1]);
                packed[0].extend([y0, u, y1, v]);
                packed[1].extend([u, y0, v, y1]);
            }
        }
        let semi = |rows: usize, swap: bool| {
            let mut out = y.clone();
            for row in 0..rows {
                for x in (0..w).step_by(2) {
                    let (u, v) = chroma(x, row * (h / rows));
                    out.extend(if swap { [v, u] } else { [u, v] });
                }
            }
            out
        };
        let (w32, h32) = (w as u32, h as u32);
        let reference = frame(PixelFormat::Yuyv, w32, h32, packed[0].clone());
        let want_rgb = reference.to_rgb().expect("yuyv");
        for (format, data) in [
            (PixelFormat::Uyvy, packed[1].clone()),
            (PixelFormat::Nv12, semi(h / 2, false)),
            (PixelFormat::Nv21, semi(h / 2, true)),
            (PixelFormat::Nv16, semi(h, false)),
        ] {
            let f = frame(format, w32, h32, data.clone());
            assert_eq!(f.to_gray().expect("gray").as_raw(), &y, "{format:?} gray");
            assert_eq!(
                f.to_rgb().expect("rgb").as_raw(),
                want_rgb.as_raw(),
                "{format:?} colours"
            );
            // A frame one row short is refused, not read past.
            let short = frame(format, w32, h32, data[..data.len() - w].to_vec());
            assert!(matches!(short.to_gray(), Err(FrameError::Short { .. })));
            assert!(matches!(short.to_rgb(), Err(FrameError::Short { .. })));
        }
        // An odd-width UYVY row ends in half a macropixel, as YUYV's does.
        let f = frame(PixelFormat::Uyvy, 3, 1, vec![90, 60, 240, 70, 90, 80]);
        assert_eq!(f.to_gray().expect("gray").as_raw(), &vec![60, 70, 80]);
        let g = frame(PixelFormat::Yuyv, 3, 1, vec![60, 90, 70, 240, 80, 90]);
        assert_eq!(
            f.to_rgb().expect("rgb").as_raw(),
            g.to_rgb().expect("rgb").as_raw()
        );
    }

    /// Y10 and Y16 (IR modules): the photo's gray levels in 16-bit words.
    #[test]
    fn deep_gray_keeps_its_top_eight_bits() {
        let gray = image::imageops::crop_imm(&rgb_fixture(), 200, 100, 160, 120).to_image();
        let gray = image::DynamicImage::ImageRgb8(gray).to_luma8();
        let (w, h) = gray.dimensions();
        for (format, word) in [
            (
                PixelFormat::Y10,
                (|g: u8| (u16::from(g) << 2) | 3) as fn(u8) -> u16,
            ),
            (PixelFormat::Y16, |g: u8| (u16::from(g) << 8) | 0xab),
        ] {
            let data: Vec<u8> = gray
                .as_raw()
                .iter()
                .flat_map(|&g| word(g).to_le_bytes())
                .collect();
            let f = frame(format, w, h, data);
            assert_eq!(
                f.to_gray().expect("gray").as_raw(),
                gray.as_raw(),
                "{format:?}"
            );
            let rgb = f.to_rgb().expect("rgb");
            assert!(
                rgb.pixels()
                    .zip(gray.pixels())
                    .all(|(c, g)| c.0 == [g[0]; 3])
            );
        }
        // A Y10 word beyond 10 bits is clipped to white, not wrapped.
        let f = frame(PixelFormat::Y10, 2, 1, vec![0xff, 0xff, 0x00, 0x02]);
        assert_eq!(f.to_gray().expect("gray").as_raw(), &vec![255, 128]);
    }

    #[test]
    fn jpeg_fourcc_decodes_as_mjpeg() {
        let rgb = rgb_fixture();
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85)
            .encode_image(&rgb)
            .expect("encode");
        let (w, h) = rgb.dimensions();
        let a = frame(PixelFormat::Mjpg, w, h, jpeg.clone())
            .to_gray()
            .expect("MJPG");
        let b = frame(PixelFormat::Jpeg, w, h, jpeg)
            .to_gray()
            .expect("JPEG");
        assert_eq!(a.as_raw(), b.as_raw());
    }

    #[test]
    fn yuyv_gray_is_the_y_plane_and_colour_survives() {
        let rgb = rgb_fixture();
        let yuyv = rgb_to_yuyv(&rgb);
        let f = frame(PixelFormat::Yuyv, 640, 480, yuyv.clone());
        let gray = f.to_gray().expect("gray");
        assert_eq!(gray.dimensions(), (640, 480));
        assert_eq!(gray.get_pixel(10, 10)[0], yuyv[10 * 1280 + 20]);
        let back = f.to_rgb().expect("rgb");
        // Round trip through 4:2:2 keeps colours close (chroma is shared by pairs).
        let p = rgb.get_pixel(300, 150).0;
        let q = back.get_pixel(300, 150).0;
        for c in 0..3 {
            assert!(
                (i32::from(p[c]) - i32::from(q[c])).abs() < 40,
                "{p:?} {q:?}"
            );
        }
    }

    /// A JPEG without its DHT segments, as many UVC cameras send MJPEG.
    fn without_huffman_tables(jpeg: &[u8]) -> Vec<u8> {
        let mut out = jpeg[..2].to_vec();
        let mut i = 2;
        while jpeg[i] == 0xff && jpeg[i + 1] != 0xda {
            let len = u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]) as usize;
            if jpeg[i + 1] != 0xc4 {
                out.extend_from_slice(&jpeg[i..i + 2 + len]);
            }
            i += 2 + len;
        }
        out.extend_from_slice(&jpeg[i..]);
        out
    }

    #[test]
    fn mjpeg_without_huffman_tables_decodes_with_the_standard_ones() {
        let img = image::open(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/faces/astronaut.jpg"
        ))
        .expect("photo")
        .to_rgb8();
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85)
            .encode_image(&img)
            .expect("encode");
        let bare = without_huffman_tables(&jpeg);
        assert!(bare.len() < jpeg.len() && !huffman_tables_missing(&jpeg));
        assert!(huffman_tables_missing(&bare), "the DHT segments are gone");
        let (w, h) = img.dimensions();
        let with = frame(PixelFormat::Mjpg, w, h, jpeg)
            .to_gray()
            .expect("with DHT");
        let without = frame(PixelFormat::Mjpg, w, h, bare.clone())
            .to_gray()
            .expect("without DHT");
        // The encoder wrote the standard tables: the same pixels either way.
        assert_eq!(with.as_raw(), without.as_raw());
        frame(PixelFormat::Mjpg, w, h, bare)
            .to_rgb()
            .expect("rgb too");
        // Headers that are not well formed are left to the decoder.
        assert!(!huffman_tables_missing(b"\xff\xd8\xff"));
        assert!(!huffman_tables_missing(b"\xff\xd8\x00\x00\xff\xda"));
        assert!(!huffman_tables_missing(b"\xff\xd8\xff\xe0\xff"));
    }

    #[test]
    fn mjpeg_decodes_to_luma_and_rgb() {
        let rgb = rgb_fixture();
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85)
            .encode_image(&rgb)
            .expect("encode");
        let f = frame(PixelFormat::Mjpg, 640, 480, jpeg.clone());
        assert_eq!(f.to_gray().expect("gray").dimensions(), (640, 480));
        assert_eq!(f.to_rgb().expect("rgb").dimensions(), (640, 480));
        // A JPEG of another size than the stream's is refused.
        let f = frame(PixelFormat::Mjpg, 320, 240, jpeg.clone());
        assert!(matches!(f.to_gray(), Err(FrameError::Size { .. })));
        // A truncated JPEG is refused, not half-decoded.
        let f = frame(PixelFormat::Mjpg, 640, 480, jpeg[..jpeg.len() / 3].to_vec());
        assert!(f.to_gray().is_err());
        let f = frame(PixelFormat::Mjpg, 640, 480, b"not a jpeg".to_vec());
        assert!(matches!(f.to_gray(), Err(FrameError::Jpeg(_))));
    }

    #[test]
    fn short_frames_are_refused_for_every_format() {
        for (format, bytes) in [
            (PixelFormat::Yuyv, 640 * 480 * 2),
            (PixelFormat::Uyvy, 640 * 480 * 2),
            (PixelFormat::Grey, 640 * 480),
            (PixelFormat::Y10, 640 * 480 * 2),
            (PixelFormat::Y16, 640 * 480 * 2),
            (PixelFormat::Nv12, 640 * 480 * 3 / 2),
            (PixelFormat::Nv21, 640 * 480 * 3 / 2),
            (PixelFormat::Nv16, 640 * 480 * 2),
            (PixelFormat::Rgb24, 640 * 480 * 3),
        ] {
            let f = frame(format, 640, 480, vec![128; bytes]);
            assert!(f.to_gray().is_ok(), "{format:?}");
            assert!(f.to_rgb().is_ok(), "{format:?}");
            let f = frame(format, 640, 480, vec![128; bytes - 1]);
            assert!(
                matches!(f.to_gray(), Err(FrameError::Short { .. })),
                "{format:?}"
            );
            assert!(
                matches!(f.to_rgb(), Err(FrameError::Short { .. })),
                "{format:?}"
            );
        }
        assert_eq!(
            frame(PixelFormat::Grey, 0, 480, vec![]).to_gray().err(),
            Some(FrameError::Empty)
        );
    }

    #[test]
    fn nv12_gray_and_neutral_chroma() {
        let mut data = vec![200u8; 4 * 2];
        data.extend([128u8; 4]);
        let f = frame(PixelFormat::Nv12, 4, 2, data);
        assert!(f.to_gray().expect("gray").pixels().all(|p| p[0] == 200));
        let rgb = f.to_rgb().expect("rgb");
        let p = rgb.get_pixel(3, 1).0;
        assert!(p[0] == p[1] && p[1] == p[2], "{p:?}");
    }

    #[test]
    fn odd_widths_do_not_read_past_the_buffer() {
        // NV12 3x2 packed: rows must be 4 bytes (a whole UV pair), so 3-byte rows are short.
        let f = frame(PixelFormat::Nv12, 3, 2, vec![100; 3 * 2 + 3]);
        assert!(matches!(f.to_rgb(), Err(FrameError::Short { .. })));
        let f = frame(PixelFormat::Nv12, 3, 2, vec![100; 4 * 2 + 4]);
        assert_eq!(f.to_rgb().expect("rgb").dimensions(), (3, 2));
        let f = frame(PixelFormat::Yuyv, 3, 1, vec![100; 6]);
        assert_eq!(f.to_rgb().expect("rgb").dimensions(), (3, 1));
    }

    /// Found by the `frames` fuzz target (fuzz/regressions/frames/yuyv-width-1):
    /// a 1-pixel-wide YUYV frame has only half a macropixel per row, and the
    /// odd-width code subtracted from an empty row (a panic; in the board build,
    /// a wrapped index and a panic further on).
    #[test]
    fn a_one_pixel_wide_yuyv_frame_converts() {
        let f = frame(PixelFormat::Yuyv, 1, 2, vec![235, 128, 16, 128]);
        let rgb = f.to_rgb().expect("rgb");
        assert_eq!(rgb.dimensions(), (1, 2));
        assert_eq!(rgb.get_pixel(0, 0).0, [255, 255, 255]);
        assert_eq!(rgb.get_pixel(0, 1).0, [0, 0, 0]);
        assert_eq!(f.to_gray().expect("gray").as_raw(), &vec![235, 16]);
    }

    /// A driver's word for the size is not trusted before the data backs it: a
    /// 65535x65535 frame of 20 bytes is Short, with nothing reserved for it.
    #[test]
    fn a_huge_claimed_size_is_short_not_an_allocation() {
        for &format in PixelFormat::all() {
            if matches!(format, PixelFormat::Mjpg | PixelFormat::Jpeg) {
                continue; // compressed: the decoder's own limits (8192 px) apply
            }
            let f = frame(format, 65_535, 65_535, vec![0; 20]);
            assert!(
                matches!(f.to_rgb(), Err(FrameError::Short { .. })),
                "{format:?}"
            );
            assert!(
                matches!(f.to_gray(), Err(FrameError::Short { .. })),
                "{format:?}"
            );
        }
    }

    #[test]
    fn padded_rows_use_the_stride() {
        // 3x2 GREY with 8-byte rows.
        let data = vec![1, 2, 3, 0, 0, 0, 0, 0, 4, 5, 6, 0, 0, 0, 0, 0];
        let mut f = frame(PixelFormat::Grey, 3, 2, data);
        f.stride = 8;
        assert_eq!(f.to_gray().expect("gray").as_raw(), &vec![1, 2, 3, 4, 5, 6]);
    }
}
