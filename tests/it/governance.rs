//! Governance over HTTP, with sign-in at the real IdP (`oidc-provider`, where "root" is an
//! admin and "erin" is in the `engineering` group): who may grant which scope, scopes that
//! wait for an administrator (approve, refuse), consent that expires, the review lists, and
//! the audit trail each decision leaves.

use crate::common;

use std::time::Duration;

use common::idp::{OAUTH_PROVIDER, OAuthWorld, UPSTREAM_CLIENT, through_idp};
use common::{API_KEY_PROVIDER, Browser, GOOD_KEY, Page, assert_problem};
use consent_broker::config::Config;
use consent_broker::config::PolicyRuleConfig;
use consent_broker::domain::{Actor, AuditAction, Subject};
use reqwest::StatusCode;
use serde_json::Value;

fn rule(toml_text: &str) -> PolicyRuleConfig {
    toml::from_str(toml_text).unwrap()
}

/// A broker with sign-in at the IdP and one `[[policies]]` rule.
async fn world_with(policy: &'static str) -> OAuthWorld {
    OAuthWorld::start_with(move |c: &mut Config| c.policies.push(rule(policy))).await
}

fn admin_root() -> Actor {
    Actor::Admin(Subject::parse("root").unwrap())
}

/// A browser signed in at the IdP as `login`.
async fn signed_in(world: &OAuthWorld, login: &str) -> Browser {
    let browser = world.app.browser();
    world.sign_in(&browser, login).await;
    browser
}

/// Opens the consent link of `created` in `browser` (signed in) and approves it; for the
/// API-key provider also enters the key. Returns the page the user ends on.
async fn approve_key(browser: &Browser, created: &Value) -> Page {
    let id = created["id"].as_str().unwrap();
    let consent = browser.open(created["url"].as_str().unwrap()).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.html);
    let form = browser
        .submit(&format!("/e/{id}/approve"), &[("csrf", &consent.csrf())])
        .await;
    browser
        .submit(
            &format!("/e/{id}/api-key"),
            &[("csrf", &form.csrf()), ("api_key", GOOD_KEY)],
        )
        .await
}

/// The audit events of `action`, newest first.
async fn events(
    world: &OAuthWorld,
    action: AuditAction,
) -> Vec<consent_broker::domain::AuditEvent> {
    let all = world
        .app
        .broker
        .raw_stores()
        .audit
        .recent(10_000)
        .await
        .unwrap();
    all.into_iter().filter(|e| e.action == action).collect()
}

#[tokio::test]
async fn a_user_outside_the_group_is_refused_the_scope_in_words_and_one_inside_gets_it() {
    let world = world_with(
        r#"provider = "acme"
               scopes = ["write"]
               groups = ["engineering"]"#,
    )
    .await;
    let app = &world.app;

    // bob is staff only: the consent page refuses, names the rule, and nothing can be approved.
    let bob = signed_in(&world, "bob").await;
    let created = app
        .create_pending("bob", API_KEY_PROVIDER, &["read", "write"])
        .await;
    let id = created["id"].as_str().unwrap();
    let page = bob.open(created["url"].as_str().unwrap()).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    page.assert_shows("Your organisation does not allow this");
    page.assert_shows("lets only members of engineering grant the scope `write`");
    assert!(!page.html.contains("/approve\""), "no approve form");
    let status = app.elicitation(id).await;
    assert_eq!(status["status"], "declined");
    assert_eq!(status["reason"], "policy");
    let approve = bob
        .submit(&format!("/e/{id}/approve"), &[("csrf", &page.csrf())])
        .await;
    assert_ne!(
        approve.status,
        StatusCode::OK,
        "a declined request cannot be approved"
    );
    let refused = events(&world, AuditAction::PolicyRefused).await;
    assert_eq!(refused.len(), 1);
    assert_eq!(
        refused[0].actor,
        Actor::User(Subject::parse("bob").unwrap())
    );

    // bob may still grant the ungoverned scope.
    let created = app.create_pending("bob", API_KEY_PROVIDER, &["read"]).await;
    approve_key(&bob, &created).await.assert_shows("Connected");

    // erin is in engineering: she gets it.
    let erin = signed_in(&world, "erin").await;
    let created = app
        .create_pending("erin", API_KEY_PROVIDER, &["read", "write"])
        .await;
    approve_key(&erin, &created).await.assert_shows("Connected");
    let status = app.elicitation(created["id"].as_str().unwrap()).await;
    assert_eq!(status["status"], "completed");
    let redeemed = app
        .redeem(&app.token, status["handle"].as_str().unwrap())
        .await;
    assert_eq!(redeemed.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_sensitive_scope_waits_for_an_admin_who_approves_and_the_webhook_fires() {
    let secret = consent_broker::domain::WebhookKey::generate();
    let (hook, mut deliveries) = crate::webhooks::receiver(0).await;
    let hook_secret = secret.to_string();
    let world = OAuthWorld::start_with(move |c: &mut Config| {
        c.policies.push(rule(
            r#"provider = "acme"
               scopes = ["write"]
               approval = "admin""#,
        ));
        c.services[0].webhook_url = Some(hook.parse().unwrap());
        c.services[0].webhook_secret = Some(hook_secret.into());
    })
    .await;
    let app = &world.app;
    let alice = signed_in(&world, "alice").await;
    let created = app
        .create_pending("alice", API_KEY_PROVIDER, &["write"])
        .await;
    let id = created["id"].as_str().unwrap();
    let consent = alice.open(created["url"].as_str().unwrap()).await;
    consent.assert_shows("An administrator approves this too");
    consent.assert_shows("cannot use any of this access");

    // Long-polling while she consents: the poll answers when the status moves on.
    let poll = tokio::spawn({
        let (api, url, token) = (
            app.api.clone(),
            app.url(&format!("/v1/elicitations/{id}?wait=30")),
            app.token.clone(),
        );
        async move {
            let r = api.get(url).bearer_auth(token).send().await.unwrap();
            r.json::<Value>().await.unwrap()
        }
    });
    let waiting = approve_key(&alice, &created).await;
    waiting.assert_shows("Waiting for an administrator");
    let polled = tokio::time::timeout(Duration::from_secs(20), poll)
        .await
        .expect("the long-poll answers when the request starts waiting")
        .unwrap();
    assert_eq!(polled["status"], "awaiting_approval");
    assert!(polled.get("handle").is_none(), "no handle before approval");
    // Asking again meanwhile answers the same waiting request, not a new consent page.
    let again = app
        .create_pending("alice", API_KEY_PROVIDER, &["write"])
        .await;
    assert_eq!(again["id"], created["id"]);
    assert_eq!(again["status"], "awaiting_approval");
    assert!(again.get("mcp").is_none());
    let first = tokio::time::timeout(Duration::from_secs(10), deliveries.recv())
        .await
        .unwrap()
        .unwrap();
    let body: Value = serde_json::from_slice(&first.body).unwrap();
    assert_eq!(body["status"], "awaiting_approval");

    // The admin's queue, then the confirmation, then the decision.
    let root = signed_in(&world, "root").await;
    let queue = root.open("/admin/governance").await;
    queue.assert_shows("Waiting for approval (1)");
    let grant = app
        .broker
        .grants_of(&Subject::parse("alice").unwrap())
        .await
        .unwrap()
        .remove(0);
    assert_eq!(grant.status.as_str(), "awaiting_approval");
    let confirm = root
        .open(&format!("/admin/approvals/{}/approve", grant.id))
        .await;
    confirm.assert_shows("Let Service A use this access?");
    // Without the form's CSRF token nothing happens.
    let forged = root
        .submit(&format!("/admin/approvals/{}/approve", grant.id), &[])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(app.elicitation(id).await["status"], "awaiting_approval");
    let done = root
        .submit(
            &format!("/admin/approvals/{}/approve", grant.id),
            &[("csrf", &confirm.csrf())],
        )
        .await;
    done.assert_shows("Approved: Service A can now use alice");

    let status = app.elicitation(id).await;
    assert_eq!(status["status"], "completed");
    let redeemed = app
        .redeem(&app.token, status["handle"].as_str().unwrap())
        .await;
    assert_eq!(redeemed.status(), StatusCode::OK);
    let second = tokio::time::timeout(Duration::from_secs(10), deliveries.recv())
        .await
        .unwrap()
        .unwrap();
    let body: Value = serde_json::from_slice(&second.body).unwrap();
    assert_eq!(body["status"], "completed");
    let approved = events(&world, AuditAction::ApprovalGranted).await;
    assert_eq!(approved[0].actor, admin_root());
    alice
        .open(&format!("/e/{id}"))
        .await
        .assert_shows("Connected");
}

#[tokio::test]
async fn a_refused_oauth_grant_ends_declined_with_the_reason_and_its_tokens_die_upstream() {
    let world = world_with(
        r#"provider = "acme-cloud"
               approval = "admin""#,
    )
    .await;
    let app = &world.app;
    let created = app
        .create_pending("alice", OAUTH_PROVIDER, &["api:read"])
        .await;
    let id = created["id"].as_str().unwrap();
    let browser = app.browser();
    let consent = world
        .open_signed_in(&browser, created["url"].as_str().unwrap(), "alice")
        .await;
    let upstream = browser
        .submit(&format!("/e/{id}/approve"), &[("csrf", &consent.csrf())])
        .await;
    let back = through_idp(&browser, upstream, "alice", |_| false)
        .await
        .page();
    back.assert_shows("Waiting for an administrator");

    // Tokens are held, sealed, and the service has no handle to them.
    let status = app.elicitation(id).await;
    assert_eq!(status["status"], "awaiting_approval");
    assert!(status.get("handle").is_none());
    let grant = app
        .broker
        .grants_of(&Subject::parse("alice").unwrap())
        .await
        .unwrap()
        .remove(0);
    let (access, _) = world.sealed_tokens(grant.id.as_str()).await;
    let before = world
        .upstream
        .introspect(UPSTREAM_CLIENT, &world.upstream_secret, &access)
        .await;
    assert_eq!(before["active"], true);

    let root = signed_in(&world, "root").await;
    let confirm = root
        .open(&format!("/admin/approvals/{}/refuse", grant.id))
        .await;
    confirm.assert_shows("its tokens are revoked at Acme Cloud");
    // A refusal needs a reason.
    let blank = root
        .submit(
            &format!("/admin/approvals/{}/refuse", grant.id),
            &[("csrf", &confirm.csrf()), ("reason", "  ")],
        )
        .await;
    assert_eq!(blank.status, StatusCode::BAD_REQUEST);
    let done = root
        .submit(
            &format!("/admin/approvals/{}/refuse", grant.id),
            &[
                ("csrf", &confirm.csrf()),
                ("reason", "Use the read-only service"),
            ],
        )
        .await;
    done.assert_shows("Refused: Service A does not get alice");

    let status = app.elicitation(id).await;
    assert_eq!(status["status"], "declined");
    assert_eq!(
        status["reason"],
        "refused by an administrator: Use the read-only service"
    );
    let after = world
        .upstream
        .introspect(UPSTREAM_CLIENT, &world.upstream_secret, &access)
        .await;
    assert_eq!(
        after["active"], false,
        "the upstream reports the token inactive"
    );
    let refused = events(&world, AuditAction::ApprovalRefused).await;
    assert_eq!(refused[0].actor, admin_root());
    browser
        .open(&format!("/e/{id}"))
        .await
        .assert_shows("Use the read-only service");
}

#[tokio::test]
async fn consent_past_its_lifetime_asks_again_with_a_working_link_after_the_review_showed_it() {
    let world = world_with(
        r#"provider = "acme"
               max_lifetime_days = 2"#,
    )
    .await;
    let app = &world.app;
    let alice = signed_in(&world, "alice").await;
    let created = app
        .create_pending("alice", API_KEY_PROVIDER, &["read"])
        .await;
    let consent = alice.open(created["url"].as_str().unwrap()).await;
    consent.assert_shows("Your organisation&#39;s policy limits this access: it ends");
    // The account in the IdP's words beside the subject (its name repeats the subject).
    consent.assert_shows(
        "Signed in as <strong>alice</strong> <span class=\"muted\">(alice@example.com)</span>",
    );
    approve_key(&alice, &created)
        .await
        .assert_shows("Connected");
    let handle = app.elicitation(created["id"].as_str().unwrap()).await["handle"]
        .as_str()
        .unwrap()
        .to_owned();
    alice.open("/connections").await.assert_shows("Access ends");

    // Before: the review lists it as ending soon.
    let root = signed_in(&world, "root").await;
    root.open("/admin/governance")
        .await
        .assert_shows("Consent ending within 14 days (1)");
    assert_eq!(
        app.redeem(&app.token, &handle).await.status(),
        StatusCode::OK
    );

    // After: two days and a second later, the same path as a dead refresh token.
    app.broker
        .clock()
        .advance(Duration::from_secs(2 * 86_400 + 1));
    let body = assert_problem(
        app.redeem(&app.token, &handle).await,
        StatusCode::CONFLICT,
        "reauthorization_required",
    )
    .await;
    let url = body["elicitation"]["url"].as_str().expect("a ready link");
    let again = alice.open(url).await;
    assert_eq!(again.status, StatusCode::OK);
    again.assert_shows("wants to use your Acme account");
    let expired = events(&world, AuditAction::GrantExpired).await;
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].actor, Actor::System);
}
