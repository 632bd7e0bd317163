//! The example MCP server (`examples/mcp-github-like`) as people deploy it: Streamable HTTP on
//! loopback, MCP authorization with JWT access tokens from the real test IdP (oidc-provider,
//! resource = the example's `/mcp`), driven by a real rmcp client on both protocol revisions
//! (2025-11-25 with `initialize` and sessions, 2026-07-28 stateless). The client reaches the
//! server through a recording proxy, so every MCP message either way is captured and checked
//! for credentials. The user consents in the broker's pages (signed in at the same IdP). The
//! broker requires proof of the user (`subject_proof = "required"`): every create carries the
//! access token the example verified, as `subject_token`.

use crate::common;

use std::pin::Pin;
use std::sync::{Arc, Mutex as StdMutex};
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine;
use common::idp::{OAUTH_PROVIDER, OAuthWorld, UPSTREAM_CLIENT, through_idp};
use common::{API_KEY_PROVIDER, Browser, GOOD_KEY, TERMS_PROVIDER};
use consent_broker::config::{IssuerKind, SubjectProof, TrustedIssuerConfig};
use consent_broker::domain::WebhookKey;
use consent_broker_client::{BrokerClient, WebhookSecret};
use mcp_github_like::auth::{AuthSettings, TokenVerifier};
use mcp_github_like::http::Endpoints;
use mcp_github_like::{Service, Settings};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, CustomNotification,
    ElicitRequestParams, ElicitResult, ElicitationAction, ErrorData, Implementation,
    ProtocolVersion,
};
use rmcp::service::{
    ClientLifecycleMode, ClientServiceExt, NotificationContext, RequestContext, RunningService,
    ServiceError,
};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};
use sha2::Digest;
use tokio::sync::{Mutex, mpsc};

/// Every wait in these tests ends by this bound (a hang fails, it does not stall CI).
const BOUND: Duration = Duration::from_secs(60);
const MCP_CLIENT: &str = "mcp-client";
const MCP_CLIENT_REDIRECT: &str = "http://127.0.0.1:9/mcp-client/callback";
const MCP_SCOPE: &str = "mcp:tools";

async fn bounded<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(BOUND, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {BOUND:?}"))
}

/// Everything that crossed the proxy, both ways, as sent.
#[derive(Clone, Default)]
struct Wire(Arc<StdMutex<Vec<u8>>>);

impl Wire {
    fn push(&self, bytes: &[u8]) {
        self.0.lock().unwrap().extend_from_slice(bytes);
        self.0.lock().unwrap().push(b'\n');
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// A response body relayed chunk by chunk (SSE streams stay open while a tool runs).
struct Relay(mpsc::Receiver<bytes::Bytes>);

impl hyper::body::Body for Relay {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(hyper::body::Frame::data(c))))
    }
}

/// A loopback proxy in front of `target` that records every body, request and response.
async fn recording_proxy(listener: tokio::net::TcpListener, target: String, wire: Wire) {
    let client = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let (client, target, wire) = (client.clone(), target.clone(), wire.clone());
        async move {
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, 16 << 20).await.unwrap();
            wire.push(&body);
            let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            let mut forward = client.request(parts.method.clone(), format!("{target}{path}"));
            for (name, value) in &parts.headers {
                if name != axum::http::header::HOST && name != axum::http::header::CONTENT_LENGTH {
                    forward = forward.header(name, value);
                }
            }
            let mut upstream = forward.body(body).send().await.unwrap();
            let mut response = axum::response::Response::builder().status(upstream.status());
            for (name, value) in upstream.headers() {
                if name != axum::http::header::CONTENT_LENGTH
                    && name != axum::http::header::TRANSFER_ENCODING
                {
                    response = response.header(name, value);
                }
            }
            let (tx, rx) = mpsc::channel(16);
            tokio::spawn(async move {
                while let Ok(Some(chunk)) = upstream.chunk().await {
                    wire.push(&chunk);
                    if tx.send(chunk).await.is_err() {
                        break;
                    }
                }
            });
            response.body(axum::body::Body::new(Relay(rx))).unwrap()
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
}

/// The upstream API: `GET /me` answers for an OAuth token (introspected at the upstream
/// authorization server), for the API key in `X-Acme-Key`, or, with no credential at all
/// (a terms grant has none to send), that it got none.
async fn upstream_api(issuer: String, secret: String) -> String {
    let app = axum::Router::new().route(
        "/me",
        axum::routing::get(move |headers: axum::http::HeaderMap| {
            let (issuer, secret) = (issuer.clone(), secret.clone());
            async move {
                let unauthorized = (axum::http::StatusCode::UNAUTHORIZED, axum::Json(json!({})));
                if let Some(key) = headers.get("x-acme-key") {
                    if key != GOOD_KEY {
                        return unauthorized;
                    }
                    let me = json!({"project": "acme-reports", "plan": "pro"});
                    return (axum::http::StatusCode::OK, axum::Json(me));
                }
                let Some(authorization) = headers.get("authorization") else {
                    let me = json!({"credential": "none"});
                    return (axum::http::StatusCode::OK, axum::Json(me));
                };
                let token = Some(authorization)
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
                    return unauthorized;
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

/// The MCP client: shows URL elicitations to "the user" (the test), records completions.
struct TestClient {
    capabilities: Value,
    protocol: ProtocolVersion,
    /// What "the user" answers to a URL elicitation.
    answer: ElicitationAction,
    /// (url, elicitationId) of each URL elicitation received.
    elicitations: mpsc::UnboundedSender<(String, String)>,
    /// elicitationId of each `notifications/elicitation/complete` received.
    completions: mpsc::UnboundedSender<String>,
    /// 2026-07-28: an accepting handler answers only once the user says they are done.
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
        if self.answer == ElicitationAction::Accept
            && self.protocol >= ProtocolVersion::V_2026_07_28
        {
            self.user_done.lock().await.recv().await;
        }
        Ok(ElicitResult::new(self.answer.clone()))
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

/// The broker with both IdP roles, the upstream API, the example MCP server on HTTP, and the
/// recording proxy clients reach it through.
struct World {
    oauth: OAuthWorld,
    /// The MCP endpoint as clients reach it (through the proxy): also the token audience.
    endpoints: Endpoints,
    wire: Wire,
}

/// A connected MCP client and what it saw.
struct Session {
    client: RunningService<RoleClient, TestClient>,
    elicitations: mpsc::UnboundedReceiver<(String, String)>,
    completions: mpsc::UnboundedReceiver<String>,
    user_done: mpsc::UnboundedSender<()>,
}

impl World {
    /// The example asks for `provider` with `scopes`.
    async fn start(provider: &str, scopes: &[&str]) -> World {
        Self::start_with(provider, scopes, 3600, Duration::from_secs(30)).await
    }

    /// … with the IdP's access tokens living `token_ttl` seconds, and the example waiting
    /// `completion_wait` for a user who said they would go to the consent page.
    async fn start_with(
        provider: &str,
        scopes: &[&str],
        token_ttl: u64,
        completion_wait: Duration,
    ) -> World {
        let proxy_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let public: url::Url = format!("http://{}", proxy_listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let endpoints = Endpoints::new(&public).unwrap();
        let server_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server_base = format!("http://{}", server_listener.local_addr().unwrap());
        let webhook_url = format!("{server_base}{}", mcp_github_like::webhook::PATH);
        let secret = WebhookKey::generate();
        let configured = secret.clone();
        let idp_extra = json!({
            "resource": endpoints.resource.as_str(),
            "scopes": MCP_SCOPE,
            "accessTokenFormat": "jwt",
            "accessTokenTtl": token_ttl,
            "clients": [{"client_id": MCP_CLIENT, "token_endpoint_auth_method": "none",
                         "redirect_uris": [MCP_CLIENT_REDIRECT], "grant_types": ["authorization_code"]}],
        });
        let resource = endpoints.resource.to_string();
        let oauth = OAuthWorld::start_full(3600, idp_extra, move |c| {
            c.services[0].webhook_url = Some(webhook_url.parse().unwrap());
            c.services[0].webhook_secret = Some(configured.into());
            // Proof of the user: the example forwards the access token it verified as
            // `subject_token`, and the broker checks it against the IdP for this resource.
            let idp = c.identity.oidc.as_ref().unwrap().issuer.clone();
            c.trusted_issuers = vec![TrustedIssuerConfig {
                id: "idp".into(),
                issuer: idp.clone(),
                jwks_url: format!("{idp}/jwks").parse().unwrap(),
                kind: IssuerKind::Users,
                algorithms: vec!["RS256".into()],
                subject_claim: "sub".into(),
            }];
            c.services[0].subject_proof = SubjectProof::Required;
            c.services[0].resource = Some(resource);
        })
        .await;
        let upstream =
            upstream_api(oauth.upstream.issuer.clone(), oauth.upstream_secret.clone()).await;
        let service = Service::new(Settings {
            broker: BrokerClient::new(oauth.app.base.parse().unwrap(), oauth.app.token.as_str())
                .unwrap(),
            provider: provider.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            upstream: upstream.parse().unwrap(),
            webhook_secret: Some(WebhookSecret::parse(&secret).unwrap()),
            completion_wait,
            request_state_key: consent_broker::random::bytes::<32>().to_vec(),
        })
        .unwrap();
        let verifier = TokenVerifier::new(AuthSettings {
            issuer: oauth.idp.issuer.parse().unwrap(),
            resource: endpoints.resource.clone(),
            scopes: vec![MCP_SCOPE.into()],
            clock_skew: Duration::ZERO,
        })
        .unwrap();
        let app = mcp_github_like::http::router(
            service,
            verifier,
            endpoints.clone(),
            vec!["127.0.0.1".into()],
        );
        tokio::spawn(async move { axum::serve(server_listener, app).await });
        let wire = Wire::default();
        recording_proxy(proxy_listener, server_base, wire.clone()).await;
        World {
            oauth,
            endpoints,
            wire,
        }
    }

    /// An access token for this MCP server from the IdP, as an MCP client gets one: the
    /// authorization code flow with PKCE and `resource` = the MCP endpoint, `login` signing in.
    async fn access_token(&self, login: &str) -> String {
        let issuer = &self.oauth.idp.issuer;
        let verifier = consent_broker::random::token::<32>();
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()));
        let mut authorize = url::Url::parse(&format!("{issuer}/auth")).unwrap();
        authorize
            .query_pairs_mut()
            .append_pair("client_id", MCP_CLIENT)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", MCP_CLIENT_REDIRECT)
            .append_pair("scope", MCP_SCOPE)
            .append_pair("resource", self.endpoints.resource.as_str())
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", "s1");
        let browser = Browser::new(issuer);
        let is_callback = |u: &reqwest::Url| u.as_str().starts_with(MCP_CLIENT_REDIRECT);
        let login_page = browser.open(authorize.as_str()).await;
        let callback = through_idp(&browser, login_page, login, is_callback)
            .await
            .stopped();
        let code = callback
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .expect("authorization code");
        let token: Value = reqwest::Client::new()
            .post(format!("{issuer}/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", MCP_CLIENT_REDIRECT),
                ("code_verifier", &verifier),
                ("client_id", MCP_CLIENT),
                ("resource", self.endpoints.resource.as_str()),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let access = token["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("token answer: {token}"));
        assert_eq!(access.split('.').count(), 3, "a JWT access token");
        access.to_owned()
    }

    /// rmcp's Streamable HTTP client transport settings, with the bearer token if any.
    fn transport(&self, token: Option<&str>) -> StreamableHttpClientTransportConfig {
        let config =
            StreamableHttpClientTransportConfig::with_uri(self.endpoints.resource.as_str());
        match token {
            Some(token) => config.auth_header(token),
            None => config,
        }
    }

    /// Connects an MCP client with these capabilities and protocol as the token's user.
    async fn connect(
        &self,
        token: &str,
        capabilities: Value,
        protocol: ProtocolVersion,
        answer: ElicitationAction,
    ) -> Session {
        let (elicitations_tx, elicitations) = mpsc::unbounded_channel();
        let (completions_tx, completions) = mpsc::unbounded_channel();
        let (user_done, user_done_rx) = mpsc::unbounded_channel();
        let handler = TestClient {
            capabilities,
            protocol: protocol.clone(),
            answer,
            elicitations: elicitations_tx,
            completions: completions_tx,
            user_done: Mutex::new(user_done_rx),
        };
        let transport = StreamableHttpClientTransport::from_config(self.transport(Some(token)));
        let client = bounded("connect", async {
            if protocol >= ProtocolVersion::V_2026_07_28 {
                // 2026-07-28 has no `initialize`: the client discovers the server instead.
                let lifecycle = ClientLifecycleMode::Discover {
                    preferred_versions: vec![protocol],
                };
                handler.serve_with_lifecycle(transport, lifecycle).await
            } else {
                handler.serve(transport).await
            }
        })
        .await
        .unwrap();
        Session {
            client,
            elicitations,
            completions,
            user_done,
        }
    }

    /// Signs `login` in at the broker through the IdP (a fresh browser) and returns the
    /// consent page of `url`.
    async fn consent_page(&self, url: &str, login: &str) -> (Browser, common::Page) {
        let browser = self.oauth.app.browser();
        let page = self.oauth.open_signed_in(&browser, url, login).await;
        page.assert_shows("Service A requests access");
        (browser, page)
    }

    /// The user connects their upstream OAuth account at the consent link.
    async fn user_connects_oauth(&self, url: &str, login: &str) {
        let id = url.rsplit('/').next().unwrap();
        let created = json!({"id": id, "url": url});
        let status = self
            .oauth
            .consent_to(&self.oauth.app.browser(), &created, login)
            .await;
        assert_eq!(status["status"], "completed");
    }

    /// The user accepts the terms at the consent link.
    async fn user_accepts_terms(&self, url: &str, login: &str) {
        let id = url.rsplit('/').next().unwrap();
        let (browser, consent) = self.consent_page(url, login).await;
        consent.assert_shows("Acme AI terms");
        let done = browser
            .submit(&format!("/e/{id}/approve"), &[("csrf", &consent.csrf())])
            .await;
        done.assert_shows("Connected");
    }

    /// The user enters their API key at the consent link.
    async fn user_enters_api_key(&self, url: &str, login: &str) {
        let id = url.rsplit('/').next().unwrap();
        let (browser, consent) = self.consent_page(url, login).await;
        let form = browser
            .submit(&format!("/e/{id}/approve"), &[("csrf", &consent.csrf())])
            .await;
        let done = browser
            .submit(
                &format!("/e/{id}/api-key"),
                &[("csrf", &form.csrf()), ("api_key", GOOD_KEY)],
            )
            .await;
        done.assert_shows("Connected");
        assert_eq!(self.oauth.app.elicitation(id).await["status"], "completed");
    }
}

impl Session {
    async fn whoami(&self) -> Result<CallToolResult, ServiceError> {
        bounded(
            "tools/call",
            self.client.call_tool(CallToolRequestParams::new("whoami")),
        )
        .await
    }
}

/// The tool's text answer, parsed.
fn answer(result: &CallToolResult) -> Value {
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let text = result.content[0].as_text().expect("text").text.clone();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

fn tool_error_text(result: &CallToolResult) -> String {
    assert_eq!(result.is_error, Some(true), "{result:?}");
    result.content[0].as_text().expect("text").text.clone()
}

fn with_url_elicitation() -> Value {
    json!({"elicitation": {"url": {}}})
}

fn revisions() -> [ProtocolVersion; 2] {
    [ProtocolVersion::V_2025_11_25, ProtocolVersion::V_2026_07_28]
}

#[tokio::test]
async fn a_call_without_a_valid_token_is_refused_with_a_pointer_to_the_resource_metadata() {
    let w = World::start(API_KEY_PROVIDER, &["read"]).await;
    let metadata_url = w.endpoints.metadata.as_str();

    // What any HTTP client sees.
    let http = reqwest::Client::new();
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "curl", "version": "1"}}});
    for token in [
        None,
        Some("not-a-jwt"),
        Some("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9."),
    ] {
        let mut request = http
            .post(w.endpoints.resource.as_str())
            .header("accept", "application/json, text/event-stream")
            .json(&initialize);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let refused = request.send().await.unwrap();
        assert_eq!(refused.status(), 401, "token {token:?}");
        let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.starts_with(&format!("Bearer resource_metadata=\"{metadata_url}\"")),
            "{challenge}"
        );
        assert_eq!(
            challenge.contains("error=\"invalid_token\""),
            token.is_some(),
            "{challenge}"
        );
    }
    let metadata: Value = http
        .get(metadata_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["resource"], w.endpoints.resource.as_str());
    assert_eq!(
        metadata["authorization_servers"],
        json!([w.oauth.idp.issuer])
    );

    // What a real MCP client sees, on both revisions: it cannot even start.
    for protocol in revisions() {
        let handler = TestClient {
            capabilities: with_url_elicitation(),
            protocol: protocol.clone(),
            answer: ElicitationAction::Accept,
            elicitations: mpsc::unbounded_channel().0,
            completions: mpsc::unbounded_channel().0,
            user_done: Mutex::new(mpsc::unbounded_channel().1),
        };
        let transport = StreamableHttpClientTransport::from_config(w.transport(None));
        let error = bounded("connect without a token", async {
            if protocol >= ProtocolVersion::V_2026_07_28 {
                let lifecycle = ClientLifecycleMode::Discover {
                    preferred_versions: vec![protocol.clone()],
                };
                handler
                    .serve_with_lifecycle(transport, lifecycle)
                    .await
                    .err()
            } else {
                handler.serve(transport).await.err()
            }
        })
        .await
        .unwrap_or_else(|| panic!("{protocol:?}: connected without a token"));
        let error = format!("{error:?}");
        assert!(error.contains(metadata_url), "{protocol:?}: {error}");
    }

    // A token from the right IdP for another resource is refused too (audience).
    let token = w.access_token("alice").await;
    let other = World::start(API_KEY_PROVIDER, &["read"]).await;
    let refused = http
        .post(other.endpoints.resource.as_str())
        .header("accept", "application/json, text/event-stream")
        .bearer_auth(&token)
        .json(&initialize)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
}

#[tokio::test]
async fn a_2026_07_28_client_without_url_elicitation_gets_32021_with_the_required_capability() {
    let w = World::start(API_KEY_PROVIDER, &["read"]).await;
    let token = w.access_token("dave").await;
    let s = w
        .connect(
            &token,
            json!({}),
            ProtocolVersion::V_2026_07_28,
            ElicitationAction::Accept,
        )
        .await;

    let error = match s.whoami().await {
        Err(ServiceError::McpError(e)) => e,
        other => panic!("expected -32021, got {other:?}"),
    };
    assert_eq!(error.code.0, -32021);
    let data = error.data.expect("data");
    assert_eq!(
        data["requiredCapabilities"],
        json!({"elicitation": {"url": {}}})
    );
    assert!(
        !w.wire.text().contains("input_required"),
        "no elicitation sent"
    );
}

#[tokio::test]
async fn declining_the_elicitation_ends_the_call_with_a_tool_error_in_one_round() {
    let w = World::start(API_KEY_PROVIDER, &["read"]).await;
    for (login, protocol) in ["erin", "frank"].into_iter().zip(revisions()) {
        for answer in [ElicitationAction::Decline, ElicitationAction::Cancel] {
            let token = w.access_token(login).await;
            let mut s = w
                .connect(
                    &token,
                    with_url_elicitation(),
                    protocol.clone(),
                    answer.clone(),
                )
                .await;
            let result = s.whoami().await.unwrap();
            let text = tool_error_text(&result);
            assert!(
                text.contains("not connected"),
                "{protocol:?} {answer:?}: {text}"
            );
            assert!(s.elicitations.try_recv().is_ok(), "the user was asked");
            assert!(
                s.elicitations.try_recv().is_err(),
                "{protocol:?} {answer:?}: asked only once"
            );
        }
    }
}

/// Asserts no credential crossed the MCP connection: not the key, not the OAuth token, no
/// grant handle; and that the capture did see the journey (or this could not fail).
fn assert_no_credential_on_the_wire(w: &World, secrets: &[&str], seen: &str) {
    let wire = w.wire.text();
    assert!(wire.contains(seen), "the capture holds the journey");
    for secret in secrets {
        assert!(!wire.contains(secret), "a credential crossed MCP");
    }
    assert!(!wire.contains("cbh_"), "a grant handle crossed MCP");
}

#[tokio::test]
async fn an_api_key_journey_on_2025_11_25_returns_the_upstream_data_and_no_key_crosses_mcp() {
    let w = World::start(API_KEY_PROVIDER, &["read"]).await;
    let token = w.access_token("alice").await;
    let mut s = w
        .connect(
            &token,
            with_url_elicitation(),
            ProtocolVersion::V_2025_11_25,
            ElicitationAction::Accept,
        )
        .await;

    let call = {
        let peer = s.client.peer().clone();
        tokio::spawn(async move { peer.call_tool(CallToolRequestParams::new("whoami")).await })
    };
    let (url, elicitation_id) = bounded("elicitation", s.elicitations.recv()).await.unwrap();
    assert_eq!(
        url,
        format!("{}/e/{elicitation_id}", w.oauth.app.base),
        "the URL holds only the opaque id"
    );
    assert_eq!(
        w.oauth.app.elicitation(&elicitation_id).await["subject"],
        "alice",
        "bound to the token's sub"
    );
    w.user_enters_api_key(&url, "alice").await;

    assert_eq!(
        bounded("completion", s.completions.recv()).await.unwrap(),
        elicitation_id,
        "completion notified"
    );
    let result = bounded("tools/call", call).await.unwrap().unwrap();
    assert_eq!(answer(&result)["project"], "acme-reports");
    assert_no_credential_on_the_wire(&w, &[GOOD_KEY], "acme-reports");

    // Connected once: the next call needs no user.
    let again = s.whoami().await.unwrap();
    assert_eq!(answer(&again)["plan"], "pro");
    assert!(s.elicitations.try_recv().is_err());
}

#[tokio::test]
async fn an_oauth_journey_on_2026_07_28_returns_the_upstream_data_and_no_token_crosses_mcp() {
    let w = World::start(OAUTH_PROVIDER, &["api:read"]).await;
    let token = w.access_token("carol").await;
    let mut s = w
        .connect(
            &token,
            with_url_elicitation(),
            ProtocolVersion::V_2026_07_28,
            ElicitationAction::Accept,
        )
        .await;

    // rmcp's `call_tool` drives the rounds: the elicitation handler answers once the user
    // is done, then the client retries with `inputResponses` and the sealed `requestState`.
    let call = s.client.call_tool(CallToolRequestParams::new("whoami"));
    tokio::pin!(call);
    let (url, elicitation_id) = bounded("elicitation", async {
        tokio::select! {
            e = s.elicitations.recv() => e.unwrap(),
            r = &mut call => panic!("the call ended without an elicitation: {r:?}"),
        }
    })
    .await;
    assert!(elicitation_id.is_empty(), "2026-07-28 has no elicitationId");
    w.user_connects_oauth(&url, "carol").await;
    s.user_done.send(()).unwrap();

    let result = bounded("tools/call", call).await.unwrap();
    let me = answer(&result);
    assert_eq!(me["login"], "carol");
    assert_eq!(me["scope"], "api:read");

    let id = url.rsplit('/').next().unwrap();
    let grant = w.oauth.app.elicitation(id).await["grant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (access, refresh) = w.oauth.sealed_tokens(&grant).await;
    let mut secrets = vec![access.as_str()];
    secrets.extend(refresh.as_deref());
    assert_no_credential_on_the_wire(&w, &secrets, "input_required");
    let wire = w.wire.text();
    assert!(
        !wire.contains("elicitationId"),
        "2026-07-28 messages carry no elicitationId"
    );
    assert!(
        wire.contains("inputResponses"),
        "the retry answered the input request"
    );
}

#[tokio::test]
async fn a_2025_11_25_client_without_url_elicitation_gets_the_32042_error_and_its_retry_succeeds() {
    let w = World::start(OAUTH_PROVIDER, &["api:read"]).await;
    let token = w.access_token("bob").await;
    let mut s = w
        .connect(
            &token,
            json!({}),
            ProtocolVersion::V_2025_11_25,
            ElicitationAction::Accept,
        )
        .await;

    let error = match s.whoami().await {
        Err(ServiceError::McpError(e)) => e,
        other => panic!("expected the URL-elicitation-required error, got {other:?}"),
    };
    assert_eq!(error.code.0, -32042);
    let data = error.data.expect("data");
    let elicitation = &data["elicitations"][0];
    assert_eq!(elicitation["mode"], "url");
    let url = elicitation["url"].as_str().unwrap();
    let id = elicitation["elicitationId"].as_str().unwrap();

    w.user_connects_oauth(url, "bob").await;

    assert_eq!(
        bounded("completion", s.completions.recv()).await.unwrap(),
        id,
        "completion notified"
    );
    let result = s.whoami().await.unwrap();
    assert_eq!(answer(&result)["login"], "bob");
}

#[tokio::test]
async fn a_terms_journey_on_2026_07_28_completes_after_acceptance_with_nothing_sent_upstream() {
    let w = World::start(TERMS_PROVIDER, &[]).await;
    let token = w.access_token("grace").await;
    let mut s = w
        .connect(
            &token,
            with_url_elicitation(),
            ProtocolVersion::V_2026_07_28,
            ElicitationAction::Accept,
        )
        .await;

    let call = s.client.call_tool(CallToolRequestParams::new("whoami"));
    tokio::pin!(call);
    let (url, _) = bounded("elicitation", async {
        tokio::select! {
            e = s.elicitations.recv() => e.unwrap(),
            r = &mut call => panic!("the call ended without an elicitation: {r:?}"),
        }
    })
    .await;
    w.user_accepts_terms(&url, "grace").await;
    s.user_done.send(()).unwrap();

    let result = bounded("tools/call", call).await.unwrap();
    assert_eq!(
        answer(&result)["credential"],
        "none",
        "a terms grant sends nothing upstream"
    );
    assert_no_credential_on_the_wire(&w, &[], "input_required");
}

#[tokio::test]
async fn an_expired_token_is_refused_like_no_token() {
    let w = World::start_with(API_KEY_PROVIDER, &["read"], 5, Duration::from_secs(30)).await;
    let token = w.access_token("heidi").await;
    let list = || async {
        reqwest::Client::new()
            .post(w.endpoints.resource.as_str())
            .header("accept", "application/json, text/event-stream")
            .bearer_auth(&token)
            .json(
                &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "curl", "version": "1"}}}),
            )
            .send()
            .await
            .unwrap()
    };
    assert_eq!(list().await.status(), 200, "valid while fresh");
    tokio::time::sleep(Duration::from_millis(6100)).await;
    let refused = list().await;
    assert_eq!(refused.status(), 401, "refused once expired");
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(
        challenge.contains(w.endpoints.metadata.as_str()),
        "{challenge}"
    );
}

#[tokio::test]
async fn a_2025_11_25_session_belongs_to_the_user_who_opened_it() {
    let w = World::start(API_KEY_PROVIDER, &["read"]).await;
    let (alice, bob) = (w.access_token("alice").await, w.access_token("bob").await);
    let post = |token: &str, session: Option<&str>, body: Value| {
        let mut request = reqwest::Client::new()
            .post(w.endpoints.resource.as_str())
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .bearer_auth(token)
            .json(&body);
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        request.send()
    };
    let opened = post(
        &alice,
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "curl", "version": "1"}}}),
    )
    .await
    .unwrap();
    assert_eq!(opened.status(), 200);
    let session = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});

    let foreign = post(&bob, Some(&session), list.clone()).await.unwrap();
    assert_eq!(
        foreign.status(),
        404,
        "another user's session does not exist"
    );
    let own = post(&alice, Some(&session), list).await.unwrap();
    assert_ne!(own.status(), 404, "the owner keeps using it");
    assert_ne!(own.status(), 401);
}

#[tokio::test]
async fn accepting_without_finishing_in_the_browser_ends_the_call_after_the_wait_without_asking_again()
 {
    // The user said yes but never finished (e.g. signed in as someone else, whom the broker
    // refuses): one bounded wait, one clear answer, no second elicitation.
    let w = World::start_with(API_KEY_PROVIDER, &["read"], 3600, Duration::from_secs(2)).await;
    let token = w.access_token("ivan").await;
    let mut s = w
        .connect(
            &token,
            with_url_elicitation(),
            ProtocolVersion::V_2026_07_28,
            ElicitationAction::Accept,
        )
        .await;
    s.user_done.send(()).unwrap();

    let result = s.whoami().await.unwrap();
    let text = tool_error_text(&result);
    assert!(text.contains("Still waiting"), "{text}");
    assert!(s.elicitations.try_recv().is_ok(), "the user was asked");
    assert!(s.elicitations.try_recv().is_err(), "asked only once");
}
