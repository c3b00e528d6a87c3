//! The package's one program by both its names, as the package installs it:
//! `facecaptured`, and `facecapturectl`, a link to it that chooses the
//! operator's CLI by its name (made once per test binary, replaced atomically).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The program, called as the daemon.
pub const DAEMON: &str = env!("CARGO_BIN_EXE_facecaptured");

/// A link named `facecapturectl` to the program, as /usr/bin/facecapturectl is.
pub fn facecapturectl() -> &'static Path {
    static LINK: OnceLock<PathBuf> = OnceLock::new();
    LINK.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bin");
        std::fs::create_dir_all(&dir).expect("the links' directory");
        let link = dir.join("facecapturectl");
        let made = dir.join(format!(".facecapturectl.{}", std::process::id()));
        let _ = std::fs::remove_file(&made);
        std::os::unix::fs::symlink(DAEMON, &made).expect("a link to the program");
        std::fs::rename(&made, &link).expect("the link in place");
        link
    })
}
