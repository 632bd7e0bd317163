//! `GET /openapi.json`: the service API's OpenAPI document, generated from the handlers'
//! and types' annotations, so it cannot drift from the code.

use axum::Json;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{elicitations, grants};
use crate::http::problem::Problem;

#[derive(OpenApi)]
#[openapi(
    info(title = "consent-broker service API", description = "Create URL-mode elicitations and redeem grants by opaque handle. Errors are RFC 9457 problem+json."),
    paths(elicitations::create, elicitations::status, grants::redeem, grants::revoke_by_handle, grants::revoke_by_id),
    components(schemas(Problem)),
    modifiers(&ServiceToken)
)]
pub struct ApiDoc;

struct ServiceToken;

impl Modify for ServiceToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "service_token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
