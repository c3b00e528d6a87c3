//! The emulator refuses what AwareID refuses, each with an AwareID-shaped error
//! (`errorCode`, `errorMsg`, `status`, `timestamp`).

mod common;

use common::*;
use facecapture::config::Encryption;
use serde_json::{Value, json};

struct Raw {
    agent: ureq::Agent,
    base: String,
}

impl Raw {
    fn new(s: &Setup) -> Self {
        let cert = ureq::tls::Certificate::from_pem(s.emulator.ca_pem().as_bytes()).expect("cert");
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::new_with_certs(&[cert]))
            .build();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls)
            .build()
            .into();
        Self {
            agent,
            base: s.emulator.base_url(),
        }
    }

    fn token(&self) -> String {
        let mut r = self
            .agent
            .post(format!(
                "{}/auth/realms/emulated-consumers/protocol/openid-connect/token",
                self.base
            ))
            .send_form([
                ("client_id", "door-terminal"),
                ("client_secret", "emulator-client-secret"),
                ("scope", "openid"),
                ("grant_type", "client_credentials"),
            ])
            .expect("token");
        let v: Value = r.body_mut().read_json().expect("json");
        v["access_token"].as_str().expect("token").to_owned()
    }

    /// POSTs raw bytes; returns (status, body).
    fn post(
        &self,
        path: &str,
        token: Option<&str>,
        apikey: Option<&str>,
        ct: &str,
        body: &str,
    ) -> (u16, Value) {
        let mut req = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Content-Type", ct);
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        if let Some(k) = apikey {
            req = req.header("apikey", k);
        }
        let mut resp = req.send(body).expect("send");
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_json().unwrap_or(Value::Null))
    }

    /// Starts an enrollment for `username`; returns the enrollmentToken.
    fn start_enrollment(&self, token: &str, username: &str) -> String {
        let (status, body) = self.json(
            ENROLL,
            token,
            json!({"username": username, "email": format!("{username}@example.com"), "phoneNumber": ""}),
        );
        assert_eq!(status, 200, "{body}");
        body["enrollmentToken"]
            .as_str()
            .expect("enrollmentToken")
            .to_owned()
    }

    fn json(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.post(
            path,
            Some(token),
            Some("emulator-apikey"),
            "application/json",
            &body.to_string(),
        )
    }
}

fn assert_aware_error(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["errorCode"], want_code, "{body}");
    assert_eq!(body["status"], want_status, "{body}");
    assert!(
        body["errorMsg"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        body["timestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t.len() == 20),
        "{body}"
    );
}

const ENROLL: &str = "/onboarding/enrollment/enroll";

#[test]
fn credentials_and_content_types() {
    let s = start();
    let raw = Raw::new(&s);
    let t = raw.token();
    let body = json!({"username": "u", "email": "u@example.com", "phoneNumber": ""}).to_string();
    let (st, b) = raw.post(
        ENROLL,
        Some(&t),
        Some("emulator-apikey"),
        "text/plain",
        &body,
    );
    assert_aware_error(st, &b, 415, "INVALID_CONTENT_TYPE");
    let (st, b) = raw.post(
        ENROLL,
        None,
        Some("emulator-apikey"),
        "application/json",
        &body,
    );
    assert_aware_error(st, &b, 401, "MISSING_TOKEN");
    let (st, b) = raw.post(
        ENROLL,
        Some("made-up"),
        Some("emulator-apikey"),
        "application/json",
        &body,
    );
    assert_aware_error(st, &b, 401, "INVALID_TOKEN");
    let (st, b) = raw.post(ENROLL, Some(&t), None, "application/json", &body);
    assert_aware_error(st, &b, 401, "MISSING_APIKEY");
    let (st, b) = raw.post(ENROLL, Some(&t), Some("wrong"), "application/json", &body);
    assert_aware_error(st, &b, 401, "INVALID_APIKEY");
    s.emulator.expire_tokens();
    let (st, b) = raw.post(
        ENROLL,
        Some(&t),
        Some("emulator-apikey"),
        "application/json",
        &body,
    );
    assert_aware_error(st, &b, 401, "TOKEN_EXPIRED");
    // The token call wants a form.
    let (st, b) = raw.post(
        "/auth/realms/emulated-consumers/protocol/openid-connect/token",
        None,
        None,
        "application/json",
        "{}",
    );
    assert_aware_error(st, &b, 415, "INVALID_CONTENT_TYPE");
    let (st, b) = raw.post(
        "/auth/realms/other-consumers/protocol/openid-connect/token",
        None,
        None,
        "application/x-www-form-urlencoded",
        "client_id=x",
    );
    assert_aware_error(st, &b, 404, "REALM_NOT_FOUND");
    let (st, b) = raw.post("/no/such/path", None, None, "application/json", "{}");
    assert_aware_error(st, &b, 404, "NOT_FOUND");
}

#[test]
fn wrong_or_missing_fields_and_types_are_named() {
    let s = start();
    let raw = Raw::new(&s);
    let t = raw.token();
    for (body, needle) in [
        (
            json!({"email": "u@example.com", "phoneNumber": ""}),
            "username",
        ),
        (
            json!({"username": 5, "email": "u@example.com", "phoneNumber": ""}),
            "invalid type",
        ),
        (
            json!({"username": "u", "email": "u@example.com", "phoneNumber": "", "extra": 1}),
            "extra",
        ),
        (
            json!({"username": "u", "email": "not-an-email", "phoneNumber": ""}),
            "email",
        ),
        (
            json!({"username": "", "email": "u@example.com", "phoneNumber": ""}),
            "username",
        ),
    ] {
        let (st, b) = raw.json(ENROLL, &t, body.clone());
        assert_eq!(st, 400, "{body} -> {b}");
        assert!(
            b["errorMsg"].as_str().expect("msg").contains(needle),
            "{body} -> {b}"
        );
    }
    let (st, b) = raw.post(
        ENROLL,
        Some(&t),
        Some("emulator-apikey"),
        "application/json",
        "{not json",
    );
    assert_aware_error(st, &b, 400, "INVALID_REQUEST");
}

#[test]
fn steps_out_of_order_and_bad_device_signatures() {
    let s = start();
    let raw = Raw::new(&s);
    let t = raw.token();
    let et = raw.start_enrollment(&t, "u");
    let face = serde_json::to_value(package_of("astronaut.jpg", 3, "u")).expect("json");
    let (st, b) = raw.json(
        "/onboarding/enrollment/addFace",
        &t,
        json!({"enrollmentToken": et, "faceLivenessData": face}),
    );
    assert_aware_error(st, &b, 400, "STEP_OUT_OF_ORDER");
    let (st, b) = raw.json(
        "/onboarding/enrollment/adddevice",
        &t,
        json!({"enrollmentToken": et, "deviceId": "d", "publicKey": "bm90IGEga2V5"}),
    );
    assert_aware_error(st, &b, 400, "INVALID_PUBLIC_KEY");

    // Enroll properly, then try to skip verifyDevice and to forge its signature.
    let ctx = ctx(&s, Encryption::None, &no_progress);
    let enrolled = enroll_astronaut(&s.client, &ctx, "v").expect("enroll");
    let (st, a) = raw.json(
        "/onboarding/authentication/authenticate",
        &t,
        json!({"registrationCode": enrolled.registration_code.expose(), "deviceId": s.terminal.device_id}),
    );
    assert_eq!(st, 200, "{a}");
    let at = a["authToken"].as_str().expect("authToken");
    let face = serde_json::to_value(package_of("astronaut.jpg", 3, "v")).expect("json");
    let (st, b) = raw.json(
        "/onboarding/authentication/verifyFace",
        &t,
        json!({"authToken": at, "faceLivenessData": face}),
    );
    assert_aware_error(st, &b, 400, "STEP_OUT_OF_ORDER");
    let other = facecapture::crypto::device::DeviceKey::generate().expect("key");
    let (st, b) = raw.json(
        "/onboarding/authentication/verifyDevice",
        &t,
        json!({"authToken": at, "signature": other.sign_auth_token(at), "deviceId": s.terminal.device_id}),
    );
    assert_aware_error(st, &b, 400, "DEVICE_VERIFICATION_FAILED");
    let (st, b) = raw.json(
        "/onboarding/authentication/authenticate",
        &t,
        json!({"registrationCode": enrolled.registration_code.expose(), "deviceId": "another-device"}),
    );
    assert_aware_error(st, &b, 400, "DEVICE_MISMATCH");
}

#[test]
fn face_packages_are_checked() {
    let s = start();
    let raw = Raw::new(&s);
    let t = raw.token();
    let et = raw.start_enrollment(&t, "w");
    let key = facecapture::crypto::device::DeviceKey::generate().expect("key");
    raw.json(
        "/onboarding/enrollment/adddevice",
        &t,
        json!({"enrollmentToken": et, "deviceId": "d", "publicKey": key.public_key_b64().expect("pub")}),
    );
    let mut face = serde_json::to_value(package_of("astronaut.jpg", 3, "w")).expect("json");
    face["video"]["workflow_data"]["frames"][1]["data"] = json!("aGVsbG8=");
    let (st, b) = raw.json(
        "/onboarding/enrollment/addFace",
        &t,
        json!({"enrollmentToken": et, "faceLivenessData": face}),
    );
    assert_aware_error(st, &b, 400, "INVALID_FACE_DATA");
    assert!(
        b["errorMsg"].as_str().expect("msg").contains("frames[1]"),
        "{b}"
    );
    let face = serde_json::to_value(package_of("astronaut.jpg", 3, "someone-else")).expect("json");
    let (st, b) = raw.json(
        "/onboarding/enrollment/addFace",
        &t,
        json!({"enrollmentToken": et, "faceLivenessData": face}),
    );
    assert_aware_error(st, &b, 400, "INVALID_REQUEST");
    let (st, b) = raw.json(
        "/onboarding/enrollment/addFace",
        &t,
        json!({"enrollmentToken": et, "faceLivenessData": {"key": "AAAA", "iv": "AAAA", "p": "AAAA"}}),
    );
    assert_aware_error(st, &b, 400, "DECRYPTION_FAILED");
}
