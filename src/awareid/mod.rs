//! The AwareID REST protocol: the path table, the JSON bodies, and the blocking
//! HTTP client the daemon runs its workflows with.

pub mod client;
pub mod http;
pub mod paths;
pub mod proxy;
pub mod wire;

pub use client::{AwareIdClient, AwareIdError, HttpSettings, Warmed};
