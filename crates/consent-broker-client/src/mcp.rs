//! A pending elicitation in each shape an MCP server hands to its client. The broker already
//! puts the 2025-11-25 objects in every pending view (`mcp`, `mcp_error`); these helpers add
//! the rest, as plain JSON, so they fit any MCP SDK:
//!
//! - 2025-11-25, request form: [`url_elicitation`] are the `params` of `elicitation/create`
//!   (`mode: "url"`, `elicitationId`, `url`, `message`);
//! - 2025-11-25, error form: [`url_elicitation_required`] is the JSON-RPC error `-32042`;
//! - 2025-11-25, completion: [`elicitation_complete`] is the `params` of
//!   `notifications/elicitation/complete`, sent only to the client that started it;
//! - 2026-07-28: [`input_required`] is an `input_required` result whose input request is a
//!   URL elicitation (no `elicitationId`), with a `requestState` the server sealed.
//!
//! Each returns `None` for an elicitation that is not pending (it has no URL to hand out).

use std::collections::BTreeMap;

use consent_broker_api::{
    ElicitationView, McpElicitations, McpUrlElicitation, McpUrlElicitationRequired,
    URL_ELICITATION_REQUIRED, UrlMode,
};
use serde::Serialize;

/// Method of the request that asks the client for an elicitation.
pub const ELICITATION_CREATE: &str = "elicitation/create";
/// Method of the server's notification that a URL elicitation completed (2025-11-25).
pub const ELICITATION_COMPLETE: &str = "notifications/elicitation/complete";

/// The `params` of `elicitation/create` in URL mode (MCP 2025-11-25).
pub fn url_elicitation(view: &ElicitationView) -> Option<McpUrlElicitation> {
    view.mcp.clone()
}

/// The JSON-RPC error `-32042` (URL elicitation required) for one or more pending
/// elicitations a tool call needs (MCP 2025-11-25).
pub fn url_elicitation_required(views: &[&ElicitationView]) -> Option<McpUrlElicitationRequired> {
    let elicitations: Vec<McpUrlElicitation> = views.iter().filter_map(|v| v.mcp.clone()).collect();
    if elicitations.is_empty() || elicitations.len() != views.len() {
        return None;
    }
    let message = match views.first().and_then(|v| v.mcp_error.as_ref()) {
        Some(e) if views.len() == 1 => e.message.clone(),
        _ => "This request requires the user to complete an action in the browser.".to_owned(),
    };
    Some(McpUrlElicitationRequired {
        code: URL_ELICITATION_REQUIRED,
        message,
        data: McpElicitations { elicitations },
    })
}

/// `{"elicitationId": …}`: the `params` of `notifications/elicitation/complete`.
pub fn elicitation_complete(elicitation_id: &str) -> serde_json::Value {
    serde_json::json!({ "elicitationId": elicitation_id })
}

/// The `params` of a URL elicitation in MCP 2026-07-28 (no `elicitationId`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UrlElicitationParams {
    pub mode: UrlMode,
    pub url: String,
    pub message: String,
}

/// An `elicitation/create` input request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InputRequest {
    pub method: &'static str,
    pub params: UrlElicitationParams,
}

/// An `input_required` result (MCP 2026-07-28): the client fulfils `inputRequests` and
/// retries the original request with `inputResponses` and the same `requestState`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InputRequired {
    /// Always `input_required`.
    pub result_type: &'static str,
    pub input_requests: BTreeMap<String, InputRequest>,
    pub request_state: String,
}

/// The `input_required` result for a pending elicitation under `key`. `request_state` is
/// echoed back by the client, so it is attacker-controlled on return: seal it (HMAC or
/// AEAD, e.g. rmcp's `RequestStateCodec`), bind it to the user, the request and a TTL, and
/// accept each value once.
pub fn input_required(
    view: &ElicitationView,
    key: &str,
    request_state: String,
) -> Option<InputRequired> {
    let mcp = view.mcp.as_ref()?;
    let request = InputRequest {
        method: ELICITATION_CREATE,
        params: UrlElicitationParams {
            mode: UrlMode::Url,
            url: mcp.url.clone(),
            message: mcp.message.clone(),
        },
    };
    Some(InputRequired {
        result_type: "input_required",
        input_requests: BTreeMap::from([(key.to_owned(), request)]),
        request_state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pending() -> ElicitationView {
        let mcp = json!({"mode": "url", "elicitationId": "e1",
            "url": "https://broker.example/e/e1", "message": "Connect your GitHub account."});
        serde_json::from_value(json!({
            "id": "e1", "status": "pending", "subject": "alice", "provider": "github",
            "scopes": ["repo"], "created_at": "c", "expires_at": "x",
            "url": "https://broker.example/e/e1", "mcp": mcp,
            "mcp_error": {"code": -32042, "message": "Browser action needed.",
                          "data": {"elicitations": [mcp]}}
        }))
        .unwrap()
    }

    #[test]
    fn the_2025_11_25_request_params_are_the_spec_shape() {
        let params = serde_json::to_value(url_elicitation(&pending()).unwrap()).unwrap();
        assert_eq!(
            params,
            json!({"mode": "url", "elicitationId": "e1",
                   "url": "https://broker.example/e/e1", "message": "Connect your GitHub account."})
        );
    }

    #[test]
    fn the_error_form_is_code_32042_with_the_elicitations_in_data() {
        let view = pending();
        let error = serde_json::to_value(url_elicitation_required(&[&view]).unwrap()).unwrap();
        assert_eq!(error["code"], -32042);
        assert_eq!(error["message"], "Browser action needed.");
        assert_eq!(error["data"]["elicitations"][0]["elicitationId"], "e1");
        assert_eq!(error["data"]["elicitations"][0]["mode"], "url");
    }

    #[test]
    fn the_2026_07_28_input_required_result_has_no_elicitation_id() {
        let result = input_required(&pending(), "github", "sealed".into()).unwrap();
        assert_eq!(
            serde_json::to_value(result).unwrap(),
            json!({"resultType": "input_required",
                   "inputRequests": {"github": {"method": "elicitation/create", "params": {
                       "mode": "url", "url": "https://broker.example/e/e1",
                       "message": "Connect your GitHub account."}}},
                   "requestState": "sealed"})
        );
    }

    #[test]
    fn a_settled_elicitation_has_no_mcp_shape() {
        let mut view = pending();
        view.status = consent_broker_api::ElicitationStatus::Completed;
        view.mcp = None;
        view.mcp_error = None;
        assert!(url_elicitation(&view).is_none());
        assert!(url_elicitation_required(&[&view]).is_none());
        assert!(input_required(&view, "k", "s".into()).is_none());
    }
}
