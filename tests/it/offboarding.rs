//! Offboarding from the IdP over HTTP, with real OAuth grants at the test authorization
//! server: SCIM deprovisioning (`/scim/v2/Users`) and Shared Signals (SETs pushed to
//! `/ssf/events`) each revoke every grant of the user there, so introspection reports the
//! tokens inactive; refusals (bad token, signature, issuer, audience, replayed `jti`) and
//! unknown users change nothing and answer as SCIM and RFC 8935 say; every action is in
//! the audit trail with the IdP client as its actor.

use crate::common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::idp::{OAuthWorld, UPSTREAM_CLIENT};
use consent_broker::config::{Config, ScimConfig, SharedSignalsConfig, SubjectFormat};
use consent_broker::identity::service_token;
use ed25519_dalek::{Signer, SigningKey};
use reqwest::StatusCode;
use serde_json::{Value, json};

const SSF_ISSUER: &str = "https://ssf.idp.test";
const AUDIENCE: &str = "https://broker.test/ssf";
const ACCOUNT_DISABLED: &str =
    "https://schemas.openid.net/secevent/risc/event-type/account-disabled";

/// The transmitter: its signing key, and its JWK Set served on 127.0.0.1.
struct Transmitter {
    key: SigningKey,
    jwks_url: String,
    _server: tokio::task::JoinHandle<()>,
}

impl Transmitter {
    async fn start() -> Transmitter {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let jwks = json!({"keys": [{
            "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": "k1",
            "x": URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes()),
        }]});
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let jwks = jwks.clone();
                async move { axum::Json(jwks) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let jwks_url = format!("http://{}/jwks", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Transmitter {
            key,
            jwks_url,
            _server: server,
        }
    }

    /// `claims` as a SET signed with `key` (EdDSA, kid `k1`).
    fn sign_with(key: &SigningKey, claims: &Value) -> String {
        let header = json!({"alg": "EdDSA", "typ": "secevent+jwt", "kid": "k1"});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = key.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }

    fn sign(&self, claims: &Value) -> String {
        Self::sign_with(&self.key, claims)
    }
}

/// A RISC `account-disabled` SET about `sub` at the sign-in IdP `idp_issuer`.
fn account_disabled(jti: &str, idp_issuer: &str, sub: &str) -> Value {
    json!({
        "iss": SSF_ISSUER,
        "aud": AUDIENCE,
        "iat": time::OffsetDateTime::now_utc().unix_timestamp(),
        "jti": jti,
        "sub_id": {"format": "iss_sub", "iss": idp_issuer, "sub": sub},
        "events": {ACCOUNT_DISABLED: {"reason": "terminated"}},
    })
}

struct Offboarding {
    world: OAuthWorld,
    scim_token: String,
    transmitter: Transmitter,
}

impl Offboarding {
    async fn start() -> Offboarding {
        Self::start_on(None).await
    }

    /// The world on the embedded store, or on the Redis at `redis_url`.
    async fn start_on(redis_url: Option<String>) -> Offboarding {
        common::logs::capture();
        let transmitter = Transmitter::start().await;
        let (scim_token, digest) = service_token::generate();
        let jwks_url = transmitter.jwks_url.clone();
        let world = OAuthWorld::start_with(move |c: &mut Config| {
            let idp_issuer = c.identity.oidc.as_ref().unwrap().issuer.clone();
            c.scim = Some(ScimConfig {
                token_sha256: digest,
                client_name: "okta".into(),
            });
            c.shared_signals = Some(SharedSignalsConfig {
                issuer: SSF_ISSUER.into(),
                jwks_url: jwks_url.parse().unwrap(),
                audience: AUDIENCE.into(),
                subject_format: SubjectFormat::IssSub,
                subject_issuer: Some(idp_issuer),
                max_age_seconds: 3600,
                token_sha256: None,
            });
            if let Some(url) = redis_url {
                common::use_redis(c, &url);
            }
        })
        .await;
        Offboarding {
            world,
            scim_token,
            transmitter,
        }
    }

    fn idp_issuer(&self) -> String {
        self.world.idp.issuer.clone()
    }

    async fn scim(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Response {
        self.scim_as(&self.scim_token, method, path, body).await
    }

    async fn scim_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Response {
        let app = &self.world.app;
        let mut request = app
            .api
            .request(method, app.url(&format!("/scim/v2{path}")))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        Response::read(request.send().await.unwrap()).await
    }

    async fn push(&self, set: &str) -> Response {
        Self::push_to(&self.world.app, set).await
    }

    /// Pushes `set` to the instance `app`.
    async fn push_to(app: &common::TestApp, set: &str) -> Response {
        let r = app
            .api
            .post(app.url("/ssf/events"))
            .header("content-type", "application/secevent+jwt")
            .header("accept", "application/json")
            .body(set.to_owned())
            .send()
            .await
            .unwrap();
        Response::read(r).await
    }

    /// `subject` connects the OAuth provider; returns the handle and the upstream tokens.
    async fn connect(&self, subject: &str) -> Connected {
        let status = self.world.connect(subject).await;
        let grant = status["grant_id"].as_str().unwrap();
        let (access, refresh) = self.world.sealed_tokens(grant).await;
        let connected = Connected {
            handle: status["handle"].as_str().unwrap().to_owned(),
            access,
            refresh: refresh.expect("the upstream issued a refresh token"),
        };
        self.assert_works(&connected).await;
        connected
    }

    async fn active(&self, token: &str) -> Value {
        self.world
            .upstream
            .introspect(UPSTREAM_CLIENT, &self.world.upstream_secret, token)
            .await["active"]
            .clone()
    }

    /// The handle redeems and both upstream tokens are active.
    async fn assert_works(&self, c: &Connected) {
        let app = &self.world.app;
        assert_eq!(
            app.redeem(&app.token, &c.handle).await.status(),
            StatusCode::OK
        );
        assert_eq!(self.active(&c.access).await, true);
        assert_eq!(self.active(&c.refresh).await, true);
    }

    /// The handle is refused as revoked and the upstream reports both tokens inactive.
    async fn assert_revoked(&self, c: &Connected) {
        let app = &self.world.app;
        common::assert_problem(
            app.redeem(&app.token, &c.handle).await,
            StatusCode::GONE,
            "grant_revoked",
        )
        .await;
        assert_eq!(self.active(&c.access).await, false, "access token");
        assert_eq!(self.active(&c.refresh).await, false, "refresh token");
    }

    /// Every audit event as JSON, oldest first.
    async fn audit(&self) -> Vec<Value> {
        let mut events = self
            .world
            .app
            .broker
            .raw_stores()
            .audit
            .recent(10_000)
            .await
            .unwrap();
        events.reverse();
        events
            .iter()
            .map(|e| serde_json::to_value(e).unwrap())
            .collect()
    }
}

struct Connected {
    handle: String,
    access: String,
    refresh: String,
}

/// An answer, read whole.
struct Response {
    status: StatusCode,
    content_type: String,
    body: Value,
}

impl Response {
    async fn read(r: reqwest::Response) -> Response {
        let status = r.status();
        let content_type = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let text = r.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Response {
            status,
            content_type,
            body,
        }
    }

    /// A SCIM error with this status.
    #[track_caller]
    fn assert_scim_error(&self, status: StatusCode) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.content_type, "application/scim+json");
        assert_eq!(
            self.body["schemas"],
            json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
        );
        assert_eq!(self.body["status"], status.as_u16().to_string());
    }

    /// An RFC 8935 refusal with this error code.
    #[track_caller]
    fn assert_set_refused(&self, err: &str) {
        assert_eq!(self.status, StatusCode::BAD_REQUEST, "{}", self.body);
        assert_eq!(self.content_type, "application/json");
        assert_eq!(self.body["err"], err, "{}", self.body);
        assert!(
            self.body["description"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
    }
}

fn filter_path(user_name: &str) -> String {
    let filter = format!("userName eq \"{user_name}\"");
    format!(
        "/Users?filter={}",
        url::form_urlencoded::byte_serialize(filter.as_bytes()).collect::<String>()
    )
}

#[tokio::test]
async fn a_scim_deactivation_revokes_every_grant_of_the_user_upstream_and_is_audited() {
    use reqwest::Method;
    let t = Offboarding::start().await;
    let alice = t.connect("alice").await;
    let bob = t.connect("bob").await;

    // Without the token, or with another one: a SCIM 401, and nothing looked up.
    let app = &t.world.app;
    for token in ["", app.token.as_str(), "cbs_wrong"] {
        t.scim_as(token, Method::GET, &filter_path("alice"), None)
            .await
            .assert_scim_error(StatusCode::UNAUTHORIZED);
    }

    // The IdP looks alice up by userName, as Okta and Entra do before deprovisioning.
    let found = t.scim(Method::GET, &filter_path("alice"), None).await;
    assert_eq!(found.status, StatusCode::OK);
    assert_eq!(found.content_type, "application/scim+json");
    assert_eq!(
        found.body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );
    assert_eq!(found.body["totalResults"], 1);
    let user = &found.body["Resources"][0];
    assert_eq!(user["userName"], "alice");
    assert_eq!(user["active"], true);
    let id = user["id"].as_str().unwrap().to_owned();
    let shown = t.scim(Method::GET, &format!("/Users/{id}"), None).await;
    assert_eq!(shown.body, *user);

    // Unknown users: an empty list, 404 for their resource, and nothing changes.
    let nobody = t.scim(Method::GET, &filter_path("nobody"), None).await;
    assert_eq!(nobody.status, StatusCode::OK);
    assert_eq!(nobody.body["totalResults"], 0);
    assert_eq!(nobody.body["Resources"], json!([]));
    let nobody_id = URL_SAFE_NO_PAD.encode("nobody");
    let entra_disable = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
    });
    t.scim(Method::GET, &format!("/Users/{nobody_id}"), None)
        .await
        .assert_scim_error(StatusCode::NOT_FOUND);
    t.scim(
        Method::PATCH,
        &format!("/Users/{nobody_id}"),
        Some(entra_disable.clone()),
    )
    .await
    .assert_scim_error(StatusCode::NOT_FOUND);
    t.scim(Method::DELETE, &format!("/Users/{nobody_id}"), None)
        .await
        .assert_scim_error(StatusCode::NOT_FOUND);
    // A filter the endpoint does not support is a SCIM 400, not an empty answer.
    let bad = t
        .scim(Method::GET, "/Users?filter=emails%20co%20%22x%22", None)
        .await;
    bad.assert_scim_error(StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["scimType"], "invalidFilter");
    // A body over the limit, and a method the collection does not have: SCIM errors too.
    t.scim(
        Method::PATCH,
        &format!("/Users/{id}"),
        Some(json!({"padding": "x".repeat(70 * 1024)})),
    )
    .await
    .assert_scim_error(StatusCode::PAYLOAD_TOO_LARGE);
    t.scim(Method::DELETE, "/Users", None)
        .await
        .assert_scim_error(StatusCode::METHOD_NOT_ALLOWED);
    t.assert_works(&alice).await;

    // Entra's shape of "active = false": every grant of alice is revoked upstream.
    let patched = t
        .scim(Method::PATCH, &format!("/Users/{id}"), Some(entra_disable))
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["active"], false);
    t.assert_revoked(&alice).await;
    t.assert_works(&bob).await;

    // Okta's shape, PUT and DELETE again: idempotent, alice stays known and inactive.
    let okta_disable = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": false}}],
    });
    let again = t
        .scim(Method::PATCH, &format!("/Users/{id}"), Some(okta_disable))
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["active"], false);
    let put = t
        .scim(
            Method::PUT,
            &format!("/Users/{id}"),
            Some(
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                        "userName": "alice", "active": false}),
            ),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK);
    let deleted = t.scim(Method::DELETE, &format!("/Users/{id}"), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let listed = t.scim(Method::GET, &filter_path("alice"), None).await;
    assert_eq!(listed.body["Resources"][0]["active"], false);
    t.assert_works(&bob).await;

    // The trail: each revocation and the deprovisioning, by the SCIM client.
    let okta = json!({"kind": "idp", "id": "scim:okta"});
    let events = t.audit().await;
    let revoked: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == "grant_revoked" && e["subject"] == "alice")
        .collect();
    assert_eq!(revoked.len(), 1, "one grant, revoked once");
    assert_eq!(revoked[0]["actor"], okta);
    assert!(events.iter().any(|e| e["action"] == "upstream_revocation"
        && e["actor"] == okta
        && e["reason"] == "revoked"));
    let deprovisioned: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == "user_deprovisioned")
        .collect();
    assert_eq!(
        deprovisioned
            .iter()
            .map(|e| e["reason"].as_str().unwrap())
            .collect::<Vec<_>>(),
        [
            "scim_deactivated",
            "scim_deactivated",
            "scim_deactivated",
            "scim_deleted"
        ]
    );
    assert!(
        deprovisioned
            .iter()
            .all(|e| e["actor"] == okta && e["subject"] == "alice")
    );
    assert!(
        !events.iter().any(|e| e["subject"] == "nobody"),
        "nothing was recorded for an unknown user"
    );

    let logs = common::logs::text();
    assert!(!logs.is_empty(), "the capture holds this test's requests");
    assert!(
        !logs.contains(&t.scim_token),
        "the SCIM token never reaches a log line"
    );
}

#[tokio::test]
async fn a_signed_risc_account_disabled_set_revokes_every_grant_of_its_subject() {
    let t = Offboarding::start().await;
    let carol = t.connect("carol").await;
    let dave = t.connect("dave").await;

    let set = t
        .transmitter
        .sign(&account_disabled("set-1", &t.idp_issuer(), "carol"));
    let r = t.push(&set).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body, Value::Null, "202 has no body");
    t.assert_revoked(&carol).await;
    t.assert_works(&dave).await;

    let transmitter = json!({"kind": "idp", "id": format!("ssf:{SSF_ISSUER}")});
    let events = t.audit().await;
    assert!(events.iter().any(|e| e["action"] == "grant_revoked"
        && e["subject"] == "carol"
        && e["actor"] == transmitter));
    let deprovisioned: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == "user_deprovisioned")
        .collect();
    assert_eq!(deprovisioned.len(), 1);
    assert_eq!(deprovisioned[0]["actor"], transmitter);
    assert_eq!(deprovisioned[0]["subject"], "carol");
    assert_eq!(deprovisioned[0]["reason"], "risc_account_disabled");
}

#[tokio::test]
async fn refused_sets_and_unknown_subjects_change_nothing_and_answer_per_rfc_8935() {
    let t = Offboarding::start().await;
    let erin = t.connect("erin").await;
    let idp = t.idp_issuer();

    // Signed by another key under the transmitter's kid.
    let forger = SigningKey::from_bytes(&[9u8; 32]);
    let forged = Transmitter::sign_with(&forger, &account_disabled("f-1", &idp, "erin"));
    t.push(&forged).await.assert_set_refused("invalid_key");

    // Addressed to another receiver.
    let mut claims = account_disabled("a-1", &idp, "erin");
    claims["aud"] = json!("https://someone-else.test/ssf");
    t.push(&t.transmitter.sign(&claims))
        .await
        .assert_set_refused("invalid_audience");

    // From another issuer.
    let mut claims = account_disabled("i-1", &idp, "erin");
    claims["iss"] = json!("https://not-the-transmitter.test");
    t.push(&t.transmitter.sign(&claims))
        .await
        .assert_set_refused("invalid_issuer");

    // Not a SET at all.
    t.push("hello").await.assert_set_refused("invalid_request");

    // A subject the broker does not know: accepted, nothing changes.
    let unknown = t.transmitter.sign(&account_disabled("u-1", &idp, "frank"));
    let r = t.push(&unknown).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    t.assert_works(&erin).await;

    // A replay of an accepted SET is refused, even when it would now change something:
    // frank connects after the original, and the replay leaves his grant alone.
    let frank = t.connect("frank").await;
    t.push(&unknown).await.assert_set_refused("invalid_request");
    t.assert_works(&frank).await;
    t.assert_works(&erin).await;

    let events = t.audit().await;
    assert!(
        !events
            .iter()
            .any(|e| e["action"] == "user_deprovisioned" || e["action"] == "grant_revoked"),
        "nothing was revoked"
    );
    // Refusals of SETs the transmitter signed are its doing and audited; forged, foreign
    // and garbage ones could come from anyone and are not.
    let rejected: Vec<(&str, &Value)> = events
        .iter()
        .filter(|e| e["action"] == "security_event_rejected")
        .map(|e| (e["reason"].as_str().unwrap(), &e["actor"]))
        .collect();
    let transmitter = json!({"kind": "idp", "id": format!("ssf:{SSF_ISSUER}")});
    assert_eq!(
        rejected,
        [
            ("invalid_audience", &transmitter),
            ("invalid_request", &transmitter)
        ]
    );
}

#[tokio::test]
async fn a_set_replayed_to_another_instance_on_the_same_redis_is_refused() {
    let redis = common::redis::RedisServer::start();
    let t = Offboarding::start_on(Some(redis.url())).await;
    let other = t.world.another_instance().await;
    let set = t
        .transmitter
        .sign(&account_disabled("cross-1", &t.idp_issuer(), "gina"));
    // gina is unknown when the SET first arrives: accepted, nothing to do.
    let first = t.push(&set).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    let gina = t.connect("gina").await;
    // The same SET at the other instance is a replay there too, and gina keeps her grant.
    Offboarding::push_to(&other, &set)
        .await
        .assert_set_refused("invalid_request");
    t.assert_works(&gina).await;
    // A fresh SET about her at the other instance offboards her everywhere.
    let fresh = t
        .transmitter
        .sign(&account_disabled("cross-2", &t.idp_issuer(), "gina"));
    let r = Offboarding::push_to(&other, &fresh).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    t.assert_revoked(&gina).await;
}
