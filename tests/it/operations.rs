//! What an operator relies on: the shipped deployment files are valid (every config in
//! `deploy/` passes `check-config`, the Kubernetes manifests pass the Kubernetes schemas),
//! `/metrics` tells what happened without naming anyone, every log line of a request is
//! JSON with its request id and never its query string, and SIGTERM lets in-flight
//! requests finish within the configured shutdown timeout.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{API_KEY_PROVIDER, GOOD_KEY, TestApp};
use consent_broker::config::ProviderConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

use common::binary::BIN;
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn deploy(path: &str) -> PathBuf {
    Path::new(ROOT).join("deploy").join(path)
}

fn files_under(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, ext, out);
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
    out.sort();
}

// ---------------------------------------------------------------------------------------
// Deployment files

fn check_config(path: &Path) -> (bool, String) {
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn every_example_config_in_deploy_passes_check_config() {
    let mut configs = Vec::new();
    files_under(&deploy(""), "toml", &mut configs);
    let configs: Vec<_> = configs
        .into_iter()
        .filter(|p| !p.ends_with("keyring.example.toml"))
        .collect();
    assert!(
        configs.len() >= 3,
        "the example, compose and Kubernetes configs are all found: {configs:?}"
    );
    // This build may not have the Redis store yet (it lands on another branch); once it
    // does, the Redis configs are checked like the others.
    let probe = tempfile::tempdir().unwrap();
    let probe_file = probe.path().join("redis.toml");
    std::fs::write(&probe_file, "[store]\nkind = \"redis\"\n").unwrap();
    let (_, probe_text) = check_config(&probe_file);
    let has_redis = !probe_text.contains("found `redis`");
    let mut checked = 0;
    for path in &configs {
        let needs_redis = std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .any(|l| l.trim_start().starts_with("kind = \"redis\""));
        if needs_redis && !has_redis {
            eprintln!(
                "{}: needs the redis store; not checked here",
                path.display()
            );
            continue;
        }
        let (ok, text) = check_config(path);
        assert!(ok, "{}:\n{text}", path.display());
        assert!(text.contains(": ok ("), "{}:\n{text}", path.display());
        checked += 1;
    }
    assert!(checked >= 1, "at least the embedded example is checked");
}

#[test]
fn the_secret_examples_hold_placeholders_and_no_key() {
    use base64::Engine;
    for file in [
        "compose/secrets/keyring.example.toml",
        "k8s/secret.example.yaml",
    ] {
        let text = std::fs::read_to_string(deploy(file)).unwrap();
        assert!(text.contains("REPLACE_WITH"), "{file}: {text}");
        // A real key is base64 of 32 bytes; none may be committed.
        let keys: Vec<&str> = text
            .split('"')
            .filter(|part| {
                [
                    base64::engine::general_purpose::STANDARD,
                    base64::engine::general_purpose::URL_SAFE,
                ]
                .iter()
                .any(|engine| engine.decode(part).is_ok_and(|b| b.len() == 32))
            })
            .collect();
        assert!(keys.is_empty(), "{file} holds a key");
    }
    let ignored = std::fs::read_to_string(deploy("compose/secrets/.gitignore")).unwrap();
    assert!(
        ignored.lines().any(|l| l == "*"),
        "generated secrets are git-ignored"
    );
}

/// Runs `kubernetes-validate --strict` (installed by `scripts/test`, schemas bundled, so
/// it works offline) on `files`; returns its output.
fn kubernetes_validate(files: &[PathBuf]) -> String {
    let out = Command::new("kubernetes-validate")
        .args(["--strict", "--kubernetes-version", "1.32.0"])
        .args(files)
        .output()
        .unwrap_or_else(|e| {
            panic!("kubernetes-validate cannot run ({e}): run scripts/test, which installs it")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "invalid manifests:\n{text}");
    text
}

#[test]
fn the_kubernetes_manifests_pass_the_kubernetes_schemas() {
    let k8s = deploy("k8s");
    let mut manifests = Vec::new();
    files_under(&k8s, "yaml", &mut manifests);
    let manifests: Vec<_> = manifests
        .into_iter()
        .filter(|p| !p.ends_with("kustomization.yaml"))
        .collect();
    let text = kubernetes_validate(&manifests);
    for kind in [
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "Secret",
    ] {
        assert!(
            manifests.iter().any(|p| std::fs::read_to_string(p)
                .unwrap()
                .contains(&format!("kind: {kind}"))),
            "a {kind} is shipped"
        );
    }
    for manifest in &manifests {
        assert!(
            text.contains(&format!("{} passed", manifest.display())),
            "{} was validated:\n{text}",
            manifest.display()
        );
    }
}

#[test]
fn the_kustomization_builds_and_its_output_passes_the_kubernetes_schemas() {
    let k8s = deploy("k8s");
    let kustomization = std::fs::read_to_string(k8s.join("kustomization.yaml")).unwrap();
    let out = Command::new("kubectl")
        .args(["kustomize"])
        .arg(&k8s)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "kubectl cannot run ({e}): this test builds deploy/k8s with `kubectl kustomize`; \
                 install kubectl >= 1.27 (Debian bookworm's kubernetes-client is too old for \
                 the kustomization's `labels`)"
            )
        });
    let built = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "kubectl kustomize failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for kind in [
        "kind: ConfigMap",
        "kind: Deployment",
        "kind: Service",
        "kind: PodDisruptionBudget",
        "kind: HorizontalPodAutoscaler",
        "kind: NetworkPolicy",
    ] {
        assert!(built.contains(kind), "{kind} in the build:\n{built}");
    }
    // Every resource the kustomization lists is in the build.
    let listed: Vec<PathBuf> = kustomization
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .filter(|f| f.ends_with(".yaml"))
        .map(|f| k8s.join(f))
        .collect();
    assert!(listed.len() >= 5, "{kustomization}");
    for file in &listed {
        let source = std::fs::read_to_string(file).unwrap();
        let kind = source
            .lines()
            .find(|l| l.starts_with("kind: "))
            .unwrap_or_else(|| panic!("{} names its kind", file.display()));
        assert!(
            built.contains(kind),
            "{} in the build:\n{built}",
            file.display()
        );
    }
    // The generated ConfigMap's hashed name is what the Deployment mounts.
    let name = built
        .lines()
        .find_map(|l| l.trim().strip_prefix("name: consent-broker-config-"))
        .expect("a hashed config map name");
    assert!(
        built
            .matches(&format!("consent-broker-config-{name}"))
            .count()
            >= 2,
        "the Deployment mounts the generated ConfigMap:\n{built}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("built.yaml");
    std::fs::write(&file, &built).unwrap();
    kubernetes_validate(&[file]);
}

// ---------------------------------------------------------------------------------------
// Metrics

/// The API-key journey through the browser; returns (elicitation id, handle).
async fn grant_api_key(app: &TestApp, subject: &str) -> (String, String) {
    let created = app
        .create_pending(subject, API_KEY_PROVIDER, &["read"])
        .await;
    let status = app.consent_api_key(&created, subject, GOOD_KEY).await;
    (
        created["id"].as_str().unwrap().to_owned(),
        status["handle"].as_str().unwrap().to_owned(),
    )
}

async fn scrape(app: &TestApp) -> String {
    let r = app.api.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
    );
    r.text().await.unwrap()
}

fn assert_sample(text: &str, sample: &str) {
    assert!(
        text.lines().any(|l| l == sample),
        "missing `{sample}` in:\n{text}"
    );
}

#[tokio::test]
async fn metrics_count_an_api_key_journey_by_outcome_without_naming_anyone() {
    // An OAuth provider, so that its refresh counters exist (at zero) from the start.
    let app = TestApp::spawn_with(|c| {
        c.providers.push(ProviderConfig::Oauth2(
            consent_broker::config::OAuth2Config {
                id: "gh".into(),
                name: "GitHub".into(),
                authorization_endpoint: Some("https://as.example/authorize".parse().unwrap()),
                token_endpoint: Some("https://as.example/token".parse().unwrap()),
                client_id: "broker".into(),
                client_secret: Some("not-a-real-secret".to_owned().into()),
                ..Default::default()
            },
        ))
    })
    .await;
    let subject = "dora@example.com";
    let (id, handle) = grant_api_key(&app, subject).await;
    assert_eq!(
        app.redeem(&app.token, &handle).await.status(),
        StatusCode::OK
    );
    let revoked = app
        .post_json(&app.token, "/v1/revoke", json!({ "handle": handle }))
        .await;
    assert_eq!(revoked.status(), StatusCode::OK);
    let grant_id = revoked.json::<Value>().await.unwrap()["grant_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        app.redeem(&app.token, &handle).await.status(),
        StatusCode::GONE
    );
    // Declined and foreign-handle outcomes too.
    let other = app
        .create_pending("erin", API_KEY_PROVIDER, &["read"])
        .await;
    let other_id = other["id"].as_str().unwrap();
    let browser = app.browser();
    let consent = browser
        .open_as(other["url"].as_str().unwrap(), "erin")
        .await;
    browser
        .submit(&format!("/e/{other_id}/deny"), &[("csrf", &consent.csrf())])
        .await;
    assert_eq!(
        app.redeem(&app.other_token, &handle).await.status(),
        StatusCode::NOT_FOUND
    );

    // The foreign handle's audit event (and so its count) is written off the request path.
    let wanted = r#"consent_broker_redemptions_total{outcome="unknown_handle",store="embedded"} 1"#;
    let mut text = scrape(&app).await;
    for _ in 0..50 {
        if text.lines().any(|l| l == wanted) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        text = scrape(&app).await;
    }
    assert!(text.ends_with("# EOF\n"), "a complete exposition");
    for sample in [
        r#"consent_broker_redemptions_total{outcome="success",store="embedded"} 1"#,
        r#"consent_broker_redemptions_total{outcome="grant_revoked",store="embedded"} 1"#,
        r#"consent_broker_redemptions_total{outcome="unknown_handle",store="embedded"} 1"#,
        r#"consent_broker_flows_total{provider="acme",outcome="started"} 2"#,
        r#"consent_broker_flows_total{provider="acme",outcome="completed"} 1"#,
        r#"consent_broker_flows_total{provider="acme",outcome="declined"} 1"#,
        r#"consent_broker_revocations_total{provider="acme",actor="service"} 1"#,
        r#"consent_broker_audit_events_total{action="grant_created",outcome="success"} 1"#,
        r#"consent_broker_http_request_duration_seconds_count{method="GET",route="/e/{id}",status="200"} 4"#,
        r#"consent_broker_http_request_duration_seconds_count{method="POST",route="/v1/redeem",status="410"} 1"#,
    ] {
        assert_sample(&text, sample);
    }
    let key_id = app.broker.keyring().active_id().as_str().to_owned();
    assert_sample(
        &text,
        &format!(r#"consent_broker_grants{{key_id="{key_id}",status="revoked"}} 1"#),
    );
    // Series an alert watches exist at zero before their first event.
    for sample in [
        r#"consent_broker_token_refreshes_total{provider="gh",outcome="failure"} 0"#,
        r#"consent_broker_store_errors_total{store="embedded",kind="unavailable"} 0"#,
        r#"consent_broker_redemptions_total{outcome="grant_corrupt",store="embedded"} 0"#,
        r#"consent_broker_flows_total{provider="gh",outcome="failed"} 0"#,
    ] {
        assert_sample(&text, sample);
    }
    assert!(
        text.contains("consent_broker_build_info{version=\""),
        "{text}"
    );
    // Nobody and nothing is named: no subject, id, handle or token.
    for private in [
        subject,
        "erin",
        &id,
        other_id,
        &handle,
        &handle[4..],
        &grant_id,
        &app.token,
        GOOD_KEY,
        "svc-a",
    ] {
        assert!(!private.is_empty());
        assert!(!text.contains(private), "{private} in /metrics:\n{text}");
    }
}

#[tokio::test]
async fn metrics_can_require_a_bearer_token() {
    let (token, digest) = consent_broker::identity::service_token::generate();
    let app = TestApp::spawn_with(|c| c.telemetry.metrics_token_sha256 = Some(digest)).await;
    let anonymous = app.api.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert!(!anonymous.text().await.unwrap().contains("consent_broker_"));
    let wrong = app
        .api
        .get(app.url("/metrics"))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = app
        .api
        .get(app.url("/metrics"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), StatusCode::OK);
    assert!(
        right
            .text()
            .await
            .unwrap()
            .contains("consent_broker_build_info")
    );
}

#[tokio::test]
async fn every_response_carries_a_request_id_the_callers_when_usable() {
    let app = TestApp::spawn().await;
    let fresh = app.api.get(app.url("/healthz")).send().await.unwrap();
    let generated = fresh.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 16, "{generated}");
    let again = app.api.get(app.url("/healthz")).send().await.unwrap();
    assert_ne!(again.headers()["x-request-id"], generated.as_str());

    let kept = app
        .api
        .get(app.url("/v1/elicitations/nope"))
        .header("x-request-id", "lb-7f3a:42")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "lb-7f3a:42");

    let replaced = app
        .api
        .get(app.url("/healthz"))
        .header("x-request-id", "<script>alert(1)</script>")
        .send()
        .await
        .unwrap();
    let id = replaced.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 16, "an unusable id is replaced: {id}");

    let unknown = app.api.get(app.url("/no/such/page")).send().await.unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert!(unknown.headers().contains_key("x-request-id"));
}

// ---------------------------------------------------------------------------------------
// The binary: JSON logs and shutdown

/// The binary with JSON logs, its stderr lines collected as they arrive.
struct Served {
    inner: common::binary::Served,
    base: String,
    token: String,
    /// Every stderr line so far, as it arrives.
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Served {
    /// `serve --dev` on a free port with JSON logs and the given extra environment.
    fn start(data_dir: &Path, env: &[(&str, &str)]) -> Served {
        let mut env = env.to_vec();
        env.push(("BROKER_TELEMETRY__LOG_FORMAT", "json"));
        let mut inner = common::binary::Served::dev(data_dir, &env, Stdio::piped());
        let stderr = inner.child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Served {
            base: inner.base.clone(),
            token: inner.token.clone(),
            inner,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (up to a generous bound, against hangs) for a log line matching `wanted`.
    fn wait_for_line(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no such log line in:\n{}", self.seen.join("\n")));
            self.seen.push(line.clone());
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && wanted(&v)
            {
                return v;
            }
        }
    }

    fn sigterm(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.inner.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "SIGTERM sent");
    }

    /// Waits for the process to end; returns its exit code and every stderr line.
    fn finish(mut self) -> (Option<i32>, Vec<String>) {
        let status = self.inner.child.wait().unwrap();
        let mut all = std::mem::take(&mut self.seen);
        // The reader thread ends at EOF, closing the channel.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(30)) {
            all.push(line);
        }
        (status.code(), all)
    }
}

/// The request id of a JSON log line: in the outermost span, the request's.
fn request_id(line: &Value) -> Option<&str> {
    line["spans"][0]["request_id"].as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_log_line_of_a_journey_is_json_with_a_request_id_and_no_query_string() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(dir.path(), &[("RUST_LOG", "debug")]);
    let api = reqwest::Client::new();
    let created: Value = api
        .post(format!("{}/v1/elicitations", served.base))
        .bearer_auth(&served.token)
        .header("x-request-id", "journey-create-1")
        .json(&json!({"subject": "alice", "provider": "example-api-key", "scopes": ["read"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let browser = common::Browser::new(&served.base);
    let consent = browser
        .open_as(created["url"].as_str().unwrap(), "alice")
        .await;
    let form = browser
        .submit(&format!("/e/{id}/approve"), &[("csrf", &consent.csrf())])
        .await;
    let key = "sk_live_Qw3rTy7Ui9Op2As4";
    browser
        .submit(
            &format!("/e/{id}/api-key"),
            &[("csrf", &form.csrf()), ("api_key", key)],
        )
        .await
        .assert_shows("Connected");
    let status: Value = api
        .get(format!("{}/v1/elicitations/{id}?wait=1", served.base))
        .bearer_auth(&served.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let handle = status["handle"].as_str().unwrap().to_owned();
    let redeemed = api
        .post(format!("{}/v1/redeem", served.base))
        .bearer_auth(&served.token)
        .json(&json!({ "handle": handle }))
        .send()
        .await
        .unwrap();
    assert_eq!(redeemed.status(), StatusCode::OK);
    // What an OAuth callback looks like, and a stray path with a query.
    let callback = browser
        .open("/oauth/callback?code=CODEq8s7d6f5&state=STATEz1x2c3v4&iss=https%3A%2F%2Fas")
        .await;
    assert!(callback.status.is_client_error());
    let stray = api
        .get(format!("{}/nowhere?token=QUERYp0o9i8", served.base))
        .send()
        .await
        .unwrap();
    assert_eq!(stray.status(), StatusCode::NOT_FOUND);
    let token = served.token.clone();
    served.sigterm();
    let (_, lines) = served.finish();
    let mut in_requests = 0;
    for line in &lines {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        for field in ["timestamp", "level", "target"] {
            assert!(v.get(field).is_some(), "{field} in {line}");
        }
        for private in [
            "CODEq8s7d6f5",
            "STATEz1x2c3v4",
            "QUERYp0o9i8",
            "wait=1",
            key,
            &handle,
            &token,
        ] {
            assert!(!line.contains(private), "`{private}` logged: {line}");
        }
        match request_id(&v) {
            Some(_) => in_requests += 1,
            // Outside any request: start-up and shutdown, nothing else.
            None => {
                let message = v["message"].as_str().unwrap_or_default();
                assert!(
                    message.contains("DEVELOPMENT keyring")
                        || message.contains("shutting down")
                        || message.contains("swept"),
                    "a line outside any request: {line}"
                );
            }
        }
    }
    assert!(
        in_requests >= 10,
        "request lines captured:\n{}",
        lines.join("\n")
    );
    // The caller's id is kept and ties the request's lines together.
    let create_lines: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("\"request_id\":\"journey-create-1\""))
        .collect();
    assert!(
        create_lines
            .iter()
            .any(|l| l.contains("elicitation_created")),
        "the audit line of the request carries its id: {create_lines:?}"
    );
    assert!(
        create_lines.iter().any(|l| l.contains("request finished")
            && l.contains("\"status\":201")
            && l.contains("\"route\":\"/v1/elicitations\"")),
        "one line says how the request ended: {create_lines:?}"
    );
    // The route template, never the id, names the page.
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"route\":\"/e/{id}/api-key\"")),
        "{}",
        lines.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_in_flight_request_finish() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = Served::start(dir.path(), &[("RUST_LOG", "info,consent_broker=debug")]);
    let api = reqwest::Client::new();
    let created = common::binary::create_elicitation(
        &served.base,
        &served.token,
        json!({"subject": "alice", "provider": "example-api-key"}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    // A long-poll of 2 s, well inside the default 20 s shutdown timeout.
    let poll = tokio::spawn(
        api.get(format!("{}/v1/elicitations/{id}?wait=2", served.base))
            .bearer_auth(&served.token)
            .header("x-request-id", "in-flight-poll")
            .send(),
    );
    served.wait_for_line(|l| {
        request_id(l) == Some("in-flight-poll") && l["message"] == "request started"
    });
    served.sigterm();
    let answer = poll
        .await
        .unwrap()
        .expect("the in-flight request is answered");
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.json::<Value>().await.unwrap()["status"], "pending");
    let (code, lines) = served.finish();
    assert_eq!(code, Some(0), "{}", lines.join("\n"));
    assert!(
        !lines.iter().any(|l| l.contains("shutdown timeout")),
        "{}",
        lines.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_waiting_for_requests_after_the_shutdown_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = Served::start(
        dir.path(),
        &[
            ("RUST_LOG", "info,consent_broker=debug"),
            ("BROKER_SERVER__SHUTDOWN_TIMEOUT_SECONDS", "1"),
        ],
    );
    let api = reqwest::Client::new();
    let created = common::binary::create_elicitation(
        &served.base,
        &served.token,
        json!({"subject": "alice", "provider": "example-api-key"}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let poll = tokio::spawn(
        api.get(format!("{}/v1/elicitations/{id}?wait=60", served.base))
            .bearer_auth(&served.token)
            .header("x-request-id", "too-long-poll")
            .send(),
    );
    served.wait_for_line(|l| {
        request_id(l) == Some("too-long-poll") && l["message"] == "request started"
    });
    served.sigterm();
    let (code, lines) = served.finish();
    assert_eq!(code, Some(0), "{}", lines.join("\n"));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("shutdown timeout") && l.contains("\"grace_seconds\":1")),
        "{}",
        lines.join("\n")
    );
    assert!(
        poll.await.unwrap().is_err(),
        "the cut-off request gets no answer"
    );
}
