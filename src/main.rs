//! consent-broker binary: parse the command line, run (`cli` sets up logging).

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = consent_broker::cli::Cli::parse();
    std::process::ExitCode::from(consent_broker::cli::run(cli).await)
}
