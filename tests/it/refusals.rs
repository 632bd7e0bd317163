//! Everything the broker must refuse, each with the status and problem type (or page) a
//! caller can act on, and without changing what is stored.

use crate::common;

use common::{API_KEY_PROVIDER, GOOD_KEY, TERMS_PROVIDER, TestApp, assert_problem};
use consent_broker::domain::{
    Elicitation, ElicitationId, ElicitationStatus, ProviderId, Scopes, ServiceId, Subject,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn unknown_handle() -> String {
    format!("cbh_{}", "A".repeat(43))
}

#[tokio::test]
async fn a_link_opened_by_another_user_is_refused_and_audited() {
    let app = TestApp::spawn().await;
    let created = app
        .create_pending("alice", API_KEY_PROVIDER, &["read"])
        .await;
    let id = created["id"].as_str().unwrap();
    let mallory = app.browser();
    let page = mallory
        .open_as(created["url"].as_str().unwrap(), "mallory")
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    page.assert_shows("This link is for another account");
    assert!(
        !page.html.contains("Service A"),
        "nothing about the request is shown"
    );
    let approve = mallory
        .submit(&format!("/e/{id}/approve"), &[("csrf", &page.csrf())])
        .await;
    assert_eq!(approve.status, StatusCode::FORBIDDEN);
    let deny = mallory
        .submit(&format!("/e/{id}/deny"), &[("csrf", &page.csrf())])
        .await;
    assert_eq!(deny.status, StatusCode::FORBIDDEN);
    assert_eq!(app.elicitation(id).await["status"], "pending");
    let mismatches = app
        .audit_actions()
        .await
        .into_iter()
        .filter(|(a, o)| a == "identity_mismatch" && o == "denied")
        .count();
    assert_eq!(mismatches, 3);
}

#[tokio::test]
async fn a_form_without_the_csrf_token_is_refused() {
    let app = TestApp::spawn().await;
    let created = app.create_pending("alice", TERMS_PROVIDER, &[]).await;
    let id = created["id"].as_str().unwrap();
    let browser = app.browser();
    browser
        .open_as(created["url"].as_str().unwrap(), "alice")
        .await;
    for fields in [&[][..], &[("csrf", "forged")][..]] {
        let page = browser.submit(&format!("/e/{id}/approve"), fields).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        page.assert_shows("csrf_rejected");
    }
    assert_eq!(app.elicitation(id).await["status"], "pending");
}

#[tokio::test]
async fn an_expired_elicitation_can_no_longer_be_approved() {
    let app = TestApp::spawn().await;
    let past = consent_broker::domain::now() - time::Duration::minutes(30);
    let e = Elicitation {
        id: ElicitationId::generate(),
        service: ServiceId::parse("svc-a").unwrap(),
        subject: Subject::parse("alice").unwrap(),
        provider: ProviderId::parse(TERMS_PROVIDER).unwrap(),
        scopes: Scopes::default(),
        message: None,
        created_at: past,
        expires_at: past + time::Duration::minutes(15),
        status: ElicitationStatus::Pending,
        grant_id: None,
        reason: None,
    };
    app.broker
        .raw_stores()
        .elicitations
        .insert_elicitation(&e)
        .await
        .unwrap();
    let browser = app.browser();
    let page = browser.open_as(&format!("/e/{}", e.id), "alice").await;
    assert_eq!(page.status, StatusCode::GONE);
    page.assert_shows("This request has expired");
    let approve = browser
        .submit(&format!("/e/{}/approve", e.id), &[("csrf", &page.csrf())])
        .await;
    assert_eq!(approve.status, StatusCode::GONE);
    let status: Value = app
        .status(&app.token, e.id.as_str(), 0)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "expired");
    assert!(status.get("url").is_none());
}

#[tokio::test]
async fn unknown_malformed_and_foreign_handles_get_the_same_answer() {
    let app = TestApp::spawn().await;
    let unknown = assert_problem(
        app.redeem(&app.token, &unknown_handle()).await,
        StatusCode::NOT_FOUND,
        "unknown_handle",
    )
    .await;
    let malformed = assert_problem(
        app.redeem(&app.token, "../../etc/passwd").await,
        StatusCode::NOT_FOUND,
        "unknown_handle",
    )
    .await;
    assert_eq!(unknown, malformed);

    // A real handle of svc-a, presented by svc-b.
    let created = app
        .create_pending("alice", API_KEY_PROVIDER, &["read"])
        .await;
    let id = created["id"].as_str().unwrap();
    let handle = app.consent_api_key(&created, "alice", GOOD_KEY).await["handle"]
        .as_str()
        .unwrap()
        .to_owned();
    let foreign = assert_problem(
        app.redeem(&app.other_token, &handle).await,
        StatusCode::NOT_FOUND,
        "unknown_handle",
    )
    .await;
    assert_eq!(
        foreign, unknown,
        "a foreign handle is indistinguishable from an unknown one"
    );
    // Audited off the request path, and never lost: it lands shortly after the answer.
    let mut audited = false;
    for _ in 0..100 {
        if app
            .audit_actions()
            .await
            .contains(&("foreign_handle_presented".into(), "denied".into()))
        {
            audited = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(audited, "the foreign presentation is in the audit log");
    let other_status = app.status(&app.other_token, id, 0).await;
    assert_problem(other_status, StatusCode::NOT_FOUND, "elicitation_not_found").await;
    // And the bound service still redeems it.
    assert_eq!(
        app.redeem(&app.token, &handle).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_missing_or_wrong_service_token_is_unauthenticated() {
    let app = TestApp::spawn().await;
    let none = app
        .api
        .post(app.url("/v1/redeem"))
        .json(&json!({"handle": unknown_handle()}))
        .send()
        .await
        .unwrap();
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    assert_problem(none, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let wrong = app.redeem("cbs_not-a-real-token", &unknown_handle()).await;
    assert_problem(wrong, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let basic = app
        .api
        .get(app.url("/v1/elicitations/AAAAAAAAAAAAAAAAAAAAAA"))
        .basic_auth("svc-a", Some(&app.token))
        .send()
        .await
        .unwrap();
    assert_problem(basic, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[tokio::test]
async fn malformed_bodies_get_a_clear_problem_never_a_500() {
    let app = TestApp::spawn().await;
    let post_raw = |body: Vec<u8>, content_type: &'static str| {
        app.api
            .post(app.url("/v1/elicitations"))
            .bearer_auth(&app.token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    assert_problem(
        post_raw(b"{not json".to_vec(), "application/json")
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    assert_problem(
        post_raw(b"[]".to_vec(), "application/json").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    assert_problem(
        post_raw(b"subject=a".to_vec(), "text/plain").await.unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let big = format!(
        r#"{{"subject":"a","provider":"acme","message":"{}"}}"#,
        "x".repeat(200 * 1024)
    );
    assert_problem(
        post_raw(big.into_bytes(), "application/json")
            .await
            .unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
    )
    .await;

    let unknown_field = app
        .create(
            &app.token,
            json!({"subject": "a", "provider": API_KEY_PROVIDER, "admin": true}),
        )
        .await;
    let body = assert_problem(unknown_field, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("unknown field `admin`"),
        "{body}"
    );
    for (bad, field) in [
        (
            json!({"subject": "a\u{0}", "provider": API_KEY_PROVIDER}),
            "subject",
        ),
        (
            json!({"subject": "", "provider": API_KEY_PROVIDER}),
            "subject",
        ),
        (json!({"subject": "a", "provider": "../x"}), "provider"),
        (
            json!({"subject": "a", "provider": API_KEY_PROVIDER, "scopes": ["two words"]}),
            "scopes",
        ),
        (
            json!({"subject": "a", "provider": API_KEY_PROVIDER, "message": "m".repeat(501)}),
            "message",
        ),
    ] {
        let body = assert_problem(
            app.create(&app.token, bad).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
        assert!(
            body["detail"].as_str().unwrap().starts_with(field),
            "{body}"
        );
    }
    let long_wait = app.status(&app.token, "AAAAAAAAAAAAAAAAAAAAAA", 61).await;
    assert_problem(long_wait, StatusCode::BAD_REQUEST, "invalid_request").await;
    let odd_wait = app
        .api
        .get(app.url("/v1/elicitations/x?wait=-1"))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_problem(odd_wait, StatusCode::BAD_REQUEST, "invalid_request").await;
    let traversal = app
        .api
        .get(app.url("/v1/elicitations/..%2F..%2Fetc"))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_problem(traversal, StatusCode::NOT_FOUND, "elicitation_not_found").await;
}

#[tokio::test]
async fn requests_beyond_the_service_policy_are_refused_at_creation() {
    let app = TestApp::spawn().await;
    let write = app
        .create(
            &app.other_token,
            json!({"subject": "a", "provider": API_KEY_PROVIDER, "scopes": ["write"]}),
        )
        .await;
    let body = assert_problem(write, StatusCode::FORBIDDEN, "scope_not_allowed").await;
    assert!(body["detail"].as_str().unwrap().contains("`write`"));
    let terms = app
        .create(
            &app.other_token,
            json!({"subject": "a", "provider": TERMS_PROVIDER}),
        )
        .await;
    assert_problem(terms, StatusCode::FORBIDDEN, "provider_not_allowed").await;
    let unknown = app
        .create(&app.token, json!({"subject": "a", "provider": "nope"}))
        .await;
    assert_problem(unknown, StatusCode::FORBIDDEN, "provider_not_allowed").await;
}

#[tokio::test]
async fn pages_refuse_unknown_ids_with_a_readable_page() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    for path in [
        "/e/AAAAAAAAAAAAAAAAAAAAAA",
        "/e/..%2F..%2Fetc%2Fpasswd",
        "/e/%00",
    ] {
        let page = browser.open_as(path, "alice").await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        page.assert_shows("Request not found");
        page.assert_shows("<html");
    }
}

#[tokio::test]
async fn sign_in_only_returns_to_this_site() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    for evil in [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "javascript:alert(1)",
    ] {
        let encoded: String = url::form_urlencoded::byte_serialize(evil.as_bytes()).collect();
        let page = browser.open(&format!("/login?return_to={encoded}")).await;
        page.assert_shows("name=\"return_to\" value=\"/\"");
        let r = browser
            .client
            .post(app.url("/login/dev"))
            .form(&[
                ("csrf", page.csrf().as_str()),
                ("username", "alice"),
                ("return_to", evil),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["location"], "/", "{evil}");
    }
}

#[tokio::test]
async fn the_dev_sign_in_opens_the_console_only_when_asked_to() {
    let app = TestApp::spawn().await;
    let (plain, admin) = (app.browser(), app.browser());
    plain.open_as("/connections", "alice").await;
    assert_eq!(plain.open("/admin").await.status, StatusCode::FORBIDDEN);
    let login = admin.open("/login?return_to=/admin").await;
    login.assert_shows("Sign in as an administrator");
    let console = admin
        .submit(
            "/login/dev",
            &[
                ("csrf", &login.csrf()),
                ("username", "dana"),
                ("return_to", "/admin"),
                ("admin", "on"),
            ],
        )
        .await;
    assert_eq!(console.status, StatusCode::OK);
    console.assert_shows("Admin console");
}

#[tokio::test]
async fn dev_sign_in_does_not_exist_outside_dev_mode() {
    let app = TestApp::spawn_mode(false, |_| {}).await;
    let browser = app.browser();
    let login = browser.open("/login").await;
    login.assert_shows("not configured");
    assert!(!login.html.contains("name=\"username\""));
    let r = browser
        .client
        .post(app.url("/login/dev"))
        .form(&[("csrf", "x"), ("username", "alice")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let created = app
        .create_pending("alice", API_KEY_PROVIDER, &["read"])
        .await;
    let page = browser.open(created["url"].as_str().unwrap()).await;
    assert_eq!(page.path, "/login", "still not signed in");
}

#[tokio::test]
async fn pages_send_strict_security_headers_and_cookies() {
    let app = TestApp::spawn().await;
    let r = app.api.get(app.url("/login")).send().await.unwrap();
    let h = r.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'")
            && csp.contains("default-src 'none'")
            && !csp.contains("unsafe-inline")
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["cache-control"], "no-store");
    let cookie = h["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"),
        "{cookie}"
    );
    let html = r.text().await.unwrap();
    assert!(
        !html.contains("<script") && !html.contains("style="),
        "no inline script or style"
    );
}

#[tokio::test]
async fn signing_in_changes_the_session_id_and_signing_out_ends_it() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    let session_cookie = |r: &reqwest::Response| {
        r.headers()
            .get("set-cookie")
            .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_owned())
    };
    let r = browser.client.get(app.url("/login")).send().await.unwrap();
    let before = session_cookie(&r).unwrap();
    let html = r.text().await.unwrap();
    let page = common::Page {
        status: StatusCode::OK,
        url: app.url("/login").parse().unwrap(),
        path: "/login".into(),
        html,
    };
    let r = browser
        .client
        .post(app.url("/login/dev"))
        .form(&[
            ("csrf", page.csrf().as_str()),
            ("username", "alice"),
            ("return_to", "/"),
        ])
        .send()
        .await
        .unwrap();
    let after = session_cookie(&r).expect("a new session cookie at sign-in");
    assert_ne!(before, after);

    let home = browser.open("/").await;
    home.assert_shows("alice");
    let out = browser.submit("/logout", &[("csrf", &home.csrf())]).await;
    assert!(!out.html.contains("Signed in as"));
    // The old cookie no longer signs anyone in.
    let replay = app
        .api
        .get(app.url("/"))
        .header("cookie", &after)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!replay.contains("alice"));
}
