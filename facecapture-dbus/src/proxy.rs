//! The proxy of `org.facecapture.FaceCapture1`, and the replies of its methods as
//! structs with named fields.
//!
//! Each method's outputs arrive as one struct (the body's arguments in order, as
//! the interface XML names them); its errors arrive as [`zbus::Error`], which
//! [`crate::Error::from`] turns into the interface's own.

use crate::values::{EnrollmentStatus, Standing};
use serde::{Deserialize, Serialize};
use zbus::Type;

/// The reply of `Enroll`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct EnrollReply {
    /// 0 failed, 1 pending (e.g. no live face), 2 complete; see [`Self::status`].
    pub enrollment_status: i32,
    /// Whether AwareID judged the sample live.
    pub liveness: bool,
}

/// The reply of `EnrollWithQr`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct EnrollWithQrReply {
    /// Who the QR session was for.
    pub username: String,
    /// As [`EnrollReply::enrollment_status`].
    pub enrollment_status: i32,
    /// As [`EnrollReply::liveness`].
    pub liveness: bool,
}

/// The reply of `Authenticate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct AuthenticateReply {
    /// `liveness && matched && auth_status == 2`: open the door only on true.
    pub granted: bool,
    /// The sample was judged live.
    pub liveness: bool,
    /// The face matched the enrolled one.
    pub matched: bool,
    /// AwareID's match score.
    pub match_score: f64,
    /// 0 failed (or the maximum attempts reached), 1 pending, 2 complete.
    pub auth_status: i32,
}

/// The reply of `AuthenticateWithQr`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct AuthenticateWithQrReply {
    /// Who the QR session was for.
    pub username: String,
    /// As [`AuthenticateReply::granted`]; the other fields as there.
    pub granted: bool,
    /// As [`AuthenticateReply::liveness`].
    pub liveness: bool,
    /// As [`AuthenticateReply::matched`].
    pub matched: bool,
    /// As [`AuthenticateReply::match_score`].
    pub match_score: f64,
    /// As [`AuthenticateReply::auth_status`].
    pub auth_status: i32,
}

/// One entry of `ListEnrollments` (registration codes are never returned).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Enrollment {
    /// The AwareID username.
    pub username: String,
    /// The AwareID host the enrollment was made with.
    pub server_host: String,
    /// When, in Unix seconds.
    pub enrolled_at: i64,
    /// `enrolled`, `reenrolling` or `reenrollment-interrupted`; see [`Self::standing`].
    pub standing: String,
}

impl EnrollReply {
    /// The enrollment status, or `None` for a number AwareID does not use.
    pub fn status(&self) -> Option<EnrollmentStatus> {
        EnrollmentStatus::from_wire(self.enrollment_status)
    }
}

impl EnrollWithQrReply {
    /// As [`EnrollReply::status`].
    pub fn status(&self) -> Option<EnrollmentStatus> {
        EnrollmentStatus::from_wire(self.enrollment_status)
    }
}

impl Enrollment {
    /// The standing, or `None` for a value this crate does not know (a newer daemon).
    pub fn standing(&self) -> Option<Standing> {
        self.standing.parse().ok()
    }
}

/// The proxy of `/org/facecapture/FaceCapture1` on `org.facecapture.FaceCapture1`
///. Every method answers
/// within the daemon's `daemon.operation_timeout_s`; give the connection a
/// method timeout longer than that (`zbus::connection::Builder::method_timeout`)
/// so that the daemon's answer is the one you see.
#[zbus::proxy(
    interface = "org.facecapture.FaceCapture1",
    default_service = "org.facecapture.FaceCapture1",
    default_path = "/org/facecapture/FaceCapture1"
)]
pub trait FaceCapture1 {
    /// Enrolls a person: captures their face and registers this terminal for them.
    /// Needs the facecapture-admin group.
    fn enroll(
        &self,
        username: &str,
        email: &str,
        phone_number: &str,
        first_name: &str,
        last_name: &str,
    ) -> zbus::Result<EnrollReply>;

    /// Enrolls from a QR code's sessionCallbackURL, or "" to scan it with the
    /// camera. Needs the facecapture-admin group.
    fn enroll_with_qr(&self, session_callback_url: &str) -> zbus::Result<EnrollWithQrReply>;

    /// Authenticates an enrolled person. Needs the facecapture group (or admin).
    fn authenticate(&self, username: &str) -> zbus::Result<AuthenticateReply>;

    /// Authenticates from a QR code's sessionCallbackURL, or "" to scan it.
    fn authenticate_with_qr(
        &self,
        session_callback_url: &str,
    ) -> zbus::Result<AuthenticateWithQrReply>;

    /// Ends the operation in flight, which fails with Cancelled; nothing when idle.
    fn cancel(&self) -> zbus::Result<()>;

    /// The enrollments stored on this terminal, by username. Admin only.
    fn list_enrollments(&self) -> zbus::Result<Vec<Enrollment>>;

    /// Forgets the stored enrollment of `username`. Admin only.
    fn remove_enrollment(&self, username: &str) -> zbus::Result<()>;

    /// Every metric since the daemon started, by Prometheus series name (with
    /// labels) -> value; histograms as `_count` and `_sum`. Admin only.
    fn get_statistics(&self) -> zbus::Result<std::collections::HashMap<String, f64>>;

    /// `idle`, `capturing`, `scanning-qr` or `contacting-server` (see [`crate::State`]).
    #[zbus(property)]
    fn state(&self) -> zbus::Result<String>;

    /// The terminal's app-specific device id sent to AwareID.
    #[zbus(property, name = "DeviceId")]
    fn device_id(&self) -> zbus::Result<String>;

    /// How the device key is kept at rest: `tpm2`, `host-key` or `plain`.
    #[zbus(property)]
    fn device_key_protection(&self) -> zbus::Result<String>;

    /// Whether the configured camera can be opened.
    #[zbus(property)]
    fn camera_available(&self) -> zbus::Result<bool>;

    /// The daemon's version.
    #[zbus(property)]
    fn version(&self) -> zbus::Result<String>;

    /// A step of the operation in flight (see [`crate::Operation`], [`crate::Step`]).
    #[zbus(signal)]
    fn progress(&self, operation: &str, step: &str) -> zbus::Result<()>;

    /// What the person in front of the camera should do (see [`crate::Feedback`]),
    /// sent when it changes.
    #[zbus(signal)]
    fn capture_feedback(&self, code: &str) -> zbus::Result<()>;
}
