//! AwareID's JSON bodies (docs/awareid.md), shared by the client and the emulator so the
//! two cannot drift apart. Field names are AwareID's exactly; optional fields are
//! the ones AwareID may leave out. Secrets implement Debug by masking.

use serde::{Deserialize, Serialize};
use std::fmt;

mod package;

pub use package::*;

/// Masks a secret in Debug output.
fn masked(f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
    write!(f, "{name} {{ <masked> }}")
}

/// Debug that prints only the type name: for bodies that carry tokens or codes.
macro_rules! masked_debug {
    ($($t:ident),*) => {$(
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                masked(f, stringify!($t))
            }
        }
    )*};
}

masked_debug!(
    AddDeviceRequest,
    AddDeviceResponse,
    AuthenticateRequest,
    AuthenticateResponse,
    VerifyDeviceRequest,
    ValidateSessionRequest
);

/// The form-encoded token request (the only non-JSON request).
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The OAuth client id.
    pub client_id: String,
    /// The OAuth client secret (zeroed on drop).
    pub client_secret: String,
    /// Always `openid`.
    pub scope: String,
    /// Always `client_credentials`.
    pub grant_type: String,
}

impl TokenRequest {
    /// A terminal's request: client credentials, scope openid.
    pub fn client_credentials(client_id: &str, client_secret: &str) -> Self {
        Self {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            scope: "openid".into(),
            grant_type: "client_credentials".into(),
        }
    }

    /// The form's fields, in the order they are sent.
    pub fn form(&self) -> [(&'static str, &str); 4] {
        [
            ("client_id", &self.client_id),
            ("client_secret", &self.client_secret),
            ("scope", &self.scope),
            ("grant_type", &self.grant_type),
        ]
    }
}

impl Drop for TokenRequest {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.client_secret);
    }
}

impl fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        masked(f, "TokenRequest")
    }
}

/// The token endpoint's answer (masked in Debug: it holds the token).
#[derive(Serialize, Deserialize, Clone, PartialEq)]
pub struct TokenResponse {
    /// The bearer token for the API calls.
    pub access_token: String,
    /// Its lifetime, in seconds.
    pub expires_in: u64,
    /// The refresh token's lifetime, in seconds (unused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_expires_in: Option<u64>,
    /// `Bearer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// The OpenID id token (unused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// Keycloak's `not-before-policy` (unused).
    #[serde(
        rename = "not-before-policy",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub not_before_policy: Option<i64>,
    /// The scopes granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        masked(f, "TokenResponse")
    }
}

/// `/enroll`: who is being enrolled.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnrollRequest {
    /// The AwareID username.
    pub username: String,
    /// Given when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    /// Given when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// The person's email address.
    pub email: String,
    /// The person's phone number (may be empty).
    pub phone_number: String,
}

/// The checks AwareID asks for after enroll.
pub const ENROLL_CHECKS: [&str; 2] = ["addDevice", "addFace"];
/// The checks AwareID asks for after authenticate.
pub const AUTH_CHECKS: [&str; 2] = ["verifyDevice", "verifyFace"];

/// `/enroll`'s answer.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EnrollResponse {
    /// Names this enrollment in addDevice and addFace.
    pub enrollment_token: String,
    /// Whether AwareID already knew the username (a re-enrollment).
    pub user_exists_already: bool,
    /// The calls to make next: [`ENROLL_CHECKS`].
    pub required_checks: Vec<String>,
}

impl fmt::Debug for EnrollResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnrollResponse")
            .field("user_exists_already", &self.user_exists_already)
            .field("required_checks", &self.required_checks)
            .finish_non_exhaustive()
    }
}

/// `/addDevice`: registers the terminal's device key with the enrollment.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddDeviceRequest {
    /// From enroll.
    pub enrollment_token: String,
    /// The terminal's device id.
    pub device_id: String,
    /// base64 DER SubjectPublicKeyInfo of the device's P-256 key (docs/identity.md).
    pub public_key: String,
}

/// enrollmentStatus and authStatus: failed (for authStatus, the attempts used up).
pub const STATUS_FAILED: i32 = 0;
/// enrollmentStatus and authStatus: under way, a check still to make.
pub const STATUS_PENDING: i32 = 1;
/// enrollmentStatus and authStatus: enrolled, or authenticated.
pub const STATUS_COMPLETE: i32 = 2;

/// `/addDevice`'s answer.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AddDeviceResponse {
    /// [`STATUS_PENDING`] until addFace.
    pub enrollment_status: i32,
    /// Empty until the enrollment completes.
    #[serde(default)]
    pub registration_code: String,
}

/// `/addFace`: the face package for the enrollment.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddFaceRequest {
    /// From enroll.
    pub enrollment_token: String,
    /// The package, plain or sealed.
    pub face_liveness_data: FaceData,
}

/// `/addFace`'s answer: the enrollment's end.
#[derive(Serialize, Deserialize, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AddFaceResponse {
    /// Whether the face was live.
    pub liveness_result: bool,
    /// [`STATUS_COMPLETE`] when enrolled.
    pub enrollment_status: i32,
    /// The proof of enrollment authenticate needs (a secret).
    #[serde(default)]
    pub registration_code: String,
    /// AwareID's liveness details, kept as they come.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_results: Option<serde_json::Value>,
}

impl fmt::Debug for AddFaceResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AddFaceResponse")
            .field("liveness_result", &self.liveness_result)
            .field("enrollment_status", &self.enrollment_status)
            .finish_non_exhaustive()
    }
}

/// `/authenticate`: starts an authentication.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthenticateRequest {
    /// From the enrollment.
    pub registration_code: String,
    /// The terminal's device id.
    pub device_id: String,
}

/// `/authenticate`'s answer.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticateResponse {
    /// Names this authentication; verifyDevice signs it.
    pub auth_token: String,
    /// The calls to make next: [`AUTH_CHECKS`].
    pub required_checks: Vec<String>,
}

/// `/verifyDevice`: proves the terminal holds its device key.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifyDeviceRequest {
    /// From authenticate.
    pub auth_token: String,
    /// The device key's ECDSA signature over the auth token, base64 (docs/identity.md).
    pub signature: String,
    /// The terminal's device id.
    pub device_id: String,
}

/// `/verifyDevice`'s answer.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct VerifyDeviceResponse {
    /// AwareID's remark, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// [`STATUS_PENDING`] until verifyFace.
    pub auth_status: i32,
}

/// `/verifyFace`: the face package for the authentication.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifyFaceRequest {
    /// From authenticate.
    pub auth_token: String,
    /// The package, plain or sealed.
    pub face_liveness_data: FaceData,
}

/// `/verifyFace`'s answer: the authentication's end.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VerifyFaceResponse {
    /// Whether the face was live.
    pub liveness_result: bool,
    /// Whether it matched the enrolled face.
    pub match_result: bool,
    /// The match score.
    pub match_score: f64,
    /// [`STATUS_COMPLETE`] when authenticated.
    pub auth_status: i32,
    /// AwareID's liveness details, kept as they come.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub face_liveness_results: Option<serde_json::Value>,
    /// AwareID's match details, kept as they come.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub face_match_results: Option<serde_json::Value>,
}

/// `/validateSession`: what a QR code's session is.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValidateSessionRequest {
    /// From the QR code.
    pub session_token: String,
}

/// `/validateSession`'s answer.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ValidateSessionResponse {
    /// The bearer token for the QR flow's calls.
    pub access_token: String,
    /// "enroll" or "authenticate".
    pub method_type: String,
    /// The tenant.
    #[serde(default)]
    pub customer_name: String,
    /// The tenant's logo (unused).
    #[serde(default)]
    pub customer_logo: String,
    /// Who the session is for.
    pub user_name: String,
    /// Their email address (an enrollment's).
    #[serde(default)]
    pub email: String,
}

impl fmt::Debug for ValidateSessionResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidateSessionResponse")
            .field("method_type", &self.method_type)
            .field("customer_name", &self.customer_name)
            .field("user_name", &self.user_name)
            .finish_non_exhaustive()
    }
}

/// How AwareID tells the person of a triggered session.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NotifyOptions {
    /// By email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_by_email: Option<bool>,
    /// By a push message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_by_push: Option<bool>,
}

/// `/triggerEnroll` (the portal's side): makes an enrollment QR code.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TriggerEnrollRequest {
    /// Who is to enroll.
    pub username: String,
    /// Their email address.
    pub email: String,
    /// How to tell them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_options: Option<NotifyOptions>,
}

/// `/triggerAuthenticate` (the portal's side): makes an authentication QR code.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TriggerAuthenticateRequest {
    /// Who is to authenticate.
    pub username: String,
    /// How to tell them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_options: Option<NotifyOptions>,
}

/// triggerEnroll / triggerAuthenticate answer. A FAILURE comes with HTTP 200.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct TriggerResponse {
    /// `SUCCESS` or `FAILURE`.
    pub status: String,
    /// The sessionCallbackURL the QR code holds.
    #[serde(rename = "sessionCallbackURL", default)]
    pub session_callback_url: Option<String>,
    /// The QR code as a base64 PNG.
    #[serde(rename = "qrcodeImage", default)]
    pub qrcode_image: Option<String>,
    /// The session's token.
    #[serde(rename = "sessionToken", default)]
    pub session_token: Option<String>,
    /// Why, on FAILURE.
    #[serde(rename = "errorSummary", default)]
    pub error_summary: Option<String>,
}

impl fmt::Debug for TriggerResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TriggerResponse")
            .field("status", &self.status)
            .field("error_summary", &self.error_summary)
            .finish_non_exhaustive()
    }
}

/// AwareID's error body, sent with a 4xx/5xx status.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// AwareID's error code.
    pub error_code: String,
    /// Its message.
    pub error_msg: String,
    /// The HTTP status, again.
    pub status: u16,
    /// When, as AwareID formats it.
    pub timestamp: String,
}

/// Parses a JSON answer from outside (AwareID, a credential). A failure names
/// the field and the type it found, never the value: serde_json's own message
/// quotes the value (`invalid type: integer 987654321987654321, expected a
/// string`), and a registration code or token sent with the wrong type would
/// reach the D-Bus error and the journal.
///
/// ```
/// use facecapture::awareid::wire::{parse_json, AuthenticateResponse};
/// let e = parse_json::<AuthenticateResponse>(r#"{"authToken": 987654321987654321}"#)
///     .expect_err("a number");
/// assert_eq!(e, "authToken: invalid type: integer, expected a string");
/// ```
pub fn parse_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let problem = json_problem(e.inner());
        if path == "." || path.is_empty() {
            problem
        } else {
            format!("{path}: {problem}")
        }
    })?;
    de.end().map_err(|e| json_problem(&e))?;
    Ok(value)
}

/// serde_json's message for `e` without the value it quotes, and without its
/// position (a line and column say nothing to the operator of a one-line body).
pub fn json_problem(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let msg = match full.rsplit_once(" at line ") {
        Some((m, _)) => m,
        None => &full,
    };
    if e.classify() != serde_json::error::Category::Data {
        // Syntax, EOF and I/O messages name what was expected, not what came.
        return msg.to_owned();
    }
    let (found, expected) = match msg.split_once(", expected ") {
        Some((f, x)) => (f, Some(x)),
        None => (msg, None),
    };
    // "invalid type: integer `5`", "invalid value: string \"x\"", "unknown
    // variant `x`", "missing field `name`", "invalid length 3": the words before
    // the first quoted part; a field name is kept (it is the schema's).
    let kept = if found.starts_with("missing field") || found.starts_with("duplicate field") {
        found.to_owned()
    } else {
        found
            .split(' ')
            .take_while(|w| !w.starts_with(['`', '"', '\'']))
            .collect::<Vec<_>>()
            .join(" ")
    };
    match expected {
        Some(x) => format!("{kept}, expected {x}"),
        None => kept,
    }
}

#[cfg(test)]
mod tests {
    //! Each type against the seed's JSON examples (braces restored as docs/awareid.md says).
    use super::*;
    use serde_json::json;

    fn round_trip<T: Serialize + serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
        let parsed: T = serde_json::from_value(value.clone()).expect("parse seed example");
        assert_eq!(
            serde_json::to_value(&parsed).expect("serialize"),
            value,
            "round trip"
        );
        parsed
    }

    #[test]
    fn token_response() {
        let t: TokenResponse = round_trip(json!({
            "access_token": "eyJhbGciOiJSUzI1NiIsInR5cCIgOiAiSldUIiwia2lkIiA6ICJCY2IxNXZJQkZsY2JYazVmQUdJZFZXV2pTUEtTaWpsazNydmFwMHp0ekN3In0.e30.sig",
            "expires_in": 300,
            "refresh_expires_in": 0,
            "token_type": "Bearer",
            "id_token": "eyJhbGciOiJSUzI1NiJ9.e30.sig",
            "not-before-policy": 0,
            "scope": "openid"
        }));
        assert_eq!(t.expires_in, 300);
        assert_eq!(t.refresh_expires_in, Some(0));
        assert!(!format!("{t:?}").contains("eyJ"));
    }

    #[test]
    fn token_request_is_form_encoded_with_the_seed_fields() {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(TokenRequest::client_credentials("bimaas-b2c", "s3cret").form())
            .finish();
        assert_eq!(
            body,
            "client_id=bimaas-b2c&client_secret=s3cret&scope=openid&grant_type=client_credentials"
        );
    }

    #[test]
    fn enroll() {
        let r: EnrollRequest = round_trip(json!({
            "username": "username", "firstName": "first name", "lastName": "last name",
            "email": "user email", "phoneNumber": "user phonenumber"
        }));
        assert_eq!(r.first_name.as_deref(), Some("first name"));
        let r: EnrollRequest =
            round_trip(json!({"username": "u", "email": "e", "phoneNumber": ""}));
        assert_eq!(r.last_name, None);
        let resp: EnrollResponse = round_trip(json!({
            "enrollmentToken": "enrollmentToken", "userExistsAlready": false,
            "requiredChecks": ["addDevice", "addFace"]
        }));
        assert_eq!(resp.required_checks, ENROLL_CHECKS);
    }

    #[test]
    fn add_device() {
        round_trip::<AddDeviceRequest>(json!({
            "enrollmentToken": "enrollmentToken", "deviceId": "deviceID", "publicKey": "MFkw"
        }));
        let r: AddDeviceResponse =
            round_trip(json!({"enrollmentStatus": 1, "registrationCode": ""}));
        assert_eq!(r.enrollment_status, STATUS_PENDING);
    }

    fn seed_face_data() -> serde_json::Value {
        json!({"video": {
            "workflow_data": {"workflow": "hotel2", "rotation": 0, "frames": [
                {"data": "", "tags": [], "timestamp": 1609002526076.1338},
                {"data": "", "tags": [], "timestamp": 1609002526109.0},
                {"data": "", "tags": [], "timestamp": 1609002526142.0}
            ]},
            "meta_data": {
                "client_device_brand": "Unknown",
                "username": "Xiao",
                "client_version": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/87.0.4280.88 Safari/537.36 Edg/87.0.664.66"
            }
        }})
    }

    #[test]
    fn add_face_plain_and_sealed() {
        let r: AddFaceRequest = round_trip(json!({
            "enrollmentToken": "enrollmentToken", "faceLivenessData": seed_face_data()
        }));
        let FaceData::Plain(p) = r.face_liveness_data else {
            panic!("plain expected")
        };
        assert_eq!(p.video.workflow_data.frames.len(), 3);
        assert_eq!(
            p.video.workflow_data.frames[0].timestamp,
            1609002526076.1338
        );
        let r: AddFaceRequest = round_trip(json!({
            "enrollmentToken": "t", "faceLivenessData": {"key": "a2V5", "iv": "aXY=", "p": "cA=="}
        }));
        assert!(matches!(r.face_liveness_data, FaceData::Sealed(_)));
        let resp: AddFaceResponse = round_trip(json!({
            "livenessResult": true, "enrollmentStatus": 2, "registrationCode": "LLXL2N",
            "livenessResults": {"video": {"liveness_result": {
                "decision": "LIVE", "feedback": [], "score_frr": 1.1757098732441127}}}
        }));
        assert_eq!(resp.registration_code, "LLXL2N");
        assert_eq!(resp.enrollment_status, STATUS_COMPLETE);
        assert!(!format!("{resp:?}").contains("LLXL2N"));
    }

    #[test]
    fn authenticate_and_verify_device() {
        round_trip::<AuthenticateRequest>(
            json!({"registrationCode": "registrationToken", "deviceId": "deviceID"}),
        );
        let r: AuthenticateResponse = round_trip(json!({
            "authToken": "b8bf6f22-6f93-4bcb-a5b6-871b689c6750", "requiredChecks": ["verifyDevice", "verifyFace"]
        }));
        assert_eq!(r.required_checks, AUTH_CHECKS);
        round_trip::<VerifyDeviceRequest>(
            json!({"authToken": "authToken", "signature": "signature", "deviceId": "deviceID"}),
        );
        let r: VerifyDeviceResponse =
            round_trip(json!({"message": "Device verified.", "authStatus": 1}));
        assert_eq!(r.auth_status, STATUS_PENDING);
    }

    #[test]
    fn verify_face() {
        round_trip::<VerifyFaceRequest>(
            json!({"authToken": "atoken", "faceLivenessData": seed_face_data()}),
        );
        let r: VerifyFaceResponse = round_trip(json!({
            "livenessResult": true, "matchResult": true, "matchScore": 53.154655, "authStatus": 2,
            "faceLivenessResults": {"video": {"liveness_result": {"decision": "LIVE", "feedback": [], "score_frr": 1.1757098732441127}}},
            "faceMatchResults": {
                "statusMessages": [], "verifyResult": true, "matchScore": 53.154655,
                "biometricMatchedCount": 1, "biometricsOnServer": "",
                "biometricMatchResultList": [{"verifyResult": true, "modality": "FACE", "fmrScore": 53.154655,
                    "biometricMatchedCount": 1, "biometricsOnServer": "Front", "matchResultReference": null}],
                "matchingMinutia": null
            }
        }));
        assert!(r.liveness_result && r.match_result);
        assert_eq!(r.match_score, 53.154655);
    }

    #[test]
    fn validate_session() {
        round_trip::<ValidateSessionRequest>(
            json!({"sessionToken": "aa73e547-0f1b-4235-a7b0-dd52fa4ab774"}),
        );
        let r: ValidateSessionResponse = round_trip(json!({
            "accessToken": "accessToken", "methodType": "enroll", "customerName": "customerName",
            "customerLogo": "", "userName": "customerUsername", "email": "customerEmail"
        }));
        assert_eq!(r.method_type, "enroll");
        assert!(!format!("{r:?}").contains("accessToken\""));
    }

    #[test]
    fn triggers() {
        round_trip::<TriggerEnrollRequest>(json!({
            "username": "[email protected]", "email": "[email protected]", "notifyOptions": {"notifyByEmail": false}
        }));
        round_trip::<TriggerAuthenticateRequest>(json!({
            "username": "[email protected]", "notifyOptions": {"notifyByPush": true}
        }));
        let ok: TriggerResponse = round_trip(json!({
            "status": "SUCCESS",
            "sessionCallbackURL": "https://awareid-dev.aware-apis.com/onboarding?data=jgTW40",
            "qrcodeImage": "iVBORw0KGgo=",
            "sessionToken": "aa73e547-0f1b-4235-a7b0-dd52fa4ab774",
            "errorSummary": null
        }));
        assert_eq!(ok.status, "SUCCESS");
        let failed: TriggerResponse =
            serde_json::from_value(json!({"status": "FAILURE", "errorSummary": "User not found"}))
                .expect("parse");
        assert_eq!(failed.error_summary.as_deref(), Some("User not found"));
    }

    #[test]
    fn error_body() {
        round_trip::<ErrorBody>(json!({
            "errorCode": "AW-400", "errorMsg": "Invalid enrollment token", "status": 400,
            "timestamp": "2026-11-25T19:00:00Z"
        }));
    }

    #[test]
    fn missing_fields_are_named() {
        let err = serde_json::from_value::<EnrollResponse>(
            json!({"userExistsAlready": false, "requiredChecks": []}),
        )
        .expect_err("missing token");
        assert!(err.to_string().contains("enrollmentToken"), "{err}");
        let err = serde_json::from_value::<VerifyFaceResponse>(json!({
            "livenessResult": "yes", "matchResult": true, "matchScore": 1.0, "authStatus": 2
        }))
        .expect_err("wrong type");
        assert!(err.to_string().contains("invalid type"), "{err}");
    }
}
