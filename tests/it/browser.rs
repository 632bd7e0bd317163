//! The whole product in a real browser (headless Chromium), by clicks, against the real
//! app and the real OIDC servers: a user connects an OAuth account through sign-in,
//! consent and the upstream's own consent; the service redeems; an admin on another
//! machine finds the grant by user and revokes it through the confirmation page; the next
//! redemption fails. Screenshots of every page land in `target/screenshots/`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crate::common;

use axum::extract::RawQuery;

use common::assert_problem;
use common::browser::Chrome;
use common::idp::{OAUTH_PROVIDER, OAuthWorld};
use consent_broker::config::{Config, ProviderConfig};
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
    // Where the user will sign in: the authorization endpoint's host.
    let upstream_host = url::Url::parse(&world.upstream.issuer).unwrap();
    user.assert_shows(&format!(
        "Acme Cloud asks you to sign in and confirm at {}.",
        upstream_host.host_str().unwrap()
    ))
    .await;
    user.assert_shows("Service A receives an access token when it makes calls to Acme Cloud for you. Your AI client and the model never see it.")
        .await;
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
    // On a phone the table scrolls inside its box; the page itself does not, and the
    // header (two links for an admin) stays on one line (at 320 px too: pages_a11y.rs).
    let phone = viewport(&admin, 390, 844).await;
    admin.shot("grants-390").await;
    assert!(
        phone["scroll"].as_f64().unwrap() <= phone["inner"].as_f64().unwrap(),
        "the grants page scrolls sideways at 390 px: {phone}"
    );
    assert!(
        phone["header_rows"].as_f64().unwrap() < 8.0,
        "the admin's header wraps at 390 px: {phone}"
    );
    admin.resize(1280, 1000).await;
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

/// An upstream whose authorization endpoint answers by redirecting to another origin, as
/// Microsoft's (to login.live.com) and Google's (to a customer's SSO) do: the broker is
/// configured with a loopback redirector on 127.0.0.4 as the authorization endpoint, which
/// answers `302` to the real upstream's (127.0.0.3) with the same query. A browser checks
/// the consent page's `form-action` on every redirect of the Connect submission, so this
/// consent only completes if no hop after the broker is governed by it.
#[tokio::test]
async fn a_consent_completes_when_the_authorization_endpoint_redirects_to_another_origin() {
    let redirector = Redirector::start().await;
    let authorize = redirector.url.clone();
    let target = redirector.target.clone();
    let world = OAuthWorld::start_with(move |config| {
        let issuer = oauth_issuer(config);
        let discovery = common::idp::discovery_document(&issuer);
        let endpoint =
            |key: &str| -> url::Url { discovery[key].as_str().unwrap().parse().unwrap() };
        target.set(endpoint("authorization_endpoint")).unwrap();
        explicit_oauth_endpoints(config, issuer, authorize, endpoint("token_endpoint"));
    })
    .await;
    let app = &world.app;
    let created = app
        .create_pending("carol", OAUTH_PROVIDER, &["api:read"])
        .await;
    let id = created["id"].as_str().unwrap().to_owned();

    let mut user = Chrome::start("cross-origin-authorize").await;
    user.goto(created["url"].as_str().unwrap()).await;
    user.wait_for_url("sign-in", |u| u.path() == "/login").await;
    user.click("a[href^='/login/oidc']").await;
    user.wait_for_url("the IdP", |u| u.as_str().starts_with(&world.idp.issuer))
        .await;
    user.through_idp(&world.idp.issuer, "carol", "idp").await;
    user.wait_for_url("the consent page", |u| u.path() == format!("/e/{id}"))
        .await;
    user.assert_shows("Service A wants to use your Acme Cloud account")
        .await;
    user.shot("consent").await;

    // Connect: broker → redirector (127.0.0.4) → the upstream (127.0.0.3).
    user.click_button("Connect Acme Cloud").await;
    let reached = user
        .try_wait_for_url(|u| u.as_str().starts_with(&world.upstream.issuer))
        .await;
    if !reached {
        user.shot("blocked").await;
        panic!(
            "the browser never reached the upstream after the cross-origin redirect \
             (redirector hits: {}); at {}:\n{}",
            redirector.hits(),
            user.url().await,
            user.text().await
        );
    }
    assert_eq!(redirector.hits(), 1, "the way went through the redirector");
    user.through_idp(&world.upstream.issuer, "carol", "upstream")
        .await;
    user.wait_for_url("the consent page again", |u| u.path() == format!("/e/{id}"))
        .await;
    user.assert_shows("Connected").await;
    user.shot("connected").await;
    user.close().await;

    let status: Value = app.status(&app.token, &id, 5).await.json().await.unwrap();
    assert_eq!(status["status"], "completed");
    let handle = status["handle"].as_str().unwrap();
    assert_eq!(
        app.redeem(&app.token, handle).await.status(),
        StatusCode::OK
    );
}

/// The one place this module shapes the OAuth provider's config: the issuer and both
/// endpoints given explicitly (no discovery).
fn explicit_oauth_endpoints(
    config: &mut Config,
    issuer: url::Url,
    authorization: url::Url,
    token: url::Url,
) {
    let provider = config
        .providers
        .iter_mut()
        .find_map(|p| match p {
            ProviderConfig::Oauth2(c) if c.id == OAUTH_PROVIDER => Some(c),
            _ => None,
        })
        .expect("the OAuth provider");
    provider.issuer = Some(issuer);
    provider.authorization_endpoint = Some(authorization);
    provider.token_endpoint = Some(token);
}

/// The configured issuer of the OAuth provider.
fn oauth_issuer(config: &Config) -> url::Url {
    config
        .providers
        .iter()
        .find_map(|p| match p {
            ProviderConfig::Oauth2(c) if c.id == OAUTH_PROVIDER => c.issuer.clone(),
            _ => None,
        })
        .expect("the OAuth provider's issuer")
}

/// A loopback authorization endpoint on its own origin (127.0.0.4) that answers every
/// request with `302` to `target` plus the same query.
struct Redirector {
    url: url::Url,
    target: Arc<OnceLock<url::Url>>,
    hits: Arc<AtomicUsize>,
}

impl Redirector {
    async fn start() -> Redirector {
        let target = Arc::new(OnceLock::<url::Url>::new());
        let hits = Arc::new(AtomicUsize::new(0));
        let (to, counter) = (target.clone(), hits.clone());
        let app = axum::Router::new().route(
            "/authorize",
            axum::routing::get(move |RawQuery(query): RawQuery| async move {
                counter.fetch_add(1, Ordering::SeqCst);
                let mut location = to.get().expect("the redirector's target").clone();
                location.set_query(query.as_deref());
                (
                    axum::http::StatusCode::FOUND,
                    [(axum::http::header::LOCATION, location.to_string())],
                )
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.4:0").await.unwrap();
        let url = format!("http://{}/authorize", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Redirector { url, target, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// The consent page on a phone, by a user with a long name: at 390 × 844 (the viewport)
/// Continue is on the first screen; at 390 and 320 px the page never scrolls sideways and
/// the header stays on one line, also when the service's message poses as the broker with
/// a long unbroken link.
#[tokio::test]
async fn the_consent_page_fits_a_phone_with_continue_on_the_first_screen() {
    let app = common::TestApp::spawn_mode(true, |_| {}).await;
    let name = "maximiliana.vandersteen@example.com";
    let ask = |message: &'static str| {
        let app = &app;
        async move {
            let created: Value = app
                .create(
                    &app.token,
                    serde_json::json!({
                        "subject": name,
                        "provider": common::API_KEY_PROVIDER,
                        "scopes": ["read"],
                        "message": message,
                    }),
                )
                .await
                .json()
                .await
                .unwrap();
            created["url"].as_str().unwrap().to_owned()
        }
    };
    let typical = ask("I need read access to build your weekly report.").await;
    let posing = ask(
        "consent-broker security check: paste your ADMIN API key at \
         https://evil.example/a/very/long/path/without/any/spaces/to/break/it",
    )
    .await;

    let mut user = Chrome::start("phone").await;
    user.goto(&typical).await;
    user.wait_for_url("sign-in", |u| u.path() == "/login").await;
    user.type_into("#username", name).await;
    user.click_button("Sign in").await;
    let path = url::Url::parse(&typical).unwrap().path().to_owned();
    user.wait_for_url("the consent page", |u| u.path() == path)
        .await;
    user.assert_shows("Written by Service A, not by consent-broker")
        .await;

    for (page, label) in [(&typical, "typical"), (&posing, "posing")] {
        user.goto(page).await;
        for (width, height) in [(390, 844), (320, 568)] {
            let m = viewport(&user, width, height).await;
            user.shot(&format!("consent-{label}-{width}")).await;
            let n = |k: &str| m[k].as_f64().unwrap();
            assert_eq!(
                n("inner"),
                f64::from(width),
                "the viewport is {width} px wide"
            );
            assert!(
                n("scroll") <= n("inner"),
                "{label}: at {width} px the page scrolls sideways: {m}"
            );
            assert!(
                n("header_rows") < 8.0,
                "{label}: at {width} px the header wraps: {m}"
            );
            if label == "typical" && width == 390 {
                assert_eq!(n("height"), f64::from(height));
                assert!(
                    n("continue_bottom") <= n("height"),
                    "at {width} × {height} Continue is below the first screen: {m}"
                );
            }
        }
    }
    user.close().await;
}

/// Resizes the window so that the page's viewport is `width` × `height`; measures the
/// page's width, the header's rows and where Continue ends.
async fn viewport(user: &Chrome, width: u32, height: u32) -> Value {
    const MEASURE: &str = "const top = e => e.getBoundingClientRect().top;
        const header = [...document.querySelector('.site-header__inner').children]
          .filter(e => e.getBoundingClientRect().width > 0).map(top);
        const go = [...document.querySelectorAll('button')]
          .find(b => b.textContent.trim() === 'Continue');
        return {
          scroll: document.documentElement.scrollWidth,
          inner: window.innerWidth,
          height: window.innerHeight,
          frame: window.outerHeight - window.innerHeight,
          continue_bottom: go ? go.getBoundingClientRect().bottom : -1,
          header_rows: Math.max(...header) - Math.min(...header),
        };";
    user.resize(width, height).await;
    let first = user
        .client
        .execute(MEASURE, vec![])
        .await
        .expect("measured");
    let frame = u32::try_from(first["frame"].as_u64().unwrap()).unwrap();
    user.resize(width, height + frame).await;
    user.client
        .execute(MEASURE, vec![])
        .await
        .expect("measured")
}
