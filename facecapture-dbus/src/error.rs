//! The interface's errors, one type for the daemon that answers with them and the
//! client that receives them.

/// An error of `org.facecapture.FaceCapture1`, named
/// `org.facecapture.FaceCapture1.Error.<Variant>` on the bus. Each carries a message
/// that says what went wrong (never a secret, a token or face data).
///
/// A proxy call fails with a [`zbus::Error`]; [`Error::from`] turns the daemon's
/// answers into these variants and keeps anything else (the bus refusing the call,
/// a timeout) as [`Error::ZBus`]:
///
/// ```
/// use facecapture_dbus::Error;
/// use zbus::DBusError;
///
/// let e = Error::Busy("enroll is in progress".into());
/// assert_eq!(e.name().as_str(), "org.facecapture.FaceCapture1.Error.Busy");
/// assert_eq!(e.kind(), "Busy");
/// assert_eq!(e.description(), Some("enroll is in progress"));
/// assert_eq!(e.to_string(), "org.facecapture.FaceCapture1.Error.Busy: enroll is in progress");
/// ```
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.facecapture.FaceCapture1.Error")]
pub enum Error {
    /// Not one of the daemon's own errors: the bus refused the call (AccessDenied:
    /// the caller is not in the group the method needs), the daemon is not
    /// running, the call timed out, or the reply did not match the signature.
    #[zbus(error)]
    ZBus(zbus::Error),
    /// Another operation is in flight (the message names it); nothing is queued.
    /// Try again when `State` is `idle`.
    Busy(String),
    /// `Cancel()` was called, the caller left the bus, or the daemon is stopping.
    Cancelled(String),
    /// An argument is malformed; the message names which and why.
    InvalidArgument(String),
    /// No enrollment is stored on this terminal for the username: enroll first.
    NotEnrolled(String),
    /// The camera is missing, busy, was unplugged or cannot stream; the message has
    /// advice. `CameraAvailable` says whether it can be opened now.
    CameraUnavailable(String),
    /// No compliant face (or QR code) within `capture.timeout_s`; the last
    /// CaptureFeedback said why. Ask the person to try again.
    CaptureTimeout(String),
    /// The QR code does not verify or decrypt, names a host that is not allowed,
    /// or starts the other kind of operation; the message says which.
    QrInvalid(String),
    /// AwareID refused the request; the message carries its `errorCode: errorMsg`.
    ServerRejected(String),
    /// AwareID could not be reached, timed out, failed (5xx) or answered something
    /// malformed; also the operation timeout outside capture. Try again later.
    ServerUnavailable(String),
    /// The terminal's device identity cannot be used here: its sealed device key
    /// does not open on this board (a cloned disk, a cleared or replaced TPM),
    /// or provisioning failed; the message says why. Nothing is signed. Call the
    /// operator: `facecapturectl doctor` and the journal of
    /// facecaptured-provision say what to do.
    Unprovisioned(String),
    /// This door of a site has not heard from the site's hub for longer than
    /// `site.max_stale_s`: it no longer decides alone (a person removed
    /// meanwhile would be let in). Nothing was sent to AwareID. Call the
    /// operator: the door's link to the hub is down (`facecapturectl status`).
    SiteStale(String),
    /// Anything else; the daemon's journal has the details.
    Internal(String),
}

impl Error {
    /// The last part of the error's D-Bus name (`Busy`, `NotEnrolled`, ...), or
    /// `ZBus` for errors that are not the daemon's own.
    ///
    /// ```
    /// assert_eq!(facecapture_dbus::Error::NotEnrolled("bob".into()).kind(), "NotEnrolled");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ZBus(_) => "ZBus",
            Self::Busy(_) => "Busy",
            Self::Cancelled(_) => "Cancelled",
            Self::InvalidArgument(_) => "InvalidArgument",
            Self::NotEnrolled(_) => "NotEnrolled",
            Self::CameraUnavailable(_) => "CameraUnavailable",
            Self::CaptureTimeout(_) => "CaptureTimeout",
            Self::QrInvalid(_) => "QrInvalid",
            Self::ServerRejected(_) => "ServerRejected",
            Self::ServerUnavailable(_) => "ServerUnavailable",
            Self::Unprovisioned(_) => "Unprovisioned",
            Self::SiteStale(_) => "SiteStale",
            Self::Internal(_) => "Internal",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_method_error_from_the_bus_becomes_its_variant() {
        let reply = zbus::message::Message::method_call("/org/facecapture/FaceCapture1", "Enroll")
            .build(&())
            .expect("message");
        let busy = Error::Busy("authenticate is in progress".into());
        let wire = zbus::Error::MethodError(
            zbus::DBusError::name(&busy).to_owned().into(),
            Some("authenticate is in progress".into()),
            reply.clone(),
        );
        match Error::from(wire) {
            Error::Busy(msg) => assert_eq!(msg, "authenticate is in progress"),
            e => panic!("not Busy: {e:?}"),
        }
        // A name that is not ours stays a zbus error.
        let denied = zbus::Error::MethodError(
            zbus::names::OwnedErrorName::try_from("org.freedesktop.DBus.Error.AccessDenied")
                .expect("name"),
            Some("Rejected send message".into()),
            reply,
        );
        assert!(matches!(Error::from(denied), Error::ZBus(_)));
    }
}
