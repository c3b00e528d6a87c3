//! The four AwareID workflows end to end at the HTTP level: the real client over
//! HTTPS against the emulator, with real face photos as frames.

mod common;

use awareid_emulator::{Fault, FaultKind};
use common::*;
use facecapture::awareid::wire::*;
use facecapture::config::Encryption;
use facecapture::workflow::{self, Step};
use std::cell::RefCell;

fn enroll_then_authenticate(encryption: Encryption) {
    let s = start();
    let steps = RefCell::new(Vec::new());
    let record = |st: Step| steps.borrow_mut().push(st.as_str());
    let ctx = ctx(&s, encryption, &record);

    let enrolled = enroll_astronaut(&s.client, &ctx, "alice").expect("enroll");
    assert_eq!(enrolled.enrollment_status, STATUS_COMPLETE);
    assert!(enrolled.liveness);
    assert_eq!(enrolled.registration_code.expose().len(), 6);
    let expected_steps: &[&str] = match encryption {
        Encryption::Envelope => &[
            "token",
            "public-key",
            "enroll",
            "add-device",
            "capture",
            "add-face",
            "done",
        ],
        Encryption::None => &[
            "token",
            "enroll",
            "add-device",
            "capture",
            "add-face",
            "done",
        ],
    };
    assert_eq!(*steps.borrow(), expected_steps);

    let auth = authenticate_astronaut(&s.client, &ctx, "alice", &enrolled.registration_code)
        .expect("authenticate");
    assert!(auth.granted && auth.liveness && auth.matched, "{auth:?}");
    assert_eq!(auth.auth_status, STATUS_COMPLETE);
    assert!(auth.match_score > 90.0);

    // What went over the wire.
    let reqs = s.emulator.requests();
    let names: Vec<_> = reqs.iter().filter_map(|r| r.call.as_deref()).collect();
    let expected: &[&str] = match encryption {
        Encryption::Envelope => &ENROLL_THEN_AUTHENTICATE,
        // The same calls without getPublicKey.
        Encryption::None => &ENROLL_THEN_AUTHENTICATE[..1]
            .iter()
            .chain(&ENROLL_THEN_AUTHENTICATE[2..])
            .copied()
            .collect::<Vec<_>>(),
    };
    assert_eq!(names, expected, "one token for the whole session, cached");
    for r in &reqs {
        assert_eq!(r.status, 200, "{} answered {}", r.path, r.status);
        if r.call.as_deref() == Some("token") {
            assert_eq!(
                r.content_type.as_deref(),
                Some("application/x-www-form-urlencoded")
            );
            assert_eq!(r.body["grant_type"], "client_credentials");
            assert_eq!(r.body["scope"], "openid");
            assert!(r.bearer.is_none() && r.apikey.is_none());
        } else {
            assert_eq!(r.apikey.as_deref(), Some("emulator-apikey"), "{}", r.path);
            assert!(r.bearer.is_some(), "{}", r.path);
        }
    }
    let add_device = reqs
        .iter()
        .find(|r| r.call.as_deref() == Some("addDevice"))
        .expect("addDevice");
    assert_eq!(add_device.body["deviceId"], s.terminal.device_id);
    assert_eq!(
        add_device.body["publicKey"],
        s.terminal.key.public_key_b64().expect("pub")
    );
    let add_face = reqs
        .iter()
        .find(|r| r.call.as_deref() == Some("addFace"))
        .expect("addFace");
    let face = &add_face.body["faceLivenessData"];
    match encryption {
        Encryption::Envelope => {
            assert!(
                face["key"].is_string() && face["iv"].is_string() && face["p"].is_string(),
                "{face}"
            );
            assert!(face.get("video").is_none());
        }
        Encryption::None => {
            assert_eq!(face["video"]["workflow_data"]["workflow"], "hotel2");
            assert_eq!(
                face["video"]["workflow_data"]["frames"]
                    .as_array()
                    .expect("frames")
                    .len(),
                3
            );
            assert_eq!(face["video"]["meta_data"]["username"], "alice");
        }
    }
    let verify_device = reqs
        .iter()
        .find(|r| r.call.as_deref() == Some("verifyDevice"))
        .expect("verifyDevice");
    assert!(
        verify_device.body["signature"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
}

#[test]
fn client_initiated_enrollment_and_authentication_with_envelope() {
    enroll_then_authenticate(Encryption::Envelope);
}

#[test]
fn client_initiated_enrollment_and_authentication_plain() {
    enroll_then_authenticate(Encryption::None);
}

#[test]
fn another_face_is_not_matched() {
    let s = start();
    let ctx = ctx(&s, Encryption::Envelope, &no_progress);
    let enrolled = enroll_astronaut(&s.client, &ctx, "bob").expect("enroll");
    let auth = workflow::authenticate(
        &s.client,
        &ctx,
        "bob",
        &enrolled.registration_code,
        &mut photo("solvay-einstein.jpg"),
    )
    .expect("authenticate");
    assert!(auth.liveness, "a real face");
    assert!(!auth.matched && !auth.granted, "{auth:?}");
    assert_eq!(auth.auth_status, STATUS_PENDING, "first failed attempt");
}

#[test]
fn no_face_means_no_liveness_and_no_registration_code() {
    let s = start();
    let ctx = ctx(&s, Encryption::Envelope, &no_progress);
    let enrolled = workflow::enroll(&s.client, &ctx, &person("carol"), &mut photo("no-face.jpg"))
        .expect("enroll");
    assert!(!enrolled.liveness);
    assert_eq!(enrolled.enrollment_status, STATUS_PENDING);
    assert!(enrolled.registration_code.is_empty());
}

#[test]
fn qr_started_enrollment_and_authentication() {
    let s = start();
    // The web portal's side, over HTTP: triggerEnroll answers a real QR image.
    let trigger = s
        .client
        .trigger_enroll(&TriggerEnrollRequest {
            username: "dave".into(),
            email: "dave@example.com".into(),
            notify_options: Some(NotifyOptions {
                notify_by_email: Some(false),
                notify_by_push: None,
            }),
        })
        .expect("triggerEnroll");
    let url = trigger.session_callback_url.clone().expect("url");
    let png =
        facecapture::crypto::unb64(trigger.qrcode_image.as_deref().expect("png")).expect("b64");
    let img = image::load_from_memory(&png)
        .expect("png decodes")
        .to_luma8();
    assert_eq!(
        facecapture::qrimage::find_in(&img).as_deref(),
        Some(url.as_str()),
        "QR image holds the URL"
    );

    let steps = RefCell::new(Vec::new());
    let record = |st: Step| steps.borrow_mut().push(st.as_str());
    let qr = s
        .start_qr(&url, workflow::QrMethod::Enroll, &record)
        .expect("start QR enroll");
    assert_eq!(qr.session.user_name, "dave");
    assert_eq!(qr.session.email, "dave@example.com");
    let ctx = ctx(&s, Encryption::Envelope, &record);
    let who = facecapture::workflow::Person {
        username: qr.session.user_name.clone(),
        email: qr.session.email.clone(),
        phone_number: String::new(),
        first_name: None,
        last_name: None,
    };
    let enrolled = workflow::enroll(&qr.client, &ctx, &who, &mut photo("astronaut.jpg"))
        .expect("enroll via QR");
    assert_eq!(enrolled.enrollment_status, STATUS_COMPLETE);
    assert_eq!(
        *steps.borrow(),
        [
            "validate-session",
            "public-key",
            "enroll",
            "add-device",
            "capture",
            "add-face",
            "done"
        ]
    );
    // The QR session token cannot be replayed.
    assert!(
        s.start_qr(&url, workflow::QrMethod::Enroll, &no_progress)
            .is_err()
    );

    // QR-started authentication.
    let url = trigger_authenticate_url(&s, "dave");
    // Starting it as an enrollment is refused by method type.
    let wrong = s.start_qr(&url, workflow::QrMethod::Enroll, &no_progress);
    assert!(
        matches!(wrong, Err(workflow::FlowError::WrongMethod { .. })),
        "{:?}",
        wrong.err()
    );
    let url = trigger_authenticate_url(&s, "dave");
    let qr = s
        .start_qr(&url, workflow::QrMethod::Authenticate, &no_progress)
        .expect("start QR auth");
    assert_eq!(qr.session.user_name, "dave");
    let auth = authenticate_astronaut(&qr.client, &ctx, "dave", &enrolled.registration_code)
        .expect("authenticate via QR");
    assert!(auth.granted, "{auth:?}");

    // The QR flows used the session's token and the QR's apikey, never the token endpoint again.
    let reqs = s.emulator.requests();
    assert_eq!(
        reqs.iter()
            .filter(|r| r.call.as_deref() == Some("token"))
            .count(),
        1
    );
    let validate = reqs
        .iter()
        .filter(|r| r.call.as_deref() == Some("validateSession"))
        .collect::<Vec<_>>();
    assert!(
        validate
            .iter()
            .all(|r| r.bearer.is_none() && r.apikey.as_deref() == Some("emulator-apikey"))
    );
}

/// The web portal's triggerAuthenticate: the sessionCallbackURL it answers.
fn trigger_authenticate_url(s: &Setup, username: &str) -> String {
    s.client
        .trigger_authenticate(&TriggerAuthenticateRequest {
            username: username.into(),
            notify_options: None,
        })
        .expect("triggerAuthenticate")
        .session_callback_url
        .expect("url")
}

#[test]
fn trigger_authenticate_for_an_unknown_user_is_a_failure_status() {
    let s = start();
    let err = s
        .client
        .trigger_authenticate(&TriggerAuthenticateRequest {
            username: "nobody".into(),
            notify_options: None,
        })
        .expect_err("unknown user");
    let text = err.to_string();
    assert!(
        text.contains("FAILURE") && text.contains("User is not enrolled"),
        "{text}"
    );
}

#[test]
fn qr_host_outside_allowed_hosts_is_refused_before_any_request() {
    let s = start();
    let url = s.emulator.qr_for_enroll("erin", "erin@example.com");
    s.emulator.clear_requests();
    let err = workflow::start_qr(
        &url,
        &s.qr_keys,
        &["awareid.example.com".into()],
        &s.http,
        workflow::QrMethod::Enroll,
        &no_progress,
    )
    .err()
    .expect("refused");
    assert!(
        matches!(
            err,
            workflow::FlowError::Qr(facecapture::crypto::qr::QrError::HostNotAllowed(_))
        ),
        "{err}"
    );
    assert!(s.emulator.requests().is_empty());
}

/// validateSession's userName is the server's word: a name that hides or
/// reorders text, 2000 characters, or one that shows as another user's is
/// refused as the D-Bus username would be, before anything is sent for it.
#[test]
fn a_session_naming_a_bad_username_is_refused() {
    let s = start();
    let long = "x".repeat(2000);
    for (name, problem) in [
        ("eve\u{202E}gnp.exe", "U+202E"),
        (long.as_str(), "2000 characters; at most 128"),
        ("alice\u{a0}", "white space"),
    ] {
        let url = s.emulator.qr_for_enroll("erin", "erin@example.com");
        let body = serde_json::json!({
            "accessToken": "session-access-token",
            "methodType": "enroll",
            "userName": name,
            "email": "erin@example.com",
        });
        s.emulator.inject(Fault {
            call: Some("validateSession".into()),
            kind: FaultKind::Body {
                body: body.to_string(),
            },
            times: 1,
        });
        s.emulator.clear_requests();
        let err = s
            .start_qr(&url, workflow::QrMethod::Enroll, &no_progress)
            .err()
            .expect("refused");
        assert!(
            matches!(&err, workflow::FlowError::SessionUser(p) if p.contains(problem)),
            "{name:?}: {err}"
        );
        assert_eq!(calls(&s.emulator), ["validateSession"], "{name:?}");
    }
}
