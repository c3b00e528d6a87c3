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

/// One entry of `ListSiteEnrollments`: [`Enrollment`] and the door of the site
/// it was made at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct SiteEnrollment {
    /// The AwareID username.
    pub username: String,
    /// The AwareID host the enrollment was made with.
    pub server_host: String,
    /// When, in Unix seconds.
    pub enrolled_at: i64,
    /// As [`Enrollment::standing`].
    pub standing: String,
    /// The door of the site it was made at (`site.door`); empty for one made
    /// here outside a site.
    pub door: String,
}

/// The `Site` property: this door's link to its site's hub. `door` is empty
/// on a terminal that is not in a site (the other fields are then zero).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct SiteState {
    /// This door's name in the site.
    pub door: String,
    /// Whether the link to the hub is up now.
    pub connected: bool,
    /// When the hub was last heard from, in Unix seconds (0: never).
    pub last_contact: i64,
    /// The last revision of the site's bucket applied here.
    pub revision: u64,
    /// This door's enrollments and removals waiting for the hub.
    pub outbox: u64,
    /// `site.max_stale_s` (0: no limit).
    pub max_stale_s: u64,
}

/// What `CameraCheck` saw, for an installer aiming the camera: the dictionary
/// (`a{sv}`) of its first output, one entry per field, named as the fields are.
/// Left and right (`face_x_median`) are as the camera sees the scene.
///
/// ```
/// use facecapture_dbus::{CameraReport, Feedback};
/// let r = CameraReport { commonest_feedback: "face-too-high".into(), ..Default::default() };
/// assert_eq!(r.commonest(), Some(Feedback::FaceTooHigh));
/// ```
#[derive(Debug, Clone, Default, PartialEq, zbus::SerializeDict, zbus::DeserializeDict, Type)]
#[zbus(signature = "a{sv}")]
pub struct CameraReport {
    /// The device node (or the files source's path).
    pub device: String,
    /// The V4L2 driver (`uvcvideo`, `vivid`, ...), or `files`.
    pub driver: String,
    /// The device's name as the driver gives it (V4L2's card).
    pub card: String,
    /// The pixel format granted, as its fourcc (`YUYV`, `MJPG`, `GREY`, ...).
    pub format: String,
    /// The frame width granted, in pixels.
    pub width: u32,
    /// The frame height granted, in pixels.
    pub height: u32,
    /// The frame rate the driver granted; 0 when it does not say.
    pub fps_granted: f64,
    /// The rate the camera delivered at: frames delivered and dropped, per second.
    pub fps_measured: f64,
    /// The rate the daemon judged frames at (detection included): below
    /// `fps_measured` when the board cannot keep up, and the driver drops.
    pub fps_judged: f64,
    /// The median time the daemon took to judge a frame (conversion, detection,
    /// the quality gate), in milliseconds: the board's speed.
    pub judge_ms_median: f64,
    /// How long the check ran, in seconds.
    pub seconds: f64,
    /// Frames delivered (judged and bad).
    pub frames: u64,
    /// Frames that could not be used (short, flagged by the driver, undecodable).
    pub bad_frames: u64,
    /// Frames the driver dropped (gaps in its sequence numbers).
    pub dropped_frames: u64,
    /// The share of judged frames with a face in them, 0 to 1.
    pub face_share: f64,
    /// The share of judged frames that were compliant (`face-compliant`), 0 to 1.
    pub compliant_share: f64,
    /// The median width of the face, in pixels (0 when none was seen).
    pub face_width_median: u32,
    /// `capture.min_face_px`: narrower faces are too far.
    pub min_face_px: u32,
    /// The median face centre across the frame, 0 (left, as the camera sees it) to 1.
    pub face_x_median: f64,
    /// The median face centre down the frame, 0 (top) to 1.
    pub face_y_median: f64,
    /// The median of the frames' mean luma, 0 to 255.
    pub brightness_median: f64,
    /// The median share of pixels darker than 40 (more than 0.75 is too dark).
    pub dark_share_median: f64,
    /// The median mean luma of the face (below 50 is too dark).
    pub face_brightness_median: f64,
    /// The median sharpness of the face (variance of its Laplacian at 96 px wide;
    /// below `sharpness_min` is too blurry).
    pub sharpness_median: f64,
    /// The sharpness the quality gate wants.
    pub sharpness_min: f64,
    /// The CaptureFeedback code of most judged frames (see [`Self::commonest`]).
    pub commonest_feedback: String,
    /// How many judged frames got each CaptureFeedback code.
    pub feedback_counts: std::collections::HashMap<String, u64>,
    /// Plain advice for the installer, most important first; one line says the
    /// framing is good when nothing is wrong.
    pub advice: Vec<String>,
}

impl CameraReport {
    /// [`Self::commonest_feedback`] as a value, or `None` (no frame judged, or a
    /// code this crate does not know).
    pub fn commonest(&self) -> Option<crate::Feedback> {
        self.commonest_feedback.parse().ok()
    }
}

/// The reply of `CameraCheck`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Type)]
pub struct CameraCheckReply {
    /// The figures and advice.
    pub report: CameraReport,
    /// When asked for (root only): one frame, downscaled to at most 320 pixels
    /// wide, with the face box and the area the face centre must fall in drawn on
    /// it, as PNG. It is biometric data: keep it only as long as the aiming takes.
    /// Empty otherwise.
    pub frame: Vec<u8>,
}

/// One finding of `Diagnose` (`facecapturectl doctor`): a check the daemon ran
/// from its own seat, whether it passed, what it found, and what to do if not.
///
/// ```
/// let f = facecapture_dbus::Finding {
///     check: "disk".into(), passed: true,
///     detail: "2.1 GiB free in /var/lib/facecaptured".into(), advice: String::new(),
/// };
/// assert!(f.passed && f.advice.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct Finding {
    /// What was checked: `credentials`, `camera`, `awareid`, `disk`, ...
    pub check: String,
    /// Whether it passed.
    pub passed: bool,
    /// What was found, with the figures.
    pub detail: String,
    /// What to do when it failed (empty when it passed).
    pub advice: String,
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

    /// The enrollments stored on this terminal with the door of the site each
    /// was made at, by username. Admin only.
    fn list_site_enrollments(&self) -> zbus::Result<Vec<SiteEnrollment>>;

    /// Forgets the stored enrollment of `username`. Admin only.
    fn remove_enrollment(&self, username: &str) -> zbus::Result<()>;

    /// Every metric since the daemon started, by Prometheus series name (with
    /// labels) -> value; histograms as `_count` and `_sum`. Admin only.
    fn get_statistics(&self) -> zbus::Result<std::collections::HashMap<String, f64>>;

    /// The installer's check: runs the capture loop for `seconds` (1 to 30) without
    /// contacting AwareID, sends CaptureFeedback as it changes, and answers with the
    /// figures and advice; `snapshot` (root only) adds one marked-up frame. Busy
    /// while an operation is in flight. Admin only.
    fn camera_check(&self, seconds: u32, snapshot: bool) -> zbus::Result<CameraCheckReply>;

    /// What usually breaks in the field, checked from the daemon's seat: the
    /// credentials it decrypted and the device key's protection, the camera (opened
    /// for one frame, or in use by an operation), AwareID (a fresh token call, through
    /// the site's proxy), free space in the state directory. Admin only.
    fn diagnose(&self) -> zbus::Result<Vec<Finding>>;

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

    /// This door's link to its site's hub (see [`SiteState`]).
    #[zbus(property)]
    fn site(&self) -> zbus::Result<SiteState>;

    /// A step of the operation in flight (see [`crate::Operation`], [`crate::Step`]).
    #[zbus(signal)]
    fn progress(&self, operation: &str, step: &str) -> zbus::Result<()>;

    /// What the person in front of the camera should do (see [`crate::Feedback`]),
    /// sent when it changes.
    #[zbus(signal)]
    fn capture_feedback(&self, code: &str) -> zbus::Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use zbus::wire::{LE, serialized::Context, to_bytes};

    #[test]
    fn the_camera_report_travels_as_a_dictionary_and_back() {
        let report = CameraReport {
            device: "/dev/video0".into(),
            driver: "uvcvideo".into(),
            format: "YUYV".into(),
            width: 640,
            height: 480,
            fps_granted: 30.0,
            frames: 41,
            face_share: 0.5,
            commonest_feedback: "face-too-high".into(),
            feedback_counts: [("face-too-high".to_owned(), 20u64)].into(),
            advice: vec!["faces sit high in the frame".into()],
            ..CameraReport::default()
        };
        let reply = CameraCheckReply {
            report: report.clone(),
            frame: vec![0x89, b'P', b'N', b'G'],
        };
        assert_eq!(CameraCheckReply::SIGNATURE.to_string(), "(a{sv}ay)");
        let ctxt = Context::new(LE, 0);
        let bytes = to_bytes(ctxt, &reply).expect("serialize");
        let (back, _): (CameraCheckReply, _) = bytes.deserialize().expect("deserialize");
        assert_eq!(back, reply);
        assert_eq!(back.report.commonest(), Some(crate::Feedback::FaceTooHigh));

        // A newer daemon's extra key is ignored; a missing one is an error that names it.
        let mut dict: std::collections::HashMap<&str, zbus::Variant<'_>> = Default::default();
        let bytes = to_bytes(ctxt, &report).expect("serialize");
        let (full, _): (std::collections::HashMap<String, zbus::OwnedVariant>, _) =
            bytes.deserialize().expect("as a dictionary");
        for (k, v) in &full {
            dict.insert(k.as_str(), zbus::Variant::try_from(v).expect("variant"));
        }
        dict.insert("lens_temperature", zbus::Variant::from(41.5f64));
        let bytes = to_bytes(ctxt, &dict).expect("serialize");
        let (newer, _): (CameraReport, _) = bytes.deserialize().expect("extra key ignored");
        assert_eq!(newer, report);
        dict.remove("fps_granted");
        let bytes = to_bytes(ctxt, &dict).expect("serialize");
        let missing = bytes
            .deserialize::<CameraReport>()
            .expect_err("missing key");
        assert!(missing.to_string().contains("fps_granted"), "{missing}");
    }
}
