//! CSRF on every browser form route, table-driven: posted by a signed-in user (an admin on
//! the console's routes) without a token, and with another session's valid token, each
//! form answers the "Please try again" page (403) and changes nothing: the elicitation is
//! still pending, the grant still redeems, the user still signed in, no audit event added.
//! The table must name every form route the router has (`pages::form_paths`).

use crate::common;

use std::collections::BTreeSet;

use common::idp::OAuthWorld;
use common::{API_KEY_PROVIDER, Browser, GOOD_KEY, TERMS_PROVIDER, TestApp};
use reqwest::StatusCode;

/// Who posts a form.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    /// A user signed in with the dev sign-in (`alice`).
    User,
    /// An administrator signed in at the IdP (`root`).
    Admin,
}

/// What must still hold after a refused post.
#[derive(Clone, Copy, Debug)]
enum Unchanged {
    /// The browser is still signed in as the same user.
    SignedIn,
    /// The terms elicitation is still pending.
    TermsPending,
    /// The approved API-key elicitation is still pending.
    KeyPending,
    /// The user's grant still redeems.
    GrantActive,
    /// The grant waiting for an administrator still waits.
    ApprovalWaiting,
    /// The registered services and the initial access tokens are as they were.
    Registry,
}

/// One form route: its path pattern, who posts it, the form's other fields, and what a
/// refusal leaves as it was.
type Form = (
    &'static str,
    Who,
    &'static [(&'static str, &'static str)],
    Unchanged,
);

/// Every browser form route.
const FORMS: &[Form] = &[
    (
        "/login/dev",
        Who::User,
        &[("username", "mallory"), ("return_to", "/")],
        Unchanged::SignedIn,
    ),
    ("/logout", Who::User, &[], Unchanged::SignedIn),
    ("/e/{id}/approve", Who::User, &[], Unchanged::TermsPending),
    ("/e/{id}/deny", Who::User, &[], Unchanged::TermsPending),
    (
        "/e/{id}/api-key",
        Who::User,
        &[("api_key", GOOD_KEY)],
        Unchanged::KeyPending,
    ),
    (
        "/connections/{id}/revoke",
        Who::User,
        &[],
        Unchanged::GrantActive,
    ),
    (
        "/admin/grants/{id}/revoke",
        Who::Admin,
        &[],
        Unchanged::GrantActive,
    ),
    (
        "/admin/users/revoke",
        Who::Admin,
        &[("user", "alice")],
        Unchanged::GrantActive,
    ),
    (
        "/admin/providers/{id}/revoke",
        Who::Admin,
        &[],
        Unchanged::GrantActive,
    ),
    (
        "/admin/approvals/{id}/approve",
        Who::Admin,
        &[],
        Unchanged::ApprovalWaiting,
    ),
    (
        "/admin/approvals/{id}/refuse",
        Who::Admin,
        &[("reason", "no")],
        Unchanged::ApprovalWaiting,
    ),
    (
        "/admin/review/revoke-unused",
        Who::Admin,
        &[],
        Unchanged::GrantActive,
    ),
    (
        "/admin/services/register",
        Who::Admin,
        &[("name", "Mallory MCP"), ("scopes", "acme: read")],
        Unchanged::Registry,
    ),
    (
        "/admin/services/initial-tokens",
        Who::Admin,
        &[("label", "mallory"), ("uses", "5"), ("hours", "24")],
        Unchanged::Registry,
    ),
    (
        "/admin/services/{id}/approve",
        Who::Admin,
        &[("scope.acme.read", "on")],
        Unchanged::Registry,
    ),
    (
        "/admin/services/{id}/edit",
        Who::Admin,
        &[("name", "Renamed"), ("scopes", "acme: read write")],
        Unchanged::Registry,
    ),
    (
        "/admin/services/{id}/suspend",
        Who::Admin,
        &[("choice", "revoke")],
        Unchanged::Registry,
    ),
    (
        "/admin/services/{id}/rotate",
        Who::Admin,
        &[],
        Unchanged::Registry,
    ),
    (
        "/admin/services/{id}/resume",
        Who::Admin,
        &[],
        Unchanged::Registry,
    ),
    (
        "/admin/services/{id}/delete",
        Who::Admin,
        &[],
        Unchanged::Registry,
    ),
];

#[test]
fn the_table_names_every_form_route() {
    let table: BTreeSet<&str> = FORMS.iter().map(|f| f.0).collect();
    let routed: BTreeSet<&str> = consent_broker::http::pages::form_paths()
        .into_iter()
        .collect();
    assert_eq!(
        table, routed,
        "every form route needs a row in FORMS (and every row a route)"
    );
    assert_eq!(table.len(), FORMS.len(), "one row per route");
}

/// One broker with the state the refused posts must leave alone.
struct Scene {
    app: TestApp,
    /// The signed-in poster, and who they are.
    browser: Browser,
    login: &'static str,
    /// A valid token of another session.
    foreign_token: String,
    terms_id: String,
    /// An approved API-key elicitation, of svc-b (alice's svc-a grant would answer it).
    key_id: String,
    grant_id: String,
    handle: String,
    /// A grant waiting for an administrator's approval (admin scene only).
    waiting_id: String,
    /// A service that registered itself and waits for approval (admin scene only).
    service_id: String,
}

impl Scene {
    /// The concrete path of `pattern` in this scene.
    fn path(&self, pattern: &str) -> String {
        let id = match pattern {
            "/e/{id}/approve" | "/e/{id}/deny" => self.terms_id.as_str(),
            "/e/{id}/api-key" => self.key_id.as_str(),
            "/connections/{id}/revoke" | "/admin/grants/{id}/revoke" => self.grant_id.as_str(),
            "/admin/providers/{id}/revoke" => API_KEY_PROVIDER,
            "/admin/approvals/{id}/approve" | "/admin/approvals/{id}/refuse" => {
                self.waiting_id.as_str()
            }
            p if p.starts_with("/admin/services/{id}/") => self.service_id.as_str(),
            _ => "",
        };
        pattern.replace("{id}", id)
    }

    async fn assert_unchanged(&self, what: Unchanged, context: &str) {
        match what {
            Unchanged::SignedIn => self
                .browser
                .open("/")
                .await
                .assert_shows(&format!("Signed in as <strong>{}</strong>", self.login)),
            Unchanged::TermsPending => assert_eq!(
                self.app.elicitation(&self.terms_id).await["status"],
                "pending",
                "{context}"
            ),
            Unchanged::KeyPending => assert_eq!(
                self.app
                    .status(&self.app.other_token, &self.key_id, 0)
                    .await
                    .json::<serde_json::Value>()
                    .await
                    .unwrap()["status"],
                "pending",
                "{context}"
            ),
            Unchanged::GrantActive => assert_eq!(
                self.app
                    .redeem(&self.app.token, &self.handle)
                    .await
                    .status(),
                StatusCode::OK,
                "{context}"
            ),
            Unchanged::Registry => {
                let services = self.app.broker.registered_services().await.unwrap();
                assert_eq!(services.len(), 1, "{context}");
                assert_eq!(services[0].id.as_str(), self.service_id, "{context}");
                assert_eq!(services[0].status.as_str(), "pending", "{context}");
                assert_eq!(services[0].name, "Reports MCP", "{context}");
                let tokens = self.app.broker.initial_tokens().await.unwrap();
                assert_eq!(tokens.len(), 1, "{context}");
            }
            Unchanged::ApprovalWaiting => {
                let id = consent_broker::domain::GrantId::parse(&self.waiting_id).unwrap();
                let grant = self.app.broker.grant(&id).await.unwrap().unwrap();
                assert_eq!(grant.status.as_str(), "awaiting_approval", "{context}");
            }
        }
    }

    /// Posts every form of `who` without a token and with the foreign one.
    async fn refuse_all(&self, who: Who) {
        for &(pattern, _, fields, unchanged) in FORMS.iter().filter(|f| f.1 == who) {
            let path = self.path(pattern);
            for (case, token) in [
                ("without a token", None),
                (
                    "with another session's token",
                    Some(self.foreign_token.as_str()),
                ),
            ] {
                let context = format!("POST {path} {case}");
                let before = self.app.audit_actions().await;
                let mut form: Vec<(&str, &str)> = fields.to_vec();
                if let Some(t) = token {
                    form.push(("csrf", t));
                }
                let page = self.browser.submit(&path, &form).await;
                assert_eq!(page.status, StatusCode::FORBIDDEN, "{context}");
                page.assert_shows("Please try again");
                page.assert_shows("The form expired or did not come from this site");
                page.assert_shows("Error code: csrf_rejected");
                assert_eq!(self.app.audit_actions().await, before, "{context}");
                self.assert_unchanged(unchanged, &context).await;
            }
        }
    }
}

/// Approves the API-key elicitation `key_id` in `browser`, up to the key form.
async fn approve_key(browser: &Browser, key_id: &str) {
    let consent = browser.open(&format!("/e/{key_id}")).await;
    let form = browser
        .submit(
            &format!("/e/{key_id}/approve"),
            &[("csrf", &consent.csrf())],
        )
        .await;
    assert_eq!(form.path, format!("/e/{key_id}/api-key"));
}

/// Registers a service that waits for approval, with an initial access token.
async fn pending_service(app: &TestApp) -> String {
    let root = consent_broker::domain::Subject::parse("root").unwrap();
    let (initial, _) = app
        .broker
        .mint_initial_token(&root, "partner", 1, 1)
        .await
        .unwrap();
    let description = consent_broker::broker::ServiceDescription {
        name: "Reports MCP".into(),
        scopes: [(API_KEY_PROVIDER.to_owned(), vec!["read".to_owned()])].into(),
        ..Default::default()
    };
    let issued = app
        .broker
        .register_with_initial_token(&initial, &description)
        .await
        .unwrap();
    issued.service.id.to_string()
}

#[tokio::test]
async fn every_form_refuses_a_missing_or_foreign_csrf_token_and_changes_nothing() {
    // Users' forms, on a broker with the dev sign-in.
    let app = TestApp::spawn().await;
    let granted = app
        .create_pending("alice", API_KEY_PROVIDER, &["read"])
        .await;
    let status = app.consent_api_key(&granted, "alice", GOOD_KEY).await;
    let terms = app.create_pending("alice", TERMS_PROVIDER, &[]).await;
    let key = app
        .create(
            &app.other_token,
            serde_json::json!({"subject": "alice", "provider": API_KEY_PROVIDER, "scopes": ["read"]}),
        )
        .await;
    assert_eq!(key.status(), StatusCode::CREATED);
    let key: serde_json::Value = key.json().await.unwrap();
    let browser = app.browser();
    browser
        .open_as(terms["url"].as_str().unwrap(), "alice")
        .await
        .assert_shows("requests access");
    let key_id = key["id"].as_str().unwrap().to_owned();
    approve_key(&browser, &key_id).await;
    let bob = app.browser();
    let foreign_token = bob.open_as("/connections", "bob").await.csrf();
    let users = Scene {
        browser,
        login: "alice",
        foreign_token,
        terms_id: terms["id"].as_str().unwrap().to_owned(),
        key_id,
        grant_id: status["grant_id"].as_str().unwrap().to_owned(),
        handle: status["handle"].as_str().unwrap().to_owned(),
        waiting_id: String::new(),
        service_id: String::new(),
        app,
    };
    users.refuse_all(Who::User).await;

    // The console's forms, posted by an admin signed in at the IdP; accepting the terms
    // waits for an administrator.
    let world = OAuthWorld::start_with(|c| {
        // Two refused posts per console form, all from one address.
        c.limits.browser_posts_burst = 100;
        c.policies.push(
            toml::from_str(
                r#"provider = "acme-terms"
                              approval = "admin""#,
            )
            .unwrap(),
        );
    })
    .await;
    let alice = world.app.browser();
    let created = world
        .app
        .create_pending("alice", API_KEY_PROVIDER, &["read"])
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let consent = world
        .open_signed_in(&alice, created["url"].as_str().unwrap(), "alice")
        .await;
    assert_eq!(consent.path, format!("/e/{id}"));
    approve_key(&alice, &id).await;
    let form = alice.open(&format!("/e/{id}/api-key")).await;
    alice
        .submit(
            &format!("/e/{id}/api-key"),
            &[("csrf", &form.csrf()), ("api_key", GOOD_KEY)],
        )
        .await
        .assert_shows("Connected");
    let status = world.app.elicitation(&id).await;
    let terms = world.app.create_pending("alice", TERMS_PROVIDER, &[]).await;
    let page = alice.open(terms["url"].as_str().unwrap()).await;
    let terms_id = terms["id"].as_str().unwrap();
    alice
        .submit(&format!("/e/{terms_id}/approve"), &[("csrf", &page.csrf())])
        .await
        .assert_shows("Waiting for an administrator");
    let waiting = world
        .app
        .broker
        .grants_of(&consent_broker::domain::Subject::parse("alice").unwrap())
        .await
        .unwrap()
        .into_iter()
        .find(|g| g.status.as_str() == "awaiting_approval")
        .unwrap();
    let root = world.app.browser();
    world
        .sign_in(&root, "root")
        .await
        .assert_shows("administrator");
    let admins = Scene {
        browser: root,
        login: "root",
        foreign_token: alice.open("/connections").await.csrf(),
        terms_id: String::new(),
        key_id: String::new(),
        grant_id: status["grant_id"].as_str().unwrap().to_owned(),
        handle: status["handle"].as_str().unwrap().to_owned(),
        waiting_id: waiting.id.to_string(),
        service_id: pending_service(&world.app).await,
        app: world.app,
    };
    admins.refuse_all(Who::Admin).await;
}
