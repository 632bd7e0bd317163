//! The whole product in a real browser (headless Chromium), by clicks, against the real
//! app and the real OIDC servers: a user connects an OAuth account through sign-in,
//! consent and the upstream's own consent; the service redeems; an admin on another
//! machine finds the grant by user and revokes it through the confirmation page; the next
//! redemption fails. Screenshots of every page land in `target/screenshots/`.

use crate::common;

use common::assert_problem;
use common::browser::Chrome;
use common::idp::{OAUTH_PROVIDER, OAuthWorld};
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn a_user_connects_by_clicks_and_an_admin_revokes_the_grant_by_clicks() {
    let world = OAuthWorld::start().await;
    let app = &world.app;
    let created = app
        .create_pending("alice", OAUTH_PROVIDER, &["api:read"])
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let consent_url = created["url"].as_str().unwrap().to_owned();

    // Alice opens the link: sign-in page, the IdP, back to the consent page.
    let mut user = Chrome::start("journey").await;
    user.goto(&consent_url).await;
    user.wait_for_url("sign-in", |u| u.path() == "/login").await;
    user.assert_shows("Continue with Example SSO").await;
    user.shot("sign-in").await;
    user.click("a[href^='/login/oidc']").await;
    user.wait_for_url("the IdP", |u| u.as_str().starts_with(&world.idp.issuer))
        .await;
    user.through_idp(&world.idp.issuer, "alice", "idp").await;
    user.wait_for_url("the consent page", |u| u.path() == format!("/e/{id}"))
        .await;
    user.assert_shows("Service A wants to use your Acme Cloud account")
        .await;
    user.assert_shows("Read your Acme Cloud data").await;
    user.assert_shows("Signed in as alice").await;
    user.shot("consent").await;

    // Approve: the upstream's own sign-in and consent, then back to "Connected".
    user.click_button("Connect Acme Cloud").await;
    user.wait_for_url("the upstream", |u| {
        u.as_str().starts_with(&world.upstream.issuer)
    })
    .await;
    user.through_idp(&world.upstream.issuer, "alice", "upstream")
        .await;
    user.wait_for_url("the consent page again", |u| u.path() == format!("/e/{id}"))
        .await;
    user.assert_shows("Connected").await;
    user.shot("connected").await;

    // The service redeems over HTTP.
    let status: Value = app.status(&app.token, &id, 5).await.json().await.unwrap();
    assert_eq!(status["status"], "completed");
    let handle = status["handle"].as_str().unwrap().to_owned();
    let grant_id = status["grant_id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.redeem(&app.token, &handle).await.status(),
        StatusCode::OK
    );

    // Alice sees the connection, on a desktop and on a phone.
    user.click("a[href='/connections']").await;
    user.wait_for_url("Your connections", |u| u.path() == "/connections")
        .await;
    user.assert_shows("Service A").await;
    user.assert_shows("Acme Cloud").await;
    user.assert_shows("Revoke").await;
    user.assert_shows("api:read").await;
    user.shot("connections").await;
    user.resize(390, 844).await;
    user.shot("connections-phone").await;
    user.close().await;

    // An admin, on another machine, signs in and finds the grant by user.
    let mut admin = Chrome::start("admin").await;
    admin.goto(&app.url("/admin")).await;
    admin
        .wait_for_url("sign-in", |u| u.path() == "/login")
        .await;
    admin.click("a[href^='/login/oidc']").await;
    admin
        .wait_for_url("the IdP", |u| u.as_str().starts_with(&world.idp.issuer))
        .await;
    admin.through_idp(&world.idp.issuer, "root", "idp").await;
    admin
        .wait_for_url("the console", |u| u.path() == "/admin")
        .await;
    admin.assert_shows("administrator").await;
    admin.assert_shows("active grants").await;
    admin.shot("overview").await;

    admin.click(".tabs a[href='/admin/grants']").await;
    admin
        .wait_for_url("grants", |u| u.path() == "/admin/grants")
        .await;
    admin.type_into("#f-user", "alice").await;
    admin.click_button("Apply filters").await;
    admin
        .wait_for_url("filtered grants", |u| {
            u.query().unwrap_or("").contains("user=alice")
        })
        .await;
    admin.assert_shows("Acme Cloud").await;
    admin.shot("grants-of-alice").await;
    admin
        .click(&format!("a[href='/admin/grants/{grant_id}']"))
        .await;
    admin
        .wait_for_url("the grant", |u| {
            u.path() == format!("/admin/grants/{grant_id}")
        })
        .await;
    admin.assert_shows("grant_redeemed").await;
    admin.shot("grant").await;

    admin
        .click(&format!("a[href='/admin/grants/{grant_id}/revoke']"))
        .await;
    admin
        .wait_for_url("the confirmation", |u| u.path().ends_with("/revoke"))
        .await;
    admin.assert_shows("Revoke this grant?").await;
    admin.shot("confirm-revoke").await;
    admin.click_button("Revoke grant").await;
    admin
        .wait_for_url("the grant again", |u| {
            u.path() == format!("/admin/grants/{grant_id}")
        })
        .await;
    admin
        .assert_shows("Revoked the Acme Cloud grant of alice for Service A.")
        .await;
    admin.shot("revoked").await;

    assert_problem(
        app.redeem(&app.token, &handle).await,
        StatusCode::GONE,
        "grant_revoked",
    )
    .await;

    admin.click(".tabs a[href='/admin/audit']").await;
    admin
        .wait_for_url("the audit log", |u| u.path() == "/admin/audit")
        .await;
    admin.assert_shows("grant_revoked").await;
    admin.shot("audit").await;
    admin.close().await;
}
