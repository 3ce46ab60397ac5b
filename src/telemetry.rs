//! Logging: JSON lines by default (what log pipelines in a cluster expect), text for a terminal.

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

/// Installs the global subscriber. The filter comes from `RUST_LOG`, else `info`.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Json => {
            registry.with(fmt::layer().json().flatten_event(true).with_current_span(false)).init()
        }
        LogFormat::Text => registry.with(fmt::layer().with_writer(std::io::stderr)).init(),
    }
}
