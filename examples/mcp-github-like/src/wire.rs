//! What 2026-07-28 answers say on the wire: only fields that revision defines. rmcp 3.11
//! models a URL elicitation's `elicitationId` as a plain string and writes it even when empty,
//! but 2026-07-28 has no such field; this drops it from the `inputRequests` of an
//! `input_required` result: over HTTP as a layer (JSON or SSE answer; answers to older
//! revisions pass untouched), on stdio line by line ([`strip_stdio`]; `input_required` exists
//! only from 2026-07-28 on, so every one is rewritten).

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::middleware::Next;
use axum::response::Response;
use rmcp::model::ProtocolVersion;
use serde_json::Value;

/// The `MCP-Protocol-Version` request header.
const PROTOCOL_HEADER: &str = "mcp-protocol-version";
/// Answers larger than this are passed through as they are.
const MAX_REWRITE: usize = 4 * 1024 * 1024;

/// Whether the request speaks 2026-07-28 or later (ISO dates compare as strings do).
fn is_2026(request: &Request) -> bool {
    request
        .headers()
        .get(PROTOCOL_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v >= ProtocolVersion::V_2026_07_28.as_str())
}

/// The middleware.
pub async fn only_defined_fields(request: Request, next: Next) -> Response {
    if !is_2026(&request) {
        return next.run(request).await;
    }
    let response = next.run(request).await;
    let (mut parts, body) = response.into_parts();
    let kind = match parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        Some(ct) if ct.starts_with("application/json") => Kind::Json,
        Some(ct) if ct.starts_with("text/event-stream") => Kind::Sse,
        _ => return Response::from_parts(parts, body),
    };
    let Ok(bytes) = to_bytes(body, MAX_REWRITE).await else {
        // Too large or broken: nothing sensible to pass on either.
        return Response::from_parts(parts, Body::empty());
    };
    let Ok(text) = String::from_utf8(bytes.to_vec()) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let rewritten = match kind {
        Kind::Json => rewrite_json(&text).unwrap_or(text),
        Kind::Sse => text
            .split('\n')
            .map(|line| match line.strip_prefix("data:") {
                Some(data) => match rewrite_json(data.trim_start()) {
                    Some(json) => format!("data: {json}"),
                    None => line.to_owned(),
                },
                None => line.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\n"),
    };
    parts.headers.remove(CONTENT_LENGTH);
    if let Ok(length) = HeaderValue::from_str(&rewritten.len().to_string()) {
        parts.headers.insert(CONTENT_LENGTH, length);
    }
    Response::from_parts(parts, Body::from(rewritten))
}

enum Kind {
    Json,
    Sse,
}

/// Relays the server's stdio output (one JSON-RPC message a line) to `out`, rewritten.
pub async fn strip_stdio(
    from_server: impl tokio::io::AsyncRead + Unpin,
    mut out: impl tokio::io::AsyncWrite + Unpin,
) -> std::io::Result<()> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let mut lines = tokio::io::BufReader::new(from_server).lines();
    while let Some(line) = lines.next_line().await? {
        let line = rewrite_json(&line).unwrap_or(line);
        out.write_all(line.as_bytes()).await?;
        out.write_all(b"\n").await?;
        out.flush().await?;
    }
    Ok(())
}

/// The message without undefined fields; `None` when it is not JSON (left as it is).
fn rewrite_json(text: &str) -> Option<String> {
    let mut message: Value = serde_json::from_str(text).ok()?;
    strip_elicitation_ids(&mut message);
    serde_json::to_string(&message).ok()
}

fn strip_elicitation_ids(message: &mut Value) {
    let Some(result) = message.get_mut("result") else {
        return;
    };
    if result.get("resultType").and_then(Value::as_str) != Some("input_required") {
        return;
    }
    let Some(requests) = result
        .get_mut("inputRequests")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for request in requests.values_mut() {
        if let Some(params) = request.get_mut("params").and_then(Value::as_object_mut)
            && params.get("mode").and_then(Value::as_str) == Some("url")
        {
            params.remove("elicitationId");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_input_required_url_elicitation_loses_its_elicitation_id_and_nothing_else() {
        let mut message = json!({"jsonrpc": "2.0", "id": 1, "result": {
            "resultType": "input_required", "requestState": "s",
            "inputRequests": {"connect": {"method": "elicitation/create",
                "params": {"mode": "url", "url": "http://b/e/1", "message": "m", "elicitationId": ""}}}}});
        strip_elicitation_ids(&mut message);
        assert_eq!(
            message["result"]["inputRequests"]["connect"]["params"],
            json!({"mode": "url", "url": "http://b/e/1", "message": "m"})
        );
        assert_eq!(message["result"]["requestState"], "s");
    }

    #[tokio::test]
    async fn stdio_lines_are_rewritten_one_by_one() {
        let lines = concat!(
            r#"{"jsonrpc":"2.0","id":1,"result":{"resultType":"input_required","#,
            r#""inputRequests":{"c":{"method":"elicitation/create","#,
            r#""params":{"mode":"url","url":"u","message":"m","elicitationId":""}}}}}"#,
            "\n",
            r#"{"jsonrpc":"2.0","id":2,"result":{}}"#,
            "\n"
        );
        let mut out = Vec::new();
        strip_stdio(lines.as_bytes(), &mut out).await.unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(!out.contains("elicitationId"), "{out}");
        assert_eq!(out.lines().count(), 2);
        let second: Value = serde_json::from_str(out.lines().nth(1).unwrap()).unwrap();
        assert_eq!(second, json!({"jsonrpc": "2.0", "id": 2, "result": {}}));
        assert!(out.ends_with('\n'));
    }

    #[test]
    fn other_results_are_left_alone() {
        let original = json!({"jsonrpc": "2.0", "id": 1, "result": {"content": [],
            "elicitationId": "kept"}});
        let mut message = original.clone();
        strip_elicitation_ids(&mut message);
        assert_eq!(message, original);
    }
}
