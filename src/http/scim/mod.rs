//! The SCIM 2.0 endpoint an identity provider deprovisions users through,
//! `/scim/v2/Users` (only with `[scim]` configured; otherwise every route is a SCIM 404).
//!
//! Authorisation is [`ScimCaller`]: the configured bearer token, compared by its SHA-256 in
//! constant time; wrong tokens count against the caller's address like wrong service
//! tokens do (401, then 429). A SCIM user is a broker subject: `userName` *is* the subject,
//! byte for byte (docs/offboarding.md says why), and the resource `id` is its base64url.
//!
//! | request | answer |
//! |---|---|
//! | `GET /Users?filter=userName eq "x"` | ListResponse with the user, or empty when unknown |
//! | `GET /Users/{id}` | the user, or 404 |
//! | `POST /Users` | 201 with the user: acknowledged, nothing stored |
//! | `PATCH /Users/{id}` setting `active` false | every grant revoked; 200 with the user |
//! | `PUT /Users/{id}` with `active` false | the same |
//! | `DELETE /Users/{id}` | every grant revoked; 204 |
//!
//! An unknown user (no grant in the broker) is 404 for every `{id}` route, with nothing
//! changed; deprovisioning a known user again is 200/204 and revokes nothing more. Every
//! refusal, the edge's included (unknown route or method), is a SCIM error message.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::broker::{Broker, SubjectState, Trigger};
use crate::domain::{IdpClient, Subject};

mod wire;

use wire::{ListResponse, PatchOp, Scim, ScimError, ScimType, User, UserBody};

pub fn router() -> Router<Arc<Broker>> {
    Router::new()
        .route("/scim/v2/Users", get(list).post(create))
        .route(
            "/scim/v2/Users/{id}",
            get(show).put(replace).patch(patch).delete(remove),
        )
}

/// A refusal made before any SCIM handler ran (unknown route or method, headers too
/// large, a body too slow), as a SCIM error message.
pub fn edge_refusal(error: &crate::Error) -> Response {
    ScimError::new(error.status(), error.title()).into_response()
}

/// The IdP's SCIM client, authenticated by its bearer token.
pub struct ScimCaller(pub IdpClient);

impl FromRequestParts<Arc<Broker>> for ScimCaller {
    type Rejection = ScimError;

    async fn from_request_parts(
        parts: &mut Parts,
        broker: &Arc<Broker>,
    ) -> Result<Self, ScimError> {
        if broker.settings().scim.is_none() {
            return Err(ScimError::new(StatusCode::NOT_FOUND, "SCIM is not enabled"));
        }
        let client = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .and_then(|token| broker.authenticate_scim(token.trim()));
        let limits = broker.limits();
        let Some(client) = client else {
            let address = limits.client_address(&parts.headers, &parts.extensions);
            limits
                .failed_auth
                .check(&address)
                .map_err(|wait| crate::Error::RateLimited(wait.as_secs().max(1)))?;
            return Err(ScimError::new(
                StatusCode::UNAUTHORIZED,
                "A valid bearer token is required",
            ));
        };
        limits
            .api
            .check(client.as_str())
            .map_err(|wait| crate::Error::RateLimited(wait.as_secs()))?;
        Ok(Self(client))
    }
}

/// `…/scim/v2/Users` under the broker's public URL.
fn users_url(broker: &Broker) -> String {
    format!(
        "{}/scim/v2/Users",
        broker.public_url().as_str().trim_end_matches('/')
    )
}

/// The user `subject` as a resource, or 404 when the broker does not know them.
async fn resource(broker: &Broker, subject: &Subject) -> Result<User, ScimError> {
    match broker.subject_state(subject).await? {
        SubjectState::Unknown => Err(ScimError::not_found()),
        SubjectState::Known { active } => Ok(User::new(subject, active, &users_url(broker))),
    }
}

/// A request body, or the SCIM error for one that could not be read (too large, cut off).
fn read(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ScimError> {
    body.map_err(|r| ScimError::new(r.status(), "The body could not be read"))
}

fn subject_of(id: &str) -> Result<Subject, ScimError> {
    wire::subject_of_id(id).ok_or_else(ScimError::not_found)
}

#[derive(Deserialize)]
struct ListQuery {
    filter: Option<String>,
}

/// `GET /scim/v2/Users?filter=userName eq "…"`. Without a filter the list is empty: the
/// broker does not enumerate its users.
async fn list(
    State(broker): State<Arc<Broker>>,
    ScimCaller(_): ScimCaller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ScimError> {
    let Query(query) =
        query.map_err(|_| ScimError::bad(ScimType::Filter, "The query string is not valid"))?;
    let mut found = Vec::new();
    if let Some(filter) = query.filter.as_deref() {
        let name = wire::user_name_filter(filter)?;
        if let Ok(subject) = Subject::parse(name) {
            match resource(&broker, &subject).await {
                Ok(user) => found.push(user),
                Err(e) if e.status == StatusCode::NOT_FOUND => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(Scim(StatusCode::OK, ListResponse::new(found)).into_response())
}

async fn show(
    State(broker): State<Arc<Broker>>,
    ScimCaller(_): ScimCaller,
    Path(id): Path<String>,
) -> Result<Response, ScimError> {
    let subject = subject_of(&id)?;
    Ok(Scim(StatusCode::OK, resource(&broker, &subject).await?).into_response())
}

/// `POST /scim/v2/Users`: acknowledged with the resource, nothing stored. A user exists
/// for the broker once they hold a grant; creating one here would have no meaning.
async fn create(
    State(broker): State<Arc<Broker>>,
    ScimCaller(_): ScimCaller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ScimError> {
    let body = read(body)?;
    let user: UserBody = wire::parse(&body)?;
    let name = user
        .user_name
        .ok_or(ScimError::bad(ScimType::Value, "userName is required"))?;
    let subject = Subject::parse(name).map_err(|_| {
        ScimError::bad(
            ScimType::Value,
            "userName is not a subject this broker accepts",
        )
    })?;
    let active = user.active.as_ref().map(wire::boolean).transpose()?;
    let known = broker.subject_state(&subject).await?;
    let active = match known {
        SubjectState::Known { active } => active,
        SubjectState::Unknown => active.unwrap_or(true),
    };
    Ok(Scim(
        StatusCode::CREATED,
        User::new(&subject, active, &users_url(&broker)),
    )
    .into_response())
}

async fn patch(
    State(broker): State<Arc<Broker>>,
    ScimCaller(client): ScimCaller,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ScimError> {
    let body = read(body)?;
    let subject = subject_of(&id)?;
    let op: PatchOp = wire::parse(&body)?;
    let deactivates = op.deactivates()?;
    deactivate_if(
        &broker,
        &client,
        &subject,
        deactivates,
        Trigger::ScimDeactivated,
    )
    .await
}

async fn replace(
    State(broker): State<Arc<Broker>>,
    ScimCaller(client): ScimCaller,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ScimError> {
    let body = read(body)?;
    let subject = subject_of(&id)?;
    let user: UserBody = wire::parse(&body)?;
    let deactivates = match user.active.as_ref() {
        Some(v) => !wire::boolean(v)?,
        None => false,
    };
    deactivate_if(
        &broker,
        &client,
        &subject,
        deactivates,
        Trigger::ScimDeactivated,
    )
    .await
}

/// Revokes every grant of `subject` when `deactivates`; answers with the user as it now
/// stands (404 when unknown, before anything is done).
async fn deactivate_if(
    broker: &Broker,
    client: &IdpClient,
    subject: &Subject,
    deactivates: bool,
    trigger: Trigger,
) -> Result<Response, ScimError> {
    resource(broker, subject).await?;
    if deactivates {
        broker.deprovision(client, subject, trigger).await?;
    }
    Ok(Scim(StatusCode::OK, resource(broker, subject).await?).into_response())
}

async fn remove(
    State(broker): State<Arc<Broker>>,
    ScimCaller(client): ScimCaller,
    Path(id): Path<String>,
) -> Result<Response, ScimError> {
    let subject = subject_of(&id)?;
    resource(&broker, &subject).await?;
    broker
        .deprovision(&client, &subject, Trigger::ScimDeleted)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
