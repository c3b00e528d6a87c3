//! Logging: tracing to journald (native protocol, structured fields such as
//! OPERATION, STEP, USERNAME, HTTP_STATUS, DURATION_MS) when started by systemd
//! (`JOURNAL_STREAM` set), otherwise readable lines on stderr. `RUST_LOG` filters;
//! the default is `info` for this program and `warn` for libraries. Nothing logged
//! anywhere in the program carries secrets, tokens, registration codes or face data.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Journald,
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

/// Installs the global subscriber for a program named `identifier`.
pub fn init(identifier: &str) -> Target {
    if std::env::var_os("JOURNAL_STREAM").is_some()
        && let Ok(layer) = journald_layer(identifier)
    {
        let subscriber = tracing_subscriber::registry().with(filter()).with(layer);
        if tracing::subscriber::set_global_default(subscriber).is_ok() {
            return Target::Journald;
        }
    }
    let _ = tracing::subscriber::set_global_default(text_subscriber(filter(), std::io::stderr));
    Target::Stderr
}
