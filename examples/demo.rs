//! The main job with embedded defaults: an AwareID emulator on loopback (HTTPS,
//! self-signed), a fresh terminal identity, and sample face photos as frames; runs
//! all four flows (enroll and authenticate, client-initiated and from a QR code)
//! and an impostor, printing progress and results.
//!
//! `cargo run --release --example demo`

use awareid_emulator::{Emulator, EmulatorConfig};
use facecapture::awareid::HttpSettings;
use facecapture::awareid::wire::*;
use facecapture::camera::files::FilesSource;
use facecapture::capture::{self, CaptureError, Settings};
use facecapture::config::{CameraConfig, CameraSource, Encryption};
use facecapture::crypto::device::DeviceKey;
use facecapture::detect::Detector;
use facecapture::workflow::{self, Context, FlowError, Person, Step, Terminal};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// The camera: the capture pipeline on a `files` source playing a sample photo at
/// 30 fps (detection, quality gate with feedback, packaging of 3 frames).
fn photo(
    name: &'static str,
) -> impl FnMut(&str, &AtomicBool) -> Result<FaceLivenessData, FlowError> + Send {
    move |user: &str, stop: &AtomicBool| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/faces")
            .join(name);
        let camera = CameraConfig {
            source: CameraSource::Files,
            path: path.display().to_string(),
            ..CameraConfig::default()
        };
        let mut source = FilesSource::open(&camera).map_err(CaptureError::Camera)?;
        let mut detector = Detector::embedded().map_err(|e| CaptureError::Model(e.to_string()))?;
        let settings = Settings {
            device_brand: "Demo".into(),
            ..Settings::default()
        };
        let started = Instant::now();
        let package = capture::capture_face(
            &mut source,
            &mut detector,
            &settings,
            user,
            &mut |f| println!("    feedback: {f}"),
            stop,
        )?;
        println!(
            "    captured 3 frames of {name} in {} ms",
            started.elapsed().as_millis()
        );
        Ok(package)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    facecapture::logging::init("facecaptured-demo");
    let emulator = Emulator::start(EmulatorConfig::default())?;
    println!("AwareID emulator on {}", emulator.base_url());
    let server = emulator.server_config();
    let http = HttpSettings::new(Duration::from_secs(15), Some(emulator.ca_pem().as_bytes()))?;
    let client = facecapture::awareid::AwareIdClient::new(&server, &http)?;
    let qr_keys = emulator.qr_keys();
    let terminal = Terminal {
        device_id: facecapture::crypto::device::derive_device_id(
            "0123456789abcdef0123456789abcdef",
        )?,
        key: DeviceKey::generate()?,
    };
    let progress = |s: Step| println!("    progress: {}", s.as_str());
    let ctx = Context {
        terminal: &terminal,
        encryption: Encryption::Envelope,
        progress: &progress,
        interrupt: &workflow::Interrupt::new(),
    };
    let alice = Person {
        username: "alice".into(),
        email: "alice@example.com".into(),
        phone_number: "+15550100".into(),
        first_name: Some("Alice".into()),
        last_name: None,
    };

    println!("\n1. Enroll alice (client-initiated), astronaut photo");
    let t = Instant::now();
    let e = workflow::enroll(&client, &ctx, &alice, &mut photo("astronaut.jpg"))?;
    println!(
        "  => enrollment_status {} liveness {} (registration code stored, {} chars) in {} ms",
        e.enrollment_status,
        e.liveness,
        e.registration_code.expose().len(),
        t.elapsed().as_millis()
    );

    println!("\n2. Authenticate alice (client-initiated), same face");
    let t = Instant::now();
    let a = workflow::authenticate(
        &client,
        &ctx,
        "alice",
        &e.registration_code,
        &mut photo("astronaut.jpg"),
    )?;
    println!(
        "  => granted {} (liveness {}, matched {}, score {:.1}, auth_status {}) in {} ms",
        a.granted,
        a.liveness,
        a.matched,
        a.match_score,
        a.auth_status,
        t.elapsed().as_millis()
    );

    println!("\n3. Authenticate alice with another person's face");
    let a = workflow::authenticate(
        &client,
        &ctx,
        "alice",
        &e.registration_code,
        &mut photo("solvay-einstein.jpg"),
    )?;
    println!(
        "  => granted {} (liveness {}, matched {}, score {:.1})",
        a.granted, a.liveness, a.matched, a.match_score
    );

    println!("\n4. Enroll bob from a QR code (the web portal calls triggerEnroll)");
    let trigger = client.trigger_enroll(&TriggerEnrollRequest {
        username: "bob".into(),
        email: "bob@example.com".into(),
        notify_options: None,
    })?;
    let url = trigger.session_callback_url.unwrap_or_default();
    println!("{}", facecapture::qrimage::to_terminal(&url)?);
    let qr = workflow::start_qr(
        &url,
        &qr_keys,
        &[],
        &http,
        workflow::QrMethod::Enroll,
        &progress,
    )?;
    let bob = Person {
        username: qr.session.user_name.clone(),
        email: qr.session.email.clone(),
        phone_number: String::new(),
        first_name: None,
        last_name: None,
    };
    let b = workflow::enroll(&qr.client, &ctx, &bob, &mut photo("solvay-einstein.jpg"))?;
    println!(
        "  => {} enrolled: status {} liveness {}",
        b.username, b.enrollment_status, b.liveness
    );

    println!("\n5. Authenticate bob from a QR code (triggerAuthenticate)");
    let trigger = client.trigger_authenticate(&TriggerAuthenticateRequest {
        username: "bob".into(),
        notify_options: None,
    })?;
    let qr = workflow::start_qr(
        &trigger.session_callback_url.unwrap_or_default(),
        &qr_keys,
        &[],
        &http,
        workflow::QrMethod::Authenticate,
        &progress,
    )?;
    let a = workflow::authenticate(
        &qr.client,
        &ctx,
        &qr.session.user_name,
        &b.registration_code,
        &mut photo("solvay-einstein.jpg"),
    )?;
    println!(
        "  => granted {} (liveness {}, matched {}, score {:.1})",
        a.granted, a.liveness, a.matched, a.match_score
    );

    println!(
        "\nThe emulator received {} requests.",
        emulator.requests().len()
    );
    Ok(())
}
