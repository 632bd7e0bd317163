//! `GET /openapi.json`: the service API's OpenAPI document, generated from the handlers'
//! and types' annotations, so it cannot drift from the code.

use axum::Json;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{elicitations, grants, register};
use crate::http::problem::Problem;

#[derive(OpenApi)]
#[openapi(
    info(title = "consent-broker service API", description = "Create URL-mode elicitations and redeem grants by opaque handle. Errors are RFC 9457 problem+json."),
    paths(elicitations::create, elicitations::status, grants::redeem, grants::revoke_by_handle, grants::revoke_by_id, register::register, register::read, register::rotate, register::delete),
    components(schemas(Problem)),
    modifiers(&ServiceToken, &CommonProblems)
)]
pub struct ApiDoc;

struct ServiceToken;

impl Modify for ServiceToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for scheme in [
            "service_token",
            "initial_access_token",
            "registration_access_token",
        ] {
            components.add_security_scheme(
                scheme,
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
        }
    }
}

/// The refusals any operation can answer, whatever it does: a bad request, no valid
/// token, a body too large or not JSON, too many requests, the store unavailable. Each is
/// added to every operation that does not describe it itself.
struct CommonProblems;

const COMMON_PROBLEMS: [(&str, &str); 6] = [
    (
        "400",
        "invalid_request: a field, path or query that is not valid",
    ),
    ("401", "unauthenticated: no valid service token"),
    ("413", "body_too_large: the body is over the size limit"),
    (
        "415",
        "unsupported_media_type: the body is not `application/json`",
    ),
    ("429", "rate_limited: too many requests (see `Retry-After`)"),
    ("503", "store_unavailable: the store is unreachable; retry"),
];

impl Modify for CommonProblems {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                for (status, description) in COMMON_PROBLEMS {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| {
                            let mut response =
                                ResponseBuilder::new().description(description).content(
                                    "application/problem+json",
                                    ContentBuilder::new()
                                        .schema(Some(Ref::from_schema_name("Problem")))
                                        .build(),
                                );
                            // The answers that say when to come back.
                            if matches!(status, "429" | "503") {
                                response = response.header("Retry-After", retry_after());
                            }
                            response.build().into()
                        });
                }
            }
        }
    }
}

/// `Retry-After`: whole seconds to wait before retrying.
fn retry_after() -> utoipa::openapi::header::Header {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    utoipa::openapi::header::HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        )
        .description(Some("Seconds to wait before retrying"))
        .build()
}

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
