//! The Streamable HTTP face of the server, as remote MCP servers are deployed: `POST/GET
//! /mcp` (rmcp's Streamable HTTP service) behind MCP authorization, RFC 9728 protected
//! resource metadata at `/.well-known/oauth-protected-resource/mcp`, and the broker's
//! completion webhook. A request without a valid bearer token gets `401` with
//! `WWW-Authenticate: Bearer resource_metadata="…"`; a valid one carries its [`Subject`]
//! to the tool. A 2025-11-25 session belongs to the user who opened it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;
use url::Url;

use crate::auth::{PresentedToken, Subject, TokenVerifier};
use crate::{GithubLike, Service, webhook, wire};

/// Where MCP is served.
pub const MCP_PATH: &str = "/mcp";
/// RFC 9728's well-known prefix; the metadata of `/mcp` is at this path plus `/mcp`.
pub const METADATA_PREFIX: &str = "/.well-known/oauth-protected-resource";
/// The session header of 2025-11-25.
const SESSION_HEADER: &str = "mcp-session-id";

/// The URLs this server answers to, derived from its public base URL.
#[derive(Clone, Debug)]
pub struct Endpoints {
    /// The MCP endpoint, which is also the resource identifier tokens must name as audience.
    pub resource: Url,
    /// The protected resource metadata document.
    pub metadata: Url,
}

impl Endpoints {
    /// `base` is how clients reach this server (`https://mcp.example.com`).
    pub fn new(base: &Url) -> Result<Self, url::ParseError> {
        Ok(Self {
            resource: base.join(MCP_PATH)?,
            metadata: base.join(&format!("{METADATA_PREFIX}{MCP_PATH}"))?,
        })
    }
}

#[derive(Clone)]
struct AuthState {
    verifier: TokenVerifier,
    endpoints: Endpoints,
    /// 2025-11-25 session id → the user who opened it (forgotten when the client ends it).
    sessions: Arc<Mutex<HashMap<String, Subject>>>,
}

/// The whole HTTP application. `allowed_hosts` are the `Host` values accepted (DNS-rebinding
/// protection of rmcp), e.g. `["127.0.0.1", "mcp.example.com"]`.
pub fn router(
    service: Arc<Service>,
    verifier: TokenVerifier,
    endpoints: Endpoints,
    allowed_hosts: Vec<String>,
) -> Router {
    let factory_service = service.clone();
    let mcp = StreamableHttpService::new(
        move || Ok(GithubLike::new(factory_service.clone())),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default().with_allowed_hosts(allowed_hosts),
    );
    let metadata = protected_resource_metadata(&verifier, &endpoints);
    let state = AuthState {
        verifier,
        endpoints,
        sessions: Arc::default(),
    };
    let metadata_doc = metadata.clone();
    Router::new()
        .route_service(MCP_PATH, mcp)
        .layer(middleware::from_fn(wire::only_defined_fields))
        .layer(middleware::from_fn_with_state(state, require_token))
        .route(
            &format!("{METADATA_PREFIX}{MCP_PATH}"),
            get(move || std::future::ready(Json(metadata.clone()))),
        )
        .route(
            METADATA_PREFIX,
            get(move || std::future::ready(Json(metadata_doc.clone()))),
        )
        .merge(webhook::router(service))
}

/// RFC 9728: which authorization server issues tokens for this resource.
fn protected_resource_metadata(
    verifier: &TokenVerifier,
    endpoints: &Endpoints,
) -> serde_json::Value {
    let settings = verifier.settings();
    let issuer = settings.issuer.as_str();
    let issuer = if settings.issuer.path() == "/" {
        issuer.trim_end_matches('/')
    } else {
        issuer
    };
    json!({
        "resource": endpoints.resource.as_str(),
        "authorization_servers": [issuer],
        "scopes_supported": settings.scopes,
        "bearer_methods_supported": ["header"],
        "resource_name": "mcp-github-like (consent-broker example)",
    })
}

/// A `401` that tells the client where to learn how to get a token (RFC 9728 §5.1).
fn challenge(state: &AuthState, error: Option<&str>) -> Response {
    let mut value = format!(
        "Bearer resource_metadata=\"{}\"",
        state.endpoints.metadata.as_str()
    );
    let scopes = &state.verifier.settings().scopes;
    if !scopes.is_empty() {
        value.push_str(&format!(", scope=\"{}\"", scopes.join(" ")));
    }
    if let Some(error) = error {
        value.push_str(&format!(", error=\"{error}\""));
    }
    let mut response = StatusCode::UNAUTHORIZED.into_response();
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    response
}

fn bearer(request: &Request) -> Option<&str> {
    let value = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// Every MCP request: a valid token, whose user also owns the session named (2025-11-25).
async fn require_token(
    State(state): State<AuthState>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(token) = bearer(&request) else {
        return challenge(&state, None);
    };
    // Why a token was refused is not logged with the token, and not told to the caller.
    let subject = match state.verifier.verify(token).await {
        Ok(subject) => subject,
        Err(_) => return challenge(&state, Some("invalid_token")),
    };
    let session = request
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(id) = &session {
        let owner = state.sessions.lock().ok().and_then(|s| s.get(id).cloned());
        if owner.is_some_and(|owner| owner != subject) {
            // Someone else's session: as if it did not exist.
            return StatusCode::NOT_FOUND.into_response();
        }
    }
    let closing = request.method() == axum::http::Method::DELETE;
    let presented = PresentedToken(token.into());
    request.extensions_mut().insert(subject.clone());
    request.extensions_mut().insert(presented);
    let response = next.run(request).await;
    if let Some(id) = &session
        && closing
        && response.status().is_success()
        && let Ok(mut sessions) = state.sessions.lock()
    {
        sessions.remove(id);
    }
    if session.is_none()
        && let Some(id) = response
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
        && let Ok(mut sessions) = state.sessions.lock()
    {
        sessions.insert(id.to_owned(), subject);
    }
    response
}
