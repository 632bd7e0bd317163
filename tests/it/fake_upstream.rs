//! The fake upstream authorization server (`common::fake_upstream`) driven by hand, without
//! a broker: every provider fixture answers a well-behaved client as the provider documents,
//! and a client that gets a detail wrong leaves a violation behind.

use std::panic::AssertUnwindSafe;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::StatusCode;
use reqwest::header::AUTHORIZATION;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::common::fake_upstream::{FakeUpstream, fixture_names};

const CLIENT_ID: &str = "broker-client";
/// Characters that Basic client credentials must form-urlencode (RFC 6749 §2.3.1).
const CLIENT_SECRET: &str = "s3cret:+/= &";
const REDIRECT_URI: &str = "http://127.0.0.1:9/oauth/callback";
const VERIFIER: &str = "a-pkce-code-verifier-of-more-than-forty-three-characters";

/// A hand-written client of one fake, doing what the fixture says a broker must do.
struct Client {
    fake: FakeUpstream,
    http: reqwest::Client,
}

/// An answer: status and body (JSON, or `null` when empty).
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
}

impl Client {
    async fn start(preset: &str) -> Client {
        let fake = FakeUpstream::start(preset, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI).await;
        assert!(fake.base.starts_with("http://127.0.0.1:"), "{}", fake.base);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Client { fake, http }
    }

    fn f(&self, pointer: &str) -> &Value {
        self.fake.fixture.pointer(pointer).unwrap_or(&Value::Null)
    }

    fn s(&self, pointer: &str) -> &str {
        self.f(pointer).as_str().unwrap_or_default()
    }

    /// The authorize parameters a correct broker sends.
    fn authorize_params(&self) -> Vec<(String, String)> {
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER));
        let mut params: Vec<(String, String)> = [
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT_URI),
            ("response_type", "code"),
            ("state", "the-state"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (name, value) in self.f("/authorize/required_params").as_object().unwrap() {
            if name != "response_type" {
                params.push((name.clone(), value.as_str().unwrap().to_owned()));
            }
        }
        if let Some(param) = self.f("/authorize/scope_param").as_str() {
            let mut scopes: Vec<&str> =
                ["/scenario/requested_scopes", "/authorize/required_scopes"]
                    .iter()
                    .flat_map(|p| self.f(p).as_array().unwrap())
                    .map(|s| s.as_str().unwrap())
                    .collect();
            scopes.sort();
            scopes.dedup();
            let separator = self.s("/authorize/scope_separator");
            params.push((param.to_owned(), scopes.join(separator)));
        }
        params
    }

    /// GETs authorize; returns the query of the redirect back.
    async fn authorize_with(&self, params: &[(String, String)]) -> Map<String, Value> {
        let r = self
            .http
            .get(self.fake.authorization_endpoint())
            .query(params)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FOUND);
        let location = r.headers()["location"].to_str().unwrap();
        assert!(location.starts_with(REDIRECT_URI), "{location}");
        let url = reqwest::Url::parse(location).unwrap();
        url.query_pairs()
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect()
    }

    /// A correct authorize; returns the code.
    async fn authorize(&self) -> String {
        let back = self.authorize_with(&self.authorize_params()).await;
        assert_eq!(back["state"], "the-state", "{back:?}");
        back["code"].as_str().expect("a code").to_owned()
    }

    /// POSTs the token endpoint with client authentication `auth` (`basic` or `post`).
    async fn token_with(&self, fields: &[(&str, &str)], auth: &str) -> Answer {
        let mut fields: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut request = self.http.post(self.fake.token_endpoint());
        if auth == "basic" {
            request = request.header(AUTHORIZATION, basic());
        } else {
            fields.push(("client_id".into(), CLIENT_ID.into()));
            fields.push(("client_secret".into(), CLIENT_SECRET.into()));
        }
        request = self.with_headers(request, "/token/request_headers");
        request = match self.s("/token/request_format") {
            "json" => {
                let object: Map<String, Value> =
                    fields.into_iter().map(|(k, v)| (k, v.into())).collect();
                request.json(&object)
            }
            _ => request.form(&fields),
        };
        answer(request).await
    }

    async fn token(&self, fields: &[(&str, &str)]) -> Answer {
        let auth = self.s("/token/auth/0").to_owned();
        self.token_with(fields, &auth).await
    }

    async fn exchange(&self, code: &str) -> Answer {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", VERIFIER),
        ])
        .await
    }

    async fn refresh(&self, refresh_token: &str) -> Answer {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    /// The fixture's headers but Authorization and Content-Type (set by auth and format).
    fn with_headers(
        &self,
        mut request: reqwest::RequestBuilder,
        pointer: &str,
    ) -> reqwest::RequestBuilder {
        for (name, value) in self.f(pointer).as_object().into_iter().flatten() {
            if name != "content-type" && name != "authorization" {
                request = request.header(name.as_str(), value.as_str().unwrap());
            }
        }
        request
    }

    /// Revokes as the fixture says; returns the answer.
    async fn revoke(&self, access: &str, refresh: Option<&str>) -> Answer {
        let token = match self.s("/revoke/token") {
            "access" => access,
            "refresh" => refresh.unwrap(),
            _ => refresh.unwrap_or(access),
        };
        let url = self
            .fake
            .revocation_url()
            .unwrap()
            .replace("{client_id}", CLIENT_ID)
            .replace("{token}", token);
        let method = reqwest::Method::from_bytes(self.s("/revoke/method").as_bytes()).unwrap();
        let mut request = self.http.request(method, url);
        let mut fields: Map<String, Value> = Map::new();
        match self.s("/revoke/auth") {
            "basic" => request = request.header(AUTHORIZATION, basic()),
            "bearer_token" => request = request.bearer_auth(access),
            "post" => {
                fields.insert("client_id".into(), CLIENT_ID.into());
                fields.insert("client_secret".into(), CLIENT_SECRET.into());
            }
            _ => {}
        }
        request = self.with_headers(request, "/revoke/headers");
        for (member, value) in self.f("/revoke/body").as_object().into_iter().flatten() {
            let value = match value.as_str().unwrap() {
                "{access_token}" => access,
                "{refresh_token}" => token,
                literal => literal,
            };
            fields.insert(member.clone(), value.into());
        }
        request = match self.f("/revoke/body_format").as_str() {
            Some("json") => request.json(&fields),
            Some("form") => request.form(&fields),
            _ => request,
        };
        answer(request).await
    }
}

fn basic() -> String {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let credentials = format!("{}:{}", encode(CLIENT_ID), encode(CLIENT_SECRET));
    format!("Basic {}", STANDARD.encode(credentials))
}

async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    };
    Answer { status, body }
}

/// The object at a dotted path (`""` = the value itself).
fn at<'a>(value: &'a Value, path: &str) -> &'a Value {
    path.split('.')
        .filter(|m| !m.is_empty())
        .fold(value, |v, m| &v[m])
}

/// The answer is the fixture's `{status, body}` with fresh tokens at `path`; returns them.
/// A token that is not fresh is allowed only as `echo` (a refresh token kept as it was).
fn fresh_tokens(
    got: &Answer,
    spec: &Value,
    path: &str,
    echo: Option<&str>,
) -> (String, Option<String>) {
    assert_eq!(got.status, spec["status"], "{got:?}");
    let want = &spec["body"];
    let mut masked = got.body.clone();
    let mut tokens = Vec::new();
    for member in ["access_token", "refresh_token"] {
        let Some(fixture) = at(want, path)[member].as_str() else {
            tokens.push(None);
            continue;
        };
        let token = at(&got.body, path)[member].as_str().unwrap().to_owned();
        let fresh = token.starts_with(&format!("{fixture}.")) || Some(token.as_str()) == echo;
        assert!(
            fresh,
            "{member} {token:?} is not a fresh one of {fixture:?}"
        );
        let mut object = &mut masked;
        for m in path.split('.').filter(|m| !m.is_empty()) {
            object = &mut object[m];
        }
        object[member] = fixture.into();
        tokens.push(Some(token));
    }
    assert_eq!(&masked, want, "the answer is the fixture's but its tokens");
    let access = tokens[0].clone().expect("an access token");
    (access, tokens[1].clone())
}

/// The answer is the fixture's error at `pointer`, else 400 with `fallback`.
fn is_error(got: &Answer, spec: &Value, fallback: &str) {
    if spec.is_null() {
        assert_eq!((got.status, &got.body["error"]), (400, &json!(fallback)));
    } else {
        assert_eq!(got.status, spec["status"], "{got:?}");
        assert_eq!(got.body, spec["body"]);
    }
}

/// The violations `assert_clean` panics with ("" when clean).
fn violations(fake: &FakeUpstream) -> String {
    match std::panic::catch_unwind(AssertUnwindSafe(|| fake.assert_clean())) {
        Ok(()) => String::new(),
        Err(e) => e.downcast_ref::<String>().cloned().unwrap(),
    }
}

/// Code exchange (and a reused code), refresh (rotating or not), dead refresh tokens.
async fn plays_tokens(c: &Client) {
    let code = c.authorize().await;
    let success = c.f("/token/success");
    let path = c.s("/token/token_path");
    let got = c.exchange(&code).await;
    let (access, refresh) = fresh_tokens(&got, success, path, None);
    assert_eq!(c.fake.live_access_tokens(), vec![access.clone()]);
    is_error(
        &c.exchange(&code).await,
        c.f("/token/bad_code"),
        "invalid_grant",
    );

    let refresh_spec = c.f("/token/refresh_success");
    let Some(mut refresh) = refresh.filter(|_| !refresh_spec.is_null()) else {
        return;
    };
    let path = c.s("/token/refresh_token_path");
    let rotates = c.f("/token/refresh_rotates") == true;
    let (second, next) = fresh_tokens(
        &c.refresh(&refresh).await,
        refresh_spec,
        path,
        Some(&refresh),
    );
    assert_eq!(
        c.fake.live_access_tokens(),
        vec![second],
        "the first access token is replaced"
    );
    let dead = c.f("/token/dead_refresh");
    match next {
        Some(next) if rotates => {
            assert_ne!(next, refresh);
            is_error(&c.refresh(&refresh).await, dead, "invalid_grant");
            refresh = next;
        }
        _ => {
            assert!(!rotates);
            fresh_tokens(
                &c.refresh(&refresh).await,
                refresh_spec,
                path,
                Some(&refresh),
            );
        }
    }
    c.fake.kill_refresh_tokens();
    is_error(&c.refresh(&refresh).await, dead, "invalid_grant");
}

/// Revocation of a fresh grant, then a repeat.
async fn plays_revocation(c: &Client) {
    let Some(url) = c.fake.revocation_url() else {
        assert!(c.f("/revoke").is_null());
        return;
    };
    assert!(url.starts_with(&c.fake.base), "{url}");
    let got = c.exchange(&c.authorize().await).await;
    let path = c.s("/token/token_path");
    let (access, refresh) = fresh_tokens(&got, c.f("/token/success"), path, None);
    let done = c.revoke(&access, refresh.as_deref()).await;
    assert_eq!(done.status, *c.f("/revoke/done_statuses/0"), "{done:?}");
    match c.f("/revoke/done_when") {
        Value::Null if done.status == 204 => assert!(done.body.is_null()),
        Value::Null => assert_eq!(done.body, json!({})),
        done_when => assert_eq!(&done.body, done_when),
    }
    if c.s("/revoke/token") == "refresh" {
        assert!(
            c.fake.live_access_tokens().contains(&access),
            "only the refresh token dies"
        );
    } else {
        assert!(!c.fake.live_access_tokens().contains(&access));
    }
    if let (Some(refresh), false) = (&refresh, c.f("/token/refresh_success").is_null()) {
        is_error(
            &c.refresh(refresh).await,
            c.f("/token/dead_refresh"),
            "invalid_grant",
        );
    }
    let again = c.revoke(&access, refresh.as_deref()).await;
    match c.f("/revoke/repeat") {
        Value::Null => assert!(matches!(again.status, 200 | 400), "{again:?}"),
        repeat => {
            assert_eq!(again.status, repeat["status"], "{again:?}");
            assert_eq!(again.body, repeat["body"]);
        }
    }
}

#[tokio::test]
async fn fake_upstream_plays_every_provider_fixture() {
    for preset in fixture_names() {
        let c = Client::start(&preset).await;
        plays_tokens(&c).await;
        plays_revocation(&c).await;
        let calls = c.fake.calls();
        let authorize = reqwest::Url::parse(&c.fake.authorization_endpoint()).unwrap();
        assert_eq!(calls[0], format!("GET {}", authorize.path()), "{preset}");
        let token = reqwest::Url::parse(&c.fake.token_endpoint()).unwrap();
        assert!(
            calls.contains(&format!("POST {}", token.path())),
            "{preset}: {calls:?}"
        );
        c.fake.assert_clean();
    }
}

#[tokio::test]
async fn fake_upstream_paths_come_from_the_fixture() {
    let entra = Client::start("entra").await;
    let authorize = entra.fake.authorization_endpoint();
    assert_eq!(
        authorize,
        format!(
            "{}/contoso.onmicrosoft.com/oauth2/v2.0/authorize",
            entra.fake.base
        )
    );
    let hubspot = Client::start("hubspot").await;
    let revoke = hubspot.fake.revocation_url().unwrap();
    assert_eq!(
        revoke,
        format!("{}/oauth/v1/refresh-tokens/{{token}}", hubspot.fake.base)
    );
    let github = Client::start("github").await;
    let revoke = github.fake.revocation_url().unwrap();
    assert_eq!(
        revoke,
        format!("{}/applications/{{client_id}}/grant", github.fake.base)
    );
    let salesforce = Client::start("salesforce").await;
    let token = salesforce.fake.token_endpoint();
    assert_eq!(
        token,
        format!("{}/services/oauth2/token", salesforce.fake.base)
    );
}

#[tokio::test]
async fn fake_upstream_reports_client_auth_in_the_wrong_place() {
    // Dropbox defaults to Basic: credentials in the body are refused.
    let c = Client::start("dropbox").await;
    let code = c.authorize().await;
    let got = c
        .token_with(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", VERIFIER),
            ],
            "post",
        )
        .await;
    assert_eq!(
        (got.status, &got.body["error"]),
        (400, &json!("invalid_request"))
    );
    assert!(
        got.body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("fake dropbox: ")
    );
    let found = violations(&c.fake);
    assert!(found.contains("no Authorization: Basic"), "{found}");
    assert!(found.contains("client_secret in the body"), "{found}");
    assert!(c.fake.live_access_tokens().is_empty());
}

#[tokio::test]
async fn fake_upstream_reports_the_wrong_scope_separator() {
    // Linear splits on commas.
    let c = Client::start("linear").await;
    let mut params = c.authorize_params();
    let scope = params.iter_mut().find(|(k, _)| k == "scope").unwrap();
    scope.1 = "read write".into();
    let back = c.authorize_with(&params).await;
    assert_eq!(back["error"], "invalid_request", "{back:?}");
    assert!(!back.contains_key("code"));
    let found = violations(&c.fake);
    assert!(found.contains("wrong separator"), "{found}");
}

#[tokio::test]
async fn fake_upstream_reports_a_missing_required_authorize_param() {
    // Atlassian needs audience=api.atlassian.com.
    let c = Client::start("atlassian").await;
    let params: Vec<_> = c
        .authorize_params()
        .into_iter()
        .filter(|(k, _)| k != "audience")
        .collect();
    let back = c.authorize_with(&params).await;
    assert_eq!(back["error"], "invalid_request", "{back:?}");
    let found = violations(&c.fake);
    assert!(found.contains("no `audience`"), "{found}");
}

#[tokio::test]
async fn fake_upstream_reports_more_mistakes() {
    // Slack user scopes go in user_scope, never in scope.
    let slack = Client::start("slack").await;
    let mut params = slack.authorize_params();
    params.retain(|(k, _)| k != "user_scope");
    params.push(("scope".into(), "search:read,channels:history".into()));
    let back = slack.authorize_with(&params).await;
    assert_eq!(back["error"], "invalid_request");
    let found = violations(&slack.fake);
    assert!(found.contains("takes `user_scope`"), "{found}");
    assert!(found.contains("no `user_scope`"), "{found}");

    // A wrong PKCE verifier; then GitHub OAuth Apps have no refresh to ask for.
    let github = Client::start("github").await;
    let code = github.authorize().await;
    let got = github
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &VERIFIER.replace('a', "b")),
        ])
        .await;
    assert_eq!(got.status, 400);
    let got = github.refresh("gho_anything").await;
    assert_eq!(
        (got.status, &got.body["error"]),
        (400, &json!("unsupported_grant_type"))
    );
    let found = violations(&github.fake);
    assert!(
        found.contains("does not hash to the code_challenge"),
        "{found}"
    );
    assert!(found.contains("issues no refresh tokens"), "{found}");

    // Notion revokes with Basic credentials and Notion-Version; HubSpot takes no secrets.
    let notion = Client::start("notion").await;
    let r = notion
        .http
        .post(notion.fake.revocation_url().unwrap())
        .json(&json!({"token": "ntn_unknown"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let found = violations(&notion.fake);
    assert!(found.contains("no Authorization: Basic"), "{found}");
    assert!(found.contains("header notion-version"), "{found}");
    let atlassian = Client::start("atlassian").await;
    let r = atlassian
        .http
        .post(format!("{}/oauth/revoke", atlassian.fake.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(violations(&atlassian.fake).contains("no such endpoint"));
}
