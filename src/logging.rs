//! Logging: tracing to journald (native protocol, structured fields such as
//! OPERATION, STEP, USERNAME, HTTP_STATUS, DURATION_MS) when stderr is the journal
//! stream systemd gave us (`JOURNAL_STREAM` names stderr's device and inode, as
//! systemd.exec(5) says to check), otherwise readable lines on stderr. `RUST_LOG` filters;
//! the default is `info` for this program and `warn` for libraries. Nothing logged
//! anywhere in the program carries secrets, tokens, registration codes or face data.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// journald's native protocol.
    Journald,
    /// Text lines on stderr.
    Stderr,
}

/// The filter: `RUST_LOG` if set and valid, else info for us, warn for the rest.
pub fn filter() -> EnvFilter {
    EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,facecapture=info,facecaptured=info"))
}

/// The journald layer, with fields under their own names (STEP=, USERNAME=...).
pub fn journald_layer(identifier: &str) -> std::io::Result<tracing_journald::Layer> {
    Ok(tracing_journald::layer()?
        .with_field_prefix(None)
        .with_syslog_identifier(identifier.to_owned()))
}

/// A stderr-style subscriber writing to `writer` (tests capture it).
pub fn text_subscriber<W>(filter: EnvFilter, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::registry().with(filter).with(
        tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_target(false)
            .with_ansi(false),
    )
}

/// Whether `journal_stream` (`JOURNAL_STREAM`'s "DEVICE:INODE", both decimal)
/// names the file whose device and inode are `stderr`. A program started by
/// systemd with its stderr redirected (`facecaptured ... 2> file`) inherits the
/// variable but not the stream: it logs to the file.
///
/// ```
/// use facecapture::logging::is_journal_stream;
/// assert!(is_journal_stream("8:12345", (8, 12345)));
/// assert!(!is_journal_stream("8:12345", (8, 999)));
/// assert!(!is_journal_stream("garbage", (8, 12345)));
/// ```
pub fn is_journal_stream(journal_stream: &str, stderr: (u64, u64)) -> bool {
    journal_stream
        .split_once(':')
        .and_then(|(dev, ino)| Some((dev.parse::<u64>().ok()?, ino.parse::<u64>().ok()?)))
        == Some(stderr)
}

/// stderr's (device, inode), if it is open.
fn stderr_identity() -> Option<(u64, u64)> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let fd = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    let meta = std::fs::File::from(fd).metadata().ok()?;
    Some((meta.dev(), meta.ino()))
}

/// Installs the global subscriber for a program named `identifier`.
pub fn init(identifier: &str) -> Target {
    let to_journal = std::env::var("JOURNAL_STREAM")
        .ok()
        .zip(stderr_identity())
        .is_some_and(|(stream, stderr)| is_journal_stream(&stream, stderr));
    if to_journal && let Ok(layer) = journald_layer(identifier) {
        let subscriber = tracing_subscriber::registry().with(filter()).with(layer);
        if tracing::subscriber::set_global_default(subscriber).is_ok() {
            return Target::Journald;
        }
    }
    let _ = tracing::subscriber::set_global_default(text_subscriber(filter(), std::io::stderr));
    Target::Stderr
}
