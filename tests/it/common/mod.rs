//! Test harness: spawns the real app on 127.0.0.1:0 with its own temporary data directory
//! and keyring, two services and two providers, and drives it like its users do: a service
//! with a bearer token, and a person with a cookie-keeping browser-like client.

pub mod binary;
pub mod browser;
pub mod fake_upstream;
pub mod idp;
pub mod logs;
pub mod redis;

use std::collections::BTreeMap;
use std::sync::Arc;

use consent_broker::app::App;
use consent_broker::broker::Broker;
use consent_broker::config::{Config, ProviderConfig, ServiceConfig};
use consent_broker::identity::service_token;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;

pub const API_KEY_PROVIDER: &str = "acme";
pub const TERMS_PROVIDER: &str = "acme-terms";
/// A key of the shape the `acme` provider accepts.
pub const GOOD_KEY: &str = "acme_live_4f9a8b7c6d5e4f3a2b1c";

pub struct TestApp {
    pub base: String,
    pub broker: Arc<Broker>,
    /// Token of `svc-a`, allowed `acme` (read, write) and `acme-terms`.
    pub token: String,
    /// Token of `svc-b`, allowed `acme` (read) only.
    pub other_token: String,
    pub data_dir: TempDir,
    pub api: reqwest::Client,
    config: Config,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

pub struct TestConfig {
    pub config: Config,
    pub token: String,
    pub other_token: String,
    pub data_dir: TempDir,
}

/// Points a configuration at a Redis server.
pub fn use_redis(config: &mut Config, url: &str) {
    config.store.kind = consent_broker::config::StoreKind::Redis;
    config.store.url = Some(url.to_owned());
}

/// The configuration every test starts from.
pub fn test_config() -> TestConfig {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let (token, digest) = service_token::generate();
    let (other_token, other_digest) = service_token::generate();
    let mut config = Config::default();
    config.server.bind = "127.0.0.1:0".parse().unwrap();
    config.server.data_dir = data_dir.path().to_path_buf();
    let (id, key) = consent_broker::config::keyring::new_key_entry();
    config
        .keyring
        .keys
        .insert(id.clone(), key.to_string().into());
    config.keyring.active = Some(id);
    config.providers = vec![
        ProviderConfig::ApiKey {
            id: API_KEY_PROVIDER.into(),
            name: "Acme".into(),
            header: "X-Acme-Key".into(),
            format: Some("^acme_[a-z]+_[0-9a-f]{20}$".into()),
            verify_url: None,
            scopes: BTreeMap::from([("read".into(), "Read your Acme projects".into())]),
        },
        ProviderConfig::Terms {
            id: TERMS_PROVIDER.into(),
            name: "Acme".into(),
            title: "Acme AI terms".into(),
            version: "2026-11".into(),
            text: Some("You agree that the assistant may read your Acme projects.".into()),
            text_file: None,
        },
    ];
    config.services = vec![
        ServiceConfig {
            id: "svc-a".into(),
            name: "Service A".into(),
            token_sha256: Some(digest),
            allow: BTreeMap::from([
                (API_KEY_PROVIDER.into(), vec!["read".into(), "write".into()]),
                (TERMS_PROVIDER.into(), vec![]),
            ]),
            webhook_url: None,
            webhook_secret: None,
            ..Default::default()
        },
        ServiceConfig {
            id: "svc-b".into(),
            name: "Service B".into(),
            token_sha256: Some(other_digest),
            allow: BTreeMap::from([(API_KEY_PROVIDER.into(), vec!["read".into()])]),
            webhook_url: None,
            webhook_secret: None,
            ..Default::default()
        },
    ];
    TestConfig {
        config,
        token,
        other_token,
        data_dir,
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// Spawns with the test config after `adjust` has changed it. Dev sign-in is on.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
        Self::spawn_mode(true, adjust).await
    }

    /// Spawns with `dev` sign-in on or off.
    pub async fn spawn_mode(dev: bool, adjust: impl FnOnce(&mut Config)) -> TestApp {
        let mut t = test_config();
        adjust(&mut t.config);
        Self::spawn_config(t, dev, None).await
    }

    /// Spawns from a prepared config, on `listener` when given.
    pub async fn spawn_config(
        t: TestConfig,
        dev: bool,
        listener: Option<std::net::TcpListener>,
    ) -> TestApp {
        Self::start(&t.config, dev, t.token, t.other_token, t.data_dir, listener).await
    }

    /// Spawns one more instance of a shared configuration (same keyring, services and
    /// store), with its own data directory: several instances on one Redis.
    pub async fn spawn_from(t: &TestConfig) -> TestApp {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut config = t.config.clone();
        config.server.data_dir = data_dir.path().to_path_buf();
        Self::start(
            &config,
            true,
            t.token.clone(),
            t.other_token.clone(),
            data_dir,
            None,
        )
        .await
    }

    async fn start(
        config: &Config,
        dev: bool,
        token: String,
        other_token: String,
        data_dir: TempDir,
        listener: Option<std::net::TcpListener>,
    ) -> TestApp {
        let app = match listener {
            Some(l) => App::build_with_listener(config, dev, l).await,
            None => App::build(config, dev).await,
        }
        .expect("app builds");
        let base = format!("http://{}", app.local_addr());
        let broker = app.broker();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run(async {
            let _ = rx.await;
        }));
        TestApp {
            base,
            broker,
            token,
            other_token,
            data_dir,
            api: reqwest::Client::new(),
            config: config.clone(),
            server,
            _shutdown: tx,
        }
    }

    /// Stops this instance and starts it again on the same data directory, after
    /// `adjust` changed its configuration (an operator's edit and restart).
    pub async fn restart_with(self, adjust: impl FnOnce(&mut Config)) -> TestApp {
        let TestApp {
            mut config,
            token,
            other_token,
            data_dir,
            server,
            _shutdown,
            broker,
            ..
        } = self;
        drop(_shutdown);
        drop(broker);
        server.await.expect("server task").expect("server ran");
        adjust(&mut config);
        Self::start(&config, true, token, other_token, data_dir, None).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post_json(&self, token: &str, path: &str, body: Value) -> reqwest::Response {
        self.api
            .post(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    pub async fn create(&self, token: &str, body: Value) -> reqwest::Response {
        self.post_json(token, "/v1/elicitations", body).await
    }

    /// Creates a pending elicitation for `subject` and returns its JSON.
    pub async fn create_pending(&self, subject: &str, provider: &str, scopes: &[&str]) -> Value {
        let r = self
            .create(
                &self.token,
                json!({"subject": subject, "provider": provider, "scopes": scopes}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json().await.unwrap()
    }

    pub async fn status(&self, token: &str, id: &str, wait: u64) -> reqwest::Response {
        self.api
            .get(self.url(&format!("/v1/elicitations/{id}?wait={wait}")))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// The elicitation as its creating service (svc-a) sees it now.
    pub async fn elicitation(&self, id: &str) -> Value {
        self.status(&self.token, id, 0).await.json().await.unwrap()
    }

    pub async fn redeem(&self, token: &str, handle: &str) -> reqwest::Response {
        self.post_json(token, "/v1/redeem", json!({ "handle": handle }))
            .await
    }

    /// Consents to the API-key elicitation `created` in a fresh browser, signed in as
    /// `subject`, entering `key`; returns the elicitation's status JSON afterwards.
    pub async fn consent_api_key(&self, created: &Value, subject: &str, key: &str) -> Value {
        self.consent_api_key_of(&self.token, created, subject, key)
            .await
    }

    /// Like [`TestApp::consent_api_key`], for the service whose token is `token`.
    pub async fn consent_api_key_of(
        &self,
        token: &str,
        created: &Value,
        subject: &str,
        key: &str,
    ) -> Value {
        let id = created["id"].as_str().unwrap();
        let browser = self.browser();
        let consent = browser
            .open_as(created["url"].as_str().unwrap(), subject)
            .await;
        assert_eq!(consent.status, StatusCode::OK, "{}", consent.html);
        let form = browser
            .submit(&format!("/e/{id}/approve"), &[("csrf", &consent.csrf())])
            .await;
        assert_eq!(form.path, format!("/e/{id}/api-key"));
        let done = browser
            .submit(
                &format!("/e/{id}/api-key"),
                &[("csrf", &form.csrf()), ("api_key", key)],
            )
            .await;
        done.assert_shows("Connected");
        assert!(!done.html.contains(key), "the key is never echoed");
        self.status(token, id, 0).await.json().await.unwrap()
    }

    pub fn browser(&self) -> Browser {
        Browser::new(&self.base)
    }

    /// Every audit action recorded so far, oldest first.
    pub async fn audit_actions(&self) -> Vec<(String, String)> {
        let mut events = self.broker.raw_stores().audit.recent(10_000).await.unwrap();
        events.reverse();
        events
            .into_iter()
            .map(|e| {
                (
                    e.action.to_string(),
                    serde_json::to_value(e.outcome)
                        .unwrap()
                        .as_str()
                        .unwrap()
                        .to_owned(),
                )
            })
            .collect()
    }
}

/// Asserts a problem+json answer with this status and problem code; returns the body.
pub async fn assert_problem(r: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(r.status(), status);
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert_eq!(ct, "application/problem+json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["type"], format!("urn:consent-broker:problem:{code}"));
    assert_eq!(body["status"], status.as_u16());
    body
}

/// A person's browser: keeps cookies, follows redirects like a browser does.
pub struct Browser {
    pub base: String,
    pub client: reqwest::Client,
}

pub struct Page {
    pub status: StatusCode,
    /// Where the page was finally loaded from, after redirects.
    pub url: reqwest::Url,
    /// The path of `url`.
    pub path: String,
    pub html: String,
}

impl Page {
    fn attribute_after(&self, marker: &str) -> Option<String> {
        let start = self.html.find(marker)? + marker.len();
        let end = self.html[start..].find('"')?;
        Some(
            self.html[start..start + end]
                .replace("&amp;", "&")
                .replace("&#38;", "&"),
        )
    }

    pub fn csrf(&self) -> String {
        self.attribute_after("name=\"csrf\" value=\"")
            .expect("page has a CSRF field")
    }

    /// The absolute URL of the page's first form.
    pub fn form_action(&self) -> String {
        let action = self.attribute_after("action=\"").expect("page has a form");
        self.url.join(&action).unwrap().to_string()
    }

    /// The absolute URL of the first link whose href starts with `prefix`.
    pub fn link(&self, prefix: &str) -> String {
        let href = self
            .attribute_after(&format!("href=\"{prefix}"))
            .expect("page has the link");
        self.url
            .join(&format!("{prefix}{href}"))
            .unwrap()
            .to_string()
    }

    pub fn assert_shows(&self, text: &str) {
        assert!(
            self.html.contains(text),
            "page {} does not show {text:?}:\n{}",
            self.url,
            self.html
        );
    }

    /// The secret the page shows once (its first `<code class="token">`).
    pub fn shown_token(&self) -> String {
        self.html
            .split("<code class=\"token\">")
            .nth(1)
            .and_then(|rest| rest.split("</code>").next())
            .expect("page shows a token")
            .to_owned()
    }
}

/// Where following redirects ended.
pub enum Step {
    Page(Page),
    /// Stopped before requesting this URL, as asked.
    Stopped(reqwest::Url),
}

impl Step {
    pub fn page(self) -> Page {
        match self {
            Step::Page(p) => p,
            Step::Stopped(u) => panic!("stopped at {u}"),
        }
    }

    pub fn stopped(self) -> reqwest::Url {
        match self {
            Step::Stopped(u) => u,
            Step::Page(p) => panic!("expected to stop, got page {}:\n{}", p.url, p.html),
        }
    }
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        Browser {
            base: base.to_owned(),
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    /// The same browser (same cookies) talking to another broker instance.
    pub fn on(&self, app: &TestApp) -> Browser {
        Browser {
            base: app.base.clone(),
            client: self.client.clone(),
        }
    }

    fn absolute(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            format!("{}{path_or_url}", self.base)
        }
    }

    /// GET, following redirects.
    pub async fn open(&self, path_or_url: &str) -> Page {
        self.open_until(path_or_url, |_| false).await.page()
    }

    /// GET, following redirects, but not into a URL for which `stop` is true.
    pub async fn open_until(
        &self,
        path_or_url: &str,
        stop: impl Fn(&reqwest::Url) -> bool,
    ) -> Step {
        let r = self
            .client
            .get(self.absolute(path_or_url))
            .send()
            .await
            .expect("GET");
        self.follow(r, stop).await
    }

    /// POST a form, following the redirects after it.
    pub async fn submit(&self, path_or_url: &str, fields: &[(&str, &str)]) -> Page {
        self.submit_until(path_or_url, fields, |_| false)
            .await
            .page()
    }

    pub async fn submit_until(
        &self,
        path_or_url: &str,
        fields: &[(&str, &str)],
        stop: impl Fn(&reqwest::Url) -> bool,
    ) -> Step {
        let r = self
            .client
            .post(self.absolute(path_or_url))
            .form(fields)
            .send()
            .await
            .expect("POST");
        self.follow(r, stop).await
    }

    /// Follows redirects, and pages that send the browser on at once
    /// (`<meta http-equiv="refresh" content="0;url=…">`), as a browser does.
    async fn follow(&self, mut r: reqwest::Response, stop: impl Fn(&reqwest::Url) -> bool) -> Step {
        for hop in 0..=20 {
            let next = if r.status().is_redirection() && hop < 20 {
                let location = r.headers()["location"].to_str().unwrap().to_owned();
                r.url().join(&location).unwrap()
            } else {
                let status = r.status();
                let url = r.url().clone();
                let path = url.path().to_owned();
                let html = r.text().await.unwrap();
                let page = Page {
                    status,
                    url,
                    path,
                    html,
                };
                match page.attribute_after("http-equiv=\"refresh\" content=\"0;url=") {
                    Some(to) if hop < 20 => page.url.join(&to).unwrap(),
                    _ => return Step::Page(page),
                }
            };
            if stop(&next) {
                return Step::Stopped(next);
            }
            r = self.client.get(next).send().await.expect("redirect");
        }
        unreachable!()
    }

    /// Opens a consent link; signs in with the dev sign-in as `user` when asked to.
    pub async fn open_as(&self, url: &str, user: &str) -> Page {
        self.open_signing_in(url, &[("username", user)]).await
    }

    /// Opens an admin page (`--dev` brokers), signing in on the way as the dev
    /// administrator `user` when asked to.
    pub async fn open_as_admin(&self, url: &str, user: &str) -> Page {
        self.open_signing_in(url, &[("username", user), ("admin", "on")])
            .await
    }

    async fn open_signing_in(&self, url: &str, fields: &[(&str, &str)]) -> Page {
        let page = self.open(url).await;
        if page.path != "/login" {
            return page;
        }
        let return_to = page.attribute_after("name=\"return_to\" value=\"").unwrap();
        let csrf = page.csrf();
        let mut form = vec![("csrf", csrf.as_str()), ("return_to", return_to.as_str())];
        form.extend_from_slice(fields);
        self.submit("/login/dev", &form).await
    }
}
