//! The emulator's HTTP endpoints, one per AwareID call, and the middleware that
//! records requests and injects faults. Every refusal is an AwareID error body.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use std::sync::Arc;

use super::face;
use super::state::{
    AuthAttempt, Enrollment, Method, RecordedRequest, Scope, User, new_registration_code,
};
use super::{Fault, FaultKind, Shared};
use facecapture::awareid::paths;
use facecapture::awareid::wire::*;
use facecapture::crypto;

type S = State<Arc<Shared>>;

/// An AwareID-shaped error.
pub struct ApiError(StatusCode, &'static str, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error_code: self.1.to_owned(),
            error_msg: self.2,
            status: self.0.as_u16(),
            timestamp: now_rfc3339(),
        };
        (self.0, Json(body)).into_response()
    }
}

fn bad_request(code: &'static str, msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, code, msg.into())
}

type Reply<T> = Result<Json<T>, ApiError>;

fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.to_ascii_lowercase())
}

fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    match content_type(headers) {
        Some(ct) if ct.split(';').next().map(str::trim) == Some("application/json") => Ok(()),
        other => Err(ApiError(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "INVALID_CONTENT_TYPE",
            format!("Content-Type must be application/json, got {other:?}"),
        )),
    }
}

fn require_apikey(shared: &Shared, headers: &HeaderMap, required: bool) -> Result<(), ApiError> {
    match headers.get("apikey").and_then(|v| v.to_str().ok()) {
        Some(k) if k == shared.cfg.apikey => Ok(()),
        None if !required => Ok(()),
        None => Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "MISSING_APIKEY",
            "apikey header is missing".into(),
        )),
        Some(_) => Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "INVALID_APIKEY",
            "apikey is not valid".into(),
        )),
    }
}

fn require_bearer(shared: &Shared, headers: &HeaderMap) -> Result<Scope, ApiError> {
    let unauthorized = |code, msg: &str| ApiError(StatusCode::UNAUTHORIZED, code, msg.into());
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| unauthorized("MISSING_TOKEN", "Authorization header is missing"))?;
    let token = value
        .strip_prefix("Bearer ")
        .ok_or_else(|| unauthorized("INVALID_TOKEN", "Authorization is not a Bearer token"))?;
    let state = shared.lock();
    let grant = state
        .grants
        .get(token)
        .ok_or_else(|| unauthorized("INVALID_TOKEN", "Bearer token is not valid"))?;
    if std::time::Instant::now() >= grant.expires {
        return Err(unauthorized("TOKEN_EXPIRED", "Bearer token has expired"));
    }
    Ok(grant.scope.clone())
}

/// The preamble of every JSON call made with a bearer token: content type, apikey,
/// token. Returns the token's scope.
fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<Scope, ApiError> {
    require_json(headers)?;
    require_apikey(shared, headers, true)?;
    require_bearer(shared, headers)
}

/// The web portal's calls (triggers): JSON, a client-credentials token; the apikey
/// is optional (the seed's portal does not send one) but checked when present.
fn authorize_portal(shared: &Shared, headers: &HeaderMap) -> Result<(), ApiError> {
    require_json(headers)?;
    require_apikey(shared, headers, false)?;
    if require_bearer(shared, headers)? != Scope::Client {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "a session token cannot trigger".into(),
        ));
    }
    Ok(())
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| bad_request("INVALID_REQUEST", format!("invalid request body: {e}")))
}

fn non_empty(field: &str, value: &str) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        Err(bad_request(
            "INVALID_REQUEST",
            format!("{field} is required"),
        ))
    } else if value.len() > 256 {
        Err(bad_request(
            "INVALID_REQUEST",
            format!("{field} is longer than 256 characters"),
        ))
    } else {
        Ok(())
    }
}

/// The session scope must belong to this flow and user.
fn check_scope(scope: &Scope, method: Method, username: &str) -> Result<(), ApiError> {
    match scope {
        Scope::Client => Ok(()),
        Scope::Session {
            method: m,
            username: u,
        } if *m == method && u == username => Ok(()),
        Scope::Session { .. } => Err(ApiError(
            StatusCode::FORBIDDEN,
            "SESSION_MISMATCH",
            "the session token was issued for another user or flow".into(),
        )),
    }
}

pub async fn token(
    State(shared): S,
    Path(realm): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply<TokenResponse> {
    match content_type(&headers) {
        Some(ct) if ct.starts_with("application/x-www-form-urlencoded") => {}
        other => {
            return Err(ApiError(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "INVALID_CONTENT_TYPE",
                format!("Content-Type must be application/x-www-form-urlencoded, got {other:?}"),
            ));
        }
    }
    if realm != format!("{}-consumers", shared.cfg.customer_name) {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            "REALM_NOT_FOUND",
            format!("realm {realm:?} does not exist"),
        ));
    }
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |k: &str| {
        form.get(k)
            .map(String::as_str)
            .ok_or_else(|| bad_request("INVALID_REQUEST", format!("{k} is missing")))
    };
    if field("grant_type")? != "client_credentials" {
        return Err(bad_request(
            "UNSUPPORTED_GRANT_TYPE",
            "grant_type must be client_credentials",
        ));
    }
    if field("scope")? != "openid" {
        return Err(bad_request("INVALID_SCOPE", "scope must be openid"));
    }
    if field("client_id")? != shared.cfg.client_id
        || field("client_secret")? != shared.cfg.client_secret
    {
        return Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "INVALID_CLIENT",
            "invalid client credentials".into(),
        ));
    }
    let ttl = shared.cfg.token_ttl;
    let access_token = shared.lock().grant(Scope::Client, ttl);
    Ok(Json(TokenResponse {
        access_token,
        expires_in: ttl.as_secs(),
        refresh_expires_in: Some(0),
        token_type: Some("Bearer".into()),
        id_token: None,
        not_before_policy: Some(0),
        scope: Some("openid".into()),
    }))
}

pub async fn public_key(State(shared): S, headers: HeaderMap) -> Result<Response, ApiError> {
    require_apikey(&shared, &headers, true)?;
    require_bearer(&shared, &headers)?;
    use rsa::pkcs8::EncodePublicKey;
    let pem = shared
        .keys
        .server
        .to_public_key()
        .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
        .map_err(|_| {
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "key encoding failed".into(),
            )
        })?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=UTF-8")], pem).into_response())
}

pub async fn enroll(State(shared): S, headers: HeaderMap, body: Bytes) -> Reply<EnrollResponse> {
    let scope = authorize(&shared, &headers)?;
    let req: EnrollRequest = parse(&body)?;
    non_empty("username", &req.username)?;
    non_empty("email", &req.email)?;
    if !req.email.contains('@') {
        return Err(bad_request(
            "INVALID_EMAIL",
            "email is not an email address",
        ));
    }
    check_scope(&scope, Method::Enroll, &req.username)?;
    let mut state = shared.lock();
    let exists = state.users.contains_key(&req.username);
    let token = super::state::new_token();
    state.enrollments.insert(
        token.clone(),
        Enrollment {
            username: req.username,
            device: None,
        },
    );
    Ok(Json(EnrollResponse {
        enrollment_token: token,
        user_exists_already: exists,
        required_checks: ENROLL_CHECKS.iter().map(|s| s.to_string()).collect(),
    }))
}

pub async fn add_device(
    State(shared): S,
    headers: HeaderMap,
    body: Bytes,
) -> Reply<AddDeviceResponse> {
    authorize(&shared, &headers)?;
    let req: AddDeviceRequest = parse(&body)?;
    non_empty("deviceId", &req.device_id)?;
    crypto::device::check_public_key(&req.public_key).map_err(|_| {
        bad_request(
            "INVALID_PUBLIC_KEY",
            "publicKey is not a base64 DER P-256 public key",
        )
    })?;
    let mut state = shared.lock();
    let enrollment = state
        .enrollments
        .get_mut(&req.enrollment_token)
        .ok_or_else(|| bad_request("INVALID_ENROLLMENT_TOKEN", "enrollmentToken is not valid"))?;
    enrollment.device = Some((req.device_id, req.public_key));
    Ok(Json(AddDeviceResponse {
        enrollment_status: STATUS_PENDING,
        registration_code: String::new(),
    }))
}

/// Opens (if sealed) and checks a faceLivenessData value.
async fn face_package(
    shared: &Arc<Shared>,
    data: FaceData,
    username: &str,
) -> Result<face::Analysis, ApiError> {
    let plain = match data {
        FaceData::Plain(p) => p,
        FaceData::Sealed(env) => {
            let json = crate::server_crypto::open_envelope(&shared.keys.server, &env)
                .map_err(|e| bad_request("DECRYPTION_FAILED", format!("faceLivenessData: {e}")))?;
            parse::<FaceLivenessData>(&json).map_err(|e| {
                bad_request(
                    "INVALID_REQUEST",
                    format!("decrypted faceLivenessData: {}", e.2),
                )
            })?
        }
    };
    if plain.video.meta_data.username != username {
        return Err(bad_request(
            "INVALID_REQUEST",
            "meta_data.username does not match the user",
        ));
    }
    non_empty(
        "workflow_data.workflow",
        &plain.video.workflow_data.workflow,
    )?;
    if ![0, 90, 180, 270].contains(&plain.video.workflow_data.rotation) {
        return Err(bad_request(
            "INVALID_REQUEST",
            "workflow_data.rotation must be 0, 90, 180 or 270",
        ));
    }
    let shared = shared.clone();
    let min = shared.cfg.min_face_px;
    tokio::task::spawn_blocking(move || {
        let mut detector = facecapture::lock::lock(&shared.detector);
        face::analyse(&mut detector, &plain.video.workflow_data.frames, min)
    })
    .await
    .map_err(|_| {
        ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "face analysis failed".into(),
        )
    })?
    .map_err(|e| bad_request("INVALID_FACE_DATA", e))
}

fn liveness_json(a: &face::Analysis) -> serde_json::Value {
    serde_json::json!({"video": {"liveness_result": {
        "decision": if a.live() { "LIVE" } else { "NOT_LIVE" },
        "feedback": a.feedback(),
        "score_frr": if a.live() { 1.1757098732441127 } else { 98.0 },
    }}})
}

pub async fn add_face(State(shared): S, headers: HeaderMap, body: Bytes) -> Reply<AddFaceResponse> {
    authorize(&shared, &headers)?;
    let req: AddFaceRequest = parse(&body)?;
    let (username, device) = {
        let state = shared.lock();
        let e = state
            .enrollments
            .get(&req.enrollment_token)
            .ok_or_else(|| {
                bad_request("INVALID_ENROLLMENT_TOKEN", "enrollmentToken is not valid")
            })?;
        let device = e.device.clone().ok_or_else(|| {
            bad_request("STEP_OUT_OF_ORDER", "addDevice must come before addFace")
        })?;
        (e.username.clone(), device)
    };
    let analysis = face_package(&shared, req.face_liveness_data, &username).await?;
    let results = liveness_json(&analysis);
    match (analysis.live(), analysis.template) {
        (true, Some(template)) => {
            let code = new_registration_code();
            let mut state = shared.lock();
            state.enrollments.remove(&req.enrollment_token);
            state.users.insert(
                username,
                User {
                    registration_code: code.clone(),
                    device_id: device.0,
                    device_key: device.1,
                    template,
                },
            );
            Ok(Json(AddFaceResponse {
                liveness_result: true,
                enrollment_status: STATUS_COMPLETE,
                registration_code: code,
                liveness_results: Some(results),
            }))
        }
        _ => Ok(Json(AddFaceResponse {
            liveness_result: false,
            enrollment_status: STATUS_PENDING,
            registration_code: String::new(),
            liveness_results: Some(results),
        })),
    }
}

pub async fn authenticate(
    State(shared): S,
    headers: HeaderMap,
    body: Bytes,
) -> Reply<AuthenticateResponse> {
    let scope = authorize(&shared, &headers)?;
    let req: AuthenticateRequest = parse(&body)?;
    non_empty("registrationCode", &req.registration_code)?;
    non_empty("deviceId", &req.device_id)?;
    let mut state = shared.lock();
    let (username, user) = state
        .user_by_code(&req.registration_code)
        .ok_or_else(|| bad_request("INVALID_REGISTRATION_CODE", "registrationCode is not valid"))?;
    check_scope(&scope, Method::Authenticate, username)?;
    if user.device_id != req.device_id {
        return Err(bad_request(
            "DEVICE_MISMATCH",
            "deviceId is not the enrolled device",
        ));
    }
    let username = username.clone();
    let token = super::state::new_token();
    state.auths.insert(
        token.clone(),
        AuthAttempt {
            username,
            device_verified: false,
            attempts: 0,
            finished: false,
        },
    );
    Ok(Json(AuthenticateResponse {
        auth_token: token,
        required_checks: AUTH_CHECKS.iter().map(|s| s.to_string()).collect(),
    }))
}

pub async fn verify_device(
    State(shared): S,
    headers: HeaderMap,
    body: Bytes,
) -> Reply<VerifyDeviceResponse> {
    authorize(&shared, &headers)?;
    let req: VerifyDeviceRequest = parse(&body)?;
    let mut state = shared.lock();
    let username = state
        .auths
        .get(&req.auth_token)
        .filter(|a| !a.finished)
        .map(|a| a.username.clone())
        .ok_or_else(|| bad_request("INVALID_AUTH_TOKEN", "authToken is not valid"))?;
    let user = state
        .users
        .get(&username)
        .ok_or_else(|| bad_request("INVALID_AUTH_TOKEN", "the user no longer exists"))?;
    if user.device_id != req.device_id {
        return Err(bad_request(
            "DEVICE_MISMATCH",
            "deviceId is not the enrolled device",
        ));
    }
    let ok = crypto::device::verify_auth_token(&user.device_key, &req.auth_token, &req.signature)
        .map_err(|e| bad_request("DEVICE_VERIFICATION_FAILED", e.to_string()))?;
    if !ok {
        return Err(bad_request(
            "DEVICE_VERIFICATION_FAILED",
            "signature does not verify with the device key",
        ));
    }
    if let Some(a) = state.auths.get_mut(&req.auth_token) {
        a.device_verified = true;
    }
    Ok(Json(VerifyDeviceResponse {
        message: Some("Device verified.".into()),
        auth_status: STATUS_PENDING,
    }))
}

pub async fn verify_face(
    State(shared): S,
    headers: HeaderMap,
    body: Bytes,
) -> Reply<VerifyFaceResponse> {
    authorize(&shared, &headers)?;
    let req: VerifyFaceRequest = parse(&body)?;
    let username = {
        let state = shared.lock();
        let a = state
            .auths
            .get(&req.auth_token)
            .filter(|a| !a.finished)
            .ok_or_else(|| bad_request("INVALID_AUTH_TOKEN", "authToken is not valid"))?;
        if !a.device_verified {
            return Err(bad_request(
                "STEP_OUT_OF_ORDER",
                "verifyDevice must come before verifyFace",
            ));
        }
        a.username.clone()
    };
    let analysis = face_package(&shared, req.face_liveness_data, &username).await?;
    let live = analysis.live();
    let mut state = shared.lock();
    let score = match (&analysis.template, state.users.get(&username)) {
        (Some(t), Some(u)) => face::similarity(t, &u.template),
        _ => 0.0,
    };
    let matched = live && score >= face::MATCH_THRESHOLD;
    let match_score = f64::from((score * 100.0).clamp(0.0, 100.0));
    let max = shared.cfg.max_auth_attempts;
    let status = match state.auths.get_mut(&req.auth_token) {
        Some(a) if matched => {
            a.finished = true;
            STATUS_COMPLETE
        }
        Some(a) => {
            a.attempts += 1;
            a.finished = a.attempts >= max;
            if a.finished {
                STATUS_FAILED
            } else {
                STATUS_PENDING
            }
        }
        None => STATUS_FAILED,
    };
    Ok(Json(VerifyFaceResponse {
        liveness_result: live,
        match_result: matched,
        match_score,
        auth_status: status,
        face_liveness_results: Some(liveness_json(&analysis)),
        face_match_results: Some(serde_json::json!({
            "statusMessages": [], "verifyResult": matched, "matchScore": match_score,
            "biometricMatchedCount": u32::from(matched), "biometricsOnServer": "",
            "biometricMatchResultList": [{"verifyResult": matched, "modality": "FACE", "fmrScore": match_score,
                "biometricMatchedCount": u32::from(matched), "biometricsOnServer": "Front", "matchResultReference": null}],
            "matchingMinutia": null
        })),
    }))
}

pub async fn validate_session(
    State(shared): S,
    headers: HeaderMap,
    body: Bytes,
) -> Reply<ValidateSessionResponse> {
    require_json(&headers)?;
    require_apikey(&shared, &headers, true)?;
    let req: ValidateSessionRequest = parse(&body)?;
    let ttl = shared.cfg.token_ttl;
    let mut state = shared.lock();
    let session = state
        .qr_sessions
        .get_mut(&req.session_token)
        .ok_or_else(|| bad_request("INVALID_SESSION_TOKEN", "sessionToken is not valid"))?;
    if session.used {
        return Err(bad_request(
            "SESSION_USED",
            "sessionToken has already been used",
        ));
    }
    if std::time::Instant::now() >= session.expires {
        return Err(bad_request("SESSION_EXPIRED", "sessionToken has expired"));
    }
    session.used = true;
    let (method, username, email) = (
        session.method,
        session.username.clone(),
        session.email.clone(),
    );
    let access_token = state.grant(
        Scope::Session {
            method,
            username: username.clone(),
        },
        ttl,
    );
    Ok(Json(ValidateSessionResponse {
        access_token,
        method_type: method.as_str().into(),
        customer_name: shared.cfg.customer_name.clone(),
        customer_logo: String::new(),
        user_name: username,
        email,
    }))
}

fn trigger_failure(summary: &str) -> Json<TriggerResponse> {
    Json(TriggerResponse {
        status: "FAILURE".into(),
        session_callback_url: None,
        qrcode_image: None,
        session_token: None,
        error_summary: Some(summary.into()),
    })
}

fn trigger_success(
    shared: &Shared,
    method: Method,
    username: &str,
    email: &str,
) -> Reply<TriggerResponse> {
    let token = shared.lock().new_qr_session(method, username, email);
    let internal =
        |what: &str| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", what.into());
    let url = shared
        .callback_url(&token)
        .map_err(|_| internal("QR encoding failed"))?;
    let png = crate::server_crypto::qr_png(&url).map_err(|_| internal("QR rendering failed"))?;
    Ok(Json(TriggerResponse {
        status: "SUCCESS".into(),
        session_callback_url: Some(url),
        qrcode_image: Some(crypto::b64(&png)),
        session_token: Some(token),
        error_summary: None,
    }))
}

pub async fn trigger_enroll(
    State(shared): S,
    headers: HeaderMap,
    body: Bytes,
) -> Reply<TriggerResponse> {
    authorize_portal(&shared, &headers)?;
    let req: TriggerEnrollRequest = parse(&body)?;
    if req.username.trim().is_empty() || !req.email.contains('@') {
        return Ok(trigger_failure("username and a valid email are required"));
    }
    trigger_success(&shared, Method::Enroll, &req.username, &req.email)
}

pub async fn trigger_authenticate(
    State(shared): S,
    headers: HeaderMap,
    body: Bytes,
) -> Reply<TriggerResponse> {
    authorize_portal(&shared, &headers)?;
    let req: TriggerAuthenticateRequest = parse(&body)?;
    if !shared.lock().users.contains_key(&req.username) {
        return Ok(trigger_failure("User is not enrolled"));
    }
    trigger_success(&shared, Method::Authenticate, &req.username, "")
}

pub async fn not_found() -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "no such endpoint".into(),
    )
}

pub async fn list_requests(State(shared): S) -> Json<Vec<RecordedRequest>> {
    Json(shared.lock().requests.clone())
}

pub async fn clear_requests(State(shared): S) -> StatusCode {
    shared.lock().clear_requests();
    StatusCode::NO_CONTENT
}

pub async fn add_fault(State(shared): S, Json(fault): Json<Fault>) -> StatusCode {
    shared.lock().faults.push(fault);
    StatusCode::NO_CONTENT
}

pub async fn expire_tokens(State(shared): S) -> StatusCode {
    shared.lock().expire_tokens();
    StatusCode::NO_CONTENT
}

/// The AwareID call a path belongs to.
fn call_name(path: &str) -> Option<&'static str> {
    if path.starts_with("/auth/realms/") && path.ends_with("/protocol/openid-connect/token") {
        return Some(paths::TOKEN.name);
    }
    paths::ALL.iter().find(|c| c.path == path).map(|c| c.name)
}

fn take_fault(shared: &Shared, call: &str) -> Option<FaultKind> {
    let mut state = shared.lock();
    let i = state
        .faults
        .iter()
        .position(|f| f.times > 0 && f.call.as_deref().is_none_or(|c| c == call))?;
    let kind = state.faults[i].kind.clone();
    state.faults[i].times -= 1;
    if state.faults[i].times == 0 {
        state.faults.remove(i);
    }
    Some(kind)
}

/// Records each AwareID request and applies injected faults.
pub async fn record_and_inject(State(shared): S, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if path.starts_with("/__emulator/") {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let bytes = match axum::body::to_bytes(body, 16 * 1024 * 1024).await {
        Ok(b) => b,
        Err(_) => {
            return bad_request("REQUEST_TOO_LARGE", "request body over 16 MiB").into_response();
        }
    };
    let headers = &parts.headers;
    let ct = content_type(headers);
    let body_json = if ct
        .as_deref()
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
    {
        serde_json::Value::Object(
            url::form_urlencoded::parse(&bytes)
                .into_owned()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect(),
        )
    } else {
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null)
    };
    let mut record = RecordedRequest {
        method: parts.method.to_string(),
        path: path.clone(),
        call: call_name(&path).map(str::to_owned),
        content_type: ct,
        bearer: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned),
        apikey: headers
            .get("apikey")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: body_json,
        body_bytes: bytes.len(),
        status: 0,
        peer,
    };
    if let Some(call) = &record.call {
        shared.lock().arrived.push(call.clone());
        shared.changed.notify_all();
    }
    let fault = record.call.as_deref().and_then(|c| take_fault(&shared, c));
    let response = match fault {
        Some(FaultKind::Status { code }) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            ApiError(status, "INJECTED_FAULT", format!("injected HTTP {code}")).into_response()
        }
        Some(FaultKind::MalformedJson) => (
            [(header::CONTENT_TYPE, "application/json")],
            "{\"enrollmentToken\": \"abc\", <html>oops",
        )
            .into_response(),
        Some(FaultKind::Body { body }) => {
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Some(FaultKind::DropConnection) => {
            let stream = futures_util::stream::once(async {
                Err::<Bytes, std::io::Error>(std::io::Error::other("injected connection drop"))
            });
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from_stream(stream))
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
        Some(FaultKind::AnswerLate { ms }) => {
            let response = next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
            record.status = response.status().as_u16();
            shared.lock().requests.push(record);
            shared.changed.notify_all();
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            return response;
        }
        other => {
            match other {
                Some(FaultKind::Delay { ms }) => {
                    tokio::time::sleep(std::time::Duration::from_millis(ms)).await
                }
                Some(FaultKind::ExpireToken) => shared.lock().expire_tokens(),
                Some(FaultKind::Hold { max_ms }) => {
                    let _ = tokio::time::timeout(
                        std::time::Duration::from_millis(max_ms),
                        shared.release.notified(),
                    )
                    .await;
                }
                _ => {}
            }
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
    };
    record.status = response.status().as_u16();
    shared.lock().requests.push(record);
    shared.changed.notify_all();
    response
}

/// RFC 3339 UTC time for error bodies (seconds: AwareID's own precision).
fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(0)
        .unwrap_or(now)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
