//! The configuration loader (`Config::load`): any file at `--config`, for the
//! daemon (every key checked) and for the offline tools.
#![no_main]

use facecapture::config::{Config, Environment, Need};
use libfuzzer_sys::fuzz_target;
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    let Ok(mut file) = tempfile::NamedTempFile::new() else {
        return;
    };
    if file.write_all(data).is_err() {
        return;
    }
    let env = Environment::default();
    let _ = Config::load(Some(file.path()), &env, Need::Daemon);
    let _ = Config::load(Some(file.path()), &env, Need::Nothing);
});
