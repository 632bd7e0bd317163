//! An MCP server (on `rmcp`) with one tool, `whoami`, that needs the user's account at an
//! upstream API, and gets it through consent-broker: the integration pattern
//! (ask, hand the consent link to the client, wait, redeem), runnable.
//!
//! The tool's flow, for the user the MCP connection is authenticated as (`subject`):
//! 1. redeem the handle held for the user, or ask the broker (`create`): `ready` gives a
//!    handle at once, `pending` gives a consent link;
//! 2. pending: hand the link to the MCP client in the shape its protocol speaks:
//!    - 2025-11-25 with the `url` elicitation capability: `elicitation/create` (url mode),
//!      then wait for the completion (the broker's webhook, or a long-poll) and go on;
//!    - 2025-11-25 without it: the `-32042` error; the client retries after the user is done;
//!    - 2026-07-28: an `input_required` result with a sealed `requestState` (elicitation id,
//!      bound to the user and the tool, 15 minutes, accepted once); the retry carries it;
//! 3. on completion (webhook or long-poll) send `notifications/elicitation/complete` to the
//!    client that started it (2025-11-25), keep the handle, redeem it, call the upstream;
//! 4. `reauthorization_required`: elicit again with the elicitation in the problem;
//!    `grant_revoked` / `grant_superseded`: forget the handle and ask again.
//!
//! Credentials never reach the MCP client: it sees the consent URL and the tool's answer.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use consent_broker_client::api::{CreateElicitation, ElicitationStatus, ElicitationView, Secret};
use consent_broker_client::{BrokerClient, Created, Error as BrokerError, WebhookSecret, mcp};
use rmcp::handler::server::tool::RequestState;
use rmcp::model::{
    CallToolResponse, CallToolResult, ContentBlock, CustomNotification, ElicitRequest,
    ElicitRequestParams, ElicitationAction, ErrorCode, ErrorData, InputRequest, InputRequests,
    InputRequiredResult, ProtocolVersion, RequestStateCodec, SealOptions, ServerCapabilities,
    ServerConfig, ServerNotification,
};
use rmcp::service::{ElicitationMode, RequestContext};
use rmcp::{Peer, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use url::Url;

pub mod webhook;

/// How long a `requestState` stays valid (the broker's default consent-link lifetime).
const REQUEST_STATE_TTL: Duration = Duration::from_secs(900);
/// The `inputRequests` key of the broker's URL elicitation.
const INPUT_KEY: &str = "connect";

/// What the server needs to know.
pub struct Settings {
    pub broker: BrokerClient,
    /// The broker's provider id of the upstream, and the scopes the tool needs.
    pub provider: String,
    pub scopes: Vec<String>,
    /// The upstream endpoint the tool calls with the user's token (GET, JSON).
    pub upstream: Url,
    /// The service's webhook secret at the broker; without it, completion is long-polled.
    pub webhook_secret: Option<WebhookSecret>,
    /// How long one tool call waits for the user to finish in the browser.
    pub completion_wait: Duration,
    /// At least 32 random bytes: seals 2026-07-28 `requestState` values.
    pub request_state_key: Vec<u8>,
}

/// A URL elicitation a client is working on.
struct Waiter {
    subject: String,
    /// The connection that started it, to tell of the completion (2025-11-25).
    peer: Option<Peer<RoleServer>>,
    settled: Arc<tokio::sync::Notify>,
}

/// State shared by every connection: handles per user, open elicitations.
pub struct Service {
    settings: Settings,
    codec: RequestStateCodec,
    http: reqwest::Client,
    /// The grant handle held for each user (a secret: never logged, never sent to a client).
    handles: Mutex<HashMap<String, Secret>>,
    waiting: Mutex<HashMap<String, Waiter>>,
    /// `requestState` values already accepted (single use).
    used_states: Mutex<HashSet<String>>,
}

impl Service {
    pub fn new(settings: Settings) -> Result<Arc<Self>, String> {
        let codec = RequestStateCodec::try_new(settings.request_state_key.clone())
            .map_err(|e| format!("request_state_key: {e}"))?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(Self {
            settings,
            codec,
            http,
            handles: Mutex::default(),
            waiting: Mutex::default(),
            used_states: Mutex::default(),
        }))
    }

    fn handle(&self, subject: &str) -> Option<Secret> {
        self.handles.lock().ok()?.get(subject).cloned()
    }

    fn keep_handle(&self, subject: &str, handle: Secret) {
        if let Ok(mut h) = self.handles.lock() {
            h.insert(subject.to_owned(), handle);
        }
    }

    fn forget_handle(&self, subject: &str) {
        if let Ok(mut h) = self.handles.lock() {
            h.remove(subject);
        }
    }

    fn watch(
        &self,
        id: &str,
        subject: &str,
        peer: Option<Peer<RoleServer>>,
    ) -> Arc<tokio::sync::Notify> {
        let settled = Arc::new(tokio::sync::Notify::new());
        if let Ok(mut w) = self.waiting.lock() {
            w.insert(
                id.to_owned(),
                Waiter {
                    subject: subject.to_owned(),
                    peer,
                    settled: settled.clone(),
                },
            );
        }
        settled
    }

    /// An elicitation we handed out has settled (webhook or long-poll): keep the handle,
    /// tell the client that started it, wake the tool call waiting for it. Idempotent.
    pub async fn settled(&self, view: &ElicitationView) {
        let Some(waiter) = self
            .waiting
            .lock()
            .ok()
            .and_then(|mut w| w.remove(&view.id))
        else {
            return;
        };
        if let (ElicitationStatus::Completed, Some(handle)) = (view.status, &view.handle) {
            self.keep_handle(&waiter.subject, handle.clone());
        }
        if let Some(peer) = &waiter.peer {
            let notification = CustomNotification::new(
                mcp::ELICITATION_COMPLETE,
                Some(mcp::elicitation_complete(&view.id)),
            );
            // The client may be gone; then there is no one to tell.
            let _ = peer
                .send_notification(ServerNotification::CustomNotification(notification))
                .await;
        }
        waiter.settled.notify_one();
    }

    /// Waits for the user (webhook when configured, else long-poll), then reads the outcome.
    async fn wait_until_settled(
        &self,
        id: &str,
        settled: &tokio::sync::Notify,
    ) -> Result<ElicitationView, BrokerError> {
        let broker = &self.settings.broker;
        let view = if self.settings.webhook_secret.is_some() {
            let _ = tokio::time::timeout(self.settings.completion_wait, settled.notified()).await;
            broker.get(id).await?
        } else {
            broker.wait(id, self.settings.completion_wait).await?
        };
        if !view.status.is_pending() {
            self.settled(&view).await;
        }
        Ok(view)
    }

    async fn call_upstream(&self, token: &Secret) -> Result<String, String> {
        let response = self
            .http
            .get(self.settings.upstream.clone())
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(|_| "the upstream did not answer".to_owned())?;
        if !response.status().is_success() {
            return Err(format!("the upstream answered {}", response.status()));
        }
        response
            .text()
            .await
            .map_err(|_| "the upstream's answer was cut short".to_owned())
    }
}

/// One MCP connection, authenticated as `subject`.
#[derive(Clone)]
pub struct GithubLike {
    service: Arc<Service>,
    /// The user, from MCP authorization (the `sub` of the client's token), never from
    /// anything the client says in a request.
    subject: String,
}

/// What to do after handing out an elicitation.
enum Next {
    Answer(CallToolResponse),
    Retry,
}

fn text_result(text: impl Into<String>, is_error: bool) -> CallToolResponse {
    let content = vec![ContentBlock::text(text)];
    if is_error {
        CallToolResult::error(content).into()
    } else {
        CallToolResult::success(content).into()
    }
}

fn internal(e: impl std::fmt::Display) -> ErrorData {
    ErrorData::internal_error(e.to_string(), None)
}

/// The protocol of this request: 2026-07-28 sends it per request, older ones at `initialize`.
fn is_2026(context: &RequestContext<RoleServer>) -> bool {
    context
        .protocol_version()
        .is_some_and(|v| v >= ProtocolVersion::V_2026_07_28)
}

#[tool_router]
impl GithubLike {
    pub fn new(service: Arc<Service>, subject: impl Into<String>) -> Self {
        Self {
            service,
            subject: subject.into(),
        }
    }

    /// The request-state binding: this user, this tool.
    fn state_binding(&self) -> Vec<u8> {
        format!("whoami\n{}", self.subject).into_bytes()
    }

    #[tool(
        description = "Your account at the upstream service (asks you to connect it first if needed)"
    )]
    async fn whoami(
        &self,
        context: RequestContext<RoleServer>,
        RequestState(state): RequestState,
    ) -> Result<CallToolResponse, ErrorData> {
        let peer = &context;
        if let Some(state) = state
            && let Next::Answer(answer) = self.resume(peer, &state).await?
        {
            return Ok(answer);
        }
        let broker = &self.service.settings.broker;
        for _ in 0..3 {
            let handle = match self.service.handle(&self.subject) {
                Some(h) => h,
                None => {
                    let request = CreateElicitation {
                        subject: self.subject.clone(),
                        provider: self.service.settings.provider.clone(),
                        scopes: self.service.settings.scopes.clone(),
                        message: None,
                    };
                    match broker.create(&request).await.map_err(internal)? {
                        Created::Ready(ready) => ready.handle,
                        Created::Pending(view) => match self.elicit(peer, *view).await? {
                            Next::Answer(answer) => return Ok(answer),
                            Next::Retry => continue,
                        },
                    }
                }
            };
            match broker.redeem(&handle).await {
                Ok(redeemed) => {
                    self.service.keep_handle(&self.subject, handle);
                    let consent_broker_client::api::CredentialView::Oauth2 { access_token, .. } =
                        &redeemed.credential
                    else {
                        return Err(internal("the provider is not an OAuth provider"));
                    };
                    return Ok(match self.service.call_upstream(access_token).await {
                        Ok(body) => text_result(body, false),
                        Err(e) => text_result(e, true),
                    });
                }
                Err(BrokerError::ReauthorizationRequired { elicitation }) => {
                    self.service.forget_handle(&self.subject);
                    match self.elicit(peer, *elicitation).await? {
                        Next::Answer(answer) => return Ok(answer),
                        Next::Retry => continue,
                    }
                }
                Err(
                    BrokerError::GrantRevoked
                    | BrokerError::GrantSuperseded
                    | BrokerError::UnknownHandle,
                ) => self.service.forget_handle(&self.subject),
                Err(e) => return Err(internal(e)),
            }
        }
        Ok(text_result(
            "Could not get a working connection; try again.",
            true,
        ))
    }
}

impl GithubLike {
    /// Hands a pending elicitation to the client in the shape its protocol speaks.
    async fn elicit(
        &self,
        context: &RequestContext<RoleServer>,
        view: ElicitationView,
    ) -> Result<Next, ErrorData> {
        if is_2026(context) {
            return self.input_required(&view).map(Next::Answer);
        }
        let peer = &context.peer;
        let settled = self
            .service
            .watch(&view.id, &self.subject, Some(peer.clone()));
        let Some(params) = mcp::url_elicitation(&view) else {
            return Ok(Next::Retry);
        };
        if !peer
            .supported_elicitation_modes()
            .contains(&ElicitationMode::Url)
        {
            let error =
                mcp::url_elicitation_required(&[&view]).ok_or_else(|| internal("not pending"))?;
            let data = serde_json::to_value(&error.data).map_err(internal)?;
            return Err(ErrorData::new(
                ErrorCode(error.code),
                error.message,
                Some(data),
            ));
        }
        let url = Url::parse(&params.url).map_err(internal)?;
        let action = peer
            .elicit_url(params.message, url, params.elicitation_id)
            .await
            .map_err(internal)?;
        if action != ElicitationAction::Accept {
            return Ok(Next::Answer(text_result(
                "The account was not connected, so I cannot look it up.",
                true,
            )));
        }
        let view = self
            .service
            .wait_until_settled(&view.id, &settled)
            .await
            .map_err(internal)?;
        Ok(match view.status {
            ElicitationStatus::Completed => Next::Retry,
            ElicitationStatus::Pending => Next::Answer(text_result(
                "Still waiting for you to connect the account; call again when done.",
                true,
            )),
            _ => Next::Answer(text_result(
                "The account was not connected, so I cannot look it up.",
                true,
            )),
        })
    }

    /// 2026-07-28: an `input_required` result whose state names the elicitation.
    fn input_required(&self, view: &ElicitationView) -> Result<CallToolResponse, ErrorData> {
        let binding = self.state_binding();
        let state = self
            .service
            .codec
            .seal_json_with(
                &view.id,
                &SealOptions::new()
                    .associated_data(&binding)
                    .ttl(REQUEST_STATE_TTL),
            )
            .map_err(internal)?;
        let shape =
            mcp::input_required(view, INPUT_KEY, state).ok_or_else(|| internal("not pending"))?;
        let mut requests = InputRequests::new();
        for (key, request) in shape.input_requests {
            let params = ElicitRequestParams::UrlElicitationParams {
                meta: None,
                message: request.params.message,
                url: request.params.url,
                elicitation_id: String::new(),
            };
            requests.insert(key, InputRequest::Elicitation(ElicitRequest::new(params)));
        }
        Ok(InputRequiredResult::new(Some(requests), Some(shape.request_state)).into())
    }

    /// A 2026-07-28 retry: open the state (forged, foreign, expired or reused states are
    /// refused alike), then see whether the user finished.
    async fn resume(
        &self,
        context: &RequestContext<RoleServer>,
        state: &str,
    ) -> Result<Next, ErrorData> {
        let refused = || ErrorData::invalid_params("invalid requestState", None);
        let id: String = self
            .service
            .codec
            .open_json_with(state, &self.state_binding())
            .map_err(|_| refused())?;
        let fresh = self
            .service
            .used_states
            .lock()
            .map(|mut used| used.insert(state.to_owned()))
            .unwrap_or(false);
        if !fresh {
            return Err(refused());
        }
        let view = self
            .service
            .settings
            .broker
            .get(&id)
            .await
            .map_err(internal)?;
        match view.status {
            ElicitationStatus::Completed => {
                if let Some(handle) = view.handle {
                    self.service.keep_handle(&self.subject, handle);
                }
                Ok(Next::Retry)
            }
            ElicitationStatus::Pending => self.elicit(context, view).await,
            _ => Ok(Next::Answer(text_result(
                "The account was not connected, so I cannot look it up.",
                true,
            ))),
        }
    }
}

#[tool_handler]
impl ServerHandler for GithubLike {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_instructions("`whoami` shows your account at the upstream service.")
    }
}
