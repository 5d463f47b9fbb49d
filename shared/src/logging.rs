//! Log output: JSON lines in Lambda (CloudWatch parses them), readable text locally.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `RUST_LOG` sets the filter (default `info`); an invalid
/// value is reported and replaced by the default rather than stopping start-up.
pub fn init(json: bool) {
    use std::io::IsTerminal as _;

    let (filter, invalid) = match std::env::var("RUST_LOG") {
        Ok(value) => match EnvFilter::try_new(&value) {
            Ok(filter) => (filter, None),
            Err(error) => (EnvFilter::new("info"), Some((value, error))),
        },
        Err(_) => (EnvFilter::new("info"), None),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // `try_init` fails only when a subscriber is already installed, which is fine to keep.
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init()
    } else {
        builder.with_target(true).try_init()
    };
    if let Some((value, error)) = invalid {
        tracing::warn!(value = %value, error = %error, "RUST_LOG is invalid; logging at info");
    }
}
