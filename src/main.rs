//! consent-broker binary: parse the command line, run (`cli` sets up logging).

use clap::Parser;

/// mimalloc rather than glibc's malloc: the request path allocates small, short-lived
/// buffers on every thread, where glibc's arenas spent about a fifth of a redemption's CPU
/// (docs/performance.md). Secrets are wiped by `zeroize` before they are freed either way.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = consent_broker::cli::Cli::parse();
    std::process::ExitCode::from(consent_broker::cli::run(cli).await)
}
