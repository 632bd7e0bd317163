//! `POST /v1/elicitations` and `GET /v1/elicitations/{id}`.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::Error;
use crate::broker::{Broker, Created, NewElicitation};
use crate::domain::{Elicitation, ElicitationStatus, ProviderId, Scope, Scopes, Subject};
use crate::http::extract::ServiceCaller;
use crate::http::problem::{ApiError, ApiJson, ApiQuery, Problem};

/// Longest `message`, in characters.
const MAX_MESSAGE_CHARS: usize = 500;
/// Longest long-poll, in seconds.
const MAX_WAIT_SECS: u64 = 60;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateElicitation {
    /// The user, as the MCP service knows them from MCP authorization (the token's `sub`).
    pub subject: String,
    /// A provider id from the broker's config.
    pub provider: String,
    /// Scopes to ask for; must be allowed for this service and provider.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Shown to the user on the consent page, attributed to the service (max 500 characters).
    pub message: Option<String>,
}

impl CreateElicitation {
    fn parse(self) -> Result<NewElicitation, Error> {
        let invalid =
            |field: &str, e: &dyn std::fmt::Display| Error::InvalidRequest(format!("{field}: {e}"));
        let scopes: Vec<Scope> = self
            .scopes
            .into_iter()
            .map(Scope::parse)
            .collect::<Result<_, _>>()
            .map_err(|e| invalid("scopes", &e))?;
        let message = match self.message {
            Some(m) if m.chars().count() > MAX_MESSAGE_CHARS => {
                return Err(invalid(
                    "message",
                    &format!("at most {MAX_MESSAGE_CHARS} characters"),
                ));
            }
            Some(m) if m.chars().any(|c| c.is_control() && c != '\n') => {
                return Err(invalid(
                    "message",
                    &"control characters other than newline are not allowed",
                ));
            }
            Some(m) if m.trim().is_empty() => None,
            other => other,
        };
        Ok(NewElicitation {
            subject: Subject::parse(self.subject).map_err(|e| invalid("subject", &e))?,
            provider: ProviderId::parse(self.provider).map_err(|e| invalid("provider", &e))?,
            scopes: Scopes::try_from(scopes).map_err(|e| invalid("scopes", &e))?,
            message,
        })
    }
}

/// The `params` of an MCP `elicitation/create` request in URL mode (MCP 2025-11-25).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct McpUrlElicitation {
    /// Always `url`.
    pub mode: &'static str,
    pub elicitation_id: String,
    pub url: String,
    pub message: String,
}

/// The JSON-RPC error an MCP server may return instead (code -32042, URL elicitation required).
#[derive(Serialize, ToSchema)]
pub struct McpUrlElicitationRequired {
    pub code: i32,
    pub message: &'static str,
    pub data: McpElicitations,
}

#[derive(Serialize, ToSchema)]
pub struct McpElicitations {
    pub elicitations: Vec<McpUrlElicitation>,
}

/// An elicitation as its service sees it.
#[derive(Serialize, ToSchema)]
pub struct ElicitationView {
    pub id: String,
    /// `pending`, `completed`, `declined`, `expired` or `failed`.
    pub status: String,
    pub subject: String,
    pub provider: String,
    pub scopes: Vec<String>,
    pub created_at: String,
    pub expires_at: String,
    /// The consent page, while pending. Holds only the opaque id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Ready to pass to the MCP client unchanged, while pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp: Option<McpUrlElicitation>,
    /// The same as a JSON-RPC error body, for servers that prefer the error form.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp_error: Option<McpUrlElicitationRequired>,
    /// When completed: the grant and its handle, for this service only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An active grant already covers the request: no user interaction needed.
#[derive(Serialize, ToSchema)]
pub struct ReadyView {
    /// Always `ready`.
    pub status: &'static str,
    pub grant_id: String,
    pub handle: String,
    pub subject: String,
    pub provider: String,
    pub scopes: Vec<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct WaitQuery {
    /// Seconds to wait for the elicitation to leave `pending` (0-60).
    #[serde(default)]
    pub wait: u64,
}

pub(crate) fn rfc3339(t: crate::domain::Timestamp) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn strings<T: ToString>(items: impl Iterator<Item = T>) -> Vec<String> {
    items.map(|s| s.to_string()).collect()
}

pub(crate) async fn view(broker: &Broker, e: Elicitation) -> Result<ElicitationView, Error> {
    let status = e.status_at(crate::domain::now());
    let mut v = ElicitationView {
        id: e.id.to_string(),
        status: status.as_str().to_owned(),
        subject: e.subject.to_string(),
        provider: e.provider.to_string(),
        scopes: strings(e.scopes.iter()),
        created_at: rfc3339(e.created_at),
        expires_at: rfc3339(e.expires_at),
        url: None,
        mcp: None,
        mcp_error: None,
        grant_id: None,
        handle: None,
        reason: e.reason.clone(),
    };
    match status {
        ElicitationStatus::Pending => {
            let url = broker.consent_url(&e.id).to_string();
            let message = e
                .message
                .clone()
                .unwrap_or_else(|| default_message(broker, &e));
            let mcp = || McpUrlElicitation {
                mode: "url",
                elicitation_id: e.id.to_string(),
                url: url.clone(),
                message: message.clone(),
            };
            v.mcp_error = Some(McpUrlElicitationRequired {
                code: -32042,
                message: "This request requires the user to complete an action in the browser.",
                data: McpElicitations {
                    elicitations: vec![mcp()],
                },
            });
            v.mcp = Some(mcp());
            v.url = Some(url);
        }
        ElicitationStatus::Completed => {
            if let Some(gid) = &e.grant_id
                && let Some(grant) = broker.stores.grants.grant(gid).await?
            {
                v.handle = Some(broker.handle_of(&grant)?.expose().to_owned());
                v.grant_id = Some(gid.to_string());
            }
        }
        _ => {}
    }
    Ok(v)
}

fn default_message(broker: &Broker, e: &Elicitation) -> String {
    let provider = broker
        .settings
        .provider(&e.provider)
        .map_or(e.provider.as_str(), |p| p.name.as_str());
    format!(
        "Open this link to connect your {provider} account. It is a secure page of your organisation's consent broker."
    )
}

/// Create an elicitation, or reuse an active grant that already covers the request.
#[utoipa::path(post, path = "/v1/elicitations", request_body = CreateElicitation,
    security(("service_token" = [])),
    responses(
        (status = 201, description = "Pending: send the user to `url` (or pass `mcp` to the MCP client)", body = ElicitationView),
        (status = 200, description = "Ready: an active grant covers the request", body = ReadyView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "provider or scope not allowed for this service", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(broker): State<Arc<Broker>>,
    ServiceCaller(service): ServiceCaller,
    ApiJson(body): ApiJson<CreateElicitation>,
) -> Result<Response, ApiError> {
    let request = body.parse()?;
    Ok(match broker.create_elicitation(&service, request).await? {
        Created::Ready { grant, handle } => Json(ReadyView {
            status: "ready",
            grant_id: grant.id.to_string(),
            handle: handle.expose().to_owned(),
            subject: grant.subject.to_string(),
            provider: grant.provider.to_string(),
            scopes: strings(grant.scopes.iter()),
        })
        .into_response(),
        Created::Pending(e) => (StatusCode::CREATED, Json(view(&broker, e).await?)).into_response(),
    })
}

/// Read an elicitation; with `?wait=N`, wait up to N seconds while it is pending.
#[utoipa::path(get, path = "/v1/elicitations/{id}", params(("id" = String, Path), WaitQuery),
    security(("service_token" = [])),
    responses(
        (status = 200, body = ElicitationView),
        (status = 404, description = "unknown, or created by another service", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn status(
    State(broker): State<Arc<Broker>>,
    ServiceCaller(service): ServiceCaller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<WaitQuery>,
) -> Result<Json<ElicitationView>, ApiError> {
    if q.wait > MAX_WAIT_SECS {
        return Err(Error::InvalidRequest(format!("wait: at most {MAX_WAIT_SECS} seconds")).into());
    }
    let e = broker
        .wait_for_elicitation(&service, &id, Duration::from_secs(q.wait))
        .await?;
    Ok(Json(view(&broker, e).await?))
}
