//! Every page a person sees, in a real headless Chromium, checked the way a careful user
//! and an accessibility audit would: at a desktop (1280 px), a phone (390 × 844) and a
//! small phone (320 px), in light and in dark mode (`prefers-color-scheme` emulated over
//! CDP). On each: axe-core (from npm, pinned by `tests/idp/package-lock.json`, injected by
//! executing its source) finds no serious or critical violation; the page never scrolls
//! sideways; the header stays on one line; the dev banner sits inside a landmark; and on
//! the phone the page's decisions (Continue, Deny, …) are on the first screen. Every
//! failure of every page is gathered and reported together. Screenshots of each page in
//! each mode land in `target/screenshots/a11y-*`.

use std::collections::BTreeMap;

use crate::common;

use common::browser::Chrome;
use common::{API_KEY_PROVIDER, GOOD_KEY, TERMS_PROVIDER};
use consent_broker::config::{Config, OAuth2Config, PolicyRuleConfig, ProviderConfig};
use serde_json::{Value, json};

const OAUTH_PROVIDER: &str = "acme-cloud";

/// One way of looking at a page.
struct Mode {
    label: &'static str,
    width: u32,
    height: u32,
    dark: bool,
}

const MODES: [Mode; 5] = [
    Mode {
        label: "1280",
        width: 1280,
        height: 1000,
        dark: false,
    },
    Mode {
        label: "390",
        width: 390,
        height: 844,
        dark: false,
    },
    Mode {
        label: "320",
        width: 320,
        height: 568,
        dark: false,
    },
    Mode {
        label: "dark-1280",
        width: 1280,
        height: 1000,
        dark: true,
    },
    Mode {
        label: "dark-390",
        width: 390,
        height: 844,
        dark: true,
    },
];

/// The phone on which the decisions must be on the first screen.
const PHONE: (u32, u32) = (390, 844);

/// axe-core's source, as `npm ci --prefix tests/idp` installs it.
fn axe_source() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/idp/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{} ({e}): run `npm ci --prefix tests/idp` (scripts/test does)",
            path.display()
        )
    })
}

/// Measures the page: its scroll width, the header's rows, whether the dev banner is in a
/// landmark, and which of the named buttons are not wholly on the first screen.
const MEASURE: &str = "const [names] = arguments;
    const inner = document.querySelector('.site-header__inner');
    // One line: every item of the header overlaps every other vertically.
    const items = inner ? [...inner.children]
      .map(e => e.getBoundingClientRect()).filter(r => r.width > 0) : [];
    const rows = items.length ? Math.max(...items.map(r => r.top))
      - Math.min(...items.map(r => r.bottom)) : -1;
    const find = t => [...document.querySelectorAll('button, a.btn')]
      .find(b => b.textContent.trim() === t);
    const below = names.filter(t => {
      const b = find(t);
      if (!b) return true;
      const r = b.getBoundingClientRect();
      return r.width === 0 || r.top < 0 || r.bottom > window.innerHeight;
    });
    const clipped = e => {
      for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
        if (getComputedStyle(a).overflowX !== 'visible') return true;
      }
      return false;
    };
    const wide = [...document.body.querySelectorAll('*')]
      .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
      .slice(0, 12).map(e => e.tagName.toLowerCase() + '.' + e.className + (clipped(e) ? ' (in a scroller)' : '') + ':' + Math.round(e.getBoundingClientRect().right));
    const banner = document.querySelector('.dev-banner');
    const landmark = 'header, main, footer, nav, aside, [role=banner], [role=main], \
      [role=contentinfo], [role=navigation], [role=complementary], [role=region]';
    return {
      scroll: document.documentElement.scrollWidth,
      inner: window.innerWidth,
      height: window.innerHeight,
      frame: window.outerHeight - window.innerHeight,
      header_rows: rows,
      wide: wide,
      below_fold: below,
      banner: banner ? (banner.closest(landmark) ? 'in a landmark' : 'outside landmarks') : 'none',
    };";

/// Runs axe-core on the page; answers its violations, briefly.
const AXE_RUN: &str = "const done = arguments[arguments.length - 1];
    axe.run(document, {resultTypes: ['violations']})
      .then(r => done(r.violations.map(v => ({
        id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.slice(0, 4).map(n => n.target.join(' ') + ': ' +
          (n.failureSummary || '').replace(/\\s+/g, ' ')),
      }))))
      .catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));";

/// A browser that audits the pages it is on; failures are gathered, not thrown.
struct Auditor {
    chrome: Chrome,
    axe: String,
    dark: bool,
    failures: Vec<String>,
    /// Whether the dev banner was seen on any page (the app runs in dev mode).
    saw_banner: bool,
}

impl Auditor {
    async fn start(name: &str) -> Auditor {
        Auditor {
            chrome: Chrome::start(name).await,
            axe: axe_source(),
            dark: false,
            failures: Vec::new(),
            saw_banner: false,
        }
    }

    /// Resizes so that the viewport is `width` × `height`, then measures.
    async fn measure(&self, width: u32, height: u32, buttons: &[&str]) -> Value {
        let run = || async {
            self.chrome
                .client
                .execute(MEASURE, vec![json!(buttons)])
                .await
                .expect("measured")
        };
        self.chrome.resize(width, height).await;
        let first = run().await;
        let frame = u32::try_from(first["frame"].as_u64().unwrap()).unwrap();
        self.chrome.resize(width, height + frame).await;
        run().await
    }

    async fn axe(&self) -> Vec<Value> {
        let client = &self.chrome.client;
        let loaded = client
            .execute("return typeof axe !== 'undefined'", vec![])
            .await
            .expect("axe check");
        if loaded != json!(true) {
            client
                .execute(&format!("{}\nreturn true;", self.axe), vec![])
                .await
                .expect("axe-core injected");
        }
        let found = client
            .execute_async(AXE_RUN, vec![])
            .await
            .expect("axe ran");
        found.as_array().cloned().unwrap_or_default()
    }

    /// Audits the page the browser is on in every mode; `buttons` must be on the phone's
    /// first screen.
    async fn check(&mut self, page: &str, buttons: &[&str]) {
        let path = self.chrome.path().await;
        for mode in &MODES {
            if mode.dark != self.dark {
                self.chrome.color_scheme(mode.dark).await;
                self.dark = mode.dark;
            }
            let m = self.measure(mode.width, mode.height, buttons).await;
            self.chrome.shot(&format!("{page}-{}", mode.label)).await;
            let at = format!("{page} ({path}) at {}", mode.label);
            let n = |k: &str| m[k].as_f64().unwrap();
            if n("inner") != f64::from(mode.width) {
                self.failures
                    .push(format!("{at}: the viewport is not {} px: {m}", mode.width));
            }
            if n("scroll") > n("inner") {
                self.failures.push(format!(
                    "{at}: the page scrolls sideways ({} px wide): {}",
                    m["scroll"], m["wide"]
                ));
            }
            if n("header_rows") >= 0.0 {
                self.failures
                    .push(format!("{at}: the header wraps ({} px)", m["header_rows"]));
            }
            match m["banner"].as_str() {
                Some("in a landmark") => self.saw_banner = true,
                Some("none") => {}
                _ => {
                    self.saw_banner = true;
                    self.failures
                        .push(format!("{at}: the dev banner is outside every landmark"));
                }
            }
            let below = m["below_fold"].as_array().cloned().unwrap_or_default();
            if (mode.width, mode.height) == PHONE && !mode.dark && !below.is_empty() {
                self.failures.push(format!(
                    "{at}: not on the first screen: {}",
                    Value::from(below)
                ));
            }
            for v in self.axe().await {
                let impact = v["impact"].as_str().unwrap_or("");
                eprintln!("{at}: axe {} ({impact}): {}", v["id"], v["help"]);
                // Moderate and minor findings are printed above, not failed on.
                if matches!(impact, "serious" | "critical") {
                    self.failures.push(format!(
                        "{at}: axe {} ({impact}): {} — {}",
                        v["id"], v["help"], v["nodes"]
                    ));
                }
            }
        }
        // Back to a light desktop for the next click.
        self.chrome.resize(1280, 1000).await;
        if self.dark {
            self.chrome.color_scheme(false).await;
            self.dark = false;
        }
    }
}

fn rule(toml_text: &str) -> PolicyRuleConfig {
    toml::from_str(toml_text).unwrap()
}

/// The test app, plus an OAuth provider whose endpoints are given explicitly (no discovery:
/// its consent page renders without a live upstream) and a policy that makes `write`
/// wait for an administrator.
fn adjust(config: &mut Config) {
    config.policies.push(rule(
        r#"provider = "acme"
           scopes = ["write"]
           approval = "admin""#,
    ));
    config.providers.push(ProviderConfig::Oauth2(OAuth2Config {
        id: OAUTH_PROVIDER.into(),
        name: "Acme Cloud".into(),
        authorization_endpoint: Some(
            "https://login.acme-cloud.example/authorize"
                .parse()
                .unwrap(),
        ),
        token_endpoint: Some("https://login.acme-cloud.example/token".parse().unwrap()),
        client_id: "broker".into(),
        client_secret: Some("not-used-by-this-test".to_owned().into()),
        scopes: BTreeMap::from([("api:read".into(), "Read your Acme Cloud data".into())]),
        ..OAuth2Config::default()
    }));
    config.services[0]
        .allow
        .insert(OAUTH_PROVIDER.into(), vec!["api:read".into()]);
}

#[tokio::test]
async fn every_page_passes_axe_fits_a_phone_and_works_in_dark_mode() {
    let app = common::TestApp::spawn_mode(true, adjust).await;
    let name = "maximiliana.vandersteen@example.com";
    let ask = |provider: &'static str, scopes: &'static [&'static str]| {
        let app = &app;
        async move {
            let created: Value = app
                .create(
                    &app.token,
                    json!({
                        "subject": name,
                        "provider": provider,
                        "scopes": scopes,
                        "message": "I need read access to build your weekly report.",
                    }),
                )
                .await
                .json()
                .await
                .unwrap();
            assert!(created["url"].is_string(), "created: {created}");
            created
        }
    };

    let mut user = Auditor::start("a11y").await;

    // Sign-in, then the API-key consent, the key form and the outcome.
    let first = ask(API_KEY_PROVIDER, &["read"]).await;
    let consent_path = |c: &Value| url::Url::parse(c["url"].as_str().unwrap()).unwrap();
    user.chrome.goto(first["url"].as_str().unwrap()).await;
    user.chrome
        .wait_for_url("sign-in", |u| u.path() == "/login")
        .await;
    user.check("sign-in", &["Sign in"]).await;
    user.chrome.type_into("#username", name).await;
    user.chrome.click_button("Sign in").await;
    let path = consent_path(&first).path().to_owned();
    user.chrome
        .wait_for_url("the consent page", |u| u.path() == path)
        .await;
    user.chrome
        .assert_shows("Service A wants to use your Acme account")
        .await;
    user.check("consent-api-key", &["Continue", "Deny"]).await;
    user.chrome.click_button("Continue").await;
    user.chrome
        .wait_for_url("the key form", |u| u.path().ends_with("/api-key"))
        .await;
    user.check("api-key", &["Save key", "Cancel"]).await;
    user.chrome.type_into("input[name=api_key]", GOOD_KEY).await;
    user.chrome.click_button("Save key").await;
    user.chrome
        .wait_for_url("the outcome", |u| u.path() == path)
        .await;
    user.chrome.assert_shows("Connected").await;
    user.check("connected", &[]).await;
    let grant_id = app.elicitation(first["id"].as_str().unwrap()).await["grant_id"]
        .as_str()
        .expect("a grant")
        .to_owned();

    // An upgrade adding `write`, which an administrator must approve: the waiting page.
    let upgrade = ask(API_KEY_PROVIDER, &["read", "write"]).await;
    let path = consent_path(&upgrade).path().to_owned();
    user.chrome.goto(upgrade["url"].as_str().unwrap()).await;
    user.chrome
        .assert_shows("This replaces your earlier connection")
        .await;
    user.chrome
        .assert_shows("An administrator approves this too")
        .await;
    user.check("upgrade", &["Continue", "Deny"]).await;
    user.chrome.click_button("Continue").await;
    user.chrome
        .wait_for_url("the key form", |u| u.path().ends_with("/api-key"))
        .await;
    user.chrome.type_into("input[name=api_key]", GOOD_KEY).await;
    user.chrome.click_button("Save key").await;
    user.chrome
        .wait_for_url("the outcome", |u| u.path() == path)
        .await;
    user.chrome
        .assert_shows("Waiting for an administrator")
        .await;
    user.check("waiting", &[]).await;

    // Terms.
    let terms = ask(TERMS_PROVIDER, &[]).await;
    user.chrome.goto(terms["url"].as_str().unwrap()).await;
    user.chrome.assert_shows("Acme AI terms").await;
    user.check("terms", &["Accept terms", "Deny"]).await;

    // An OAuth consent, denied: the declined outcome.
    let oauth = ask(OAUTH_PROVIDER, &["api:read"]).await;
    let path = consent_path(&oauth).path().to_owned();
    user.chrome.goto(oauth["url"].as_str().unwrap()).await;
    user.chrome
        .assert_shows("Acme Cloud asks you to sign in and confirm at login.acme-cloud.example")
        .await;
    user.check("consent-oauth", &["Connect Acme Cloud", "Deny"])
        .await;
    user.chrome.click_button("Deny").await;
    user.chrome
        .wait_for_url("the outcome", |u| u.path() == path)
        .await;
    user.check("declined", &[]).await;

    user.chrome.goto(&app.url("/connections")).await;
    user.chrome.assert_shows("Acme").await;
    user.check("connections", &[]).await;

    // In German (longer words), by the footer's switch: connections and the terms consent.
    user.chrome.click("a[hreflang='de']").await;
    user.chrome
        .wait_for_url("connections again", |u| u.path() == "/connections")
        .await;
    user.chrome.assert_shows("Ihre Verbindungen").await;
    user.check("connections-de", &[]).await;
    user.chrome.goto(terms["url"].as_str().unwrap()).await;
    user.chrome.assert_shows("Bedingungen").await;
    user.check("terms-de", &["Bedingungen annehmen", "Ablehnen"])
        .await;

    // The admin console, by a dev administrator with a long name.
    let mut admin = Auditor::start("a11y-admin").await;
    admin.chrome.goto(&app.url("/admin")).await;
    admin
        .chrome
        .wait_for_url("sign-in", |u| u.path() == "/login")
        .await;
    admin
        .chrome
        .type_into("#username", "administrator.of.everything@example.com")
        .await;
    admin.chrome.click("#admin").await;
    admin.chrome.click_button("Sign in").await;
    admin
        .chrome
        .wait_for_url("the console", |u| u.path() == "/admin")
        .await;
    admin.check("admin-overview", &[]).await;
    // A service waiting for approval (its page has the approval form) and an active one
    // (its suspension asks to keep or revoke its grants).
    let root = consent_broker::domain::Subject::parse("root").unwrap();
    let description = |name: &str| consent_broker::broker::ServiceDescription {
        name: name.into(),
        scopes: [(API_KEY_PROVIDER.to_owned(), vec!["read".to_owned()])].into(),
        ..Default::default()
    };
    let (initial, _) = app
        .broker
        .mint_initial_token(&root, "partner", 1, 1)
        .await
        .unwrap();
    let pending = app
        .broker
        .register_with_initial_token(&initial, &description("Reports MCP"))
        .await
        .unwrap()
        .service
        .id;
    let active = app
        .broker
        .register_by_admin(&root, &description("Tickets MCP"))
        .await
        .unwrap()
        .service
        .id;
    for (page, path) in [
        ("admin-grants", "/admin/grants".to_owned()),
        ("admin-grant", format!("/admin/grants/{grant_id}")),
        ("admin-audit", "/admin/audit".to_owned()),
        ("admin-governance", "/admin/governance".to_owned()),
        ("admin-services", "/admin/services".to_owned()),
        (
            "admin-service-pending",
            format!("/admin/services/{pending}"),
        ),
        ("admin-service-active", format!("/admin/services/{active}")),
        (
            "admin-service-suspend",
            format!("/admin/services/{active}/suspend"),
        ),
    ] {
        admin.chrome.goto(&app.url(&path)).await;
        admin.chrome.wait_for_url(page, |u| u.path() == path).await;
        let text = admin.chrome.text().await;
        assert!(!text.contains("Not found"), "{page}: {text}");
        admin.check(page, &[]).await;
    }
    admin.chrome.goto(&app.url("/admin/governance")).await;
    admin.chrome.assert_shows("Waiting for approval (1)").await;

    let mut failures = std::mem::take(&mut user.failures);
    failures.append(&mut admin.failures);
    assert!(
        user.saw_banner && admin.saw_banner,
        "the dev banner was never seen (the app runs in dev mode)"
    );
    user.chrome.close().await;
    admin.chrome.close().await;
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A 1 × 1 PNG, as an inline logo.
const LOGO: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

/// What a page shows of the branding: title, header name and logo, footer, the links, and
/// the primary button's colour.
const BRANDING: &str = "const button = document.querySelector('.btn--primary');
    const link = t => [...document.querySelectorAll('.site-footer a')]
      .find(a => a.textContent.trim() === t);
    return {
      title: document.title,
      name: document.querySelector('.brand__name').textContent.trim(),
      logo: document.querySelector('.brand__logo')?.getAttribute('src') ?? null,
      logo_loaded: document.querySelector('.brand__logo')?.naturalWidth ?? 0,
      footer: document.querySelector('.site-footer p').textContent.trim(),
      support: link('Help and support')?.href ?? null,
      privacy: link('Privacy notice')?.href ?? null,
      button: button ? getComputedStyle(button).backgroundColor : null,
    };";

fn rgb(hex: &str) -> String {
    let [r, g, b] = consent_broker::config::branding::Rgb::parse(hex).unwrap().0;
    format!("rgb({r}, {g}, {b})")
}

#[tokio::test]
async fn an_organisations_branding_shows_on_every_page_in_a_readable_accent() {
    let app = common::TestApp::spawn_mode(true, |c| {
        c.branding = consent_broker::config::BrandingConfig {
            product_name: Some("Acme Access".into()),
            logo_url: Some(LOGO.into()),
            accent_colour: Some("#6a1b9a".into()),
            support_url: Some("https://help.acme.example/ai".parse().unwrap()),
            privacy_url: Some("https://acme.example/privacy".parse().unwrap()),
            time_zone: Some("Asia/Tokyo".into()),
        };
    })
    .await;
    let accent = consent_broker::config::branding::Accent::new(
        consent_broker::config::branding::Rgb::parse("#6a1b9a").unwrap(),
    )
    .unwrap();
    let created: Value = app
        .create(
            &app.token,
            json!({"subject": "alice", "provider": API_KEY_PROVIDER, "scopes": ["read"],
                   "message": "Acme Access needs you to confirm this."}),
        )
        .await
        .json()
        .await
        .unwrap();

    let mut user = Auditor::start("branding").await;
    user.chrome.goto(created["url"].as_str().unwrap()).await;
    user.chrome
        .wait_for_url("sign-in", |u| u.path() == "/login")
        .await;
    let shows = |b: &Value, page: &str| {
        assert_eq!(b["name"], "Acme Access", "{page}: {b}");
        assert!(
            b["title"].as_str().unwrap().ends_with(" · Acme Access"),
            "{page}: {b}"
        );
        assert_eq!(b["logo"], LOGO, "{page}: {b}");
        assert_eq!(
            b["logo_loaded"], 1,
            "{page}: the logo loads under the CSP: {b}"
        );
        assert_eq!(
            b["footer"], "Acme Access · Only approve requests that you started yourself.",
            "{page}: {b}"
        );
        assert_eq!(b["support"], "https://help.acme.example/ai", "{page}: {b}");
        assert_eq!(b["privacy"], "https://acme.example/privacy", "{page}: {b}");
    };
    let seen = user.chrome.client.execute(BRANDING, vec![]).await.unwrap();
    shows(&seen, "sign-in");
    assert_eq!(seen["button"], rgb("#6a1b9a"), "the accent: {seen}");
    user.check("branding-sign-in", &["Sign in"]).await;
    user.chrome.type_into("#username", "alice").await;
    user.chrome.click_button("Sign in").await;
    let path = url::Url::parse(created["url"].as_str().unwrap())
        .unwrap()
        .path()
        .to_owned();
    user.chrome
        .wait_for_url("the consent page", |u| u.path() == path)
        .await;
    let text = user.chrome.text().await;
    assert!(
        !text.contains("consent-broker"),
        "the product name replaces consent-broker:\n{text}"
    );
    user.chrome
        .assert_shows("Acme Access stores it encrypted.")
        .await;
    user.chrome
        .assert_shows("Written by Service A, not by Acme Access:")
        .await;
    // Times in the organisation's zone, UTC beside them, the instant in `<time>`.
    let expiry = user.chrome.find(".expiry time").await;
    let iso = expiry.attr("datetime").await.unwrap().expect("datetime");
    let instant =
        time::OffsetDateTime::parse(&iso, &time::format_description::well_known::Rfc3339).unwrap();
    // Tokyo keeps +09:00 all year; UTC's date is added when it differs.
    let tokyo = instant.to_offset(time::UtcOffset::from_hms(9, 0, 0).unwrap());
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    let utc_fmt = if tokyo.date() == instant.date() {
        time::macros::format_description!("[hour]:[minute]")
    } else {
        fmt
    };
    assert_eq!(
        expiry.text().await.unwrap(),
        format!(
            "{} JST ({} UTC)",
            tokyo.format(&fmt).unwrap(),
            instant.format(&utc_fmt).unwrap()
        )
    );
    // The message names the product: it is shown with the warning.
    user.chrome.assert_shows("Be careful").await;
    let seen = user.chrome.client.execute(BRANDING, vec![]).await.unwrap();
    shows(&seen, "consent");
    assert_eq!(seen["button"], rgb("#6a1b9a"));
    user.chrome.color_scheme(true).await;
    // Buttons ease into a new colour: wait (bounded) for the transition to end.
    let mut dark = Value::Null;
    for _ in 0..30 {
        dark = user.chrome.client.execute(BRANDING, vec![]).await.unwrap();
        if dark["button"] == rgb(&accent.dark.hex()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        dark["button"],
        rgb(&accent.dark.hex()),
        "the derived dark accent: {dark}"
    );
    user.chrome.color_scheme(false).await;
    user.check("branding-consent", &["Continue", "Deny"]).await;

    // An error page, rendered without the user's session, is branded too.
    user.chrome.goto(&app.url("/e/no-such-request")).await;
    user.chrome.assert_shows("Request not found").await;
    let seen = user.chrome.client.execute(BRANDING, vec![]).await.unwrap();
    shows(&seen, "error");

    let failures = std::mem::take(&mut user.failures);
    user.chrome.close().await;
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
