//! The real OAuth 2 / OpenID Connect server (npm `oidc-provider`, pinned in `tests/idp`)
//! in its two roles: the enterprise IdP users sign in at (on 127.0.0.2) and an upstream
//! authorization server with refresh tokens, revocation, introspection and resource
//! indicators (on 127.0.0.3). Distinct loopback hosts keep their cookies apart, as
//! distinct origins would. `OAuthWorld` wires both to a broker.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use consent_broker::config::{OAuth2Config, OidcConfig, ProviderConfig};
use serde_json::{Value, json};

use super::{Browser, Page, TestApp, test_config};

pub const OAUTH_PROVIDER: &str = "acme-cloud";
pub const RESOURCE: &str = "https://api.acme.test/";
pub const UPSTREAM_CLIENT: &str = "broker-upstream-client";

pub struct Idp {
    pub issuer: String,
    child: Child,
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Idp {
    /// Starts `node tests/idp/server.mjs` with `options` and waits for its issuer line.
    pub fn start(options: Value) -> Idp {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/idp");
        assert!(
            std::path::Path::new(dir)
                .join("node_modules/oidc-provider")
                .exists(),
            "tests/idp/node_modules is missing: run scripts/test, which runs `npm ci` there"
        );
        let mut child = Command::new("node")
            .arg("server.mjs")
            .arg(options.to_string())
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs");
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).expect("IdP prints its issuer");
        // Keep reading: the server logs to stdout, and a closed pipe would kill it.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let ready: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("IdP ready line {line:?}: {e}"));
        Idp {
            issuer: ready["issuer"].as_str().unwrap().to_owned(),
            child,
        }
    }

    /// Stops the server (an upstream outage).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Token-endpoint counters kept by the server.
    pub async fn stats(&self) -> Value {
        reqwest::get(format!("{}/__stats", self.issuer))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// RFC 7662 introspection, authenticated as `client_id`.
    pub async fn introspect(&self, client_id: &str, secret: &str, token: &str) -> Value {
        reqwest::Client::new()
            .post(format!("{}/token/introspection", self.issuer))
            .basic_auth(client_id, Some(secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// Completes the IdP's interaction pages (login, then consent) as `login`, following the
/// redirects after them; stops before a URL for which `stop` is true.
pub async fn through_idp(
    browser: &Browser,
    mut page: Page,
    login: &str,
    stop: impl Fn(&reqwest::Url) -> bool + Copy,
) -> super::Step {
    for _ in 0..4 {
        let fields: Vec<(&str, &str)> = if page.html.contains("name=\"prompt\" value=\"login\"") {
            vec![
                ("prompt", "login"),
                ("login", login),
                ("password", "any password"),
            ]
        } else if page.html.contains("name=\"prompt\" value=\"consent\"") {
            vec![("prompt", "consent")]
        } else {
            return super::Step::Page(page);
        };
        match browser
            .submit_until(&page.form_action(), &fields, stop)
            .await
        {
            super::Step::Page(next) => page = next,
            stopped => return stopped,
        }
    }
    super::Step::Page(page)
}

/// A broker with OIDC sign-in at a real IdP and one upstream OAuth provider.
pub struct OAuthWorld {
    pub app: TestApp,
    pub idp: Idp,
    pub upstream: Idp,
    pub upstream_secret: String,
    pub login_secret: String,
    /// The broker's configuration, for more instances of it.
    pub config: consent_broker::config::Config,
}

impl OAuthWorld {
    pub async fn start() -> OAuthWorld {
        Self::start_with(|_| {}).await
    }

    /// Starts the world after `adjust` has changed the broker's config.
    pub async fn start_with(
        adjust: impl FnOnce(&mut consent_broker::config::Config),
    ) -> OAuthWorld {
        Self::start_custom(3600, adjust).await
    }

    /// Starts the world with upstream access tokens living `token_ttl` seconds.
    pub async fn start_custom(
        token_ttl: u64,
        adjust: impl FnOnce(&mut consent_broker::config::Config),
    ) -> OAuthWorld {
        Self::start_full(token_ttl, json!({}), adjust).await
    }

    /// Starts the world with more options for the enterprise IdP: `idp_extra`'s `clients`
    /// are added to the broker's, its other keys set (e.g. a `resource` of its own).
    pub async fn start_full(
        token_ttl: u64,
        idp_extra: Value,
        adjust: impl FnOnce(&mut consent_broker::config::Config),
    ) -> OAuthWorld {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let login_secret = consent_broker::random::token::<24>();
        let upstream_secret = consent_broker::random::token::<24>();
        let mut idp_options = json!({
            "host": "127.0.0.2",
            "clients": [{"client_id": "consent-broker", "client_secret": login_secret,
                         "redirect_uris": [format!("{base}/auth/callback")], "grant_types": ["authorization_code"]}],
            "admins": ["root"],
            "groups": {"erin": ["engineering"]},
        });
        if let (Some(options), Value::Object(extra)) = (idp_options.as_object_mut(), idp_extra) {
            for (key, value) in extra {
                match (key.as_str(), value) {
                    ("clients", Value::Array(clients)) => {
                        options["clients"].as_array_mut().unwrap().extend(clients)
                    }
                    (_, value) => {
                        options.insert(key, value);
                    }
                }
            }
        }
        let idp = Idp::start(idp_options);
        let upstream = Idp::start(json!({
            "host": "127.0.0.3",
            "clients": [{"client_id": UPSTREAM_CLIENT, "client_secret": upstream_secret,
                         "redirect_uris": [format!("{base}/oauth/callback")],
                         "grant_types": ["authorization_code", "refresh_token"]}],
            "resource": RESOURCE,
            "scopes": "api:read api:write",
            "accessTokenTtl": token_ttl,
        }));
        let mut t = test_config();
        t.config.identity.oidc = Some(OidcConfig {
            issuer: idp.issuer.clone(),
            client_id: "consent-broker".into(),
            client_secret: Some(login_secret.clone().into()),
            client_secret_file: None,
            display_name: "Example SSO".into(),
            subject_claim: "sub".into(),
            scopes: vec!["openid".into(), "email".into(), "groups".into()],
            admin_subjects: vec![],
            admin_claim: Some("groups".into()),
            admin_value: Some("broker-admins".into()),
        });
        t.config
            .providers
            .push(ProviderConfig::Oauth2(OAuth2Config {
                id: OAUTH_PROVIDER.into(),
                name: "Acme Cloud".into(),
                issuer: Some(upstream.issuer.parse().unwrap()),
                client_id: UPSTREAM_CLIENT.into(),
                client_secret: Some(upstream_secret.clone().into()),
                resource: Some(RESOURCE.parse().unwrap()),
                scopes: [(
                    "api:read".to_owned(),
                    "Read your Acme Cloud data".to_owned(),
                )]
                .into(),
                ..OAuth2Config::default()
            }));
        t.config.services[0]
            .allow
            .insert(OAUTH_PROVIDER.into(), vec!["api:read".into()]);
        adjust(&mut t.config);
        let config = t.config.clone();
        let app = TestApp::spawn_config(t, false, Some(listener)).await;
        OAuthWorld {
            app,
            idp,
            upstream,
            upstream_secret,
            login_secret,
            config,
        }
    }

    /// One more broker instance with the same configuration (and so the same store).
    pub async fn another_instance(&self) -> TestApp {
        TestApp::spawn_from(&super::TestConfig {
            config: self.config.clone(),
            token: self.app.token.clone(),
            other_token: self.app.other_token.clone(),
            data_dir: tempfile::tempdir().unwrap(),
        })
        .await
    }

    /// Runs the whole OAuth consent for a new elicitation of `subject` (signing in at the
    /// IdP and the upstream as `subject`); returns the completed status JSON.
    pub async fn connect(&self, subject: &str) -> Value {
        let created = self
            .app
            .create_pending(subject, OAUTH_PROVIDER, &["api:read"])
            .await;
        self.consent_to(&self.app.browser(), &created, subject)
            .await
    }

    /// Completes the consent of `created` in `browser`, signing in when needed.
    pub async fn consent_to(&self, browser: &Browser, created: &Value, subject: &str) -> Value {
        let id = created["id"].as_str().unwrap();
        let url = created["url"].as_str().unwrap();
        let first = browser.open(url).await;
        let consent = if first.path == "/login" {
            let idp_page = browser.open(&first.link("/login/oidc")).await;
            through_idp(browser, idp_page, subject, |_| false)
                .await
                .page()
        } else {
            first
        };
        let upstream = browser
            .submit(&format!("/e/{id}/approve"), &[("csrf", &consent.csrf())])
            .await;
        let done = through_idp(browser, upstream, subject, |_| false)
            .await
            .page();
        done.assert_shows("Connected");
        self.app
            .status(&self.app.token, id, 0)
            .await
            .json()
            .await
            .unwrap()
    }

    /// The tokens sealed in a grant, read through the vault (as only the broker can).
    pub async fn sealed_tokens(&self, grant_id: &str) -> (String, Option<String>) {
        let id = consent_broker::domain::GrantId::parse(grant_id).unwrap();
        let grant = self
            .app
            .broker
            .raw_stores()
            .grants
            .grant(&id)
            .await
            .unwrap()
            .unwrap();
        let plain = self
            .app
            .broker
            .raw_vault()
            .open(grant.seal_context(), &grant.sealed)
            .unwrap();
        let secret: Value = serde_json::from_slice(&plain).unwrap();
        let c = &secret["credential"];
        (
            c["access_token"].as_str().unwrap().to_owned(),
            c["refresh_token"].as_str().map(str::to_owned),
        )
    }

    /// Signs `login` in at the IdP, from the broker's sign-in page.
    pub async fn sign_in(&self, browser: &Browser, login: &str) -> Page {
        let page = browser.open("/login?return_to=/").await;
        let idp_page = browser.open(&page.link("/login/oidc")).await;
        through_idp(browser, idp_page, login, |_| false)
            .await
            .page()
    }

    /// Opens a consent link and signs in at the IdP as `login`; returns the page shown after.
    pub async fn open_signed_in(&self, browser: &Browser, url: &str, login: &str) -> Page {
        let page = browser.open(url).await;
        assert_eq!(page.path, "/login", "not signed in yet");
        let idp_page = browser.open(&page.link("/login/oidc")).await;
        through_idp(browser, idp_page, login, |_| false)
            .await
            .page()
    }
}

/// The OpenID discovery document at `issuer`, fetched from synchronous code (the world's
/// config hook) on a thread of its own.
pub fn discovery_document(issuer: &url::Url) -> Value {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.as_str().trim_end_matches('/')
    );
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async { reqwest::get(url).await.unwrap().json().await.unwrap() })
    })
    .join()
    .unwrap()
}

/// True for the broker's OAuth callback.
pub fn is_oauth_callback(url: &reqwest::Url) -> bool {
    url.path() == "/oauth/callback"
}
