//! A real MCP client (rmcp, declaring URL-mode elicitation) talks to the example MCP server
//! (`examples/mcp-github-like`, in process over an in-memory duplex transport), which gets
//! the user's upstream account through the broker: the URL elicitation reaches the client,
//! the user consents in the browser (real IdP, real upstream authorization server), the
//! broker's webhook tells the MCP server, the completion notification reaches the client,
//! and the tool answers with what the upstream says about the token.

use crate::common;

use std::time::Duration;

use common::idp::{OAUTH_PROVIDER, OAuthWorld, UPSTREAM_CLIENT};
use consent_broker::domain::WebhookKey;
use consent_broker_client::{BrokerClient, WebhookSecret};
use mcp_github_like::{GithubLike, Service, Settings};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, CustomNotification,
    ElicitRequestParams, ElicitResult, ElicitationAction, ErrorData, Implementation,
    ProtocolVersion,
};
use rmcp::service::{
    ClientLifecycleMode, ClientServiceExt, NotificationContext, RequestContext, RunningService,
    ServiceError,
};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc};

/// The MCP client: shows URL elicitations to "the user" (the test), records completions.
struct TestClient {
    capabilities: Value,
    protocol: ProtocolVersion,
    /// (url, elicitationId) of each URL elicitation received.
    elicitations: mpsc::UnboundedSender<(String, String)>,
    /// elicitationId of each `notifications/elicitation/complete` received.
    completions: mpsc::UnboundedSender<String>,
    /// 2026-07-28: the handler answers only once the user says they are done.
    user_done: Mutex<mpsc::UnboundedReceiver<()>>,
}

impl ClientHandler for TestClient {
    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let ElicitRequestParams::UrlElicitationParams {
            url,
            elicitation_id,
            ..
        } = request
        else {
            return Ok(ElicitResult::new(ElicitationAction::Decline));
        };
        let _ = self.elicitations.send((url, elicitation_id));
        if self.protocol >= ProtocolVersion::V_2026_07_28 {
            self.user_done.lock().await.recv().await;
        }
        Ok(ElicitResult::new(ElicitationAction::Accept))
    }

    async fn on_custom_notification(
        &self,
        notification: CustomNotification,
        _context: NotificationContext<RoleClient>,
    ) {
        if notification.method == "notifications/elicitation/complete"
            && let Some(id) = notification
                .params
                .as_ref()
                .and_then(|p| p["elicitationId"].as_str())
        {
            let _ = self.completions.send(id.to_owned());
        }
    }

    fn get_info(&self) -> ClientConfig {
        let capabilities: ClientCapabilities =
            serde_json::from_value(self.capabilities.clone()).unwrap();
        ClientConfig::new(capabilities, Implementation::new("test-client", "1.0"))
            .with_protocol_version(self.protocol.clone())
    }
}

struct World {
    oauth: OAuthWorld,
    client: RunningService<RoleClient, TestClient>,
    elicitations: mpsc::UnboundedReceiver<(String, String)>,
    completions: mpsc::UnboundedReceiver<String>,
    user_done: mpsc::UnboundedSender<()>,
}

/// A loopback upstream API: `GET /me` introspects the bearer token at the upstream
/// authorization server and answers who it belongs to.
async fn upstream_api(issuer: String, secret: String) -> String {
    let app = axum::Router::new().route(
        "/me",
        axum::routing::get(move |headers: axum::http::HeaderMap| {
            let (issuer, secret) = (issuer.clone(), secret.clone());
            async move {
                let token = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .unwrap_or_default()
                    .to_owned();
                let introspection: Value = reqwest::Client::new()
                    .post(format!("{issuer}/token/introspection"))
                    .basic_auth(UPSTREAM_CLIENT, Some(secret))
                    .form(&[("token", token)])
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                if introspection["active"] != true {
                    return (axum::http::StatusCode::UNAUTHORIZED, axum::Json(json!({})));
                }
                let me = json!({"login": introspection["sub"], "scope": introspection["scope"]});
                (axum::http::StatusCode::OK, axum::Json(me))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/me", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// The broker (with the example's webhook configured), the example MCP server for
/// `subject`, and a connected MCP client with these capabilities and protocol.
async fn world(subject: &str, capabilities: Value, protocol: ProtocolVersion) -> World {
    let webhook_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let webhook_url = format!(
        "http://{}{}",
        webhook_listener.local_addr().unwrap(),
        mcp_github_like::webhook::PATH
    );
    let secret = WebhookKey::generate();
    let configured = secret.clone();
    let oauth = OAuthWorld::start_with(move |c| {
        c.services[0].webhook_url = Some(webhook_url.parse().unwrap());
        c.services[0].webhook_secret = Some(configured.into());
    })
    .await;
    let upstream = upstream_api(oauth.upstream.issuer.clone(), oauth.upstream_secret.clone()).await;
    let service = Service::new(Settings {
        broker: BrokerClient::new(oauth.app.base.parse().unwrap(), oauth.app.token.as_str())
            .unwrap(),
        provider: OAUTH_PROVIDER.into(),
        scopes: vec!["api:read".into()],
        upstream: upstream.parse().unwrap(),
        webhook_secret: Some(WebhookSecret::parse(&secret).unwrap()),
        completion_wait: Duration::from_secs(120),
        request_state_key: consent_broker::random::bytes::<32>().to_vec(),
    })
    .unwrap();
    let webhooks = mcp_github_like::webhook::router(service.clone());
    tokio::spawn(async move { axum::serve(webhook_listener, webhooks).await });

    let (server_io, client_io) = tokio::io::duplex(64 * 1024);
    let server = GithubLike::new(service, subject);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    let (elicitations_tx, elicitations) = mpsc::unbounded_channel();
    let (completions_tx, completions) = mpsc::unbounded_channel();
    let (user_done, user_done_rx) = mpsc::unbounded_channel();
    let modern = protocol >= ProtocolVersion::V_2026_07_28;
    let handler = TestClient {
        capabilities,
        protocol: protocol.clone(),
        elicitations: elicitations_tx,
        completions: completions_tx,
        user_done: Mutex::new(user_done_rx),
    };
    // 2026-07-28 has no `initialize`: the client discovers the server instead.
    let client = if modern {
        let lifecycle = ClientLifecycleMode::Discover {
            preferred_versions: vec![protocol],
        };
        handler.serve_with_lifecycle(client_io, lifecycle).await
    } else {
        handler.serve(client_io).await
    }
    .unwrap();
    World {
        oauth,
        client,
        elicitations,
        completions,
        user_done,
    }
}

impl World {
    /// The user opens the consent link and connects their upstream account.
    async fn user_consents_at(&self, url: &str, subject: &str) {
        let id = url.rsplit('/').next().unwrap();
        let created = json!({"id": id, "url": url});
        let status = self
            .oauth
            .consent_to(&self.oauth.app.browser(), &created, subject)
            .await;
        assert_eq!(status["status"], "completed");
    }

    async fn whoami(&self) -> Result<CallToolResult, ServiceError> {
        self.client
            .call_tool(CallToolRequestParams::new("whoami"))
            .await
    }
}

/// The tool's text answer, parsed.
fn answer(result: &CallToolResult) -> Value {
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let text = result.content[0].as_text().expect("text").text.clone();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

fn with_url_elicitation() -> Value {
    json!({"elicitation": {"url": {}}})
}

#[tokio::test]
async fn a_client_with_url_elicitation_is_sent_to_the_broker_and_the_call_completes_after_consent()
{
    let mut w = world(
        "alice",
        with_url_elicitation(),
        ProtocolVersion::V_2025_11_25,
    )
    .await;
    let broker_base = w.oauth.app.base.clone();

    let call = {
        let peer = w.client.peer().clone();
        tokio::spawn(async move { peer.call_tool(CallToolRequestParams::new("whoami")).await })
    };
    let (url, elicitation_id) = w.elicitations.recv().await.unwrap();
    assert_eq!(
        url,
        format!("{broker_base}/e/{elicitation_id}"),
        "the URL holds only the opaque id"
    );

    w.user_consents_at(&url, "alice").await;

    assert_eq!(
        w.completions.recv().await.unwrap(),
        elicitation_id,
        "completion notified"
    );
    let result = call.await.unwrap().unwrap();
    let me = answer(&result);
    assert_eq!(me["login"], "alice");
    assert_eq!(me["scope"], "api:read");
    let text = serde_json::to_string(&result).unwrap();
    assert!(!text.contains("cbh_"), "no handle reaches the MCP client");
    assert!(
        w.oauth
            .app
            .audit_actions()
            .await
            .contains(&("webhook_delivered".into(), "success".into()))
    );

    // Connected once: the next call needs no user.
    let again = w.whoami().await.unwrap();
    assert_eq!(answer(&again)["login"], "alice");
    assert!(w.elicitations.try_recv().is_err());
}

#[tokio::test]
async fn a_client_without_url_elicitation_gets_the_32042_error_and_its_retry_succeeds() {
    let mut w = world("bob", json!({}), ProtocolVersion::V_2025_11_25).await;

    let error = match w.whoami().await {
        Err(ServiceError::McpError(e)) => e,
        other => panic!("expected the URL-elicitation-required error, got {other:?}"),
    };
    assert_eq!(error.code.0, -32042);
    let data = error.data.expect("data");
    let elicitation = &data["elicitations"][0];
    assert_eq!(elicitation["mode"], "url");
    let url = elicitation["url"].as_str().unwrap();
    let id = elicitation["elicitationId"].as_str().unwrap();

    w.user_consents_at(url, "bob").await;

    assert_eq!(
        w.completions.recv().await.unwrap(),
        id,
        "completion notified"
    );
    let result = w.whoami().await.unwrap();
    assert_eq!(answer(&result)["login"], "bob");
}

#[tokio::test]
async fn a_2026_07_28_client_gets_input_required_and_its_retry_with_the_request_state_succeeds() {
    let mut w = world(
        "carol",
        with_url_elicitation(),
        ProtocolVersion::V_2026_07_28,
    )
    .await;

    // rmcp's `call_tool` drives the rounds: the elicitation handler answers once the user
    // is done, then the client retries with the sealed `requestState`.
    let call = w.client.call_tool(CallToolRequestParams::new("whoami"));
    tokio::pin!(call);
    let (url, elicitation_id) = tokio::select! {
        e = w.elicitations.recv() => e.unwrap(),
        r = &mut call => panic!("the call ended without an elicitation: {r:?}"),
    };
    assert!(elicitation_id.is_empty(), "2026-07-28 has no elicitationId");
    w.user_consents_at(&url, "carol").await;
    w.user_done.send(()).unwrap();

    let result = call.await.unwrap();
    assert_eq!(answer(&result)["login"], "carol");
}
