//! consent-broker binary: parse the command line, set up logging, run.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    consent_broker::telemetry::init();
    let cli = consent_broker::cli::Cli::parse();
    std::process::ExitCode::from(consent_broker::cli::run(cli).await)
}
