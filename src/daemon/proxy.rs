//! The client side of `org.facecapture.FaceCapture1`, for facecapturectl, tests
//! and integrators writing Rust.

#[zbus::proxy(
    interface = "org.facecapture.FaceCapture1",
    default_service = "org.facecapture.FaceCapture1",
    default_path = "/org/facecapture/FaceCapture1"
)]
pub trait FaceCapture1 {
    fn enroll(
        &self,
        username: &str,
        email: &str,
        phone_number: &str,
        first_name: &str,
        last_name: &str,
    ) -> zbus::Result<(String, i32, bool)>;

    fn enroll_with_qr(
        &self,
        session_callback_url: &str,
    ) -> zbus::Result<(String, String, i32, bool)>;

    fn authenticate(&self, username: &str) -> zbus::Result<(bool, bool, bool, f64, i32)>;

    fn authenticate_with_qr(
        &self,
        session_callback_url: &str,
    ) -> zbus::Result<(String, bool, bool, bool, f64, i32)>;

    fn cancel(&self) -> zbus::Result<()>;

    fn list_enrollments(&self) -> zbus::Result<Vec<(String, String, i64, String)>>;

    fn remove_enrollment(&self, username: &str) -> zbus::Result<()>;

    #[zbus(property)]
    fn state(&self) -> zbus::Result<String>;

    #[zbus(property, name = "DeviceId")]
    fn device_id(&self) -> zbus::Result<String>;

    #[zbus(property)]
    fn device_key_protection(&self) -> zbus::Result<String>;

    #[zbus(property)]
    fn camera_available(&self) -> zbus::Result<bool>;

    #[zbus(property)]
    fn version(&self) -> zbus::Result<String>;

    #[zbus(signal)]
    fn progress(&self, operation: &str, step: &str) -> zbus::Result<()>;

    #[zbus(signal)]
    fn capture_feedback(&self, code: &str) -> zbus::Result<()>;
}
