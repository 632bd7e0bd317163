//! SCIM 2.0 on the wire (RFC 7643 / RFC 7644), only as much as an IdP's deprovisioning
//! uses: the User resource (`id`, `userName`, `active`), the ListResponse, the PatchOp
//! message in both shapes IdPs send, the `userName eq "…"` filter, and error messages.
//! Everything here is pure: parsing and rendering, no I/O.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::Subject;

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const CONTENT_TYPE: &str = "application/scim+json";

/// The SCIM `id` of a broker subject: the subject's bytes in base64url (no padding).
/// Stable, reversible without a lookup table, and the same on every instance.
pub fn user_id(subject: &Subject) -> String {
    URL_SAFE_NO_PAD.encode(subject.as_str().as_bytes())
}

/// The subject a SCIM `id` names, if it is one this broker could have issued.
pub fn subject_of_id(id: &str) -> Option<Subject> {
    let bytes = URL_SAFE_NO_PAD.decode(id).ok()?;
    Subject::parse(String::from_utf8(bytes).ok()?).ok()
}

/// A User resource as the broker shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub schemas: [&'static str; 1],
    pub id: String,
    pub user_name: String,
    pub active: bool,
    pub meta: Meta,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    pub resource_type: &'static str,
    pub location: String,
}

impl User {
    /// `subject` as a resource whose URL starts at `users_url` (`…/scim/v2/Users`).
    pub fn new(subject: &Subject, active: bool, users_url: &str) -> Self {
        let id = user_id(subject);
        Self {
            schemas: [USER_SCHEMA],
            meta: Meta {
                resource_type: "User",
                location: format!("{users_url}/{id}"),
            },
            id,
            user_name: subject.to_string(),
            active,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse {
    pub schemas: [&'static str; 1],
    pub total_results: usize,
    pub start_index: usize,
    pub items_per_page: usize,
    #[serde(rename = "Resources")]
    pub resources: Vec<User>,
}

impl ListResponse {
    pub fn new(resources: Vec<User>) -> Self {
        Self {
            schemas: [LIST_SCHEMA],
            total_results: resources.len(),
            start_index: 1,
            items_per_page: resources.len(),
            resources,
        }
    }
}

/// A SCIM answer: the JSON body with `application/scim+json`.
pub struct Scim<T>(pub StatusCode, pub T);

impl<T: Serialize> IntoResponse for Scim<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.1) {
            Ok(body) => (
                self.0,
                [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
                body,
            )
                .into_response(),
            Err(_) => ScimError::internal().into_response(),
        }
    }
}

/// The `scimType` of a 400 (RFC 7644 §3.12): `invalidFilter`, `invalidSyntax`, `invalidValue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimType {
    Filter,
    Syntax,
    Value,
}

impl ScimType {
    fn as_str(self) -> &'static str {
        match self {
            Self::Filter => "invalidFilter",
            Self::Syntax => "invalidSyntax",
            Self::Value => "invalidValue",
        }
    }
}

/// A SCIM error message (RFC 7644 §3.12). Its detail is fixed text, never request data.
#[derive(Debug)]
pub struct ScimError {
    pub status: StatusCode,
    pub scim_type: Option<ScimType>,
    pub detail: &'static str,
    /// Seconds, for a 429.
    pub retry_after: Option<u64>,
}

impl ScimError {
    pub fn new(status: StatusCode, detail: &'static str) -> Self {
        Self {
            status,
            scim_type: None,
            detail,
            retry_after: None,
        }
    }

    pub fn bad(scim_type: ScimType, detail: &'static str) -> Self {
        Self {
            scim_type: Some(scim_type),
            ..Self::new(StatusCode::BAD_REQUEST, detail)
        }
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "No such user")
    }

    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error")
    }
}

impl From<crate::Error> for ScimError {
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::RateLimited(wait) => Self {
                retry_after: Some(wait.max(1)),
                ..Self::new(StatusCode::TOO_MANY_REQUESTS, "Too many requests")
            },
            crate::Error::StoreUnavailable(_) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "The store is unavailable")
            }
            other => {
                tracing::warn!(error = %other, "SCIM request failed");
                Self::internal()
            }
        }
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let Some(t) = self.scim_type {
            body["scimType"] = Value::from(t.as_str());
        }
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
            body.to_string(),
        )
            .into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"scim\""),
            );
        }
        if let Some(wait) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(wait));
        }
        response
    }
}

/// The one filter supported: `userName eq "<value>"` (attribute and operator in any
/// case, RFC 7644 §3.4.2.2). Returns the value, unescaped.
pub fn user_name_filter(filter: &str) -> Result<String, ScimError> {
    let unsupported = || {
        ScimError::bad(
            ScimType::Filter,
            "Only the filter userName eq \"value\" is supported",
        )
    };
    let filter = filter.trim();
    let (attribute, rest) = filter
        .split_once(char::is_whitespace)
        .ok_or_else(unsupported)?;
    let (operator, value) = rest
        .trim_start()
        .split_once(char::is_whitespace)
        .ok_or_else(unsupported)?;
    let attribute = attribute
        .strip_prefix(USER_SCHEMA)
        .and_then(|a| a.strip_prefix(':'))
        .unwrap_or(attribute);
    if !attribute.eq_ignore_ascii_case("userName") || !operator.eq_ignore_ascii_case("eq") {
        return Err(unsupported());
    }
    // A JSON string literal: quotes and escapes as in JSON (RFC 7644 §3.4.2.2).
    serde_json::from_str::<String>(value.trim()).map_err(|_| unsupported())
}

/// A PatchOp message (RFC 7644 §3.5.2).
#[derive(Deserialize)]
pub struct PatchOp {
    #[serde(default)]
    schemas: Vec<String>,
    #[serde(rename = "Operations", default)]
    operations: Vec<Operation>,
}

#[derive(Deserialize)]
struct Operation {
    op: String,
    path: Option<String>,
    value: Option<Value>,
}

impl PatchOp {
    /// Whether the message sets `active` to false, in either shape IdPs send: Entra's
    /// `{"op":"Replace","path":"active","value":"False"}` or Okta's
    /// `{"op":"replace","value":{"active":false}}`. Operations on other attributes are
    /// acknowledged and ignored: the broker keeps nothing else of a user.
    pub fn deactivates(&self) -> Result<bool, ScimError> {
        if !self.schemas.iter().any(|s| s == PATCH_SCHEMA) {
            return Err(ScimError::bad(
                ScimType::Syntax,
                "The body is not a PatchOp message",
            ));
        }
        let mut deactivates = false;
        for op in &self.operations {
            if !(op.op.eq_ignore_ascii_case("replace") || op.op.eq_ignore_ascii_case("add")) {
                continue;
            }
            let active = match (op.path.as_deref(), &op.value) {
                (Some(path), Some(value)) if is_active_path(path) => Some(value),
                (None, Some(Value::Object(members))) => members
                    .iter()
                    .find(|(name, _)| is_active_path(name))
                    .map(|(_, v)| v),
                _ => None,
            };
            if let Some(value) = active {
                deactivates |= !boolean(value)?;
            }
        }
        Ok(deactivates)
    }
}

fn is_active_path(path: &str) -> bool {
    let path = path
        .strip_prefix(USER_SCHEMA)
        .and_then(|p| p.strip_prefix(':'))
        .unwrap_or(path);
    path.eq_ignore_ascii_case("active")
}

/// A SCIM boolean: JSON `true`/`false`, or the strings `"True"`/`"False"` Entra sends.
pub fn boolean(value: &Value) -> Result<bool, ScimError> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(ScimError::bad(ScimType::Value, "active must be a boolean")),
    }
}

/// The parts of a User body (POST, PUT) the broker reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserBody {
    pub user_name: Option<String>,
    pub active: Option<Value>,
}

/// Parses a JSON request body (`application/scim+json` or `application/json`).
pub fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ScimError> {
    serde_json::from_slice(body)
        .map_err(|_| ScimError::bad(ScimType::Syntax, "The body is not valid SCIM JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_username_filter_is_read_in_any_case_and_anything_else_refused() {
        assert_eq!(
            user_name_filter("userName eq \"alice@example.com\"").unwrap(),
            "alice@example.com"
        );
        assert_eq!(user_name_filter("USERNAME EQ \"a\\\"b\"").unwrap(), "a\"b");
        assert_eq!(
            user_name_filter(&format!("{USER_SCHEMA}:userName eq \"x\"")).unwrap(),
            "x"
        );
        for bad in [
            "userName co \"a\"",
            "emails eq \"a\"",
            "userName eq a",
            "userName",
            "",
        ] {
            let e = user_name_filter(bad).unwrap_err();
            assert_eq!(e.scim_type, Some(ScimType::Filter), "{bad}");
        }
    }

    fn patch(json: &str) -> Result<bool, ScimError> {
        serde_json::from_str::<PatchOp>(json).unwrap().deactivates()
    }

    #[test]
    fn both_idp_shapes_of_deactivation_are_read() {
        let entra = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations":[{"op":"Replace","path":"active","value":"False"}]}"#;
        let okta = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations":[{"op":"replace","value":{"active":false}}]}"#;
        assert!(patch(entra).unwrap());
        assert!(patch(okta).unwrap());
        let other = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations":[{"op":"replace","path":"displayName","value":"A"},
                          {"op":"replace","value":{"active":true}}]}"#;
        assert!(!patch(other).unwrap());
        let not_bool = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations":[{"op":"replace","path":"active","value":"nope"}]}"#;
        assert_eq!(
            patch(not_bool).unwrap_err().scim_type,
            Some(ScimType::Value)
        );
        let no_schema = r#"{"Operations":[{"op":"replace","value":{"active":false}}]}"#;
        assert_eq!(
            patch(no_schema).unwrap_err().scim_type,
            Some(ScimType::Syntax)
        );
    }

    #[test]
    fn a_user_id_round_trips_to_its_subject_and_nothing_else_decodes() {
        let alice = Subject::parse("alice@example.com").unwrap();
        assert_eq!(subject_of_id(&user_id(&alice)), Some(alice));
        assert_eq!(subject_of_id("!!"), None);
        assert_eq!(subject_of_id(&URL_SAFE_NO_PAD.encode(b" padded")), None);
    }
}
