//! `POST /v1/redeem`, `POST /v1/revoke` and `DELETE /v1/grants/{id}`. Handles travel only
//! in request bodies, never in URLs, so no access log can capture them.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use consent_broker_api::{CredentialView, GrantView, HandleBody, RedeemBody, RedeemedView, Secret};

use super::elicitations::rfc3339;
use crate::Error;
use crate::broker::{Broker, RevokeTarget};
use crate::domain::{Credential, Grant};
use crate::http::extract::ServiceCaller;
use crate::http::problem::{ApiError, ApiJson, Problem};

/// A grant's public metadata, as the API shows it.
fn grant_view(g: &Grant) -> GrantView {
    GrantView {
        grant_id: g.id.to_string(),
        status: g.status.as_str().to_owned(),
        subject: g.subject.to_string(),
        provider: g.provider.to_string(),
        revoked_at: g.revoked_at.map(rfc3339),
        upstream_revocation: g.upstream_revocation.map(|u| u.as_str().to_owned()),
    }
}

/// Exchange a handle for its credential. Only the service the grant is bound to can.
#[utoipa::path(post, path = "/v1/redeem", request_body = RedeemBody,
    security(("service_token" = [])),
    responses(
        (status = 200, body = RedeemedView),
        (status = 404, description = "unknown handle, or bound to another service", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "reauthorization_required: `elicitation` holds a new consent link (a dead refresh token, or consent past its policy lifetime); approval_pending: an administrator has not approved the grant", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "grant_revoked or grant_superseded", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "upstream_unavailable (refresh failed; retry after `Retry-After`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn redeem(
    State(broker): State<Arc<Broker>>,
    ServiceCaller(service): ServiceCaller,
    ApiJson(body): ApiJson<RedeemBody>,
) -> Result<Json<RedeemedView>, ApiError> {
    let r = match broker
        .redeem(
            &service,
            body.handle.expose(),
            body.force_refresh,
            body.subject_token.as_ref().map(Secret::expose),
        )
        .await
    {
        Ok(r) => r,
        Err(Error::ReauthorizationRequired(Some(elicitation))) => {
            let view = super::elicitations::view(&broker, *elicitation).await?;
            return Err(ApiError::with_elicitation(
                Error::ReauthorizationRequired(None),
                view,
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let credential = match &r.credential {
        Credential::ApiKey { api_key, header } => CredentialView::ApiKey {
            api_key: Secret::new(api_key.as_str()),
            header: header.clone(),
        },
        Credential::Terms {
            version,
            text_sha256,
        } => CredentialView::Terms {
            version: version.clone(),
            text_sha256: text_sha256.clone(),
            accepted_at: rfc3339(r.grant.created_at),
        },
        Credential::Oauth2 {
            access_token,
            token_type,
            expires_at,
            scopes,
            ..
        } => CredentialView::Oauth2 {
            access_token: Secret::new(access_token.as_str()),
            token_type: token_type.clone(),
            expires_at: expires_at
                .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
                .map(rfc3339),
            scopes: scopes.clone(),
        },
    };
    Ok(Json(RedeemedView {
        grant_id: r.grant.id.to_string(),
        subject: r.grant.subject.to_string(),
        provider: r.grant.provider.to_string(),
        kind: r.grant.kind.as_str().to_owned(),
        scopes: r.grant.scopes.iter().map(ToString::to_string).collect(),
        credential,
        metadata: r.grant.metadata.clone(),
    }))
}

/// Revoke the grant behind a handle.
#[utoipa::path(post, path = "/v1/revoke", request_body = HandleBody,
    security(("service_token" = [])),
    responses((status = 200, body = GrantView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn revoke_by_handle(
    State(broker): State<Arc<Broker>>,
    ServiceCaller(service): ServiceCaller,
    ApiJson(body): ApiJson<HandleBody>,
) -> Result<Json<GrantView>, ApiError> {
    let g = broker
        .revoke_for_service(&service, RevokeTarget::Handle(body.handle.expose()))
        .await?;
    Ok(Json(grant_view(&g)))
}

/// Revoke one of this service's grants by grant id.
#[utoipa::path(delete, path = "/v1/grants/{id}", params(("id" = String, Path)),
    security(("service_token" = [])),
    responses((status = 200, body = GrantView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn revoke_by_id(
    State(broker): State<Arc<Broker>>,
    ServiceCaller(service): ServiceCaller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<GrantView>), ApiError> {
    let g = broker
        .revoke_for_service(&service, RevokeTarget::Id(&id))
        .await?;
    Ok((StatusCode::OK, Json(grant_view(&g))))
}
