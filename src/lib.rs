//! facecaptured: a face-capture daemon for door terminals.
//!
//! See ARCHITECTURE.md for the path of a request and which module owns each step.
#![warn(missing_docs)]

pub mod awareid;
pub mod camera;
pub mod capture;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod daemon;
pub mod detect;
pub mod doctor;
pub mod lock;
pub mod logging;
pub mod metrics;
pub mod names;
pub mod provision;
pub mod qrimage;
pub mod secret;
pub mod site;
pub mod storage;
pub mod workflow;
