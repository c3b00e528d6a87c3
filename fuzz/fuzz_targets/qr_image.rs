//! QR finding in a camera image (`qrimage::find_in`). Byte 0 even: any grey
//! picture (bytes 1-2 the width, 1 to 256; the rest the pixels, row by row).
//! Odd: the rest, split at the first 0xff, is a text and noise: the text is
//! drawn as a QR code (as trigger-enroll draws one), the noise XORed over its
//! pixels, and the picture scanned; without noise an ASCII text must read back.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        if rest.len() < 3 {
            return;
        }
        let width = u32::from(u16::from_le_bytes([rest[0], rest[1]]) % 256) + 1;
        let pixels = &rest[2..];
        let height = (pixels.len() as u32) / width;
        let used = (width * height) as usize;
        if let Some(img) = image::GrayImage::from_raw(width, height, pixels[..used].to_vec()) {
            let _ = facecapture::qrimage::find_in(&img);
        }
        return;
    }
    let (text, noise) = match rest.iter().position(|&b| b == 0xff) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let Ok(png) = awareid_emulator::server_crypto::qr_png(text) else {
        return;
    };
    let mut img = image::load_from_memory(&png)
        .expect("our own PNG")
        .to_luma8();
    for (p, n) in img.iter_mut().zip(noise.iter().cycle()) {
        *p ^= n;
    }
    let found = facecapture::qrimage::find_in(&img);
    // A clean code reads back. Only ASCII is held to it (what AwareID's codes
    // hold: a URL): beyond ASCII a QR code's byte mode has no agreed character
    // set, and the reader drops a U+FEFF inside the text (the fuzzer found it).
    if noise.is_empty() && !text.is_empty() && text.is_ascii() {
        assert_eq!(found.as_deref(), Some(text), "a clean QR code reads back");
    }
});
