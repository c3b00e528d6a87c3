//! How every internal failure maps onto one of them with a message that says what
//! went wrong (never a secret, a token or face data). The errors themselves
//! (the interface XML, `org.facecapture.FaceCapture1.Error.<Name>`) are the client crate's,
//! [`facecapture_dbus::Error`], so the daemon and its callers share one type.

use crate::awareid::AwareIdError;
use crate::capture::CaptureError;
use crate::storage::StorageError;
use crate::workflow::FlowError;

pub use facecapture_dbus::Error;

impl From<CaptureError> for Error {
    fn from(e: CaptureError) -> Self {
        let msg = e.to_string();
        match e {
            CaptureError::Camera(_) => Self::CameraUnavailable(msg),
            CaptureError::Timeout { .. } | CaptureError::NoQr { .. } => Self::CaptureTimeout(msg),
            CaptureError::QrInvalid(_) => Self::QrInvalid(msg),
            CaptureError::Cancelled => Self::Cancelled("the operation was cancelled".into()),
            CaptureError::Encode(_) | CaptureError::Model(_) => Self::Internal(msg),
        }
    }
}

impl From<AwareIdError> for Error {
    fn from(e: AwareIdError) -> Self {
        let msg = e.to_string();
        match e {
            AwareIdError::Rejected { .. } => Self::ServerRejected(msg),
            AwareIdError::Unavailable { .. } | AwareIdError::Malformed { .. } => {
                Self::ServerUnavailable(msg)
            }
        }
    }
}

impl From<FlowError> for Error {
    fn from(e: FlowError) -> Self {
        match e {
            FlowError::Server(e) => e.into(),
            FlowError::Capture(e) => e.into(),
            FlowError::Qr(e) => Self::QrInvalid(e.to_string()),
            e @ (FlowError::WrongMethod { .. } | FlowError::SessionUser(_)) => {
                Self::QrInvalid(e.to_string())
            }
            e => Self::Internal(e.to_string()),
        }
    }
}

impl From<StorageError> for Error {
    fn from(e: StorageError) -> Self {
        Self::Internal(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::CameraError;
    use crate::crypto::qr::QrError;
    use zbus::DBusError;

    #[test]
    fn every_failure_maps_to_its_spec_error() {
        let rejected = AwareIdError::Rejected {
            call: "enroll",
            status: 400,
            code: "USER_EXISTS".into(),
            message: "user exists".into(),
        };
        let cases: Vec<(Error, &str)> = vec![
            (FlowError::Server(rejected).into(), "ServerRejected"),
            (
                AwareIdError::Unavailable {
                    call: "token",
                    reason: "timeout".into(),
                }
                .into(),
                "ServerUnavailable",
            ),
            (
                AwareIdError::Malformed {
                    call: "addFace",
                    detail: "x".into(),
                }
                .into(),
                "ServerUnavailable",
            ),
            (FlowError::Qr(QrError::BadSignature).into(), "QrInvalid"),
            (
                FlowError::WrongMethod {
                    expected: crate::workflow::QrMethod::Enroll,
                    got: "authenticate".into(),
                }
                .into(),
                "QrInvalid",
            ),
            (CaptureError::Cancelled.into(), "Cancelled"),
            (
                CaptureError::Timeout {
                    seconds: 10,
                    last: "no-face".into(),
                }
                .into(),
                "CaptureTimeout",
            ),
            (CaptureError::NoQr { seconds: 10 }.into(), "CaptureTimeout"),
            (
                CaptureError::Camera(CameraError::Unavailable {
                    device: "/dev/video0".into(),
                    reason: "busy".into(),
                })
                .into(),
                "CameraUnavailable",
            ),
            (CaptureError::Encode("x".into()).into(), "Internal"),
            (StorageError::Identity("x".into()).into(), "Internal"),
        ];
        for (e, kind) in cases {
            assert_eq!(e.kind(), kind, "{e:?}");
            assert_eq!(
                e.name().as_str(),
                format!("org.facecapture.FaceCapture1.Error.{kind}")
            );
        }
        // The server's code and message reach the caller.
        let e: Error = AwareIdError::Rejected {
            call: "enroll",
            status: 400,
            code: "USER_EXISTS".into(),
            message: "user exists".into(),
        }
        .into();
        let text = e.description().unwrap_or_default();
        assert!(
            text.contains("USER_EXISTS") && text.contains("user exists"),
            "{text}"
        );
    }
}
