//! facecaptured: a face-capture daemon for door terminals.
//!
//! See ARCHITECTURE.md for the path of a request and which module owns each step.
#![warn(missing_docs)]

// The modules marked allow(missing_docs) (and awareid::wire) are not yet
// documented item by item (issue 13); the lint holds everywhere else.
pub mod awareid;
pub mod camera;
pub mod capture;
pub mod clock;
#[allow(missing_docs)]
pub mod config;
pub mod crypto;
pub mod daemon;
pub mod detect;
pub mod lock;
pub mod logging;
#[allow(missing_docs)]
pub mod provision;
pub mod qrimage;
pub mod secret;
#[allow(missing_docs)]
pub mod storage;
#[allow(missing_docs)]
pub mod workflow;
