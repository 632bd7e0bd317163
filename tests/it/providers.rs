//! Every compiled-in preset, end to end, against a loopback fake of that provider played
//! from its fixture (`tests/fixtures/providers/*.json`: what the provider documents, with
//! sources and dates). The broker is configured as an operator would (`preset`, client id
//! and secret, the tenant or domain) plus only the endpoints, pointed at the fake. For each
//! one: connect through the consent page; a second request for the same scopes is `ready`
//! with no user; refresh (on expiry and on `force_refresh`); a dead refresh token answers
//! `reauthorization_required` with a link that works; revocation is recorded as what
//! happened at the fake; metadata reaches the redemption. The fake checks everything the
//! broker sends (client authentication, scope syntax, required parameters, PKCE,
//! `resource`) and the test ends with its verdict.

use std::collections::BTreeMap;
use std::time::Duration;

use consent_broker::config::{OAuth2Config, ProviderConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::fake_upstream::{FakeUpstream, fixture_names};
use crate::common::{Browser, TestApp, assert_problem, logs, test_config};

const PRESETS: [&str; 12] = [
    "atlassian",
    "dropbox",
    "entra",
    "github",
    "github-app",
    "gitlab",
    "google",
    "hubspot",
    "linear",
    "notion",
    "salesforce",
    "slack",
];
const CLIENT_ID: &str = "broker-client";
/// Characters that must be form-encoded in HTTP Basic (RFC 6749 §2.3.1).
const CLIENT_SECRET: &str = "s3cret:+/= &";

#[test]
fn every_preset_has_a_fixture_and_every_fixture_a_preset() {
    let fixtures = fixture_names();
    assert_eq!(fixtures, PRESETS);
    let listed: Vec<String> = consent_broker::config::presets::all()
        .into_iter()
        .map(|p| p.key.to_owned())
        .collect();
    assert_eq!(listed, PRESETS);
}

/// A broker whose only OAuth provider is `preset`, at a fake of it.
struct World {
    app: TestApp,
    fake: FakeUpstream,
    scopes: Vec<String>,
}

impl World {
    async fn start(preset: &str) -> World {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let fake = FakeUpstream::start(
            preset,
            CLIENT_ID,
            CLIENT_SECRET,
            &format!("{base}/oauth/callback"),
        )
        .await;
        let f = &fake.fixture;
        let scopes: Vec<String> = f["scenario"]["requested_scopes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect();
        let variable = |name: &str| f["variables"][name]["example"].as_str().map(str::to_owned);
        let mut t = test_config();
        t.config
            .providers
            .push(ProviderConfig::Oauth2(OAuth2Config {
                id: preset.into(),
                name: f["display_name"].as_str().unwrap().into(),
                preset: Some(preset.into()),
                tenant: variable("tenant"),
                domain: variable("domain"),
                client_id: CLIENT_ID.into(),
                client_secret: Some(CLIENT_SECRET.to_owned().into()),
                authorization_endpoint: Some(fake.authorization_endpoint().parse().unwrap()),
                token_endpoint: Some(fake.token_endpoint().parse().unwrap()),
                revocation_endpoint: fake.revocation_url().map(|u| u.parse().unwrap()),
                scopes: scopes
                    .iter()
                    .map(|s| (s.clone(), format!("Use {s}")))
                    .collect(),
                ..OAuth2Config::default()
            }));
        t.config.services[0]
            .allow
            .insert(preset.into(), scopes.clone());
        let app = TestApp::spawn_config(t, true, Some(listener)).await;
        World { app, fake, scopes }
    }

    fn scopes(&self) -> Vec<&str> {
        self.scopes.iter().map(String::as_str).collect()
    }

    /// Runs the consent of `created` as `subject`: consent page, Connect, the fake's
    /// authorize, the callback. Returns the elicitation's status JSON.
    async fn consent(&self, browser: &Browser, created: &Value, subject: &str) -> Value {
        let id = created["id"].as_str().unwrap();
        let consent = browser
            .open_as(created["url"].as_str().unwrap(), subject)
            .await;
        assert_eq!(consent.status, StatusCode::OK, "{}", consent.html);
        let done = browser
            .submit(&format!("/e/{id}/approve"), &[("csrf", &consent.csrf())])
            .await;
        if !done.html.contains("Connected") {
            self.fake.assert_clean(); // names what the broker sent wrong, if anything
        }
        done.assert_shows("Connected");
        self.app.elicitation(id).await
    }

    async fn connect(&self, subject: &str) -> Value {
        let created = self
            .app
            .create_pending(subject, &self.preset(), &self.scopes())
            .await;
        let status = self.consent(&self.app.browser(), &created, subject).await;
        assert_eq!(status["status"], "completed", "{status}");
        status
    }

    fn preset(&self) -> String {
        self.fake.fixture["preset"].as_str().unwrap().to_owned()
    }

    async fn redeem(&self, handle: &str, force_refresh: bool) -> reqwest::Response {
        self.app
            .post_json(
                &self.app.token,
                "/v1/redeem",
                json!({"handle": handle, "force_refresh": force_refresh}),
            )
            .await
    }

    async fn access_token(&self, handle: &str, force_refresh: bool) -> String {
        let r = self.redeem(handle, force_refresh).await;
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        body["credential"]["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// The metadata the fixture's code exchange answer holds at the fixture's paths.
fn expected_metadata(fixture: &Value) -> BTreeMap<String, Value> {
    let answer = &fixture["token"]["success"]["body"];
    fixture["metadata"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .filter(|p| !p.contains('#'))
        .filter_map(|path| {
            let value = path.split('.').try_fold(answer, |v, k| v.get(k))?;
            (value.is_string() || value.is_number() || value.is_boolean())
                .then(|| (path.to_owned(), value.clone()))
        })
        .collect()
}

#[tokio::test]
async fn every_preset_connects_refreshes_reauthorizes_and_revokes_against_its_fake() {
    logs::capture();
    let mut secrets = vec![CLIENT_SECRET.to_owned()];
    for preset in PRESETS {
        secrets.extend(one_preset(preset).await);
    }
    let text = logs::text();
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "{secret} reached the logs");
    }
}

/// Runs one preset's scenario; returns every token the broker held, for the log check.
async fn one_preset(preset: &str) -> Vec<String> {
    let world = World::start(preset).await;
    let (app, fake) = (&world.app, &world.fake);
    let f = fake.fixture.clone();
    let subject = format!("ada-{preset}@example.com");

    // Connect through the consent page.
    let status = world.connect(&subject).await;
    let handle = status["handle"].as_str().unwrap().to_owned();
    let redeemed: Value = world.redeem(&handle, false).await.json().await.unwrap();
    let first = redeemed["credential"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        fake.live_access_tokens().contains(&first),
        "{preset}: the redeemed token is the one the provider issued"
    );
    assert_eq!(redeemed["credential"]["token_type"], "Bearer", "{preset}");
    assert_eq!(
        redeemed["metadata"],
        json!(expected_metadata(&f)),
        "{preset}: metadata reaches the redemption"
    );
    let token_path = f["token"]["token_path"].as_str().unwrap_or_default();
    let tokens = token_path
        .split('.')
        .filter(|p| !p.is_empty())
        .fold(&f["token"]["success"]["body"], |v, k| &v[k]);
    if let Some(refresh) = tokens["refresh_token"].as_str() {
        assert!(
            !redeemed.to_string().contains(refresh),
            "{preset}: no refresh token leaves the broker"
        );
    }

    // The same scopes again: ready, no user, the same grant.
    let again: Value = app
        .create(
            &app.token,
            json!({"subject": subject, "provider": preset, "scopes": world.scopes()}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["status"], "ready", "{preset}: asked again: {again}");
    assert_eq!(again["handle"], handle.as_str(), "{preset}");

    let refreshes = !f["token"]["refresh_success"].is_null();
    let expires_in = tokens["expires_in"]
        .as_u64()
        .or(f["token"]["default_lifetime"].as_u64());
    let mut current = first.clone();
    let mut held = Vec::new();
    if refreshes {
        // On expiry (when the provider says when), then when the service asks.
        if let Some(seconds) = expires_in {
            app.broker.clock().advance(Duration::from_secs(seconds));
            let renewed = world.access_token(&handle, false).await;
            assert_ne!(renewed, current, "{preset}: refreshed on expiry");
            assert!(fake.live_access_tokens().contains(&renewed), "{preset}");
            current = renewed;
        }
        app.broker.clock().advance(Duration::from_secs(31));
        let forced = world.access_token(&handle, true).await;
        assert_ne!(forced, current, "{preset}: force_refresh refreshes");
        assert_eq!(
            world.access_token(&handle, true).await,
            forced,
            "{preset}: a second force within 30 s returns the tokens just obtained"
        );

        // A dead refresh token: the user is asked again through a link that works.
        fake.kill_refresh_tokens();
        app.broker.clock().advance(Duration::from_secs(31));
        let problem = assert_problem(
            world.redeem(&handle, true).await,
            StatusCode::CONFLICT,
            "reauthorization_required",
        )
        .await;
        let link = &problem["elicitation"];
        assert_eq!(link["status"], "pending", "{preset}");
        let status = world.consent(&app.browser(), link, &subject).await;
        assert_eq!(status["status"], "completed", "{preset}: {status}");
        let new_handle = status["handle"].as_str().unwrap().to_owned();
        let reconnected = world.access_token(&new_handle, false).await;
        assert_ne!(
            reconnected, forced,
            "{preset}: new tokens after re-authorization"
        );
        assert!(fake.live_access_tokens().contains(&reconnected), "{preset}");
        revoke(&world, &new_handle, &reconnected).await;
        held.extend([forced, reconnected]);
    } else {
        // Nothing to refresh with: the tokens are what they are.
        app.broker.clock().advance(Duration::from_secs(31));
        assert_eq!(world.access_token(&handle, true).await, current, "{preset}");
        revoke(&world, &handle, &current).await;
    }
    held.extend([first, current]);
    held.extend(fake.issued_tokens());
    let audit = serde_json::to_string(&app.broker.raw_stores().audit.recent(10_000).await.unwrap())
        .unwrap();
    for token in &held {
        assert!(
            !audit.contains(token.as_str()),
            "{preset}: a token reached the audit trail"
        );
    }
    fake.assert_clean();
    held
}

/// Revokes through the API and checks the outcome recorded against the fake's state.
async fn revoke(world: &World, handle: &str, access_token: &str) {
    let (app, fake) = (&world.app, &world.fake);
    let preset = world.preset();
    let revoked: Value = app
        .post_json(&app.token, "/v1/revoke", json!({"handle": handle}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(revoked["status"], "revoked", "{preset}");
    fake.assert_clean(); // the revocation request was the provider's
    let revoke = &fake.fixture["revoke"];
    let still_live = fake.live_access_tokens().contains(&access_token.to_owned());
    if revoke.is_null() {
        assert_eq!(revoked["upstream_revocation"], "not_supported", "{preset}");
        assert!(still_live, "{preset}: nothing was revoked upstream");
    } else {
        assert_eq!(revoked["upstream_revocation"], "revoked", "{preset}");
        // HubSpot deletes the refresh token only; its access tokens run out by themselves.
        let refresh_only = revoke["token"] == "refresh";
        assert_eq!(still_live, refresh_only, "{preset}: {revoked}");
    }
    assert_problem(
        app.redeem(&app.token, handle).await,
        StatusCode::GONE,
        "grant_revoked",
    )
    .await;
}
