//! Frame conversion (`RawFrame::to_gray`, `to_rgb`) for every pixel format the
//! camera code takes (`PixelFormat::all`: MJPEG and JPEG, YUYV, UYVY, NV12, NV21,
//! NV16, GREY, Y10, Y16, RGB24). A driver can hand over any
//! size, stride and bytes. Byte 0: format; 1-2: width; 3-4: height; 5-6: stride
//! (all any value, as a driver's); the rest: the frame's bytes.
#![no_main]

use facecapture::camera::frame::{PixelFormat, RawFrame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 7 {
        return;
    }
    let all = PixelFormat::all();
    let format = all[usize::from(data[0]) % all.len()];
    let word = |i: usize| u32::from(u16::from_le_bytes([data[i], data[i + 1]]));
    let frame = RawFrame {
        format,
        width: word(1),
        height: word(3),
        stride: word(5),
        data: zeroize::Zeroizing::new(data[7..].to_vec()),
        captured_ms: 0.0,
    };
    let _ = frame.to_gray();
    let _ = frame.to_rgb();
});
