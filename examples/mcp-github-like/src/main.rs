//! The example MCP server, configured from the environment (not `BROKER_…`: the broker reads
//! those as its own configuration).
//!
//! Always: `CONSENT_BROKER_URL`, `CONSENT_BROKER_SERVICE_TOKEN`, `PROVIDER`, `SCOPES`
//! (space-separated), `UPSTREAM_URL`, `REQUEST_STATE_KEY` (32+ characters), and optionally
//! `WEBHOOK_SECRET` (`whsec_…`).
//!
//! `MCP_TRANSPORT=http` (the default): Streamable HTTP with MCP authorization on `MCP_BIND`
//! (default `127.0.0.1:8700`), reached by clients at `MCP_PUBLIC_URL` (default
//! `http://<MCP_BIND>`); access tokens from `MCP_AUTH_ISSUER` (the IdP's issuer URL) for the
//! resource `<MCP_PUBLIC_URL>/mcp`, scopes advertised from `MCP_AUTH_SCOPES`. The broker's
//! webhook is served on the same listener at `/webhooks/consent-broker`.
//!
//! `MCP_TRANSPORT=stdio`: one user, `MCP_SUBJECT` (there is no token on stdio); the webhook,
//! if any, on `WEBHOOK_BIND` (e.g. `127.0.0.1:8701`).

use std::time::Duration;

use consent_broker_client::{BrokerClient, WebhookSecret};
use mcp_github_like::auth::{AuthSettings, TokenVerifier};
use mcp_github_like::{GithubLike, Service, Settings, Subject, http, wire};
use rmcp::ServiceExt;
use url::Url;

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

fn env_url(name: &str) -> Result<Url, String> {
    env(name)?.parse().map_err(|e| format!("{name}: {e}"))
}

fn words(name: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let broker = BrokerClient::new(
        env_url("CONSENT_BROKER_URL")?,
        env("CONSENT_BROKER_SERVICE_TOKEN")?,
    )
    .map_err(|e| e.to_string())?;
    let webhook_secret = match std::env::var("WEBHOOK_SECRET") {
        Ok(s) => Some(WebhookSecret::parse(&s).map_err(|e| format!("WEBHOOK_SECRET: {e}"))?),
        Err(_) => None,
    };
    let service = Service::new(Settings {
        broker,
        provider: env("PROVIDER")?,
        scopes: words("SCOPES"),
        upstream: env_url("UPSTREAM_URL")?,
        webhook_secret,
        completion_wait: Duration::from_secs(120),
        request_state_key: env("REQUEST_STATE_KEY")?.into_bytes(),
    })?;
    match std::env::var("MCP_TRANSPORT").as_deref() {
        Ok("stdio") => serve_stdio(service).await,
        Ok("http") | Err(_) => serve_http(service).await,
        Ok(other) => Err(format!(
            "MCP_TRANSPORT: {other:?} is neither http nor stdio"
        )),
    }
}

async fn serve_http(service: std::sync::Arc<Service>) -> Result<(), String> {
    let bind = std::env::var("MCP_BIND").unwrap_or_else(|_| "127.0.0.1:8700".into());
    let public: Url = match std::env::var("MCP_PUBLIC_URL") {
        Ok(url) => url.parse().map_err(|e| format!("MCP_PUBLIC_URL: {e}"))?,
        Err(_) => format!("http://{bind}")
            .parse()
            .map_err(|e| format!("MCP_BIND: {e}"))?,
    };
    let endpoints = http::Endpoints::new(&public).map_err(|e| e.to_string())?;
    let verifier = TokenVerifier::new(AuthSettings {
        issuer: env_url("MCP_AUTH_ISSUER")?,
        resource: endpoints.resource.clone(),
        scopes: words("MCP_AUTH_SCOPES"),
        clock_skew: Duration::from_secs(30),
    })
    .map_err(|e| e.to_string())?;
    let host = public
        .host_str()
        .ok_or("MCP_PUBLIC_URL has no host")?
        .to_owned();
    let app = http::router(service, verifier, endpoints.clone(), vec![host]);
    let listener = tokio::net::TcpListener::bind(&bind)
        .await
        .map_err(|e| format!("{bind}: {e}"))?;
    eprintln!("MCP (Streamable HTTP) at {}", endpoints.resource);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| e.to_string())
}

async fn serve_stdio(service: std::sync::Arc<Service>) -> Result<(), String> {
    if let Ok(bind) = std::env::var("WEBHOOK_BIND") {
        let listener = tokio::net::TcpListener::bind(&bind)
            .await
            .map_err(|e| format!("{bind}: {e}"))?;
        let app = mcp_github_like::webhook::router(service.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    // The server writes into a pipe; its lines reach stdout through the wire fix.
    let (server_out, relay_in) = tokio::io::duplex(64 * 1024);
    let relay = tokio::spawn(wire::strip_stdio(relay_in, tokio::io::stdout()));
    let server = GithubLike::for_subject(service, Subject::new(env("MCP_SUBJECT")?))
        .serve((tokio::io::stdin(), server_out))
        .await
        .map_err(|e| e.to_string())?;
    server.waiting().await.map_err(|e| e.to_string())?;
    let _ = relay.await;
    Ok(())
}
