//! Costs on the request path that issue 2 owns: sealing a 3-frame face package,
//! decoding a QR callback URL, finding a QR code in a 640x480 frame, and face
//! detection on a 640x480 frame (the capture issue's pipeline builds on it).
//!
//! `cargo bench --bench foundation`

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::Path;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/faces")
        .join(name)
}

fn benches(c: &mut Criterion) {
    let server = awareid_emulator::server_crypto::new_rsa_key(2048).expect("key");
    let jpeg = std::fs::read(fixture("astronaut.jpg")).expect("photo");
    let frames: Vec<(&[u8], f64)> = vec![(&jpeg[..], 1.0), (&jpeg[..], 34.0), (&jpeg[..], 67.0)];
    let package = serde_json::to_vec(&facecapture::awareid::wire::FaceLivenessData::from_jpegs(
        "hotel2",
        0,
        &frames,
        facecapture::awareid::wire::MetaData::for_terminal("Unknown", "u"),
    ))
    .expect("json");
    let public = server.to_public_key();
    c.bench_function("envelope seal, 3 x 640x480 JPEG package", |b| {
        b.iter(|| facecapture::crypto::envelope::seal(&public, black_box(&package)).expect("seal"))
    });

    let signer = awareid_emulator::server_crypto::new_rsa_key(2048).expect("key");
    let aes = [5u8; 32];
    let url = awareid_emulator::server_crypto::encode_qr(
        "awareid.example.com",
        "apikey",
        "aa73e547-0f1b-4235-a7b0-dd52fa4ab774",
        &signer,
        &aes,
        None,
    )
    .expect("url");
    let keys = facecapture::crypto::qr::QrKeys::new(signer.to_public_key(), aes);
    c.bench_function("QR sessionCallbackURL verify + decrypt", |b| {
        b.iter(|| facecapture::crypto::qr::decode(black_box(&url), &keys, &[]).expect("decode"))
    });

    // A QR code pasted into a real photo, as a camera frame.
    let qr_png = awareid_emulator::server_crypto::qr_png(&url).expect("png");
    let qr = image::load_from_memory(&qr_png).expect("qr").to_luma8();
    let qr = image::imageops::resize(&qr, 240, 240, image::imageops::FilterType::Triangle);
    let mut frame = image::open(fixture("astronaut.jpg"))
        .expect("photo")
        .to_luma8();
    image::imageops::overlay(&mut frame, &qr, 380, 200);
    assert!(
        facecapture::qrimage::find_in(&frame).is_some(),
        "the pasted code is readable"
    );
    c.bench_function("QR find in 640x480 frame", |b| {
        b.iter(|| facecapture::qrimage::find_in(black_box(&frame)))
    });

    let face = image::open(fixture("astronaut.jpg"))
        .expect("photo")
        .to_luma8();
    let mut detector = facecapture::detect::Detector::embedded().expect("model");
    c.bench_function("face detection 640x480, min face 100 px", |b| {
        b.iter(|| detector.detect(black_box(&face), 100))
    });
}

criterion_group! {
    name = foundation;
    config = Criterion::default().sample_size(30);
    targets = benches
}
criterion_main!(foundation);
