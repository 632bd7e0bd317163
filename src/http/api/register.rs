//! `POST /v1/register` (RFC 7591, with an initial access token an administrator minted)
//! and the registration's own management (RFC 7592-style, with its registration access
//! token): `GET`, `DELETE` and `POST …/rotate` under `/v1/register/{client_id}`. Tokens
//! appear only in the answer that issues them; no token ever travels in a URL.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use consent_broker_api::{Registered, RegistrationRequest, RegistrationView, Rotated, Secret};

use super::elicitations::rfc3339;
use crate::broker::{Broker, ServiceDescription};
use crate::domain::{Actor, RegisteredService, ScopeGrants};
use crate::http::extract::{InitialAccess, Registrant};
use crate::http::problem::{ApiError, ApiJson, Problem};

fn scopes(grants: &ScopeGrants) -> BTreeMap<String, Vec<String>> {
    grants
        .iter()
        .map(|(p, s)| (p.to_string(), s.iter().map(ToString::to_string).collect()))
        .collect()
}

fn view(broker: &Broker, r: &RegisteredService) -> RegistrationView {
    let base = broker.public_url().as_str().trim_end_matches('/');
    RegistrationView {
        client_id: r.id.to_string(),
        client_id_issued_at: r.created_at.unix_timestamp(),
        client_name: r.name.clone(),
        contacts: r.contacts.clone(),
        requested_scopes: scopes(&r.requested),
        allowed_scopes: scopes(&r.allow),
        resource: r.resource.clone(),
        status: r.status.as_str().to_owned(),
        registration_client_uri: format!("{base}/v1/register/{}", r.id),
    }
}

/// Register a service. It starts `pending`: its token answers `service_pending` until an
/// administrator approves it in the console (possibly narrowing its scopes).
#[utoipa::path(post, path = "/v1/register", request_body = RegistrationRequest,
    security(("initial_access_token" = [])),
    responses(
        (status = 201, body = Registered),
        (status = 401, description = "`registration_token_rejected`: the initial access token is unknown, used up or expired", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn register(
    State(broker): State<Arc<Broker>>,
    initial: InitialAccess,
    ApiJson(body): ApiJson<RegistrationRequest>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    let description = ServiceDescription {
        name: body.client_name,
        contacts: body.contacts,
        scopes: body.requested_scopes,
        resource: body.resource,
    };
    let issued = match broker
        .register_with_initial_token(&initial.token, &description)
        .await
    {
        Ok(issued) => issued,
        Err(e) => return Err(initial.refused(&broker, e).await),
    };
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            registration: view(&broker, &issued.service),
            client_secret: Secret::new(issued.token),
            client_secret_expires_at: 0,
            registration_access_token: Secret::new(issued.registration_token.unwrap_or_default()),
        }),
    ))
}

/// Read this registration: its status and the scopes an administrator allowed.
#[utoipa::path(get, path = "/v1/register/{client_id}",
    params(("client_id" = String, Path, description = "The service id")),
    security(("registration_access_token" = [])),
    responses(
        (status = 200, body = RegistrationView),
        (status = 401, description = "`registration_token_rejected`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn read(
    State(broker): State<Arc<Broker>>,
    Registrant(r): Registrant,
) -> Json<RegistrationView> {
    Json(view(&broker, &r))
}

/// Rotate the service's token: the new one works at once, the old one until
/// `previous_valid_until` (24 hours), never after.
#[utoipa::path(post, path = "/v1/register/{client_id}/rotate",
    params(("client_id" = String, Path, description = "The service id")),
    security(("registration_access_token" = [])),
    responses(
        (status = 200, body = Rotated),
        (status = 401, description = "`registration_token_rejected`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn rotate(
    State(broker): State<Arc<Broker>>,
    Registrant(r): Registrant,
) -> Result<Json<Rotated>, ApiError> {
    let (rotated, token) = broker
        .rotate_service_token(Actor::Service(r.id.clone()), &r)
        .await?;
    Ok(Json(Rotated {
        client_secret: Secret::new(token),
        previous_valid_until: rotated
            .previous_token
            .map(|p| rfc3339(p.valid_until))
            .unwrap_or_default(),
    }))
}

/// Delete this registration. Every grant of the service is revoked (OAuth tokens at
/// their provider too): nothing could redeem them again.
#[utoipa::path(delete, path = "/v1/register/{client_id}",
    params(("client_id" = String, Path, description = "The service id")),
    security(("registration_access_token" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "`registration_token_rejected`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete(
    State(broker): State<Arc<Broker>>,
    Registrant(r): Registrant,
) -> Result<StatusCode, ApiError> {
    broker
        .delete_service(Actor::Service(r.id.clone()), &r.id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
