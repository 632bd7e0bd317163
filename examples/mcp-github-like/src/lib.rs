//! An MCP server (on `rmcp`) with one tool, `whoami`, that needs the user's account at an
//! upstream API, and gets it through consent-broker: the integration pattern
//! (ask, hand the consent link to the client, wait, redeem), runnable. It serves Streamable
//! HTTP with MCP authorization ([`http`], [`auth`]) or stdio (`main.rs`).
//!
//! The tool's flow, for the user the request is authenticated as (the token's `sub`):
//! 1. redeem the handle held for the user, or ask the broker (`create`): `ready` gives a
//!    handle at once, `pending` gives a consent link;
//! 2. pending: hand the link to the MCP client in the shape its protocol speaks, if the
//!    client declared URL elicitation (2026-07-28: in this request's `clientCapabilities`;
//!    2025-11-25: at `initialize`):
//!    - 2025-11-25 with it: `elicitation/create` (url mode); a decline or cancel ends the call
//!      with a tool error; an accept waits for the completion (webhook or long-poll);
//!    - 2025-11-25 without it: the `-32042` error; the client retries after the user is done;
//!    - 2026-07-28 without it: `-32021` with `requiredCapabilities` (nothing else would work);
//!    - 2026-07-28 with it: an `input_required` result with a sealed `requestState` (elicitation
//!      id, bound to the user and the tool, 15 minutes, accepted once); the retry carries it and
//!      the client's `inputResponses`: decline or cancel ends the call with a tool error;
//! 3. on completion (webhook or long-poll) send `notifications/elicitation/complete` to the
//!    client that started it (2025-11-25), keep the handle, redeem it, call the upstream with
//!    the credential the way its kind says ([`UpstreamAuth`]);
//! 4. `reauthorization_required`: elicit again with the elicitation in the problem;
//!    `grant_revoked` / `grant_superseded`: forget the handle and ask again.
//!
//! Credentials never reach the MCP client: it sees the consent URL and the tool's answer. The
//! client's own access token is never passed upstream.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use consent_broker_client::api::{CreateElicitation, ElicitationStatus, ElicitationView, Secret};
use consent_broker_client::{BrokerClient, Created, Error as BrokerError, WebhookSecret, mcp};
use rmcp::handler::server::tool::{InputResponses, RequestState};
use rmcp::model::{
    CallToolResponse, CallToolResult, ClientCapabilities, ContentBlock, CustomNotification,
    ElicitRequest, ElicitRequestParams, ElicitResult, ElicitationAction, ElicitationCapability,
    ErrorCode, ErrorData, InputRequest, InputRequests, InputRequiredResult, ProtocolVersion,
    RequestStateCodec, SealOptions, ServerCapabilities, ServerConfig, ServerNotification,
    UrlElicitationCapability,
};
use rmcp::service::RequestContext;
use rmcp::{Peer, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use url::Url;

pub mod auth;
pub mod http;
pub mod upstream;
pub mod webhook;
pub mod wire;

pub use auth::Subject;
pub use upstream::UpstreamAuth;

/// How long a `requestState` stays valid: at least the broker's consent-link lifetime
/// (15 minutes by default), or a user who finishes late would find the retry refused.
const REQUEST_STATE_TTL: Duration = Duration::from_secs(900);
/// The `inputRequests` key of the broker's URL elicitation.
const INPUT_KEY: &str = "connect";
/// The tool's answer when the user did not connect the account.
const NOT_CONNECTED: &str = "The account was not connected, so I cannot look it up.";

/// What the server needs to know.
pub struct Settings {
    pub broker: BrokerClient,
    /// The broker's provider id of the upstream, and the scopes the tool needs.
    pub provider: String,
    pub scopes: Vec<String>,
    /// The upstream endpoint the tool calls with the user's credential (GET).
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
    subject: Subject,
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
    handles: Mutex<HashMap<Subject, Secret>>,
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

    fn handle(&self, subject: &Subject) -> Option<Secret> {
        self.handles.lock().ok()?.get(subject).cloned()
    }

    fn keep_handle(&self, subject: &Subject, handle: Secret) {
        if let Ok(mut h) = self.handles.lock() {
            h.insert(subject.clone(), handle);
        }
    }

    fn forget_handle(&self, subject: &Subject) {
        if let Ok(mut h) = self.handles.lock() {
            h.remove(subject);
        }
    }

    fn watch(
        &self,
        id: &str,
        subject: &Subject,
        peer: Option<Peer<RoleServer>>,
    ) -> Arc<tokio::sync::Notify> {
        let settled = Arc::new(tokio::sync::Notify::new());
        if let Ok(mut w) = self.waiting.lock() {
            w.insert(
                id.to_owned(),
                Waiter {
                    subject: subject.clone(),
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

    /// Waits for the user (webhook when configured and watched, else long-poll), then reads
    /// the outcome.
    async fn wait_until_settled(
        &self,
        id: &str,
        settled: Option<&tokio::sync::Notify>,
    ) -> Result<ElicitationView, BrokerError> {
        let broker = &self.settings.broker;
        let view = match settled {
            Some(settled) if self.settings.webhook_secret.is_some() => {
                let wait = self.settings.completion_wait;
                let _ = tokio::time::timeout(wait, settled.notified()).await;
                broker.get(id).await?
            }
            _ => broker.wait(id, self.settings.completion_wait).await?,
        };
        if !view.status.is_pending() {
            self.settled(&view).await;
        }
        Ok(view)
    }

    async fn call_upstream(&self, auth: &UpstreamAuth) -> Result<String, String> {
        let request = auth.apply(self.http.get(self.settings.upstream.clone()));
        let response = request
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

/// The MCP server. Over HTTP each request's user comes from its verified access token
/// ([`http`] puts the [`Subject`] in the request); on stdio the operator names the user.
#[derive(Clone)]
pub struct GithubLike {
    service: Arc<Service>,
    /// stdio only: the user of the whole connection.
    fixed_subject: Option<Subject>,
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

fn awaiting_approval() -> Next {
    Next::Answer(text_result(
        "You approved; your organisation also requires an administrator to approve this access. \
         Call again once they have.",
        true,
    ))
}

fn not_connected() -> Next {
    Next::Answer(text_result(NOT_CONNECTED, true))
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

/// Whether the client declared URL elicitation: on 2026-07-28 in this request's
/// `clientCapabilities`, on 2025-11-25 at `initialize` (rmcp reads the right one).
fn declares_url_elicitation(context: &RequestContext<RoleServer>) -> bool {
    context
        .client_capabilities()
        .and_then(|c| c.elicitation)
        .is_some_and(|e| e.url.is_some())
}

/// `-32021`: this call needs URL elicitation, which the request did not declare.
fn url_elicitation_capability_required() -> ErrorData {
    let mut elicitation = ElicitationCapability::new();
    elicitation.url = Some(UrlElicitationCapability::new());
    let mut required = ClientCapabilities::default();
    required.elicitation = Some(elicitation);
    ErrorData::missing_required_client_capability(required)
}

/// What the client answered to our URL elicitation in a 2026-07-28 retry.
fn elicitation_answer(
    responses: Option<&rmcp::model::InputResponses>,
) -> Option<ElicitationAction> {
    let value = responses?.get(INPUT_KEY)?.clone();
    serde_json::from_value::<ElicitResult>(value)
        .ok()
        .map(|r| r.action)
}

#[tool_router]
impl GithubLike {
    /// A server whose users come from MCP authorization (Streamable HTTP).
    pub fn new(service: Arc<Service>) -> Self {
        Self {
            service,
            fixed_subject: None,
        }
    }

    /// A server for one user named by its operator (stdio: there is no token to read).
    pub fn for_subject(service: Arc<Service>, subject: Subject) -> Self {
        Self {
            service,
            fixed_subject: Some(subject),
        }
    }

    /// The user this request acts for.
    fn subject(&self, context: &RequestContext<RoleServer>) -> Result<Subject, ErrorData> {
        if let Some(subject) = &self.fixed_subject {
            return Ok(subject.clone());
        }
        context
            .extensions
            .get::<::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Subject>())
            .cloned()
            .ok_or_else(|| ErrorData::invalid_request("not authenticated", None))
    }

    #[tool(
        description = "Your account at the upstream service (asks you to connect it first if needed)"
    )]
    async fn whoami(
        &self,
        context: RequestContext<RoleServer>,
        RequestState(state): RequestState,
        InputResponses(responses): InputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        let subject = self.subject(&context)?;
        let call = Call {
            service: &self.service,
            subject: &subject,
            context: &context,
        };
        if let Some(state) = state
            && let Next::Answer(answer) = call.resume(&state, responses.as_ref()).await?
        {
            return Ok(answer);
        }
        call.run().await
    }
}

/// One tool call, for one user.
struct Call<'a> {
    service: &'a Service,
    subject: &'a Subject,
    context: &'a RequestContext<RoleServer>,
}

impl Call<'_> {
    /// The access token this request was authenticated with (over HTTP; none on stdio),
    /// passed to the broker as `subject_token`.
    fn subject_token(&self) -> Option<Secret> {
        self.context
            .extensions
            .get::<::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<auth::PresentedToken>())
            .map(|t| t.0.clone())
    }

    /// The request-state binding: this user, this tool.
    fn state_binding(&self) -> Vec<u8> {
        format!("whoami\n{}", self.subject.as_str()).into_bytes()
    }

    async fn run(&self) -> Result<CallToolResponse, ErrorData> {
        let broker = &self.service.settings.broker;
        for _ in 0..3 {
            let handle = match self.service.handle(self.subject) {
                Some(h) => h,
                None => {
                    let request = CreateElicitation {
                        subject: self.subject.as_str().to_owned(),
                        provider: self.service.settings.provider.clone(),
                        scopes: self.service.settings.scopes.clone(),
                        message: None,
                        subject_token: self.subject_token(),
                    };
                    match broker.create(&request).await.map_err(internal)? {
                        Created::Ready(ready) => ready.handle,
                        Created::Pending(view) => match self.elicit(*view).await? {
                            Next::Answer(answer) => return Ok(answer),
                            Next::Retry => continue,
                        },
                    }
                }
            };
            match broker.redeem_proving(&handle, self.subject_token()).await {
                Ok(redeemed) => {
                    self.service.keep_handle(self.subject, handle);
                    let auth =
                        UpstreamAuth::from_credential(&redeemed.credential).map_err(internal)?;
                    return Ok(match self.service.call_upstream(&auth).await {
                        Ok(body) => text_result(body, false),
                        Err(e) => text_result(e, true),
                    });
                }
                Err(BrokerError::ReauthorizationRequired { elicitation }) => {
                    self.service.forget_handle(self.subject);
                    match self.elicit(*elicitation).await? {
                        Next::Answer(answer) => return Ok(answer),
                        Next::Retry => continue,
                    }
                }
                Err(
                    BrokerError::GrantRevoked
                    | BrokerError::GrantSuperseded
                    | BrokerError::UnknownHandle,
                ) => self.service.forget_handle(self.subject),
                Err(e) => return Err(internal(e)),
            }
        }
        Ok(text_result(
            "Could not get a working connection; try again.",
            true,
        ))
    }

    /// Hands a pending elicitation to the client in the shape its protocol speaks.
    async fn elicit(&self, view: ElicitationView) -> Result<Next, ErrorData> {
        // The user already consented; the organisation's administrator has not decided.
        if view.status == ElicitationStatus::AwaitingApproval {
            return Ok(awaiting_approval());
        }
        if is_2026(self.context) {
            if !declares_url_elicitation(self.context) {
                return Err(url_elicitation_capability_required());
            }
            return self.input_required(&view).map(Next::Answer);
        }
        let peer = &self.context.peer;
        let Some(params) = mcp::url_elicitation(&view) else {
            return Ok(Next::Retry);
        };
        let settled = self
            .service
            .watch(&view.id, self.subject, Some(peer.clone()));
        if !declares_url_elicitation(self.context) {
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
            return Ok(not_connected());
        }
        self.await_outcome(&view.id, Some(&settled)).await
    }

    /// The user said they would go to the page: wait for the outcome (bounded).
    async fn await_outcome(
        &self,
        id: &str,
        settled: Option<&tokio::sync::Notify>,
    ) -> Result<Next, ErrorData> {
        let view = self
            .service
            .wait_until_settled(id, settled)
            .await
            .map_err(internal)?;
        Ok(match view.status {
            ElicitationStatus::Completed => {
                if let Some(handle) = view.handle {
                    self.service.keep_handle(self.subject, handle);
                }
                Next::Retry
            }
            ElicitationStatus::Pending => Next::Answer(text_result(
                "Still waiting for you to connect the account; call again when done.",
                true,
            )),
            ElicitationStatus::AwaitingApproval => awaiting_approval(),
            _ => not_connected(),
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
            // rmcp's type has no "absent" for this field; `http` drops it from the wire on
            // 2026-07-28, which does not define it.
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
    /// refused alike), read the client's answer, then see whether the user finished.
    async fn resume(
        &self,
        state: &str,
        responses: Option<&rmcp::model::InputResponses>,
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
        let answer = elicitation_answer(responses);
        if matches!(
            answer,
            Some(ElicitationAction::Decline | ElicitationAction::Cancel)
        ) {
            // The user said no: one clear answer, not the same question again.
            return Ok(not_connected());
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
                    self.service.keep_handle(self.subject, handle);
                }
                Ok(Next::Retry)
            }
            // Accepted but not finished yet: long-poll (it answers at once once settled).
            ElicitationStatus::Pending if answer == Some(ElicitationAction::Accept) => {
                self.await_outcome(&id, None).await
            }
            // No answer to our request: ask once more, with a fresh state.
            ElicitationStatus::Pending => self.elicit(view).await,
            ElicitationStatus::AwaitingApproval => Ok(awaiting_approval()),
            _ => Ok(not_connected()),
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
