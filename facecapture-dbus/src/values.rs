//! The values the interface's signals, properties and replies carry as strings or
//! integers, as enums: each converts to and from its wire form.

/// A wire string that is not one of a value type's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseValueError {
    /// The value type (`CaptureFeedback code`, `State`, ...).
    pub what: &'static str,
    /// The string that was not one of its names.
    pub got: String,
}

impl std::fmt::Display for ParseValueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} is not a {}", self.got, self.what)
    }
}

impl std::error::Error for ParseValueError {}

/// An enum whose values travel as fixed strings: `as_str`, `ALL`, `Display` and
/// `FromStr`, from one table.
macro_rules! wire_strings {
    ($(#[$meta:meta])* $name:ident, $what:literal {
        $($(#[$vmeta:meta])* $variant:ident = $wire:literal,)+
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in the order the interface lists them.
            pub const ALL: &'static [$name] = &[$(Self::$variant,)+];

            /// The value as the interface carries it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $wire,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = ParseValueError;

            fn from_str(s: &str) -> Result<Self, ParseValueError> {
                match s {
                    $($wire => Ok(Self::$variant),)+
                    _ => Err(ParseValueError { what: $what, got: s.to_owned() }),
                }
            }
        }
    };
}

wire_strings! {
    /// The code of a `CaptureFeedback` signal: what the person in front of the
    /// camera should do. The daemon tests a frame in this order and sends the first
    /// that fails (or `face-compliant`), when it changes.
    ///
    /// Left and right are as the camera sees the scene (the frame's left), which is
    /// the person's right: [`Feedback::advice`] words it for the person.
    ///
    /// ```
    /// use facecapture_dbus::Feedback;
    /// let code: Feedback = "face-on-left".parse().unwrap();
    /// assert_eq!(code, Feedback::FaceOnLeft);
    /// assert_eq!(code.advice(), "Move a little to your left");
    /// assert!("face-sideways".parse::<Feedback>().is_err());
    /// ```
    Feedback, "CaptureFeedback code" {
        /// One face, centred, the right size, lit and sharp: the frame is captured.
        FaceCompliant = "face-compliant",
        /// No face in the frame.
        NoFace = "no-face",
        /// More than one face: only the person enrolling or authenticating may be in view.
        MultipleFaces = "multiple-faces",
        /// The face is too small in the frame: the person should come closer.
        FaceTooFar = "face-too-far",
        /// The face is too large in the frame: the person should step back.
        FaceTooClose = "face-too-close",
        /// The face is left of centre in the frame (the person's right).
        FaceOnLeft = "face-on-left",
        /// The face is right of centre in the frame (the person's left).
        FaceOnRight = "face-on-right",
        /// The face is above the frame's ideal line.
        FaceTooHigh = "face-too-high",
        /// The face is below the frame's ideal line.
        FaceTooLow = "face-too-low",
        /// The frame or the face is too dark.
        TooDark = "too-dark",
        /// The face is not sharp (motion or focus).
        TooBlurry = "too-blurry",
    }
}

impl Feedback {
    /// What a door display should tell the person, in plain English.
    pub const fn advice(self) -> &'static str {
        match self {
            Self::FaceCompliant => "Hold still",
            Self::NoFace => "Look at the camera",
            Self::MultipleFaces => "Only one person in front of the camera, please",
            Self::FaceTooFar => "Come closer",
            Self::FaceTooClose => "Step back a little",
            // The frame's left is the person's right: they move to their left.
            Self::FaceOnLeft => "Move a little to your left",
            Self::FaceOnRight => "Move a little to your right",
            Self::FaceTooHigh => "Lower your head a little",
            Self::FaceTooLow => "Raise your head a little",
            Self::TooDark => "Face the light, or move somewhere brighter",
            Self::TooBlurry => "Hold still",
        }
    }
}

wire_strings! {
    /// The `step` of a `Progress` signal: the AwareID call (or the capture) the
    /// operation has reached.
    ///
    /// ```
    /// assert_eq!("verify-face".parse(), Ok(facecapture_dbus::Step::VerifyFace));
    /// ```
    Step, "Progress step" {
        /// Getting an access token from the identity service.
        Token = "token",
        /// Fetching the public key the face package is encrypted with.
        PublicKey = "public-key",
        /// Validating the QR code's session with AwareID (the QR flows).
        ValidateSession = "validate-session",
        /// Creating the enrollment.
        Enroll = "enroll",
        /// Registering this terminal as the person's device.
        AddDevice = "add-device",
        /// The calls before it are done and the flow waits for the face; the
        /// capture itself began with the call (CaptureFeedback may come earlier).
        Capture = "capture",
        /// Sending the face for enrollment.
        AddFace = "add-face",
        /// Starting the authentication.
        Authenticate = "authenticate",
        /// Proving this terminal's device key.
        VerifyDevice = "verify-device",
        /// Sending the face for matching.
        VerifyFace = "verify-face",
        /// The workflow is done; the reply follows.
        Done = "done",
    }
}

wire_strings! {
    /// The `operation` of a `Progress` signal: which method is running.
    ///
    /// ```
    /// assert_eq!(facecapture_dbus::Operation::EnrollQr.as_str(), "enroll-qr");
    /// ```
    Operation, "operation" {
        /// `Enroll`.
        Enroll = "enroll",
        /// `EnrollWithQr`.
        EnrollQr = "enroll-qr",
        /// `Authenticate`.
        Authenticate = "authenticate",
        /// `AuthenticateWithQr`.
        AuthenticateQr = "authenticate-qr",
        /// `CameraCheck`: the installer's check; no AwareID call, no decision.
        CameraCheck = "camera-check",
    }
}

wire_strings! {
    /// The `State` property.
    ///
    /// ```
    /// assert_eq!("scanning-qr".parse(), Ok(facecapture_dbus::State::ScanningQr));
    /// ```
    State, "State" {
        /// No operation in flight: a call will start at once.
        Idle = "idle",
        /// Capturing a face.
        Capturing = "capturing",
        /// Looking for a QR code in the camera's frames.
        ScanningQr = "scanning-qr",
        /// Waiting for AwareID.
        ContactingServer = "contacting-server",
    }
}

wire_strings! {
    /// The standing of an enrollment in `ListEnrollments`.
    ///
    /// ```
    /// assert_eq!("enrolled".parse(), Ok(facecapture_dbus::Standing::Enrolled));
    /// ```
    Standing, "enrollment standing" {
        /// The stored registration code is in force.
        Enrolled = "enrolled",
        /// A re-enrollment of this user is running now.
        Reenrolling = "reenrolling",
        /// A re-enrollment was cut off after it began; the next Authenticate settles
        /// it (it works, or answers NotEnrolled: enroll again).
        ReenrollmentInterrupted = "reenrollment-interrupted",
        /// Made under a device identity this terminal no longer holds (a site
        /// identity since replaced): Authenticate answers NotEnrolled; enroll again.
        EnrollAgain = "enroll-again",
    }
}

/// `enrollment_status` and `auth_status` in the replies: AwareID's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EnrollmentStatus {
    /// 0: failed (for an authentication, also: the maximum attempts were reached).
    Failed,
    /// 1: pending, e.g. no live face.
    Pending,
    /// 2: complete.
    Complete,
}

impl EnrollmentStatus {
    /// The status for its wire number, or `None` for a number AwareID does not use.
    ///
    /// ```
    /// use facecapture_dbus::EnrollmentStatus;
    /// assert_eq!(EnrollmentStatus::from_wire(2), Some(EnrollmentStatus::Complete));
    /// assert_eq!(EnrollmentStatus::from_wire(7), None);
    /// ```
    pub const fn from_wire(n: i32) -> Option<Self> {
        match n {
            0 => Some(Self::Failed),
            1 => Some(Self::Pending),
            2 => Some(Self::Complete),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_goes_to_its_wire_string_and_back() {
        fn round_trip<T>(all: &[T])
        where
            T: Copy + PartialEq + std::fmt::Debug + std::fmt::Display + std::str::FromStr,
            T::Err: std::fmt::Debug,
        {
            let mut seen = std::collections::HashSet::new();
            for &v in all {
                let s = v.to_string();
                assert!(seen.insert(s.clone()), "{s} twice");
                assert_eq!(s.parse::<T>().expect("parse"), v);
            }
        }
        round_trip(Feedback::ALL);
        round_trip(Step::ALL);
        round_trip(Operation::ALL);
        round_trip(State::ALL);
        round_trip(Standing::ALL);
        assert_eq!(Feedback::ALL.len(), 11);
        let e = "Idle".parse::<State>().expect_err("case matters");
        assert_eq!(e.to_string(), "\"Idle\" is not a State");
    }

    #[test]
    fn the_interface_xml_lists_every_value() {
        let xml = crate::INTERFACE_XML;
        for s in Feedback::ALL.iter().map(|v| v.as_str()) {
            assert!(xml.contains(s), "the XML does not list feedback {s}");
        }
        for s in Step::ALL.iter().map(|v| v.as_str()) {
            assert!(xml.contains(s), "the XML does not list step {s}");
        }
        for s in Operation::ALL.iter().map(|v| v.as_str()) {
            assert!(xml.contains(s), "the XML does not list operation {s}");
        }
        for s in State::ALL.iter().map(|v| v.as_str()) {
            assert!(xml.contains(s), "the XML does not list state {s}");
        }
        for s in Standing::ALL.iter().map(|v| v.as_str()) {
            assert!(xml.contains(s), "the XML does not list standing {s}");
        }
        for f in Feedback::ALL {
            assert!(
                xml.contains(f.advice()),
                "the XML does not give the advice for {f}"
            );
        }
    }
}
