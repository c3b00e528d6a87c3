//! The client side of facecaptured's D-Bus interface, `org.facecapture.FaceCapture1`:
//! the proxy, the errors it answers with, the bus name and object path, and the
//! values its signals and properties carry, for a door controller written in Rust.
//!
//! This crate depends on zbus only, not on the daemon: no V4L2 bindings, SQLite,
//! face detector or HTTP stack. The daemon itself serves the interface with these
//! same names, errors and values, so the two cannot drift apart.
//!
//! ```no_run
//! use facecapture_dbus::{Error, FaceCapture1Proxy};
//!
//! # async fn door() -> Result<(), Error> {
//! let bus = zbus::Connection::system().await?;
//! let daemon = FaceCapture1Proxy::new(&bus).await?;
//! match daemon.authenticate("alice").await.map_err(Error::from) {
//!     Ok(reply) if reply.granted => println!("open the door"),
//!     Ok(_) => println!("not granted"),
//!     Err(Error::NotEnrolled(why)) => println!("not enrolled here: {why}"),
//!     Err(Error::Busy(_)) => println!("someone else is at the door; try again"),
//!     Err(e) => println!("failed: {e}"),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! The interface's own documentation, with every method, argument, error and value,
//! is [`INTERFACE_XML`] (installed as
//! `/usr/share/dbus-1/interfaces/org.facecapture.FaceCapture1.xml`).
#![warn(missing_docs)]

mod error;
mod proxy;
mod values;

pub use error::Error;
pub use proxy::{
    AuthenticateReply, AuthenticateWithQrReply, CameraCheckReply, CameraReport, CaptureFeedback,
    CaptureFeedbackArgs, CaptureFeedbackStream, EnrollReply, EnrollWithQrReply, Enrollment,
    FaceCapture1Proxy, Finding, Progress, ProgressArgs, ProgressStream, SiteEnrollment, SiteState,
};
pub use values::{EnrollmentStatus, Feedback, Operation, ParseValueError, Standing, State, Step};

/// The daemon's well-known bus name.
pub const BUS_NAME: &str = "org.facecapture.FaceCapture1";
/// The path of the one object the daemon serves.
pub const OBJECT_PATH: &str = "/org/facecapture/FaceCapture1";
/// The interface's name.
pub const INTERFACE: &str = "org.facecapture.FaceCapture1";
/// The prefix of the interface's errors: `org.facecapture.FaceCapture1.Error.<Name>`.
pub const ERROR_PREFIX: &str = "org.facecapture.FaceCapture1.Error";

/// The interface's introspection XML, with its documentation: what each method,
/// argument, error, signal and property means, and what the caller should do next.
///
/// ```
/// assert!(facecapture_dbus::INTERFACE_XML.contains(r#"<method name="Authenticate">"#));
/// ```
pub const INTERFACE_XML: &str = include_str!("../org.facecapture.FaceCapture1.xml");
