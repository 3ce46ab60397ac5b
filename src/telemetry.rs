//! Logging: JSON lines by default (what log pipelines in a cluster expect), text for a terminal.

use std::{ffi::OsStr, io::IsTerminal};

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
        // JSON is for machines: never colour, whatever the output is.
        LogFormat::Json => registry
            .with(fmt::layer().json().flatten_event(true).with_current_span(false).with_ansi(false))
            .init(),
        LogFormat::Text => {
            let ansi = colour(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR").as_deref());
            registry.with(fmt::layer().with_writer(std::io::stderr).with_ansi(ansi)).init()
        }
    }
}

/// Whether text logs get ANSI colour. Only on a terminal: in a file, a pipe or `kubectl logs` the
/// escape codes stay in the text and garble it. And never when `NO_COLOR` is set to anything but the
/// empty string (<https://no-color.org>). tracing-subscriber colours by default whatever the
/// output is, so this decides explicitly.
pub fn colour(terminal: bool, no_color: Option<&OsStr>) -> bool {
    terminal && no_color.is_none_or(OsStr::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(!colour(false, None), "a file or a pipe");
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(false, Some(OsStr::new("1"))));
        // no-color.org: set and not empty. An empty value is as good as unset.
        assert!(colour(true, Some(OsStr::new(""))));
    }
}
