//! The broker on its worst day: floods, weak configuration, tampered records, hostile
//! input and a crash mid-load. Each promise of docs/security.md that is not shown
//! elsewhere is shown here.

use crate::common;

use std::sync::Arc;

use common::{API_KEY_PROVIDER, GOOD_KEY, TERMS_PROVIDER, TestApp, assert_problem, test_config};
use consent_broker::config::Settings;
use consent_broker::domain::{GrantChange, GrantId};
use proptest::prelude::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn a_service_over_its_rate_gets_429_with_retry_after_and_others_are_unaffected() {
    let app = TestApp::spawn_with(|c| {
        c.limits.api_burst = 3;
        c.limits.api_per_second = 0.1;
    })
    .await;
    let body = json!({"subject": "alice", "provider": API_KEY_PROVIDER});
    for _ in 0..3 {
        assert_eq!(
            app.create(&app.token, body.clone()).await.status(),
            StatusCode::CREATED
        );
    }
    let limited = app.create(&app.token, body.clone()).await;
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    assert_problem(limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    let other = app.create(&app.other_token, body).await;
    assert_eq!(
        other.status(),
        StatusCode::CREATED,
        "limits are per service"
    );
}

#[tokio::test]
async fn a_client_posting_forms_too_fast_gets_a_readable_429_page() {
    let app = TestApp::spawn_with(|c| {
        c.limits.browser_posts_burst = 2;
        c.limits.browser_posts_per_minute = 1.0;
    })
    .await;
    let browser = app.browser();
    let login = browser.open("/login").await;
    for _ in 0..2 {
        let r = browser
            .client
            .post(app.url("/login/dev"))
            .form(&[("csrf", login.csrf().as_str()), ("username", "")])
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::BAD_REQUEST,
            "an empty name is refused, but counted"
        );
    }
    let page = browser
        .submit(
            "/login/dev",
            &[("csrf", &login.csrf()), ("username", "alice")],
        )
        .await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    page.assert_shows("Too many requests");
}

#[test]
fn startup_refuses_weak_or_inconsistent_configuration() {
    let refused = |adjust: &dyn Fn(&mut consent_broker::config::Config)| {
        let mut t = test_config();
        adjust(&mut t.config);
        Settings::from_config(&t.config, false)
            .expect_err("refused")
            .0
            .join("\n")
    };
    let e = refused(&|c| c.server.public_url = Some("http://broker.example.com/".parse().unwrap()));
    assert!(e.contains("plain http is only allowed for loopback"), "{e}");
    let e = refused(&|c| c.server.bind = "0.0.0.0:8080".parse().unwrap());
    assert!(
        e.contains("server.public_url: required when the broker listens beyond loopback"),
        "{e}"
    );
    let e = refused(&|c| {
        let dup = c.services[0].clone();
        c.services.push(dup);
    });
    assert!(
        e.contains("duplicate service id `svc-a`") && e.contains("two services share one token"),
        "{e}"
    );
    let e = refused(&|c| {
        c.services[0].allow.insert("nowhere".into(), vec![]);
    });
    assert!(
        e.contains("services[0].allow.nowhere: no provider with id `nowhere`"),
        "{e}"
    );

    let mut t = test_config();
    t.config.server.public_url = Some("http://broker.internal/".parse().unwrap());
    t.config.server.allow_insecure_public_url = true;
    assert!(
        Settings::from_config(&t.config, false).is_ok(),
        "an explicit override is honoured"
    );
    let mut t = test_config();
    t.config.keyring.keys.clear();
    let keyring =
        consent_broker::config::keyring::load(&t.config.keyring, t.data_dir.path(), false);
    assert!(keyring.err().unwrap().0[0].contains("no keys configured"));
}

#[tokio::test]
async fn over_https_the_session_cookie_is_host_prefixed_and_secure() {
    let app = TestApp::spawn_with(|c| {
        c.server.public_url = Some("https://consent.example.test/".parse().unwrap())
    })
    .await;
    let r = app.api.get(app.url("/login")).send().await.unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("__Host-cb_session="), "{cookie}");
    for attribute in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(
        !cookie.contains("Domain="),
        "__Host- cookies carry no Domain: {cookie}"
    );
}

/// Grants two users the API key; returns (grant id, handle) of each.
async fn two_grants(app: &TestApp) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for subject in ["alice", "bob"] {
        let created = app
            .create_pending(subject, API_KEY_PROVIDER, &["read"])
            .await;
        let status = app.consent_api_key(&created, subject, GOOD_KEY).await;
        out.push((
            status["grant_id"].as_str().unwrap().to_owned(),
            status["handle"].as_str().unwrap().to_owned(),
        ));
    }
    out
}

#[tokio::test]
async fn a_sealed_record_moved_to_another_grant_or_tampered_with_is_refused_as_corrupt_and_audited()
{
    let app = TestApp::spawn().await;
    let grants = two_grants(&app).await;
    let store = &app.broker.raw_stores().grants;
    let load = |id: &str| {
        let store = store.clone();
        let id = GrantId::parse(id).unwrap();
        async move { store.grant(&id).await.unwrap().unwrap() }
    };
    let (alice, bob) = (load(&grants[0].0).await, load(&grants[1].0).await);

    // A thief with write access to the store moves bob's sealed record onto alice's grant.
    let moved = GrantChange::Reseal {
        expected: alice.sealed.clone(),
        sealed: bob.sealed.clone(),
    };
    store.update_grant(&alice.id, moved).await.unwrap();
    assert_problem(
        app.redeem(&app.token, &grants[0].1).await,
        StatusCode::INTERNAL_SERVER_ERROR,
        "grant_corrupt",
    )
    .await;

    // Or flips one byte of bob's ciphertext.
    let mut tampered = bob.sealed.clone();
    let last = tampered.ciphertext.len() - 1;
    tampered.ciphertext[last] ^= 1;
    store
        .update_grant(
            &bob.id,
            GrantChange::Reseal {
                expected: bob.sealed.clone(),
                sealed: tampered,
            },
        )
        .await
        .unwrap();
    let body = assert_problem(
        app.redeem(&app.token, &grants[1].1).await,
        StatusCode::INTERNAL_SERVER_ERROR,
        "grant_corrupt",
    )
    .await;
    assert!(!body.to_string().contains(GOOD_KEY));

    let corrupt = app
        .audit_actions()
        .await
        .into_iter()
        .filter(|(a, o)| a == "grant_redeemed" && o == "failure")
        .count();
    assert_eq!(corrupt, 2, "both refusals are in the audit trail");
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        ".{0,40}".prop_map(Value::String),
        Just(json!("\u{0}\u{202e}../../etc/passwd%00")),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::hash_map(
                prop_oneof![
                    Just("subject".to_owned()),
                    Just("provider".to_owned()),
                    Just("scopes".to_owned()),
                    Just("message".to_owned()),
                    Just("handle".to_owned()),
                    ".{0,8}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Never a 5xx, never a non-problem error body, whatever the JSON, query or path.
#[test]
fn hostile_api_input_always_gets_a_problem_never_a_server_error() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = Arc::new(runtime.block_on(TestApp::spawn_with(|c| c.limits.api_burst = 100_000)));
    let config = ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(body in any_json(), path in "[^/?#]{0,40}", wait in ".{0,12}")| {
        let app = app.clone();
        runtime.block_on(async move {
            for (method, url, json_body) in [
                ("POST", app.url("/v1/elicitations"), Some(body.clone())),
                ("POST", app.url("/v1/redeem"), Some(body.clone())),
                ("POST", app.url("/v1/revoke"), Some(body.clone())),
                ("GET", format!("{}/v1/elicitations/{}?wait={}", app.base, urlencode(&path), urlencode(&wait)), None),
                ("DELETE", format!("{}/v1/grants/{}", app.base, urlencode(&path)), None),
            ] {
                let mut request = app.api.request(method.parse().unwrap(), &url).bearer_auth(&app.token);
                if let Some(b) = json_body {
                    request = request.json(&b);
                }
                let r = request.send().await.unwrap();
                let status = r.status();
                prop_assert!(!status.is_server_error(), "{method} {url} {body} answered {status}");
                if status.is_client_error() {
                    let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
                    prop_assert_eq!(ct, "application/problem+json", "{} {} answered {}", method, url, status);
                }
            }
            Ok(())
        })?;
    });
}

/// Never a 5xx for any form field on any page form.
#[test]
fn hostile_form_input_never_gets_a_server_error() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(TestApp::spawn_with(|c| {
        c.limits.browser_posts_burst = 100_000
    }));
    let created = runtime.block_on(app.create_pending("alice", TERMS_PROVIDER, &[]));
    let id = created["id"].as_str().unwrap().to_owned();
    let browser = app.browser();
    let csrf = runtime
        .block_on(browser.open_as(&format!("/e/{id}"), "alice"))
        .csrf();
    let config = ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(field in ".{0,64}", name in "[a-z_]{0,10}", use_csrf in any::<bool>())| {
        runtime.block_on(async {
            let token = if use_csrf { csrf.as_str() } else { field.as_str() };
            for path in ["/login/dev", "/logout", &format!("/e/{id}/deny?x=1"), &format!("/e/{id}/api-key"), "/e/..%2f/approve"] {
                let r = browser.client.post(app.url(path)).form(&[("csrf", token), ("username", &field), ("api_key", &field), (name.as_str(), &field), ("return_to", &field)]).send().await.unwrap();
                prop_assert!(!r.status().is_server_error(), "POST {path} answered {}", r.status());
            }
            Ok(())
        })?;
    });
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn a_hanging_token_endpoint_gets_a_timely_retryable_error_not_a_hung_request() {
    // An authorization server that sends the browser straight back, then never answers
    // the token request: a fault no real server makes on purpose.
    let fake = axum::Router::new()
        .route(
            "/authorize",
            axum::routing::get(
                |axum::extract::Query(q): axum::extract::Query<
                    std::collections::HashMap<String, String>,
                >| async move {
                    let back = format!(
                        "{}?code=opaque-code&state={}",
                        q["redirect_uri"], q["state"]
                    );
                    axum::response::Redirect::to(&back)
                },
            ),
        )
        .route(
            "/token",
            axum::routing::post(|| async {
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                "too late"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, fake).into_future());
    let app = TestApp::spawn_with(|c| {
        c.tokens.upstream_timeout_seconds = 1;
        c.providers
            .push(consent_broker::config::ProviderConfig::Oauth2(
                consent_broker::config::OAuth2Config {
                    id: "hanging".into(),
                    name: "Hanging Corp".into(),
                    authorization_endpoint: Some(format!("{origin}/authorize").parse().unwrap()),
                    token_endpoint: Some(format!("{origin}/token").parse().unwrap()),
                    client_id: "broker".into(),
                    client_secret: Some("s".to_owned().into()),
                    ..Default::default()
                },
            ));
        c.services[0].allow.insert("hanging".into(), vec![]);
    })
    .await;
    let created = app.create_pending("alice", "hanging", &[]).await;
    let id = created["id"].as_str().unwrap();
    let browser = app.browser();
    let consent = browser
        .open_as(created["url"].as_str().unwrap(), "alice")
        .await;
    let started = std::time::Instant::now();
    let page = browser
        .submit(&format!("/e/{id}/approve"), &[("csrf", &consent.csrf())])
        .await;
    assert_eq!(page.status, StatusCode::BAD_GATEWAY);
    page.assert_shows("Hanging Corp did not answer");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "answered, not hung"
    );
    let status: Value = app.elicitation(id).await;
    assert_eq!(
        status["status"], "pending",
        "a transient failure settles nothing: the user may try again"
    );
}

/// One consent journey against a served binary: the service asks for `example-terms`
/// for `user`, who signs in (dev sign-in) and approves; the grant's handle once the API
/// says it is completed (`None` if anything on the way failed, e.g. the broker died).
async fn terms_grant(base: &str, token: &str, user: &str) -> Option<String> {
    let api = reqwest::Client::new();
    let browser = common::Browser::new(base);
    let created = json_of(
        api.post(format!("{base}/v1/elicitations"))
            .bearer_auth(token)
            .json(&json!({"subject": user, "provider": "example-terms"})),
    )
    .await?;
    let id = created["id"].as_str()?;
    let csrf = sign_in_dev(&browser, base, user).await?;
    browser
        .client
        .post(format!("{base}/e/{id}/approve"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .ok()?;
    let status = json_of(
        api.get(format!("{base}/v1/elicitations/{id}"))
            .bearer_auth(token),
    )
    .await?;
    status["handle"].as_str().map(str::to_owned)
}

/// `request`'s JSON answer, or `None` if it could not be sent or read (the broker died).
async fn json_of(request: reqwest::RequestBuilder) -> Option<Value> {
    request.send().await.ok()?.json().await.ok()
}

/// Signs `browser` in as `user` with the dev sign-in; the session's CSRF token.
async fn sign_in_dev(browser: &common::Browser, base: &str, user: &str) -> Option<String> {
    let html = browser
        .client
        .get(format!("{base}/login"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let csrf = csrf_of(&html)?;
    let form = [
        ("csrf", csrf.as_str()),
        ("username", user),
        ("return_to", "/"),
    ];
    browser
        .client
        .post(format!("{base}/login/dev"))
        .form(&form)
        .send()
        .await
        .ok()?;
    // Signing in changed the token: the one a page shows now.
    let home = browser
        .client
        .get(format!("{base}/"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    csrf_of(&home)
}

fn csrf_of(html: &str) -> Option<String> {
    Some(
        html.split("name=\"csrf\" value=\"")
            .nth(1)?
            .split('"')
            .next()?
            .to_owned(),
    )
}

#[tokio::test]
async fn the_embedded_store_keeps_every_acknowledged_grant_through_a_kill_9_mid_load() {
    use common::binary::Served;
    let dir = tempfile::tempdir().unwrap();
    let unlimited = [("BROKER_LIMITS__BROWSER_POSTS_BURST", "1000000")];
    let served = Served::dev(dir.path(), &unlimited, std::process::Stdio::null());

    // Consent journeys back to back, each by a new user; a grant counts once the API says
    // it is completed.
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let load = {
        let (acknowledged, base, token) = (
            acknowledged.clone(),
            served.base.clone(),
            served.token.clone(),
        );
        tokio::spawn(async move {
            for i in 0..10_000 {
                let Some(handle) = terms_grant(&base, &token, &format!("user{i}")).await else {
                    return;
                };
                acknowledged.lock().unwrap().push(handle);
            }
        })
    };
    // Let some grants land, then pull the plug mid-load (bounded: at most a minute on a
    // loaded machine).
    for _ in 0..1_200 {
        if acknowledged.lock().unwrap().len() >= 25 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut served = served;
    served.child.kill().unwrap();
    served.child.wait().unwrap();
    let _ = load.await;
    let handles = acknowledged.lock().unwrap().clone();
    assert!(
        handles.len() >= 25,
        "the load ran: {} grants",
        handles.len()
    );

    let restarted = Served::dev(dir.path(), &[], std::process::Stdio::null());
    let api = reqwest::Client::new();
    for handle in &handles {
        let r = api
            .post(format!("{}/v1/redeem", restarted.base))
            .bearer_auth(&restarted.token)
            .json(&json!({ "handle": handle }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::OK,
            "an acknowledged grant was lost or damaged"
        );
        assert_eq!(
            r.json::<Value>().await.unwrap()["credential"]["type"],
            "terms"
        );
    }
}

/// A redemption's use count is written through, in the same durable commit as its audit
/// event; after a kill -9 mid-load the restarted broker counts every acknowledged
/// redemption, and none that was never sent.
#[tokio::test]
async fn the_embedded_store_counts_every_acknowledged_redemption_through_a_kill_9() {
    use common::binary::Served;
    use std::sync::atomic::{AtomicU64, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let unlimited = [
        ("BROKER_LIMITS__API_PER_SECOND", "1000000"),
        ("BROKER_LIMITS__API_BURST", "1000000"),
    ];
    let served = Served::dev(dir.path(), &unlimited, std::process::Stdio::null());
    let handle = terms_grant(&served.base, &served.token, "counted")
        .await
        .expect("a grant");

    let (sent, acknowledged) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (sent, acknowledged) = (sent.clone(), acknowledged.clone());
            let (base, token, handle) = (served.base.clone(), served.token.clone(), handle.clone());
            tokio::spawn(async move {
                let api = reqwest::Client::new();
                for _ in 0..100_000 {
                    sent.fetch_add(1, Ordering::SeqCst);
                    let answer = api
                        .post(format!("{base}/v1/redeem"))
                        .bearer_auth(&token)
                        .json(&json!({ "handle": handle }))
                        .send()
                        .await;
                    match answer {
                        Ok(r) if r.status() == StatusCode::OK => {
                            acknowledged.fetch_add(1, Ordering::SeqCst);
                        }
                        _ => return,
                    }
                }
            })
        })
        .collect();
    // Mid-load (redemptions in flight, some acknowledged and some not), pull the plug
    // (bounded: at most a minute on a loaded machine).
    for _ in 0..2_400 {
        if acknowledged.load(Ordering::SeqCst) >= 1_500 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let mut served = served;
    served.child.kill().unwrap();
    served.child.wait().unwrap();
    for c in clients {
        let _ = c.await;
    }
    let (sent, acknowledged) = (
        sent.load(Ordering::SeqCst),
        acknowledged.load(Ordering::SeqCst),
    );
    assert!(
        acknowledged >= 1_500,
        "the load ran: {acknowledged} redemptions"
    );

    let restarted = Served::dev(dir.path(), &[], std::process::Stdio::null());
    let browser = common::Browser::new(&restarted.base);
    sign_in_dev(&browser, &restarted.base, "counted")
        .await
        .expect("signed in");
    let page = browser
        .client
        .get(format!("{}/connections", restarted.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let uses: u64 = page
        .split(" uses)")
        .next()
        .and_then(|before| before.rsplit('(').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the connections page shows a use count: {page}"));
    assert!(
        (acknowledged..=sent).contains(&uses),
        "{uses} uses counted; {acknowledged} acknowledged, {sent} sent"
    );
}

#[tokio::test]
async fn oversized_headers_are_refused_with_431() {
    let app = TestApp::spawn().await;
    let big = "x".repeat(64 * 1024);
    let api = app
        .api
        .get(app.url("/v1/elicitations/AAAAAAAAAAAAAAAAAAAAAA"))
        .bearer_auth(&app.token)
        .header("x-padding", &big)
        .send()
        .await
        .unwrap();
    assert_problem(
        api,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "headers_too_large",
    )
    .await;
    let page = app
        .api
        .get(app.url("/login"))
        .header("x-padding", &big)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert!(
        page.text().await.unwrap().contains("<html"),
        "a readable page for browsers"
    );
}

/// What a raw connection received until the end of a response head, or until the server
/// closed it (`None` if it closed having sent nothing).
async fn response_head(stream: &mut tokio::net::tcp::OwnedReadHalf) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
        if received.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    (!received.is_empty()).then(|| String::from_utf8_lossy(&received).into_owned())
}

/// Writes `bytes` one at a time, 100 ms apart, until done or the server stops reading.
fn trickle(
    mut writer: tokio::net::tcp::OwnedWriteHalf,
    bytes: Vec<u8>,
) -> tokio::task::JoinHandle<()> {
    use tokio::io::AsyncWriteExt;
    tokio::spawn(async move {
        for b in bytes {
            if writer.write_all(&[b]).await.is_err() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
}

async fn connect(app: &TestApp) -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_trickled_header_is_cut_within_the_header_timeout_and_others_are_served() {
    let app = TestApp::spawn_with(|c| {
        c.server.header_read_timeout_seconds = 1;
        c.server.keep_alive_timeout_seconds = 1;
    })
    .await;
    let (mut reader, writer) = connect(&app).await.into_split();
    let started = std::time::Instant::now();
    // Never finishes its headers: 100 header bytes would take 10 s.
    let mut head = b"GET /healthz HTTP/1.1\r\nhost: x\r\n".to_vec();
    head.extend(std::iter::repeat_n(b'x', 100));
    let slow = trickle(writer, head);
    let healthz = app.api.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(
        healthz.status(),
        StatusCode::OK,
        "others are served meanwhile"
    );
    let answer = tokio::time::timeout(
        std::time::Duration::from_secs(8),
        response_head(&mut reader),
    )
    .await
    .expect("cut well before the trickle would end (a loaded machine gets slack)");
    assert_eq!(answer, None, "closed without an answer");
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    slow.abort();
}

#[tokio::test]
async fn a_trickled_body_is_answered_408_within_the_body_timeout() {
    let app = TestApp::spawn_with(|c| c.server.body_read_timeout_seconds = 1).await;
    let (mut reader, mut writer) = connect(&app).await.into_split();
    let head = format!(
        "POST /v1/elicitations HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ncontent-length: 200\r\n\r\n",
        app.token
    );
    tokio::io::AsyncWriteExt::write_all(&mut writer, head.as_bytes())
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let slow = trickle(writer, vec![b' '; 200]);
    let answer = tokio::time::timeout(
        std::time::Duration::from_secs(8),
        response_head(&mut reader),
    )
    .await
    .expect("answered within the body timeout plus slack for a loaded machine")
    .expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    slow.abort();
}

#[tokio::test]
async fn a_trickled_form_is_answered_with_a_408_page() {
    let app = TestApp::spawn_with(|c| c.server.body_read_timeout_seconds = 1).await;
    let (mut reader, mut writer) = connect(&app).await.into_split();
    let head = "POST /login/dev HTTP/1.1\r\nhost: x\r\n\
                content-type: application/x-www-form-urlencoded\r\ncontent-length: 200\r\n\r\n";
    tokio::io::AsyncWriteExt::write_all(&mut writer, head.as_bytes())
        .await
        .unwrap();
    let slow = trickle(writer, vec![b'a'; 200]);
    let answer = tokio::time::timeout(
        std::time::Duration::from_secs(8),
        response_head(&mut reader),
    )
    .await
    .expect("answered within the body timeout plus slack for a loaded machine")
    .expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("text/html"), "a page: {answer}");
    slow.abort();
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout() {
    let app = TestApp::spawn_with(|c| {
        c.server.header_read_timeout_seconds = 30;
        c.server.keep_alive_timeout_seconds = 1;
    })
    .await;
    let (mut reader, mut writer) = connect(&app).await.into_split();
    tokio::io::AsyncWriteExt::write_all(&mut writer, b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = response_head(&mut reader).await.expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let closed = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        use tokio::io::AsyncReadExt;
        let mut rest = Vec::new();
        let _ = reader.read_to_end(&mut rest).await;
    })
    .await;
    assert!(
        closed.is_ok(),
        "closed long before the 30 s header timeout: the 1 s keep-alive timeout did it"
    );
}

/// `/healthz` from a fresh client bound to `from`, and how long it took.
async fn healthz_from(app: &TestApp, from: [u8; 4]) -> (StatusCode, Option<String>) {
    let client = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(from))
        .timeout(std::time::Duration::from_secs(2))
        .build()
        .unwrap();
    let r = client.get(app.url("/healthz")).send().await.unwrap();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (r.status(), retry)
}

async fn healthz_recovers(app: &TestApp, from: [u8; 4]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        if healthz_from(app, from).await.0 == StatusCode::OK {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "served again within 5 s of the idle sockets going"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn with_the_connection_cap_held_by_idle_sockets_a_new_client_gets_a_fast_503_and_recovers() {
    let app = TestApp::spawn_with(|c| {
        c.server.header_read_timeout_seconds = 30;
        c.server.keep_alive_timeout_seconds = 30;
        c.server.max_connections = 8;
        c.server.max_connections_per_client = 8;
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(connect(&app).await);
    }
    let started = std::time::Instant::now();
    let (status, retry) = healthz_from(&app, [127, 0, 0, 1]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(retry.as_deref(), Some("1"));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "a fast answer, not a hang until the 30 s header timeout"
    );
    drop(idle);
    healthz_recovers(&app, [127, 0, 0, 1]).await;
}

#[tokio::test]
async fn one_address_holding_its_connection_cap_does_not_lock_out_others() {
    let app = TestApp::spawn_with(|c| {
        c.server.header_read_timeout_seconds = 30;
        c.server.keep_alive_timeout_seconds = 30;
        c.server.max_connections = 64;
        c.server.max_connections_per_client = 4;
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(connect(&app).await);
    }
    assert_eq!(
        healthz_from(&app, [127, 0, 0, 1]).await.0,
        StatusCode::SERVICE_UNAVAILABLE,
        "the same address is over its cap"
    );
    assert_eq!(
        healthz_from(&app, [127, 0, 0, 2]).await.0,
        StatusCode::OK,
        "another address is served"
    );
    drop(idle);
    healthz_recovers(&app, [127, 0, 0, 1]).await;
}

#[tokio::test]
async fn over_https_every_answer_carries_hsts_and_over_http_none_does() {
    let https = TestApp::spawn_with(|c| {
        c.server.public_url = Some("https://consent.example.test/".parse().unwrap())
    })
    .await;
    for path in [
        "/login",
        "/healthz",
        "/v1/elicitations/nope",
        "/no-such-page",
    ] {
        let r = https.api.get(https.url(path)).send().await.unwrap();
        assert_eq!(
            r.headers()
                .get("strict-transport-security")
                .map(|v| v.to_str().unwrap()),
            Some("max-age=31536000"),
            "{path}"
        );
    }
    let http = TestApp::spawn().await;
    let r = http.api.get(http.url("/login")).send().await.unwrap();
    assert!(
        r.headers().get("strict-transport-security").is_none(),
        "no HSTS over plain http"
    );
}

#[tokio::test]
async fn the_csrf_token_changes_at_sign_in_and_sign_out_and_the_old_one_is_refused() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    let login = browser.open("/login").await;
    let before = login.csrf();
    let home = browser
        .submit(
            "/login/dev",
            &[("csrf", &before), ("username", "alice"), ("return_to", "/")],
        )
        .await;
    home.assert_shows("alice");
    let signed_in = home.csrf();
    assert_ne!(before, signed_in, "a new token at sign-in");
    let stale = browser.submit("/logout", &[("csrf", &before)]).await;
    assert_eq!(
        stale.status,
        StatusCode::FORBIDDEN,
        "a form served before sign-in no longer posts"
    );
    let out = browser.submit("/logout", &[("csrf", &signed_in)]).await;
    assert!(!out.html.contains("Signed in as"));
    let after = browser.open("/login").await.csrf();
    assert_ne!(after, signed_in, "a new token after sign-out");
    assert_ne!(after, before);
}

#[tokio::test]
async fn fifty_wrong_service_tokens_from_one_address_get_429_and_a_valid_token_still_works() {
    let app = TestApp::spawn().await;
    let mut statuses = Vec::new();
    let mut limited = None;
    for i in 0..50 {
        let r = app
            .api
            .get(app.url("/v1/elicitations/AAAAAAAAAAAAAAAAAAAAAA"))
            .bearer_auth(format!("cbt_wrong_{i}"))
            .send()
            .await
            .unwrap();
        statuses.push(r.status());
        if r.status() == StatusCode::TOO_MANY_REQUESTS && limited.is_none() {
            limited = Some(r);
        }
    }
    assert_eq!(
        statuses[0],
        StatusCode::UNAUTHORIZED,
        "the first wrong token is just refused"
    );
    let limited = limited.expect("throttled before the 50th wrong token");
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    assert_problem(limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "and stays throttled"
    );
    let body = json!({"subject": "alice", "provider": API_KEY_PROVIDER});
    assert_eq!(
        app.create(&app.token, body).await.status(),
        StatusCode::CREATED,
        "a valid token from the same address is served"
    );
}

#[tokio::test]
async fn every_browser_route_refusal_is_a_readable_page_with_its_status() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    let login = browser.open("/login").await;
    let csrf = login.csrf();
    let expect_page = |r: reqwest::Response, status: StatusCode, shows: &'static str| async move {
        assert_eq!(r.status(), status);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{status}: a page"
        );
        let html = r.text().await.unwrap();
        assert!(html.contains(shows), "{status}: {html}");
    };
    let duplicate = browser
        .client
        .post(app.url("/login/dev"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}&csrf={csrf}&username=alice"))
        .send()
        .await
        .unwrap();
    expect_page(
        duplicate,
        StatusCode::UNPROCESSABLE_ENTITY,
        "The form could not be read",
    )
    .await;
    let json = browser
        .client
        .post(app.url("/login/dev"))
        .json(&json!({"csrf": csrf, "username": "alice"}))
        .send()
        .await
        .unwrap();
    expect_page(json, StatusCode::UNSUPPORTED_MEDIA_TYPE, "Not a form").await;
    let large = browser
        .client
        .post(app.url("/login/dev"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", &"a".repeat(100 * 1024)),
        ])
        .send()
        .await
        .unwrap();
    expect_page(large, StatusCode::PAYLOAD_TOO_LARGE, "Too much to send").await;
    let bad_path = browser
        .client
        .get(app.url("/e/%FF%FE"))
        .send()
        .await
        .unwrap();
    expect_page(
        bad_path,
        StatusCode::BAD_REQUEST,
        "This address could not be read",
    )
    .await;
}

#[tokio::test]
async fn an_api_path_that_is_not_utf8_gets_a_problem() {
    let app = TestApp::spawn().await;
    let r = app
        .api
        .get(app.url("/v1/elicitations/%FF%FE"))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn a_subject_with_a_bidi_override_is_refused_and_a_message_shows_one_as_a_marker() {
    let app = TestApp::spawn().await;
    for subject in ["admin\u{202e}TOOR", "ali\u{200b}ce", "\u{2066}bob\u{2069}"] {
        let r = app
            .create(
                &app.token,
                json!({"subject": subject, "provider": API_KEY_PROVIDER}),
            )
            .await;
        let problem = assert_problem(r, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert!(
            problem["detail"].as_str().unwrap().starts_with("subject:"),
            "{problem}"
        );
    }
    let r = app
        .create(
            &app.token,
            json!({
                "subject": "alice",
                "provider": API_KEY_PROVIDER,
                "message": "Approve \u{202e}txt.exe"
            }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    let page = app
        .browser()
        .open_as(created["url"].as_str().unwrap(), "alice")
        .await;
    page.assert_shows("Approve [U+202E]txt.exe");
    assert!(!page.html.contains('\u{202e}'));
}

#[tokio::test]
async fn the_openapi_document_states_the_wait_query_the_common_problems_and_string_bounds() {
    let app = TestApp::spawn().await;
    let doc: Value = app
        .api
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let status = &doc["paths"]["/v1/elicitations/{id}"]["get"];
    let wait = status["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "wait")
        .expect("a wait parameter");
    assert_eq!(wait["in"], "query", "{wait}");
    assert_ne!(wait["required"], true, "{wait}");
    assert_eq!(wait["schema"]["minimum"], 0, "{wait}");
    assert_eq!(wait["schema"]["maximum"], 60, "{wait}");
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for code in ["400", "401", "413", "415", "429", "503"] {
                let answer = &operation["responses"][code];
                assert!(
                    answer["content"]["application/problem+json"].is_object(),
                    "{method} {path} does not list {code}"
                );
                if code == "429" || code == "503" {
                    assert_eq!(
                        answer["headers"]["Retry-After"]["schema"]["type"], "integer",
                        "{method} {path} {code} names Retry-After"
                    );
                }
            }
        }
    }
    let create = &doc["components"]["schemas"]["CreateElicitation"]["properties"];
    assert_eq!(create["subject"]["minLength"], 1, "{create}");
    assert_eq!(create["provider"]["minLength"], 1, "{create}");
}

/// `schemathesis` (installed by scripts/test) against the live API's `/openapi.json`: every
/// check, positive and negative data, a bounded number of examples and a fixed seed (the
/// same cases on every run), as the service `svc-a`. Any failure fails the test with the
/// fuzzer's own report.
#[tokio::test]
async fn a_schema_driven_fuzzer_finds_no_failure_in_the_api() {
    // The fuzzer holds only a service token, so every registration endpoint refuses it;
    // throttling those refusals (tested on its own) would turn its later calls into 429s.
    let app = TestApp::spawn_with(|c| {
        c.limits.failed_auth_burst = 1_000_000;
        c.limits.failed_auth_per_minute = 1_000_000.0;
    })
    .await;
    let mut child = tokio::process::Command::new("schemathesis")
        .args(["run", &app.url("/openapi.json")])
        .args(["--header", &format!("Authorization: Bearer {}", app.token)])
        .args(["--checks", "all", "--mode", "all"])
        .args(["--max-examples", "40", "--seed", "20261201"])
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("schemathesis is installed (scripts/test installs it)");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let (mut report, mut errors) = (String::new(), String::new());
    let ran = tokio::time::timeout(std::time::Duration::from_secs(600), async {
        use tokio::io::AsyncReadExt;
        let _ = tokio::join!(
            out.read_to_string(&mut report),
            err.read_to_string(&mut errors)
        );
        child.wait().await
    })
    .await
    .expect("the fuzzer finishes within ten minutes")
    .unwrap();
    assert!(ran.success(), "{report}\n{errors}");
    assert!(report.contains("passed"), "{report}");
    assert!(
        !report.contains(&app.token),
        "the token is filtered from the report"
    );
}
