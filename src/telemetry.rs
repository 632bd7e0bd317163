//! Logging: `tracing` to stderr, filtered by `RUST_LOG` (default `info`). Log lines carry
//! ids and outcomes only; secrets are held in types that do not print.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
