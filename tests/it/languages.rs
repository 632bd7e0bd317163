//! The end-user pages in a second language (German): chosen by `Accept-Language`, or by
//! the switch every end-user page shows, which keeps the page (and a sign-in page's own
//! `return_to`), the session and its CSRF token, and refuses to send anyone elsewhere.

use crate::common;

use common::{API_KEY_PROVIDER, Browser, GOOD_KEY, TestApp};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT_LANGUAGE, HeaderMap, HeaderValue, LOCATION};

/// A browser whose user prefers German.
fn german(app: &TestApp) -> Browser {
    let mut headers = HeaderMap::new();
    headers.insert(
        ACCEPT_LANGUAGE,
        HeaderValue::from_static("de-DE,de;q=0.9,en;q=0.5"),
    );
    Browser {
        base: app.base.clone(),
        client: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers)
            .build()
            .unwrap(),
    }
}

#[tokio::test]
async fn a_german_browser_gets_german_pages_and_the_switch_keeps_the_page_and_session() {
    let app = TestApp::spawn().await;
    let created = app
        .create_pending("alice", API_KEY_PROVIDER, &["read"])
        .await;
    let id = created["id"].as_str().unwrap();
    let url = created["url"].as_str().unwrap();
    let browser = german(&app);

    let login = browser.open(url).await;
    assert_eq!(login.path, "/login");
    login.assert_shows("<html lang=\"de\">");
    login.assert_shows("Eine Verbindungsanfrage wartet auf Sie.");
    login.assert_shows(">Anmelden</button>");
    login.assert_shows("lang=\"en\">English</a>");

    let consent = browser.open_as(url, "alice").await;
    assert_eq!(consent.path, format!("/e/{id}"));
    consent.assert_shows("<strong>Service A</strong> möchte Ihr Acme-Konto verwenden");
    consent.assert_shows(
        "Service A erhält den Schlüssel, wenn es für Sie Acme aufruft. Ihr KI-Client und das Modell sehen ihn nie.",
    );
    consent.assert_shows(">Weiter</button>");
    consent.assert_shows(">Ablehnen</button>");
    consent.assert_shows("Dieser Link läuft in 15 Minuten ab");
    assert!(!consent.html.contains("wants to use"), "{}", consent.html);

    // The switch: back on the same request, in English, same session and CSRF token.
    let english = browser.open(&consent.link("/lang/en")).await;
    assert_eq!(english.path, format!("/e/{id}"));
    english.assert_shows("<html lang=\"en\">");
    english.assert_shows("<strong>Service A</strong> wants to use your Acme account");
    english.assert_shows(">Continue</button>");
    english.assert_shows("lang=\"de\">Deutsch</a>");
    assert_eq!(english.csrf(), consent.csrf(), "the session is the same");

    // The choice outlasts the page (the cookie wins over Accept-Language), and forms work.
    let form = browser
        .submit(&format!("/e/{id}/approve"), &[("csrf", &english.csrf())])
        .await;
    assert_eq!(form.path, format!("/e/{id}/api-key"));
    form.assert_shows(">Save key</button>");
    let german_form = browser.open(&form.link("/lang/de")).await;
    assert_eq!(german_form.path, format!("/e/{id}/api-key"));
    german_form.assert_shows("Geben Sie Ihren Acme-API-Schlüssel ein");
    german_form.assert_shows(">Schlüssel speichern</button>");
    let done = browser
        .submit(
            &format!("/e/{id}/api-key"),
            &[("csrf", &german_form.csrf()), ("api_key", GOOD_KEY)],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK);
    done.assert_shows(">Verbunden</h1>");
    done.assert_shows("Service A kann jetzt Ihren Acme-Zugriff nutzen.");
    assert_eq!(app.elicitation(id).await["status"], "completed");

    let connections = browser.open("/connections").await;
    connections.assert_shows(">Ihre Verbindungen</h1>");
    connections.assert_shows("<dt>Berechtigungen</dt><dd><code>read</code>");
    connections.assert_shows("<dt>Art</dt><dd>API-Schlüssel</dd>");
    connections.assert_shows("<dt>Zuletzt genutzt</dt><dd>nie</dd>");
    connections.assert_shows(">Aktiv</span>");
    assert!(
        !connections.html.contains("Permissions"),
        "{}",
        connections.html
    );
}

#[tokio::test]
async fn switching_on_the_sign_in_page_keeps_its_way_back_to_the_request() {
    let app = TestApp::spawn().await;
    let created = app.create_pending("bob", API_KEY_PROVIDER, &["read"]).await;
    let id = created["id"].as_str().unwrap();
    let browser = app.browser();
    let login = browser.open(created["url"].as_str().unwrap()).await;
    login.assert_shows("<html lang=\"en\">");
    login.assert_shows("A connection request is waiting for you.");

    let deutsch = browser.open(&login.link("/lang/de")).await;
    assert_eq!(deutsch.path, "/login");
    deutsch.assert_shows("<html lang=\"de\">");
    deutsch.assert_shows("Eine Verbindungsanfrage wartet auf Sie.");
    deutsch.assert_shows(&format!("name=\"return_to\" value=\"/e/{id}\""));
    let consent = browser
        .submit(
            "/login/dev",
            &[
                ("csrf", &deutsch.csrf()),
                ("username", "bob"),
                ("return_to", &format!("/e/{id}")),
            ],
        )
        .await;
    assert_eq!(consent.path, format!("/e/{id}"));
    consent.assert_shows("möchte Ihr Acme-Konto verwenden");
}

#[tokio::test]
async fn the_switch_sends_nobody_to_another_site() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    for (target, expected) in [
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/%5Cevil.example", "/"),
        ("/\\evil.example", "/"),
        ("/connections", "/connections"),
    ] {
        let r = browser
            .client
            .get(app.url("/lang/de"))
            .query(&[("return_to", target)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{target}");
        assert_eq!(r.headers()[LOCATION], expected, "{target}");
        let cookie = r.headers()["set-cookie"].to_str().unwrap();
        assert!(cookie.starts_with("cb_lang=de;"), "{cookie}");
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    }
    let unknown = browser.open("/lang/xx?return_to=/").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    // The switch's way back is the page's path: a query (an OAuth callback's code) is not
    // copied into a link.
    let page = browser.open("/no-such-page?code=the-code-123").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    page.assert_shows("href=\"/lang/en?return_to=/no-such-page\"");
    assert!(!page.html.contains("the-code-123"), "{}", page.html);
}

#[tokio::test]
async fn refusals_are_in_the_users_language_too() {
    let app = TestApp::spawn().await;
    let for_carol = app
        .create_pending("carol", API_KEY_PROVIDER, &["read"])
        .await;
    let browser = german(&app);
    let missing = browser
        .open_as(&app.url("/e/no-such-request"), "dave")
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    missing.assert_shows(">Anfrage nicht gefunden</h1>");
    missing.assert_shows("Fehlercode: elicitation_not_found");
    let other = browser.open(for_carol["url"].as_str().unwrap()).await;
    other.assert_shows(">Dieser Link gilt für ein anderes Konto</h1>");
    other.assert_shows("es wurde daher nichts gezeigt oder geteilt.");
}
