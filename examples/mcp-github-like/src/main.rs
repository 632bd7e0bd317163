//! The example MCP server on stdio, configured from the environment:
//! `CONSENT_BROKER_URL`, `CONSENT_BROKER_SERVICE_TOKEN` (not `BROKER_…`: the broker reads
//! those as its own configuration), `PROVIDER`, `SCOPES` (space-separated),
//! `UPSTREAM_URL`, `MCP_SUBJECT` (the signed-in user; a real server takes it from MCP
//! authorization), `REQUEST_STATE_KEY` (32+ characters), and optionally
//! `WEBHOOK_SECRET` (`whsec_…`) with `WEBHOOK_BIND` (e.g. `127.0.0.1:8700`).

use std::time::Duration;

use consent_broker_client::{BrokerClient, WebhookSecret};
use mcp_github_like::{GithubLike, Service, Settings};
use rmcp::ServiceExt;

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let broker_url = env("CONSENT_BROKER_URL")?
        .parse()
        .map_err(|e| format!("CONSENT_BROKER_URL: {e}"))?;
    let broker = BrokerClient::new(broker_url, env("CONSENT_BROKER_SERVICE_TOKEN")?)
        .map_err(|e| e.to_string())?;
    let webhook_secret = match std::env::var("WEBHOOK_SECRET") {
        Ok(s) => Some(WebhookSecret::parse(&s).map_err(|e| format!("WEBHOOK_SECRET: {e}"))?),
        Err(_) => None,
    };
    let service = Service::new(Settings {
        broker,
        provider: env("PROVIDER")?,
        scopes: env("SCOPES")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        upstream: env("UPSTREAM_URL")?
            .parse()
            .map_err(|e| format!("UPSTREAM_URL: {e}"))?,
        webhook_secret,
        completion_wait: Duration::from_secs(120),
        request_state_key: env("REQUEST_STATE_KEY")?.into_bytes(),
    })?;
    if let Ok(bind) = std::env::var("WEBHOOK_BIND") {
        let listener = tokio::net::TcpListener::bind(&bind)
            .await
            .map_err(|e| format!("{bind}: {e}"))?;
        let app = mcp_github_like::webhook::router(service.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    let server = GithubLike::new(service, env("MCP_SUBJECT")?)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| e.to_string())?;
    server.waiting().await.map_err(|e| e.to_string())?;
    Ok(())
}
