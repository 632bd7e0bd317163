//! A real headless Chromium, driven over WebDriver (`chromedriver` + fantoccini). Each
//! instance starts its own chromedriver on a free loopback port with a fresh profile
//! directory, so tests never share cookies; everything is killed when it is dropped.
//! Every wait is bounded. Each page visited can be saved as
//! `target/screenshots/<test>-<NN>-<step>.png` for a person to look at.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use tempfile::TempDir;

/// Longest wait for anything: a page, an element, the driver.
pub const WAIT: Duration = Duration::from_secs(20);

pub struct Chrome {
    pub client: Client,
    driver: Child,
    _profile: TempDir,
    test: String,
    step: usize,
}

impl Drop for Chrome {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Where screenshots go: `target/screenshots` of this crate.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"),
        PathBuf::from,
    );
    target.join("screenshots")
}

impl Chrome {
    /// Starts chromedriver and a headless Chromium for test `test`.
    pub async fn start(test: &str) -> Chrome {
        let port = super::redis::free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (scripts/test installs chromium-driver)");
        let profile = tempfile::tempdir().expect("profile dir");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + WAIT;
        loop {
            let ready = reqwest::get(format!("{url}/status"))
                .await
                .ok()
                .filter(|r| r.status().is_success());
            if ready.is_some() {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--disable-quic",
                    format!("--user-data-dir={}", profile.path().display()),
                    "--window-size=1280,1000",
                ]
            }
        });
        // Plain HTTP to the local driver: no TLS stack needed.
        let mut builder =
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        builder.capabilities(caps.as_object().cloned().unwrap_or_default());
        let client = tokio::time::timeout(WAIT, builder.connect(&url))
            .await
            .expect("a Chromium session in time")
            .expect("a Chromium session");
        client
            .update_timeouts(fantoccini::wd::TimeoutConfiguration::new(
                Some(WAIT),
                Some(WAIT),
                Some(Duration::ZERO),
            ))
            .await
            .expect("timeouts");
        Chrome {
            client,
            driver,
            _profile: profile,
            test: test.to_owned(),
            step: 0,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("page loads");
    }

    /// Saves the viewport as the next numbered screenshot of this test.
    pub async fn shot(&mut self, name: &str) {
        self.step += 1;
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let png = self.client.screenshot().await.expect("screenshot");
        let path = dir.join(format!("{}-{:02}-{name}.png", self.test, self.step));
        std::fs::write(&path, png).expect("screenshot written");
    }

    /// Resizes the window (e.g. to a phone's width).
    pub async fn resize(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("resize");
    }

    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        let found = self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await;
        match found {
            Ok(e) => e,
            Err(e) => panic!("no {css} on {}: {e}", self.path().await),
        }
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.expect("click");
    }

    /// Clicks the button whose visible text is exactly `text`.
    pub async fn click_button(&self, text: &str) {
        let xpath = format!("//button[normalize-space(.)='{text}']");
        let found = self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::XPath(&xpath))
            .await;
        match found {
            Ok(button) => button.click().await.expect("click"),
            Err(e) => panic!("no button {text:?} on {}: {e}", self.path().await),
        }
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("clear");
        field.send_keys(text).await.expect("type");
    }

    pub async fn url(&self) -> url::Url {
        self.client.current_url().await.expect("current url")
    }

    pub async fn path(&self) -> String {
        self.url().await.path().to_owned()
    }

    /// Waits until the page's URL satisfies `ready`; panics after [`WAIT`].
    pub async fn wait_for_url(&self, what: &str, ready: impl Fn(&url::Url) -> bool) {
        if !self.try_wait_for_url(ready).await {
            panic!("never reached {what}; at {}", self.url().await);
        }
    }

    /// Waits until the page's URL satisfies `ready`; false after [`WAIT`].
    pub async fn try_wait_for_url(&self, ready: impl Fn(&url::Url) -> bool) -> bool {
        let deadline = Instant::now() + WAIT;
        loop {
            if ready(&self.url().await) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The page's visible text.
    pub async fn text(&self) -> String {
        self.find("body").await.text().await.expect("text")
    }

    /// Waits (bounded) until the page shows `text`: a click's page may still be loading.
    /// The text is read by script, so a page replaced meanwhile is simply read again.
    pub async fn assert_shows(&self, text: &str) {
        let started = std::time::Instant::now();
        loop {
            let body = self
                .client
                .execute(
                    "return document.body ? document.body.innerText : ''",
                    vec![],
                )
                .await
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            if body.contains(text) {
                return;
            }
            if started.elapsed() > WAIT {
                panic!("{} does not show {text:?}:\n{body}", self.url().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Fills in the oidc-provider development interaction pages (login, then consent) as
    /// `login`, until the browser leaves the server at `issuer`.
    pub async fn through_idp(&mut self, issuer: &str, login: &str, label: &str) {
        for round in 0..4 {
            let url = self.url().await;
            if !url.as_str().starts_with(issuer) {
                return;
            }
            let body = self.client.source().await.expect("source");
            if body.contains("name=\"login\"") {
                self.shot(&format!("{label}-login")).await;
                self.type_into("input[name=login]", login).await;
                self.type_into("input[name=password]", "any password").await;
            } else {
                self.shot(&format!("{label}-consent")).await;
            }
            self.click("button[type=submit]").await;
            self.wait_for_url("the next page", |u| *u != url).await;
            assert!(round < 3, "the IdP kept asking");
        }
    }

    /// Sends a Chrome DevTools Protocol command through chromedriver's
    /// `/session/{id}/goog/cdp/execute`; returns its result.
    pub async fn cdp(&self, cmd: &'static str, params: serde_json::Value) -> serde_json::Value {
        self.client
            .issue_cmd(Cdp { cmd, params })
            .await
            .unwrap_or_else(|e| panic!("CDP {cmd}: {e}"))
    }

    /// Emulates `prefers-color-scheme: dark` (or light) for this tab, across navigations;
    /// panics unless the page then matches it.
    pub async fn color_scheme(&self, dark: bool) {
        let value = if dark { "dark" } else { "light" };
        self.cdp(
            "Emulation.setEmulatedMedia",
            json!({"features": [{"name": "prefers-color-scheme", "value": value}]}),
        )
        .await;
        let matches = self
            .client
            .execute(
                &format!("return matchMedia('(prefers-color-scheme: {value})').matches"),
                vec![],
            )
            .await
            .expect("matchMedia");
        assert_eq!(matches, json!(true), "the page prefers {value}");
    }

    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

/// A CDP command, as chromedriver's vendor endpoint takes it.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: serde_json::Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        let body = json!({"cmd": self.cmd, "params": self.params});
        (axum::http::Method::POST, Some(body.to_string()))
    }
}
