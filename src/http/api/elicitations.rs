//! `POST /v1/elicitations` and `GET /v1/elicitations/{id}`.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use consent_broker_api::{
    CreateElicitation, ElicitationStatus as ApiStatus, ElicitationView, McpElicitations,
    McpUrlElicitation, McpUrlElicitationRequired, ReadyView, Secret, URL_ELICITATION_REQUIRED,
    UrlMode,
};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::Error;
use crate::broker::{Broker, Created, NewElicitation};
use crate::domain::{Elicitation, ElicitationStatus, ProviderId, Scope, Scopes, Subject, text};
use crate::http::extract::ServiceCaller;
use crate::http::problem::{ApiError, ApiJson, ApiQuery, Problem};

/// The API word for a domain status.
fn api_status(s: ElicitationStatus) -> ApiStatus {
    match s {
        ElicitationStatus::Pending => ApiStatus::Pending,
        ElicitationStatus::AwaitingApproval => ApiStatus::AwaitingApproval,
        ElicitationStatus::Completed => ApiStatus::Completed,
        ElicitationStatus::Declined => ApiStatus::Declined,
        ElicitationStatus::Expired => ApiStatus::Expired,
        ElicitationStatus::Failed => ApiStatus::Failed,
    }
}

/// Longest `message`, in characters.
const MAX_MESSAGE_CHARS: usize = 500;
/// Longest long-poll, in seconds.
const MAX_WAIT_SECS: u64 = 60;

/// Parses a create request into domain types: the edge's one check of its fields.
fn parse(body: CreateElicitation) -> Result<NewElicitation, Error> {
    let invalid =
        |field: &str, e: &dyn std::fmt::Display| Error::InvalidRequest(format!("{field}: {e}"));
    let scopes: Vec<Scope> = body
        .scopes
        .into_iter()
        .map(Scope::parse)
        .collect::<Result<_, _>>()
        .map_err(|e| invalid("scopes", &e))?;
    let message = match body.message {
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
        // Shown, not obeyed: a bidi override or zero-width character becomes `[U+XXXX]`.
        other => other.map(|m| text::neutralise_format(&m)),
    };
    if body.subject.chars().any(text::is_invisible_format) {
        return Err(invalid(
            "subject",
            &"bidirectional overrides and invisible format characters are not allowed",
        ));
    }
    Ok(NewElicitation {
        subject: Subject::parse(body.subject).map_err(|e| invalid("subject", &e))?,
        provider: ProviderId::parse(body.provider).map_err(|e| invalid("provider", &e))?,
        scopes: Scopes::try_from(scopes).map_err(|e| invalid("scopes", &e))?,
        message,
    })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WaitQuery {
    /// Seconds to wait for the elicitation to change status while it is open (`pending` or
    /// `awaiting_approval`), 0-60.
    #[serde(default)]
    #[param(minimum = 0, maximum = 60, required = false)]
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
    let status = e.status_at(broker.clock().now());
    let mut v = ElicitationView {
        id: e.id.to_string(),
        status: api_status(status),
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
                mode: UrlMode::Url,
                elicitation_id: e.id.to_string(),
                url: url.clone(),
                message: message.clone(),
            };
            v.mcp_error = Some(McpUrlElicitationRequired {
                code: URL_ELICITATION_REQUIRED,
                message: "This request requires the user to complete an action in the browser."
                    .to_owned(),
                data: McpElicitations {
                    elicitations: vec![mcp()],
                },
            });
            v.mcp = Some(mcp());
            v.url = Some(url);
        }
        // The page the user sees says it waits for an administrator.
        ElicitationStatus::AwaitingApproval => {
            v.url = Some(broker.consent_url(&e.id).to_string());
        }
        ElicitationStatus::Completed => {
            if let Some(gid) = &e.grant_id
                && let Some(grant) = broker.grant(gid).await?
            {
                v.handle = Some(Secret::new(broker.handle_of(&grant)?.expose()));
                v.grant_id = Some(gid.to_string());
            }
        }
        _ => {}
    }
    Ok(v)
}

fn default_message(broker: &Broker, e: &Elicitation) -> String {
    let provider = broker
        .settings()
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
        (status = 201, description = "Pending: send the user to `url` (or pass `mcp` to the MCP client). Or `awaiting_approval`: the user already consented to this request and an administrator has not decided (no `mcp`; `url` shows the user that page)", body = ElicitationView),
        (status = 200, description = "Ready: an active grant covers the request", body = ReadyView),
        (status = 400, description = "invalid request; `subject_token_required`: the service's `subject_proof` is `required` and no `subject_token` was sent", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`, or a refused JWT credential: `caller_token_invalid`, `caller_token_wrong_audience`, `caller_token_expired`, `caller_token_replayed`, `caller_token_unknown_key`, `untrusted_issuer`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "provider or scope not allowed for this service; `subject_token_rejected` (the token did not verify, or is for another audience); `subject_mismatch` (it names another user than `subject`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(broker): State<Arc<Broker>>,
    ServiceCaller(service): ServiceCaller,
    ApiJson(body): ApiJson<CreateElicitation>,
) -> Result<Response, ApiError> {
    let subject_token = body.subject_token.clone();
    let request = parse(body)?;
    broker
        .prove_subject(
            &service,
            subject_token.as_ref().map(|t| t.expose()),
            &request.subject,
        )
        .await?;
    Ok(match broker.create_elicitation(&service, request).await? {
        Created::Ready { grant, handle } => Json(ReadyView {
            status: consent_broker_api::ReadyStatus::Ready,
            grant_id: grant.id.to_string(),
            handle: Secret::new(handle.expose()),
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
