//! docs/integrating.md's Python integration, as the doc shows it: the block is extracted from
//! the doc (so doc and test cannot drift), served in process by the official Python SDK
//! (`mcp`, pinned and installed by scripts/test) and called by that SDK's client on both
//! protocol revisions, against a live broker: the user consents in the broker's pages and the
//! tool answers with the upstream's data; a decline ends the call with a tool error.

use crate::common;

use std::process::Stdio;
use std::time::Duration;

use common::{API_KEY_PROVIDER, GOOD_KEY, TestApp};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

const BEGIN: &str = "<!-- integrating.py: begin -->";
const END: &str = "<!-- integrating.py: end -->";
const BOUND: Duration = Duration::from_secs(60);

/// The Python block between the doc's markers.
fn documented_snippet() -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/integrating.md"))
        .unwrap();
    let start = doc.find(BEGIN).expect("the doc marks its Python block") + BEGIN.len();
    let end = doc[start..].find(END).expect("the block's end marker") + start;
    let block = doc[start..end].trim();
    block
        .strip_prefix("```python")
        .and_then(|b| b.strip_suffix("```"))
        .expect("one python code block between the markers")
        .to_owned()
}

/// An upstream API that answers for the `acme` key in `X-Acme-Key` only.
async fn upstream() -> String {
    let app = axum::Router::new().route(
        "/me",
        axum::routing::get(|headers: axum::http::HeaderMap| async move {
            if headers.get("x-acme-key").is_some_and(|k| k == GOOD_KEY) {
                (axum::http::StatusCode::OK, r#"{"project": "acme-reports"}"#)
            } else {
                (axum::http::StatusCode::UNAUTHORIZED, "{}")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/me", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

struct Harness {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    /// What the Python side wrote to stderr (the SDK's logs, a traceback), for failures.
    stderr: tokio::task::JoinHandle<String>,
}

impl Harness {
    fn start(
        app: &TestApp,
        upstream: &str,
        snippet: &std::path::Path,
        mode: &str,
        user: &str,
    ) -> Harness {
        Self::start_with(app, upstream, snippet, &[mode, user])
    }

    /// `args`: MODE USER and, optionally, `no-elicitation`.
    fn start_with(
        app: &TestApp,
        upstream: &str,
        snippet: &std::path::Path,
        args: &[&str],
    ) -> Harness {
        let mut child = tokio::process::Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/python/run_integrating.py"
            ))
            .arg(snippet)
            .args(args)
            .env("CONSENT_BROKER_URL", &app.base)
            .env("CONSENT_BROKER_SERVICE_TOKEN", &app.token)
            .env("PROVIDER", API_KEY_PROVIDER)
            .env("SCOPES", "read")
            .env("UPSTREAM_URL", upstream)
            .env("REQUEST_STATE_KEY", consent_broker::random::token::<32>())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut err = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let _ = tokio::io::AsyncReadExt::read_to_string(&mut err, &mut text).await;
            text
        });
        Harness {
            child,
            lines,
            stderr,
        }
    }

    /// The next JSON line the harness prints (the SDK's own log lines are skipped).
    async fn next(&mut self) -> Value {
        loop {
            let line = tokio::time::timeout(BOUND, self.lines.next_line())
                .await
                .expect("the Python side answers in time")
                .unwrap();
            match line {
                Some(line) if line.starts_with('{') => return serde_json::from_str(&line).unwrap(),
                Some(_) => {}
                None => {
                    let _ = self.child.kill().await;
                    let stderr = (&mut self.stderr).await.unwrap_or_default();
                    panic!(
                        "the Python side ended early (is `mcp` installed? scripts/test does it):\n{stderr}"
                    );
                }
            }
        }
    }

    async fn answer(&mut self, action: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin
            .write_all(format!("{action}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
    }
}

#[tokio::test]
async fn the_documented_python_integration_completes_on_both_revisions_and_ends_on_decline() {
    let app = TestApp::spawn().await;
    let upstream = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let snippet = dir.path().join("integrating.py");
    std::fs::write(&snippet, documented_snippet()).unwrap();

    for (mode, user) in [("legacy", "alice"), ("2026-07-28", "bob")] {
        let mut python = Harness::start(&app, &upstream, &snippet, mode, user);
        let asked = python.next().await;
        let url = asked["elicitation"].as_str().expect("an URL elicitation");
        assert_eq!(
            asked["elicitation_id"].is_null(),
            mode != "legacy",
            "{mode}: elicitationId only on 2025-11-25: {asked}"
        );
        let id = url.rsplit('/').next().unwrap();
        let done = app
            .consent_api_key(&json!({"id": id, "url": url}), user, GOOD_KEY)
            .await;
        assert_eq!(done["status"], "completed");
        python.answer("accept").await;

        let result = python.next().await;
        assert_eq!(result["is_error"], false, "{mode}: {result}");
        let text = result["text"].as_str().unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(text).unwrap()["project"],
            "acme-reports",
            "{mode}: the upstream's data"
        );
        assert!(!text.contains(GOOD_KEY), "the key never reaches the client");
    }

    for (mode, user) in [("legacy", "carol"), ("2026-07-28", "dave")] {
        let mut python = Harness::start(&app, &upstream, &snippet, mode, user);
        python.next().await["elicitation"]
            .as_str()
            .expect("an URL elicitation");
        python.answer("decline").await;
        let result = python.next().await;
        assert_eq!(result["is_error"], true, "{mode}: {result}");
        assert!(
            result["text"].as_str().unwrap().contains("not connected"),
            "{mode}: {result}"
        );
    }
}

#[tokio::test]
async fn the_documented_python_integration_answers_a_client_without_url_elicitation_with_the_error_of_its_revision()
 {
    let app = TestApp::spawn().await;
    let upstream = upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let snippet = dir.path().join("integrating.py");
    std::fs::write(&snippet, documented_snippet()).unwrap();

    for (mode, user, code) in [("legacy", "erin", -32042), ("2026-07-28", "frank", -32021)] {
        let mut python =
            Harness::start_with(&app, &upstream, &snippet, &[mode, user, "no-elicitation"]);
        let result = python.next().await;
        assert_eq!(result["error"], code, "{mode}: {result}");
        if code == -32021 {
            assert_eq!(
                result["data"]["requiredCapabilities"],
                json!({"elicitation": {"url": {}}})
            );
        } else {
            let elicitation = &result["data"]["elicitations"][0];
            assert_eq!(elicitation["mode"], "url", "{result}");
            assert!(elicitation["elicitationId"].is_string(), "{result}");
        }
    }
}
