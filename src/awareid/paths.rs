//! Every AwareID endpoint the product calls, in one table (docs/awareid.md). The seed writes
//! `adddevice` and abbreviates the QR authentication paths; these are the full ones.

/// One AwareID call: its name for logs and errors, method and path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// The call's name in logs and errors (`enroll`, `addFace`, ...).
    pub name: &'static str,
    /// The HTTP method.
    pub method: &'static str,
    /// The path on the server, from the seed's guide.
    pub path: &'static str,
}

/// `{customer}` is replaced with `server.customer_name`.
pub const TOKEN: Call = Call {
    name: "token",
    method: "POST",
    path: "/auth/realms/{customer}-consumers/protocol/openid-connect/token",
};
/// The server's RSA key that face packages are sealed with.
pub const PUBLIC_KEY: Call = Call {
    name: "getPublicKey",
    method: "GET",
    path: "/getPublicKey",
};
/// Starts a client-initiated enrollment.
pub const ENROLL: Call = Call {
    name: "enroll",
    method: "POST",
    path: "/onboarding/enrollment/enroll",
};
/// Registers the terminal's device key for an enrollment.
pub const ADD_DEVICE: Call = Call {
    name: "addDevice",
    method: "POST",
    path: "/onboarding/enrollment/adddevice",
};
/// Sends the enrollment's face package.
pub const ADD_FACE: Call = Call {
    name: "addFace",
    method: "POST",
    path: "/onboarding/enrollment/addFace",
};
/// Starts an authentication with a registration code.
pub const AUTHENTICATE: Call = Call {
    name: "authenticate",
    method: "POST",
    path: "/onboarding/authentication/authenticate",
};
/// Proves the device key (a signed auth token).
pub const VERIFY_DEVICE: Call = Call {
    name: "verifyDevice",
    method: "POST",
    path: "/onboarding/authentication/verifyDevice",
};
/// Sends the authentication's face package.
pub const VERIFY_FACE: Call = Call {
    name: "verifyFace",
    method: "POST",
    path: "/onboarding/authentication/verifyFace",
};
/// Validates a QR code's session token on the QR's host.
pub const VALIDATE_SESSION: Call = Call {
    name: "validateSession",
    method: "POST",
    path: "/tokenVerify/validateSession",
};
/// Asks AwareID for an enrollment QR code (operators, demos).
pub const TRIGGER_ENROLL: Call = Call {
    name: "triggerEnroll",
    method: "POST",
    path: "/b2c/proxy/triggerEnroll",
};
/// Asks AwareID for an authentication QR code (operators, demos).
pub const TRIGGER_AUTHENTICATE: Call = Call {
    name: "triggerAuthenticate",
    method: "POST",
    path: "/b2c/proxy/triggerAuthenticate",
};

/// The token path for a customer (realm `{customer}-consumers`).
pub fn token_path(customer_name: &str) -> String {
    TOKEN.path.replace("{customer}", customer_name)
}

/// All calls, for the emulator's router and for tests.
pub const ALL: [Call; 11] = [
    TOKEN,
    PUBLIC_KEY,
    ENROLL,
    ADD_DEVICE,
    ADD_FACE,
    AUTHENTICATE,
    VERIFY_DEVICE,
    VERIFY_FACE,
    VALIDATE_SESSION,
    TRIGGER_ENROLL,
    TRIGGER_AUTHENTICATE,
];
