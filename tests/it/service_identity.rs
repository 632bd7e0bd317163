//! Who calls, and for whom: a service authenticated by an RFC 7523 client assertion, one
//! by a workload identity token (Kubernetes-style), each completing a journey; every kind
//! of refused JWT credential answered with its own problem type and nothing created; proof
//! of the user with `subject_proof = "required"` (another user's token, another audience,
//! no token are refused and audited, the right token works, and the consent page still
//! checks the signed-in user); a static token rotated with an overlap that ends on the
//! broker's clock. Keys are generated here (Ed25519), JWK Sets served on 127.0.0.1, and no
//! token or assertion ever reaches the logs.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{API_KEY_PROVIDER, GOOD_KEY, TestApp};
use consent_broker::config::{
    Config, IssuerKind, ServiceConfig, SubjectProof, TrustedIssuerConfig,
};
use consent_broker::identity::service_token;
use ed25519_dalek::{Signer, SigningKey};
use reqwest::StatusCode;
use serde_json::{Value, json};

const USERS_ISSUER: &str = "https://idp.test";
const WORKLOADS_ISSUER: &str = "https://k8s.test";
const WORKLOAD_SUB: &str = "system:serviceaccount:mcp:github-like";
const RESOURCE: &str = "https://mcp.test/mcp";

/// A signer: a fresh Ed25519 key and its `kid`.
struct Key {
    key: SigningKey,
    kid: &'static str,
}

impl Key {
    fn generate(kid: &'static str) -> Key {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).unwrap();
        Key {
            key: SigningKey::from_bytes(&seed),
            kid,
        }
    }

    fn jwk(&self) -> Value {
        json!({"kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": self.kid,
               "x": URL_SAFE_NO_PAD.encode(self.key.verifying_key().as_bytes())})
    }

    fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": self.kid});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }
}

/// JWK Sets served on 127.0.0.1: `/{name}` answers `{"keys": [...]}`.
async fn serve_jwks(sets: Vec<(&'static str, Vec<Value>)>) -> String {
    let mut app = axum::Router::new();
    for (name, keys) in sets {
        let body = json!({ "keys": keys });
        app = app.route(
            &format!("/{name}"),
            axum::routing::get(move || {
                let body = body.clone();
                async move { axum::Json(body) }
            }),
        );
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    base
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn jti() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).unwrap();
    URL_SAFE_NO_PAD.encode(b)
}

struct World {
    app: TestApp,
    /// `svc-jwt`'s assertion key (its JWK Set is served).
    service_key: Key,
    /// The users' IdP.
    idp: Key,
    /// The workload issuer (a cluster).
    cluster: Key,
    /// Every credential handed out, to look for in the logs.
    secrets: std::sync::Mutex<Vec<String>>,
}

impl World {
    async fn start(adjust: impl FnOnce(&mut Config)) -> World {
        common::logs::capture();
        let service_key = Key::generate("svc-k1");
        let idp = Key::generate("idp-k1");
        let cluster = Key::generate("k8s-k1");
        let jwks = serve_jwks(vec![
            ("svc", vec![service_key.jwk()]),
            ("idp", vec![idp.jwk()]),
            ("k8s", vec![cluster.jwk()]),
        ])
        .await;
        let app = TestApp::spawn_with(|c| {
            c.trusted_issuers = vec![
                TrustedIssuerConfig {
                    id: "idp".into(),
                    issuer: USERS_ISSUER.into(),
                    jwks_url: format!("{jwks}/idp").parse().unwrap(),
                    kind: IssuerKind::Users,
                    algorithms: vec!["EdDSA".into()],
                    subject_claim: "sub".into(),
                },
                TrustedIssuerConfig {
                    id: "cluster".into(),
                    issuer: WORKLOADS_ISSUER.into(),
                    jwks_url: format!("{jwks}/k8s").parse().unwrap(),
                    kind: IssuerKind::Workloads,
                    algorithms: vec!["EdDSA".into()],
                    subject_claim: "sub".into(),
                },
            ];
            let allow = BTreeMap::from([(API_KEY_PROVIDER.into(), vec!["read".into()])]);
            c.services.push(ServiceConfig {
                id: "svc-jwt".into(),
                name: "Assertion service".into(),
                allow: allow.clone(),
                assertion_jwks_url: Some(format!("{jwks}/svc").parse().unwrap()),
                ..Default::default()
            });
            c.services.push(ServiceConfig {
                id: "svc-wl".into(),
                name: "Workload service".into(),
                allow,
                workload_issuer: Some("cluster".into()),
                workload_subject: Some(WORKLOAD_SUB.into()),
                ..Default::default()
            });
            adjust(c);
        })
        .await;
        World {
            app,
            service_key,
            idp,
            cluster,
            secrets: Default::default(),
        }
    }

    fn keep(&self, secret: String) -> String {
        self.secrets.lock().unwrap().push(secret.clone());
        secret
    }

    /// The broker's audience: its public URL.
    fn broker_aud(&self) -> String {
        self.app
            .broker
            .public_url()
            .as_str()
            .trim_end_matches('/')
            .to_owned()
    }

    /// A fresh client assertion of `svc-jwt`.
    fn assertion(&self) -> String {
        self.assertion_with(json!({}))
    }

    /// `svc-jwt`'s assertion with `changes` over the good claims.
    fn assertion_with(&self, changes: Value) -> String {
        let mut claims = json!({
            "iss": "svc-jwt", "sub": "svc-jwt", "aud": self.broker_aud(),
            "iat": now(), "exp": now() + 120, "jti": jti(),
        });
        for (k, v) in changes.as_object().unwrap() {
            claims[k] = v.clone();
        }
        self.keep(self.service_key.sign(&claims))
    }

    fn workload_token(&self) -> String {
        self.keep(self.cluster.sign(&json!({
            "iss": WORKLOADS_ISSUER, "sub": WORKLOAD_SUB, "aud": [self.broker_aud()],
            "iat": now(), "exp": now() + 3600,
            "kubernetes.io": {"namespace": "mcp", "serviceaccount": {"name": "github-like"}},
        })))
    }

    /// The access token the IdP gave `user`'s MCP client for `aud`.
    fn user_token(&self, user: &str, aud: &str) -> String {
        self.keep(self.idp.sign(&json!({
            "iss": USERS_ISSUER, "sub": user, "aud": aud, "client_id": "mcp-client",
            "iat": now(), "exp": now() + 600,
        })))
    }

    async fn create_with(&self, credential: &str, body: Value) -> reqwest::Response {
        self.app.create(credential, body).await
    }

    async fn created_count(&self) -> usize {
        self.app
            .audit_actions()
            .await
            .iter()
            .filter(|(a, _)| a == "elicitation_created")
            .count()
    }

    /// The user consents to `created` with the acme key, signed in as `user`.
    async fn consent(&self, created: &Value, user: &str) {
        let id = created["id"].as_str().unwrap();
        let browser = self.app.browser();
        let consent = browser
            .open_as(created["url"].as_str().unwrap(), user)
            .await;
        assert_eq!(consent.status, StatusCode::OK, "{}", consent.html);
        let form = browser
            .submit(&format!("/e/{id}/approve"), &[("csrf", &consent.csrf())])
            .await;
        let done = browser
            .submit(
                &format!("/e/{id}/api-key"),
                &[("csrf", &form.csrf()), ("api_key", GOOD_KEY)],
            )
            .await;
        done.assert_shows("Connected");
    }

    /// A whole journey with credentials from `credential()`: create, consent, read the
    /// handle, redeem it.
    async fn journey(&self, credential: impl Fn() -> String, user: &str) {
        let r = self
            .create_with(
                &credential(),
                json!({"subject": user, "provider": API_KEY_PROVIDER, "scopes": ["read"]}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let created: Value = r.json().await.unwrap();
        self.consent(&created, user).await;
        let id = created["id"].as_str().unwrap();
        let status: Value = self
            .app
            .status(&credential(), id, 0)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(status["status"], "completed", "{status}");
        let handle = status["handle"].as_str().unwrap().to_owned();
        let redeemed = self.app.redeem(&credential(), &handle).await;
        assert_eq!(redeemed.status(), StatusCode::OK);
        let body: Value = redeemed.json().await.unwrap();
        assert_eq!(body["credential"]["api_key"], GOOD_KEY, "{body}");
    }

    /// No credential handed out is anywhere in the logs.
    fn assert_logs_clean(&self) {
        let logs = common::logs::text();
        for secret in self.secrets.lock().unwrap().iter() {
            assert!(!logs.contains(secret.as_str()), "a credential was logged");
            let signature = secret.rsplit('.').next().unwrap();
            assert!(!logs.contains(signature), "a signature was logged");
        }
    }
}

#[tokio::test]
async fn a_service_signing_client_assertions_completes_a_journey() {
    let w = World::start(|_| {}).await;
    w.journey(|| w.assertion(), "alice").await;
    w.assert_logs_clean();
}

/// The same, with the service's keys given inline in the config (`assertion_jwks`)
/// instead of by URL: a key of another service does not verify its assertions.
#[tokio::test]
async fn a_service_with_inline_assertion_keys_completes_a_journey() {
    let inline = Key::generate("inline-k1");
    let jwks = json!({ "keys": [inline.jwk()] }).to_string();
    let w = World::start(|c| {
        c.services.push(ServiceConfig {
            id: "svc-inline".into(),
            name: "Inline keys service".into(),
            allow: BTreeMap::from([(API_KEY_PROVIDER.into(), vec!["read".into()])]),
            assertion_jwks: Some(jwks),
            ..Default::default()
        });
    })
    .await;
    let assertion = |key: &Key| {
        w.keep(key.sign(&json!({
            "iss": "svc-inline", "sub": "svc-inline", "aud": w.broker_aud(),
            "iat": now(), "exp": now() + 120, "jti": jti(),
        })))
    };
    w.journey(|| assertion(&inline), "alice").await;
    common::assert_problem(
        w.create_with(
            &assertion(&w.service_key),
            json!({"subject": "alice", "provider": API_KEY_PROVIDER, "scopes": ["read"]}),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "caller_token_unknown_key",
    )
    .await;
    w.assert_logs_clean();
}

#[tokio::test]
async fn a_workload_identified_by_its_cluster_token_completes_a_journey() {
    let w = World::start(|_| {}).await;
    w.journey(|| w.workload_token(), "alice").await;
    w.assert_logs_clean();
}

#[tokio::test]
async fn each_refused_jwt_credential_has_its_own_problem_and_creates_nothing() {
    let w = World::start(|_| {}).await;
    let body = json!({"subject": "alice", "provider": API_KEY_PROVIDER, "scopes": ["read"]});
    let refused = |credential: String, code: &'static str| {
        let w = &w;
        let body = body.clone();
        async move {
            let before = w.created_count().await;
            let r = w.create_with(&credential, body).await;
            common::assert_problem(r, StatusCode::UNAUTHORIZED, code).await;
            assert_eq!(w.created_count().await, before, "{code}: nothing created");
        }
    };
    refused(
        w.assertion_with(json!({"aud": "https://another-broker.test"})),
        "caller_token_wrong_audience",
    )
    .await;
    refused(
        w.assertion_with(json!({"iat": now() - 600, "exp": now() - 300})),
        "caller_token_expired",
    )
    .await;
    let stranger = Key::generate("svc-k9");
    let unknown = w.keep(stranger.sign(&json!({
        "iss": "svc-jwt", "sub": "svc-jwt", "aud": w.broker_aud(),
        "exp": now() + 60, "jti": jti(),
    })));
    refused(unknown, "caller_token_unknown_key").await;
    let untrusted = w.keep(stranger.sign(&json!({
        "iss": "https://evil.test", "sub": WORKLOAD_SUB, "aud": w.broker_aud(),
        "exp": now() + 60,
    })));
    refused(untrusted, "untrusted_issuer").await;
    refused(
        w.assertion_with(json!({"exp": now() + 3600})),
        "caller_token_invalid",
    )
    .await;
    // Used once, then replayed.
    let once = w.assertion();
    let r = w.create_with(&once, body.clone()).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    refused(once, "caller_token_replayed").await;
    w.assert_logs_clean();
}

#[tokio::test]
async fn with_subject_proof_required_only_the_users_own_token_for_this_service_creates() {
    let w = World::start(|c| {
        c.services[0].subject_proof = SubjectProof::Required;
        c.services[0].resource = Some(RESOURCE.into());
    })
    .await;
    let token = w.app.token.clone();
    let create = |subject: &str, subject_token: Option<String>| {
        let mut body =
            json!({"subject": subject, "provider": API_KEY_PROVIDER, "scopes": ["read"]});
        if let Some(t) = subject_token {
            body["subject_token"] = json!(t);
        }
        w.app.create(&token, body)
    };
    let alice = w.user_token("alice", RESOURCE);
    common::assert_problem(
        create("bob", Some(alice.clone())).await,
        StatusCode::FORBIDDEN,
        "subject_mismatch",
    )
    .await;
    common::assert_problem(
        create(
            "alice",
            Some(w.user_token("alice", "https://other-mcp.test/mcp")),
        )
        .await,
        StatusCode::FORBIDDEN,
        "subject_token_rejected",
    )
    .await;
    common::assert_problem(
        create("alice", None).await,
        StatusCode::BAD_REQUEST,
        "subject_token_required",
    )
    .await;
    let forged = w.keep(Key::generate("idp-k1").sign(&json!({
        "iss": USERS_ISSUER, "sub": "alice", "aud": RESOURCE, "exp": now() + 600,
    })));
    common::assert_problem(
        create("alice", Some(forged)).await,
        StatusCode::FORBIDDEN,
        "subject_token_rejected",
    )
    .await;
    let actions = w.app.audit_actions().await;
    let refusals = actions
        .iter()
        .filter(|(a, o)| a == "subject_proof_refused" && o == "denied")
        .count();
    assert_eq!(refusals, 4, "{actions:?}");
    assert_eq!(w.created_count().await, 0);

    let r = create("alice", Some(alice)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    // The consent page still wants alice herself.
    let bob = w
        .app
        .browser()
        .open_as(created["url"].as_str().unwrap(), "bob")
        .await;
    assert_eq!(bob.status, StatusCode::FORBIDDEN);
    w.consent(&created, "alice").await;

    // Redemption asks for the same proof: a handle alone is not enough.
    let id = created["id"].as_str().unwrap();
    let status: Value = w.app.status(&token, id, 0).await.json().await.unwrap();
    let handle = status["handle"].as_str().unwrap();
    let redeem = |subject_token: Option<String>| {
        let mut body = json!({ "handle": handle });
        if let Some(t) = subject_token {
            body["subject_token"] = json!(t);
        }
        w.app.post_json(&token, "/v1/redeem", body)
    };
    common::assert_problem(
        redeem(None).await,
        StatusCode::BAD_REQUEST,
        "subject_token_required",
    )
    .await;
    common::assert_problem(
        redeem(Some(w.user_token("bob", RESOURCE))).await,
        StatusCode::FORBIDDEN,
        "subject_mismatch",
    )
    .await;
    let redeemed = redeem(Some(w.user_token("alice", RESOURCE))).await;
    assert_eq!(redeemed.status(), StatusCode::OK);
    let body: Value = redeemed.json().await.unwrap();
    assert_eq!(body["credential"]["api_key"], GOOD_KEY);
    w.assert_logs_clean();
}

/// `optional`: no token is the service's word, as with `off`; a token that is sent must
/// verify and name the subject.
#[tokio::test]
async fn with_subject_proof_optional_a_token_sent_must_name_the_subject() {
    let w = World::start(|c| {
        c.services[0].subject_proof = SubjectProof::Optional;
        c.services[0].resource = Some(RESOURCE.into());
    })
    .await;
    let create = |subject_token: Option<String>| {
        let mut body =
            json!({"subject": "alice", "provider": API_KEY_PROVIDER, "scopes": ["read"]});
        if let Some(t) = subject_token {
            body["subject_token"] = json!(t);
        }
        w.app.create(&w.app.token, body)
    };
    assert_eq!(create(None).await.status(), StatusCode::CREATED);
    common::assert_problem(
        create(Some(w.user_token("bob", RESOURCE))).await,
        StatusCode::FORBIDDEN,
        "subject_mismatch",
    )
    .await;
    assert_eq!(
        create(Some(w.user_token("alice", RESOURCE))).await.status(),
        StatusCode::CREATED
    );
    w.assert_logs_clean();
}

#[tokio::test]
async fn a_rotated_token_works_until_its_overlap_ends_and_not_after() {
    let (new_token, new_digest) = service_token::generate();
    let old_digest = std::sync::Mutex::new(String::new());
    let until = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let w = World::start(|c| {
        let svc_b = &mut c.services[1];
        *old_digest.lock().unwrap() = svc_b.token_sha256.clone().unwrap();
        svc_b.previous_token_sha256 = svc_b.token_sha256.replace(new_digest);
        svc_b.previous_token_valid_until = Some(
            until
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap(),
        );
    })
    .await;
    let old_token = w.app.other_token.clone();
    let body = json!({"subject": "alice", "provider": API_KEY_PROVIDER, "scopes": ["read"]});
    assert_eq!(
        w.app.create(&old_token, body.clone()).await.status(),
        StatusCode::CREATED,
        "the old token works during the overlap"
    );
    assert_eq!(
        w.app.create(&new_token, body.clone()).await.status(),
        StatusCode::CREATED
    );
    w.app.broker.clock().advance(Duration::from_secs(3600 + 1));
    common::assert_problem(
        w.app.create(&old_token, body.clone()).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    assert_eq!(
        w.app.create(&new_token, body).await.status(),
        StatusCode::CREATED,
        "the new token goes on working"
    );
    let logs = common::logs::text();
    assert!(!logs.contains(&old_token) && !logs.contains(&new_token));
}

#[tokio::test]
async fn the_typed_client_signs_an_assertion_per_request_or_reads_its_workload_token() {
    use consent_broker_client::{AssertionSigner, BrokerClient, Created, Credential, api};
    let w = World::start(|_| {}).await;
    // PKCS#8 (RFC 8410) of the service's Ed25519 key: the fixed prefix, then the seed.
    let mut der = hex::decode("302e020100300506032b657004220420").unwrap();
    der.extend_from_slice(w.service_key.key.as_bytes());
    let signer = AssertionSigner::new(
        "svc-jwt",
        w.broker_aud(),
        jsonwebtoken::EncodingKey::from_ed_der(&der),
        jsonwebtoken::Algorithm::EdDSA,
        Some("svc-k1".into()),
    )
    .unwrap();
    let request = api::CreateElicitation {
        subject: "alice".into(),
        provider: API_KEY_PROVIDER.into(),
        scopes: vec!["read".into()],
        message: None,
        subject_token: None,
    };
    let by_assertion = BrokerClient::with_credential(
        reqwest::Client::new(),
        w.app.base.parse().unwrap(),
        Credential::Assertion(signer),
    )
    .unwrap();
    let Created::Pending(pending) = by_assertion.create(&request).await.unwrap() else {
        panic!("a new request is pending");
    };
    // A second request signs a fresh assertion (a replayed jti would be refused).
    assert_eq!(by_assertion.get(&pending.id).await.unwrap().id, pending.id);

    let file = w.app.data_dir.path().join("workload-token");
    std::fs::write(&file, w.workload_token()).unwrap();
    let by_workload = BrokerClient::with_credential(
        reqwest::Client::new(),
        w.app.base.parse().unwrap(),
        Credential::WorkloadTokenFile(file),
    )
    .unwrap();
    assert!(matches!(
        by_workload.create(&request).await.unwrap(),
        Created::Pending(_)
    ));
    w.assert_logs_clean();
}
