//! A loopback fake OAuth 2 authorization server for one provider preset, driven by its
//! fixture in `tests/fixtures/providers/{preset}.json`. It answers authorize, token and
//! revocation requests the way the provider documents, and checks every request the broker
//! sends: client authentication, body format, headers, scopes and their separator, PKCE, the
//! parameters the preset must add, and where a token to revoke travels.
//!
//! It owns the codes and tokens it issued (grouped per grant: one code exchange is one
//! grant), the requests it received and the checks they failed. `assert_clean` turns those
//! failures into a test failure; a failed check also answers `invalid_request`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// Query or body parameters, first value of each name.
type Params = BTreeMap<String, String>;

/// The checks one request failed.
type Problems = Vec<String>;

pub struct FakeUpstream {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The provider fixture the fake plays.
    pub fixture: Value,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Every provider with a fixture file, sorted.
pub fn fixture_names() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/providers");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".json").map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

impl FakeUpstream {
    /// Starts the fake for `preset` (file tests/fixtures/providers/{preset}.json) on 127.0.0.1:0.
    pub async fn start(
        preset: &str,
        client_id: &str,
        client_secret: &str,
        redirect_uri: &str,
    ) -> FakeUpstream {
        let fixture = load_fixture(preset);
        let setup = Setup {
            preset: preset.to_owned(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            authorize_path: endpoint_path(&fixture, "/authorize/url").expect("authorize.url"),
            token_path: endpoint_path(&fixture, "/token/url").expect("token.url"),
            revoke_path: endpoint_path(&fixture, "/revoke/url"),
            fixture: fixture.clone(),
        };
        let shared = Arc::new(Shared {
            setup,
            ledger: Mutex::new(Ledger::default()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake upstream binds 127.0.0.1:0");
        let base = format!("http://{}", listener.local_addr().expect("local address"));
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeUpstream {
            base,
            fixture,
            shared,
            server,
        }
    }

    /// base + the path of fixture authorize.url (template variables in the host are dropped;
    /// a `{tenant}` in the path is replaced by the fixture's variables.tenant.example).
    pub fn authorization_endpoint(&self) -> String {
        format!("{}{}", self.base, self.shared.setup.authorize_path)
    }

    /// base + the path of fixture token.url, by the same rule.
    pub fn token_endpoint(&self) -> String {
        format!("{}{}", self.base, self.shared.setup.token_path)
    }

    /// base + path of revoke.url, keeping placeholders the broker fills in: `{client_id}`
    /// stays, a token placeholder (`{refresh_token}`/`{access_token}`) becomes `{token}`.
    /// None when revoke is null.
    pub fn revocation_url(&self) -> Option<String> {
        let path = self.shared.setup.revoke_path.as_ref()?;
        let path = path
            .replace("{refresh_token}", "{token}")
            .replace("{access_token}", "{token}");
        Some(format!("{}{path}", self.base))
    }

    /// Makes every refresh token issued so far dead: the next refresh answers fixture
    /// token.dead_refresh.
    pub fn kill_refresh_tokens(&self) {
        for grant in &mut self.shared.lock().grants {
            grant.refresh = None;
        }
    }

    /// The access tokens currently live (issued, not revoked, not replaced).
    pub fn live_access_tokens(&self) -> Vec<String> {
        let ledger = self.shared.lock();
        ledger
            .grants
            .iter()
            .filter_map(|g| g.access.clone())
            .collect()
    }

    /// Every token this fake ever issued, access and refresh, live or not.
    pub fn issued_tokens(&self) -> Vec<String> {
        let ledger = self.shared.lock();
        ledger
            .grants
            .iter()
            .flat_map(|g| g.issued.iter().map(|(t, _)| t.clone()))
            .collect()
    }

    /// Every request received, as "METHOD /path" (query dropped), in order.
    pub fn calls(&self) -> Vec<String> {
        self.shared.lock().calls.clone()
    }

    /// Panics listing every check the broker's requests failed. Tests call it at the end.
    pub fn assert_clean(&self) {
        let violations = self.shared.lock().violations.clone();
        if !violations.is_empty() {
            panic!(
                "fake {} upstream: the broker's requests failed {} check(s):\n  {}",
                self.shared.setup.preset,
                violations.len(),
                violations.join("\n  ")
            );
        }
    }
}

/// What the fake was started with; never changes.
struct Setup {
    preset: String,
    client_id: String,
    client_secret: String,
    redirect_uri: String,
    fixture: Value,
    authorize_path: String,
    token_path: String,
    /// With its placeholders (`{client_id}`, `{refresh_token}`, …) as the fixture writes them.
    revoke_path: Option<String>,
}

struct Shared {
    setup: Setup,
    ledger: Mutex<Ledger>,
}

/// What happened so far.
#[derive(Default)]
struct Ledger {
    calls: Vec<String>,
    violations: Vec<String>,
    codes: HashMap<String, Code>,
    grants: Vec<Grant>,
    serial: u64,
}

/// An authorization code this fake issued.
struct Code {
    /// The PKCE S256 challenge of its authorize request.
    challenge: Option<String>,
    used: bool,
}

/// The tokens of one code exchange.
#[derive(Default)]
struct Grant {
    /// The live access token, if any.
    access: Option<String>,
    /// The live refresh token, if any.
    refresh: Option<String>,
    /// Every token ever issued to this grant, live or not.
    issued: Vec<(String, Kind)>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Access,
    Refresh,
}

/// A token this fake knows: its grant, its kind and whether it is live.
struct Known {
    grant: usize,
    kind: Kind,
    live: bool,
}

impl Ledger {
    /// A fresh, unique token derived from the fixture's value.
    fn fresh(&mut self, fixture_value: &str) -> String {
        self.serial += 1;
        format!("{fixture_value}.{}", self.serial)
    }

    fn find(&self, token: &str) -> Option<Known> {
        self.grants.iter().enumerate().find_map(|(grant, g)| {
            let (_, kind) = g.issued.iter().find(|(t, _)| t == token)?;
            let live = g.access.as_deref() == Some(token) || g.refresh.as_deref() == Some(token);
            Some(Known {
                grant,
                kind: *kind,
                live,
            })
        })
    }

    /// Replaces the tokens of a fixture answer's token object with fresh ones for `grant`.
    /// A refresh token is minted only when `new_refresh`; otherwise the grant's live one is
    /// echoed (a non-rotating provider that repeats it, HubSpot).
    fn stamp(&mut self, grant: usize, tokens: Option<&mut Map<String, Value>>, new_refresh: bool) {
        let Some(tokens) = tokens else { return };
        if let Some(Value::String(fixture)) = tokens.get("access_token") {
            let token = self.fresh(fixture);
            self.grants[grant].access = Some(token.clone());
            self.grants[grant]
                .issued
                .push((token.clone(), Kind::Access));
            tokens.insert("access_token".into(), token.into());
        }
        if let Some(Value::String(fixture)) = tokens.get("refresh_token") {
            let token = if new_refresh {
                let token = self.fresh(fixture);
                self.grants[grant].refresh = Some(token.clone());
                self.grants[grant]
                    .issued
                    .push((token.clone(), Kind::Refresh));
                token
            } else {
                self.grants[grant].refresh.clone().unwrap_or_default()
            };
            tokens.insert("refresh_token".into(), token.into());
        }
    }
}

/// One request as received.
struct Request {
    method: Method,
    path: String,
    query: Params,
    headers: HeaderMap,
    body: Bytes,
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = Request {
        method,
        path: uri.path().to_owned(),
        query: parse_pairs(uri.query().unwrap_or("").as_bytes()),
        headers,
        body,
    };
    let call = format!("{} {}", request.method, request.path);
    shared.lock().calls.push(call);
    shared.dispatch(&request)
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().expect("fake upstream ledger")
    }

    /// The fixture member at a JSON pointer, `null` when absent.
    fn f(&self, pointer: &str) -> &Value {
        self.setup.fixture.pointer(pointer).unwrap_or(&Value::Null)
    }

    fn dispatch(&self, request: &Request) -> Response {
        let s = &self.setup;
        if request.method == Method::GET && request.path == s.authorize_path {
            return self.authorize(request);
        }
        if request.method == Method::POST && request.path == s.token_path {
            return self.token(request);
        }
        if let Some(captures) = self.revoke_route(request) {
            return self.revoke(request, &captures);
        }
        let what = format!("{} {}", request.method, request.path);
        self.fail(&what, vec!["no such endpoint at this provider".into()]);
        json_response(404, &json!({"error": "not_found"}))
    }

    /// Records every problem as a violation; returns the `error_description` to answer.
    fn fail(&self, what: &str, problems: Problems) -> String {
        let mut ledger = self.lock();
        for problem in &problems {
            ledger.violations.push(format!("{what}: {problem}"));
        }
        format!("fake {}: {}", self.setup.preset, problems.join("; "))
    }

    fn invalid_request(&self, what: &str, problems: Problems) -> Response {
        let description = self.fail(what, problems);
        json_response(
            400,
            &json!({"error": "invalid_request", "error_description": description}),
        )
    }

    // --- authorize ---------------------------------------------------------------------

    fn authorize(&self, request: &Request) -> Response {
        let q = &request.query;
        let s = &self.setup;
        let mut p = Problems::new();
        expect_param(&mut p, q, "client_id", &s.client_id);
        expect_param(&mut p, q, "redirect_uri", &s.redirect_uri);
        expect_param(&mut p, q, "response_type", "code");
        if q.get("state").is_none_or(|v| v.is_empty()) {
            p.push("no `state`".into());
        }
        let challenge = self.check_pkce_challenge(&mut p, q);
        self.check_required_params(&mut p, q);
        self.check_scopes(&mut p, q);
        let state = q.get("state").cloned().unwrap_or_default();
        if !p.is_empty() {
            let description = self.fail("GET authorize", p);
            return self.redirect(&[
                ("error", "invalid_request"),
                ("error_description", &description),
                ("state", &state),
            ]);
        }
        if q.contains_key("resource") && self.f("/authorize/resource") == "rejected" {
            return self.redirect(&[("error", "invalid_target"), ("state", &state)]);
        }
        let code = random_code();
        let record = Code {
            challenge,
            used: false,
        };
        self.lock().codes.insert(code.clone(), record);
        self.redirect(&[("code", &code), ("state", &state)])
    }

    /// Checks the PKCE challenge; returns it when one is expected and sent.
    fn check_pkce_challenge(&self, p: &mut Problems, q: &Params) -> Option<String> {
        let challenge = q.get("code_challenge");
        if self.f("/authorize/pkce") == "unsupported" {
            if challenge.is_some() {
                p.push("`code_challenge` sent, but the provider has no PKCE".into());
            }
            return None;
        }
        let Some(challenge) = challenge else {
            p.push("no PKCE `code_challenge`".into());
            return None;
        };
        expect_param(p, q, "code_challenge_method", "S256");
        if challenge.len() != 43 {
            p.push(format!(
                "`code_challenge` {challenge:?} is not a base64url SHA-256 (43 characters)"
            ));
        }
        Some(challenge.clone())
    }

    fn check_required_params(&self, p: &mut Problems, q: &Params) {
        let Some(required) = self.f("/authorize/required_params").as_object() else {
            return;
        };
        for (name, value) in required {
            if name != "response_type" {
                expect_param(p, q, name, value.as_str().unwrap_or_default());
            }
        }
    }

    fn check_scopes(&self, p: &mut Problems, q: &Params) {
        let param = self.f("/authorize/scope_param").as_str();
        if param != Some("scope") && q.contains_key("scope") {
            let carrier = param.map_or("no scopes".to_owned(), |c| format!("`{c}`"));
            p.push(format!(
                "a `scope` parameter was sent, but the provider takes {carrier}"
            ));
        }
        let Some(param) = param else { return };
        let Some(sent) = q.get(param) else {
            p.push(format!("no `{param}` parameter"));
            return;
        };
        let separator = self.f("/authorize/scope_separator").as_str().unwrap_or(" ");
        let wrong_separator = if separator == "," {
            sent.contains(char::is_whitespace)
        } else {
            sent.contains(',')
        };
        if wrong_separator {
            p.push(format!(
                "`{param}` {sent:?} uses the wrong separator (the provider splits on {separator:?})"
            ));
        }
        let got: BTreeSet<&str> = if sent.is_empty() {
            BTreeSet::new()
        } else {
            sent.split(separator).collect()
        };
        let want = self.expected_scopes();
        if got != want.iter().map(String::as_str).collect() {
            p.push(format!("`{param}` asks {got:?}, expected {want:?}"));
        }
    }

    /// scenario.requested_scopes ∪ authorize.required_scopes.
    fn expected_scopes(&self) -> BTreeSet<String> {
        ["/scenario/requested_scopes", "/authorize/required_scopes"]
            .iter()
            .filter_map(|pointer| self.f(pointer).as_array())
            .flatten()
            .filter_map(|scope| scope.as_str().map(str::to_owned))
            .collect()
    }

    /// 302 back to the redirect URI with these query parameters.
    fn redirect(&self, params: &[(&str, &str)]) -> Response {
        let mut location =
            url::Url::parse(&self.setup.redirect_uri).expect("redirect_uri is a URL");
        location.query_pairs_mut().extend_pairs(params);
        Response::builder()
            .status(StatusCode::FOUND)
            .header(header::LOCATION, location.as_str())
            .body(Body::empty())
            .expect("redirect response")
    }

    // --- token -------------------------------------------------------------------------

    fn token(&self, request: &Request) -> Response {
        let mut p = Problems::new();
        let format = self.f("/token/request_format").as_str();
        let body = read_body(&mut p, request, format, true);
        let auth = self.f("/token/auth/0").as_str().unwrap_or("post");
        self.check_client_auth(&mut p, request, &body, auth);
        check_headers(&mut p, &request.headers, self.f("/token/request_headers"));
        if !p.is_empty() {
            return self.invalid_request("POST token", p);
        }
        match body.get("grant_type").map(String::as_str) {
            Some("authorization_code") => self.exchange(&body),
            Some("refresh_token") => self.refresh(&body),
            other => {
                let description = self.fail("POST token", vec![format!("grant_type {other:?}")]);
                json_response(
                    400,
                    &json!({"error": "unsupported_grant_type", "error_description": description}),
                )
            }
        }
    }

    /// Client authentication exactly as `style` (`basic` or `post`) says.
    fn check_client_auth(&self, p: &mut Problems, request: &Request, body: &Params, style: &str) {
        let s = &self.setup;
        let authorization = request.headers.get(header::AUTHORIZATION);
        if style == "basic" {
            self.check_basic(p, &request.headers);
            if body.contains_key("client_secret") {
                p.push("client_secret in the body as well (the provider takes Basic)".into());
            }
            if body.get("client_id").is_some_and(|id| id != &s.client_id) {
                p.push("a body client_id that is not this client's".into());
            }
            return;
        }
        if authorization.is_some() {
            p.push(
                "an Authorization header (the provider takes client credentials in the body)"
                    .into(),
            );
        }
        expect_param(p, body, "client_id", &s.client_id);
        match body.get("client_secret") {
            None => p.push("no client_secret in the body".into()),
            Some(secret) if secret != &s.client_secret => {
                p.push("client_secret in the body is not this client's".into());
            }
            Some(_) => {}
        }
    }

    /// `Authorization: Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
    fn check_basic(&self, p: &mut Problems, headers: &HeaderMap) {
        let s = &self.setup;
        let raw = format!("{}:{}", s.client_id, s.client_secret);
        let encoded = format!(
            "{}:{}",
            form_encode(&s.client_id),
            form_encode(&s.client_secret)
        );
        let Some(got) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            p.push("no Authorization: Basic client credentials".into());
            return;
        };
        let decoded = got
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
            .and_then(|(_, b64)| STANDARD.decode(b64.trim()).ok())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
        match decoded {
            None => p.push(format!(
                "Authorization {got:?} is not Basic client credentials"
            )),
            Some(d) if d == encoded => {}
            Some(d) if d == raw => {
                p.push("Basic credentials are not form-urlencoded (RFC 6749 §2.3.1)".into());
            }
            Some(_) => p.push("Basic credentials are not this client's".into()),
        }
    }

    /// A `resource` parameter the provider rejects (Entra v2.0): its answer.
    fn rejected_resource(&self, params: &Params) -> Option<Response> {
        let rejected =
            params.contains_key("resource") && self.f("/authorize/resource") == "rejected";
        rejected.then(|| json_response(400, &json!({"error": "invalid_target"})))
    }

    fn exchange(&self, body: &Params) -> Response {
        if let Some(answer) = self.rejected_resource(body) {
            return answer;
        }
        let code = body.get("code").map(String::as_str).unwrap_or_default();
        let Some(challenge) = self.redeem_code(code) else {
            return self.token_error("/token/bad_code", "invalid_grant");
        };
        let mut p = Problems::new();
        expect_param(&mut p, body, "redirect_uri", &self.setup.redirect_uri);
        check_verifier(&mut p, body, challenge.as_deref());
        if !p.is_empty() {
            return self.invalid_request("POST token (authorization_code)", p);
        }
        let mut answer = self.f("/token/success").clone();
        let path = self.f("/token/token_path").as_str().unwrap_or_default();
        let mut ledger = self.lock();
        ledger.grants.push(Grant::default());
        let grant = ledger.grants.len() - 1;
        ledger.stamp(grant, object_at(&mut answer["body"], path), true);
        drop(ledger);
        fixture_answer(&answer)
    }

    /// Marks `code` used; returns its challenge when it was issued here and unused.
    fn redeem_code(&self, code: &str) -> Option<Option<String>> {
        let mut ledger = self.lock();
        let record = ledger.codes.get_mut(code)?;
        if record.used {
            return None;
        }
        record.used = true;
        Some(record.challenge.clone())
    }

    fn refresh(&self, body: &Params) -> Response {
        if self.f("/token/refresh_success").is_null() {
            let problem = "a refresh_token grant, but the provider issues no refresh tokens";
            let description = self.fail("POST token", vec![problem.into()]);
            return json_response(
                400,
                &json!({"error": "unsupported_grant_type", "error_description": description}),
            );
        }
        if let Some(answer) = self.rejected_resource(body) {
            return answer;
        }
        let Some(token) = body.get("refresh_token") else {
            return self.invalid_request(
                "POST token (refresh_token)",
                vec!["no refresh_token".into()],
            );
        };
        let mut answer = self.f("/token/refresh_success").clone();
        let path = self
            .f("/token/refresh_token_path")
            .as_str()
            .unwrap_or_default();
        let rotates = self.f("/token/refresh_rotates").as_bool() == Some(true);
        let mut ledger = self.lock();
        let live = ledger
            .find(token)
            .filter(|k| k.live && k.kind == Kind::Refresh);
        let Some(Known { grant, .. }) = live else {
            drop(ledger);
            return self.token_error("/token/dead_refresh", "invalid_grant");
        };
        if rotates {
            ledger.grants[grant].refresh = None;
        }
        ledger.stamp(grant, object_at(&mut answer["body"], path), rotates);
        drop(ledger);
        fixture_answer(&answer)
    }

    /// The fixture's error answer at `pointer`, else 400 `{"error": fallback}`.
    fn token_error(&self, pointer: &str, fallback: &str) -> Response {
        match self.f(pointer) {
            Value::Null => json_response(400, &json!({ "error": fallback })),
            spec => fixture_answer(spec),
        }
    }

    // --- revoke ------------------------------------------------------------------------

    /// The placeholders of the revocation path, when this request is a revocation.
    fn revoke_route(&self, request: &Request) -> Option<Vec<(String, String)>> {
        let pattern = self.setup.revoke_path.as_ref()?;
        let method = self.f("/revoke/method").as_str().unwrap_or("POST");
        if request.method.as_str() != method {
            return None;
        }
        match_path(pattern, &request.path)
    }

    fn revoke(&self, request: &Request, captures: &[(String, String)]) -> Response {
        let mut p = Problems::new();
        let rfc7009 = self.f("/revoke/style") == "rfc7009";
        let body_expected = rfc7009
            || self
                .f("/revoke/body")
                .as_object()
                .is_some_and(|b| !b.is_empty());
        let format = self.f("/revoke/body_format").as_str();
        let body = read_body(&mut p, request, format, body_expected);
        let bearer = self.check_revoke_auth(&mut p, request, &body);
        check_headers(&mut p, &request.headers, self.f("/revoke/headers"));
        let token = if rfc7009 {
            rfc7009_token(&mut p, &body)
        } else {
            self.declared_token(&mut p, captures, &body, bearer)
        };
        let token = token.unwrap_or_default();
        self.check_revoked_kind(&mut p, &token);
        if !p.is_empty() {
            let what = format!("{} revoke", request.method);
            return self.invalid_request(&what, p);
        }
        self.revoke_effect(&token)
    }

    /// Checks revoke.auth; returns the bearer token when that is how it authenticates.
    fn check_revoke_auth(
        &self,
        p: &mut Problems,
        request: &Request,
        body: &Params,
    ) -> Option<String> {
        let auth = self.f("/revoke/auth").as_str().unwrap_or("none");
        if auth == "basic" || auth == "post" {
            self.check_client_auth(p, request, body, auth);
            return None;
        }
        let authorization = request
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if body.contains_key("client_id") || body.contains_key("client_secret") {
            p.push("client credentials in the body (the provider takes none)".into());
        }
        if auth != "bearer_token" {
            if authorization.is_some() {
                p.push("an Authorization header (the provider takes no client credentials)".into());
            }
            return None;
        }
        let bearer = authorization
            .and_then(|a| a.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim().to_owned());
        if bearer.is_none() {
            p.push("no Authorization: Bearer <access token>".into());
        }
        bearer
    }

    /// Where a declared revocation carries its token: the path, the body, else the bearer.
    fn declared_token(
        &self,
        p: &mut Problems,
        captures: &[(String, String)],
        body: &Params,
        bearer: Option<String>,
    ) -> Option<String> {
        let mut token = None;
        for (name, value) in captures {
            token = token.or(self.placeholder(p, name, value));
        }
        if let Some(spec) = self.f("/revoke/body").as_object() {
            for (member, want) in spec {
                let want = want.as_str().unwrap_or_default();
                token = token.or(self.body_member(p, body, member, want));
            }
        }
        let token = token.or(bearer);
        if token.is_none() {
            p.push("no token to revoke".into());
        }
        token
    }

    /// A filled-in placeholder: a client id must be this client's; a token is returned.
    fn placeholder(&self, p: &mut Problems, name: &str, value: &str) -> Option<String> {
        if name == "client_id" {
            if value != self.setup.client_id {
                p.push(format!("{{client_id}} filled with {value:?}"));
            }
            return None;
        }
        Some(value.to_owned())
    }

    /// A revoke.body member: a placeholder is filled in, a literal is sent as is.
    fn body_member(
        &self,
        p: &mut Problems,
        body: &Params,
        member: &str,
        want: &str,
    ) -> Option<String> {
        let Some(name) = want.strip_prefix('{').and_then(|w| w.strip_suffix('}')) else {
            expect_param(p, body, member, want);
            return None;
        };
        let Some(value) = body.get(member) else {
            p.push(format!("no `{member}` in the body"));
            return None;
        };
        self.placeholder(p, name, value)
    }

    /// The token must be of the kind revoke.token names (when the fake knows it).
    fn check_revoked_kind(&self, p: &mut Problems, token: &str) {
        let want = match self.f("/revoke/token").as_str() {
            Some("access") => Kind::Access,
            Some("refresh") => Kind::Refresh,
            _ => return,
        };
        let known = self.lock().find(token);
        if let Some(known) = known.filter(|k| k.kind != want) {
            p.push(format!(
                "revoked a {:?} token, the provider takes a {want:?} token",
                known.kind
            ));
        }
    }

    fn revoke_effect(&self, token: &str) -> Response {
        let mut ledger = self.lock();
        let Some(known) = ledger.find(token).filter(|k| k.live) else {
            drop(ledger);
            return self.revoke_repeat();
        };
        let grant = &mut ledger.grants[known.grant];
        grant.refresh = None;
        if self.f("/revoke/token") != "refresh" {
            grant.access = None;
        }
        drop(ledger);
        self.revoke_done()
    }

    fn revoke_done(&self) -> Response {
        let status = self.f("/revoke/done_statuses/0").as_u64().unwrap_or(200);
        let body = match self.f("/revoke/done_when") {
            Value::Null if status == 204 => Value::Null,
            Value::Null => json!({}),
            done => done.clone(),
        };
        fixture_answer(&json!({"status": status, "body": body}))
    }

    fn revoke_repeat(&self) -> Response {
        match self.f("/revoke/repeat") {
            Value::Null if self.f("/revoke/style") == "rfc7009" => json_response(200, &json!({})),
            Value::Null => json_response(400, &json!({"error": "invalid_token"})),
            repeat => fixture_answer(repeat),
        }
    }
}

/// RFC 7009: `token` (+ an optional valid `token_type_hint`) in a form body.
fn rfc7009_token(p: &mut Problems, body: &Params) -> Option<String> {
    let hint = body.get("token_type_hint");
    if hint.is_some_and(|h| h != "access_token" && h != "refresh_token") {
        p.push(format!(
            "token_type_hint {hint:?} is neither access_token nor refresh_token"
        ));
    }
    let token = body.get("token").cloned();
    if token.is_none() {
        p.push("no `token` in the body".into());
    }
    token
}

/// The PKCE verifier must hash (S256, base64url without padding) to the recorded challenge.
fn check_verifier(p: &mut Problems, body: &Params, challenge: Option<&str>) {
    match (challenge, body.get("code_verifier")) {
        (Some(challenge), Some(verifier)) => {
            if !(43..=128).contains(&verifier.len()) {
                p.push("code_verifier is not 43 to 128 characters (RFC 7636)".into());
            }
            if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != challenge {
                p.push("code_verifier does not hash to the code_challenge".into());
            }
        }
        (Some(_), None) => p.push("no code_verifier, but authorize had a code_challenge".into()),
        (None, Some(_)) => p.push("code_verifier sent, but authorize had no code_challenge".into()),
        (None, None) => {}
    }
}

/// The parameter must be present with exactly this value.
fn expect_param(p: &mut Problems, params: &Params, name: &str, want: &str) {
    match params.get(name) {
        None => p.push(format!("no `{name}` (expected {want:?})")),
        Some(got) if got != want => p.push(format!("`{name}` is {got:?}, expected {want:?}")),
        Some(_) => {}
    }
}

/// Every header of `spec` (but Authorization and Content-Type, checked elsewhere) is sent
/// with its value (or lists it, for a comma-separated header such as Accept).
fn check_headers(p: &mut Problems, headers: &HeaderMap, spec: &Value) {
    let Some(spec) = spec.as_object() else { return };
    for (name, want) in spec {
        let name = name.to_ascii_lowercase();
        if name == "content-type" || name == "authorization" {
            continue;
        }
        let want = want.as_str().unwrap_or_default();
        let got = headers.get(&name).and_then(|v| v.to_str().ok());
        let listed = got.is_some_and(|g| g == want || g.split(',').any(|item| item.trim() == want));
        if !listed {
            p.push(format!("header {name} is {got:?}, expected {want:?}"));
        }
    }
}

/// The body as parameters, checking its Content-Type against `format` (`form` or `json`).
/// Without a format, or when no body is `required` and none came, there is nothing to read.
fn read_body(p: &mut Problems, request: &Request, format: Option<&str>, required: bool) -> Params {
    let Some(format) = format else {
        return Params::new();
    };
    if !required && request.body.is_empty() {
        return Params::new();
    }
    let media = media_type(&request.headers);
    let want = if format == "json" {
        "application/json"
    } else {
        "application/x-www-form-urlencoded"
    };
    if media.as_deref() != Some(want) {
        p.push(format!("Content-Type is {media:?}, expected {want:?}"));
    }
    if format != "json" {
        return parse_pairs(&request.body);
    }
    match serde_json::from_slice::<Map<String, Value>>(&request.body) {
        Ok(object) => object
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect(),
        Err(e) => {
            p.push(format!("body is not a JSON object: {e}"));
            Params::new()
        }
    }
}

fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let media = value.split(';').next().unwrap_or_default();
    Some(media.trim().to_ascii_lowercase())
}

/// `application/x-www-form-urlencoded` pairs, first value of each name.
fn parse_pairs(bytes: &[u8]) -> Params {
    let mut params = Params::new();
    for (name, value) in url::form_urlencoded::parse(bytes) {
        params
            .entry(name.into_owned())
            .or_insert_with(|| value.into_owned());
    }
    params
}

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Matches a path against a pattern whose `{name}` segments match any non-empty segment;
/// returns the (percent-decoded) values of those.
fn match_path(pattern: &str, path: &str) -> Option<Vec<(String, String)>> {
    let pattern: Vec<&str> = pattern.split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    if pattern.len() != path.len() {
        return None;
    }
    let mut captures = Vec::new();
    for (want, got) in pattern.iter().zip(&path) {
        match want.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
            Some(name) if !got.is_empty() => captures.push((name.to_owned(), percent_decode(got))),
            _ if want == got => {}
            _ => return None,
        }
    }
    Some(captures)
}

fn percent_decode(segment: &str) -> String {
    let mut out = Vec::new();
    let mut rest = segment.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        let escaped = tail
            .get(..2)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(decoded) if byte == b'%' => {
                out.push(decoded);
                rest = &tail[2..];
            }
            _ => {
                out.push(byte);
                rest = tail;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The path of a fixture URL: the host part (templated or not) is dropped, and any
/// `{variable}` of the fixture's `variables` left in the path is replaced by its example.
fn endpoint_path(fixture: &Value, pointer: &str) -> Option<String> {
    let url = fixture.pointer(pointer)?.as_str()?;
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let mut path = rest.find('/').map_or("/", |i| &rest[i..]).to_owned();
    if let Some(variables) = fixture["variables"].as_object() {
        for (name, variable) in variables {
            let example = variable["example"].as_str().unwrap_or_default();
            path = path.replace(&format!("{{{name}}}"), example);
        }
    }
    Some(path)
}

/// The object at a dotted path (`""` = the value itself).
fn object_at<'a>(value: &'a mut Value, path: &str) -> Option<&'a mut Map<String, Value>> {
    let mut value = value;
    for member in path.split('.').filter(|m| !m.is_empty()) {
        value = value.get_mut(member)?;
    }
    value.as_object_mut()
}

/// A fixture answer `{status, headers?, body}`; a `null` body is an empty one.
fn fixture_answer(spec: &Value) -> Response {
    let status = spec["status"].as_u64().unwrap_or(200);
    let status = StatusCode::from_u16(u16::try_from(status).unwrap_or(500)).expect("HTTP status");
    let mut response = Response::builder().status(status);
    let headers = spec["headers"].as_object().cloned().unwrap_or_default();
    for (name, value) in &headers {
        response = response.header(name.as_str(), value.as_str().unwrap_or_default());
    }
    let body = &spec["body"];
    if body.is_null() {
        return response.body(Body::empty()).expect("fixture answer");
    }
    if !headers
        .keys()
        .any(|k| k.eq_ignore_ascii_case("content-type"))
    {
        response = response.header(header::CONTENT_TYPE, "application/json");
    }
    response
        .body(Body::from(body.to_string()))
        .expect("fixture answer")
}

fn json_response(status: u16, body: &Value) -> Response {
    fixture_answer(&json!({"status": status, "body": body}))
}

fn random_code() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("randomness");
    URL_SAFE_NO_PAD.encode(bytes)
}

fn load_fixture(preset: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/providers/{preset}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}
