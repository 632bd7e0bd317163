//! The redemption path measured against this machine's own ceiling, in one run.
//!
//! Starts the broker in-process on loopback, seeds grants the real way (the service asks
//! through the broker, the person's consent goes through the consent use case, the vault
//! seals each grant), then drives a closed-loop HTTP/1.1 load (one keep-alive connection
//! per client, hyper, latencies in an HDR histogram) at each target:
//!
//! 1. `ceiling`: a bare axum handler in the same process answering the same request with a
//!    JSON body as large as a redemption answer (no store, no crypto, no middleware);
//! 2. `redeem-embedded`: `POST /v1/redeem` on the embedded (redb) store, audit on;
//! 3. `redeem-redis`: `POST /v1/redeem` on Redis (its own `redis-server` on a free loopback
//!    port, `--save "" --appendonly no`, killed at the end), audit on;
//! 4. `elicit-embedded`: `POST /v1/elicitations` (a new pending request each time) and
//!    `page-embedded`: `GET /e/{id}`, the consent page with a signed-in session cookie;
//! 5. `healthz`: `GET /healthz` on the broker, every layer but no store and no vault (the
//!    floor that the broker's middleware sets);
//!
//! and prints requests/s, p50 / p99 / p99.9 and each target's ratio to the ceiling, then
//! the broker's RSS (`VmRSS`) after seeding `--rss-grants` grants on the embedded store.
//! The last line is a one-line summary.
//!
//! 6. `scale`, only when named (it seeds `--scale-grants`, 1 000 000 by default): a
//!    redemption's p99 at `--grants` and at the large size on one embedded store, then the
//!    real binary reopening that store in its own process: its start time, an admin page
//!    of 50, a redemption load and its RSS.
//!
//! `cargo bench --bench redeem -- [--grants N] [--concurrency C] [--seconds S]
//! [--warmup S] [--rss-grants N] [--scale-grants N] [target names...]` (or `BENCH_GRANTS`,
//! `BENCH_CONCURRENCY`, `BENCH_SECONDS`, `BENCH_WARMUP`, `BENCH_RSS_GRANTS`,
//! `BENCH_SCALE_GRANTS`). Needs `redis-server` on PATH.
//! Under `cargo test --all-targets` (no `--bench` argument) it does a tiny smoke run.
//!
//! The load generator shares the machine (and the tokio runtime) with the broker, so every
//! figure includes its cost; that is why results are given as ratios to the ceiling,
//! measured in the same run under the same conditions. No log subscriber is installed, so
//! logging costs nothing here.

#[path = "../tests/it/common/redis.rs"]
#[allow(dead_code)]
mod redis_harness;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use consent_broker::app::App;
use consent_broker::broker::{Broker, Created, NewElicitation};
use consent_broker::config::{Config, ProviderConfig, ServiceConfig, StoreKind};
use consent_broker::domain::{ProviderId, Scope, Scopes, Subject};
use consent_broker::identity::{SessionUser, SignInMethod, service_token};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HOST};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use zeroize::Zeroizing;

/// The binary's allocator (`src/main.rs`), so that the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const KEY: &str = "acme_live_4f9a8b7c6d5e4f3a2b1c";
/// How many seeding use cases run at once.
const SEED_CONCURRENCY: usize = 64;

struct Options {
    /// `cargo bench` (not the smoke run under `cargo test`).
    full: bool,
    grants: usize,
    /// Grants on the embedded store for the `scale` target.
    scale_grants: usize,
    concurrency: usize,
    seconds: f64,
    warmup: f64,
    rss_grants: usize,
    only: Vec<String>,
}

impl Options {
    fn parse() -> Self {
        let args: Vec<String> = std::env::args().skip(1).collect();
        // `cargo bench` passes `--bench`; without it this is a smoke run under `cargo test`.
        let full = args.iter().any(|a| a == "--bench");
        let mut o = if full {
            Options {
                full,
                grants: 10_000,
                scale_grants: 1_000_000,
                concurrency: 64,
                seconds: 10.0,
                warmup: 2.0,
                rss_grants: 100_000,
                only: Vec::new(),
            }
        } else {
            Options {
                full,
                grants: 20,
                scale_grants: 60,
                concurrency: 4,
                seconds: 0.2,
                warmup: 0.05,
                rss_grants: 50,
                only: Vec::new(),
            }
        };
        let env = |name: &str| std::env::var(name).ok();
        let mut set = |name: &str, value: Option<String>| {
            let Some(v) = value else { return };
            match name {
                "grants" => o.grants = v.parse().expect("--grants N"),
                "concurrency" => o.concurrency = v.parse().expect("--concurrency N"),
                "seconds" => o.seconds = v.parse().expect("--seconds S"),
                "warmup" => o.warmup = v.parse().expect("--warmup S"),
                "rss-grants" => o.rss_grants = v.parse().expect("--rss-grants N"),
                "scale-grants" => o.scale_grants = v.parse().expect("--scale-grants N"),
                _ => unreachable!(),
            }
        };
        for name in [
            "grants",
            "concurrency",
            "seconds",
            "warmup",
            "rss-grants",
            "scale-grants",
        ] {
            let var = format!("BENCH_{}", name.replace('-', "_").to_uppercase());
            set(name, env(&var));
        }
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.strip_prefix("--") {
                Some(
                    name @ ("grants" | "concurrency" | "seconds" | "warmup" | "rss-grants"
                    | "scale-grants"),
                ) => set(name, it.next().cloned()),
                Some(_) => {}
                None => o.only.push(a.clone()),
            }
        }
        o.grants = o.grants.max(1);
        o.concurrency = o.concurrency.max(1);
        o
    }

    fn wanted(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| name.contains(o.as_str()))
    }

    /// Targets too slow for the default run: only when named (and in the smoke run).
    fn named(&self, name: &str) -> bool {
        !self.full || self.only.iter().any(|o| o == name)
    }
}

/// One broker, started in-process on loopback.
struct Target {
    addr: SocketAddr,
    token: String,
    /// The service token's digest and the sealing key (id, base64): what a broker
    /// reopening this data directory needs.
    digest: String,
    key: (String, String),
    broker: Arc<Broker>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    stopped: tokio::task::JoinHandle<()>,
    dir: tempfile::TempDir,
}

impl Target {
    async fn start(store: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (token, digest) = service_token::generate();
        let mut config = Config::default();
        config.server.bind = "127.0.0.1:0".parse().expect("loopback address");
        config.server.data_dir = dir.path().to_path_buf();
        let (id, key) = consent_broker::config::keyring::new_key_entry();
        let key_entry = (id.clone(), key.to_string());
        config
            .keyring
            .keys
            .insert(id.clone(), key.to_string().into());
        config.keyring.active = Some(id);
        config.providers = vec![ProviderConfig::ApiKey {
            id: "acme".into(),
            name: "Acme".into(),
            header: "X-Acme-Key".into(),
            format: None,
            verify_url: None,
            scopes: BTreeMap::from([("read".into(), "Read your Acme projects".into())]),
        }];
        config.services = vec![ServiceConfig {
            id: "svc".into(),
            name: "Service".into(),
            token_sha256: Some(digest.clone()),
            allow: BTreeMap::from([("acme".into(), vec!["read".into()])]),
            webhook_url: None,
            webhook_secret: None,
            ..Default::default()
        }];
        // The per-service rate limit guards against runaway clients; here it would measure
        // the limiter's refusals instead of the path.
        config.limits.api_per_second = 1e9;
        config.limits.api_burst = u32::MAX;
        store(&mut config);
        // Dev mode for the dev sign-in (the consent page needs a signed-in session).
        let app = App::build(&config, true).await.expect("broker starts");
        let addr = app.local_addr();
        let broker = app.broker();
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let stopped = tokio::spawn(async move {
            let _ = app
                .run(async {
                    let _ = rx.await;
                })
                .await;
        });
        Self {
            addr,
            token,
            digest,
            key: key_entry,
            broker,
            stop: Some(stop),
            stopped,
            dir,
        }
    }

    fn service(&self) -> Arc<consent_broker::config::Service> {
        self.broker.settings().services[0].clone()
    }

    /// Seeds `n` grants, each for its own user: the service asks (the use case behind
    /// `POST /v1/elicitations`), the user's API key goes through the consent use case (the
    /// vault seals it), and the handle is read back over `GET /v1/elicitations/{id}`, as a
    /// service does. Returns the handles.
    async fn seed(&self, n: usize, run: &str) -> Vec<String> {
        self.seed_keeping(n, run, 1).await
    }

    /// Like [`Target::seed`], returning only every `keep`-th handle (a sample of a large
    /// store, without holding every handle in memory).
    async fn seed_keeping(&self, n: usize, run: &str, keep: usize) -> Vec<String> {
        let client = reqwest::Client::new();
        let service = self.service();
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let workers: Vec<_> = (0..SEED_CONCURRENCY.min(n))
            .map(|_| {
                let (broker, service, next, client) = (
                    self.broker.clone(),
                    service.clone(),
                    next.clone(),
                    client.clone(),
                );
                let (base, token, run) = (
                    format!("http://{}", self.addr),
                    self.token.clone(),
                    run.to_owned(),
                );
                tokio::spawn(async move {
                    let mut handles = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= n {
                            return handles;
                        }
                        let subject = format!("{run}-user-{i}");
                        let id = match broker
                            .create_elicitation(&service, request(&subject))
                            .await
                            .expect("create elicitation")
                        {
                            Created::Pending(e) => e.id.to_string(),
                            Created::Ready { .. } => panic!("fresh user has no grant"),
                        };
                        let user = SessionUser {
                            subject: Subject::parse(&subject).expect("subject"),
                            method: SignInMethod::Dev,
                            admin: false,
                            claims: Default::default(),
                            profile: None,
                        };
                        broker
                            .submit_api_key(&user, &id, Zeroizing::new(KEY.to_owned()))
                            .await
                            .expect("consent");
                        if i % keep != 0 {
                            continue;
                        }
                        // A keep-alive connection the broker closed (idle timeout) fails
                        // the next request on it: try again on a fresh one.
                        let mut status: Option<Value> = None;
                        for _ in 0..3 {
                            let answer = client
                                .get(format!("{base}/v1/elicitations/{id}"))
                                .bearer_auth(&token)
                                .send()
                                .await;
                            if let Ok(r) = answer {
                                status = Some(r.json().await.expect("status JSON"));
                                break;
                            }
                        }
                        let status = status.expect("status after three tries");
                        handles.push(
                            status["handle"]
                                .as_str()
                                .unwrap_or_else(|| panic!("handle in {status}"))
                                .to_owned(),
                        );
                    }
                })
            })
            .collect();
        let mut handles = Vec::with_capacity(n);
        for w in workers {
            handles.extend(w.await.expect("seed worker"));
        }
        handles
    }

    /// A signed-in session cookie for `user` (dev sign-in, as a browser does it).
    async fn session_cookie(&self, user: &str) -> String {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let base = format!("http://{}", self.addr);
        let page = client
            .get(format!("{base}/login"))
            .send()
            .await
            .expect("login page");
        let cookie = set_cookie(&page).expect("session cookie on the login page");
        let html = page.text().await.expect("login html");
        let csrf = after(&html, "name=\"csrf\" value=\"").expect("csrf field");
        let signed_in = client
            .post(format!("{base}/login/dev"))
            .header(COOKIE, &cookie)
            .form(&[
                ("csrf", csrf.as_str()),
                ("username", user),
                ("return_to", "/"),
            ])
            .send()
            .await
            .expect("dev sign-in");
        assert!(
            signed_in.status().is_redirection(),
            "sign-in: {}",
            signed_in.status()
        );
        set_cookie(&signed_in).unwrap_or(cookie)
    }

    /// Stops the broker; its data directory lives on in the returned value.
    async fn shut_down(mut self) -> tempfile::TempDir {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = self.stopped.await;
        self.dir
    }
}

fn request(subject: &str) -> NewElicitation {
    NewElicitation {
        subject: Subject::parse(subject).expect("subject"),
        provider: ProviderId::parse("acme").expect("provider"),
        scopes: Scopes::try_from(vec![Scope::parse("read").expect("scope")]).expect("scopes"),
        message: None,
    }
}

fn set_cookie(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all(hyper::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .next_back()
        .map(str::to_owned)
}

fn after(html: &str, marker: &str) -> Option<String> {
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// What each client sends, over and over; `bodies` are used in turn.
#[derive(Clone)]
struct Load {
    method: hyper::Method,
    path: String,
    auth: Option<(hyper::header::HeaderName, String)>,
    bodies: Arc<Vec<Bytes>>,
    expect: hyper::StatusCode,
}

struct Figures {
    name: String,
    rps: f64,
    p50: f64,
    p99: f64,
    p999: f64,
    ok: u64,
    failed: u64,
    body_bytes: usize,
}

/// Closed loop: `concurrency` clients, each on its own keep-alive connection, send the
/// next request as soon as the previous answer is read. Warm-up first, then `seconds`
/// measured. Latencies in microseconds.
async fn drive(name: &str, addr: SocketAddr, load: Load, o: &Options) -> Figures {
    let started = Instant::now();
    let measure_from = started + Duration::from_secs_f64(o.warmup);
    let until = measure_from + Duration::from_secs_f64(o.seconds);
    let clients: Vec<_> = (0..o.concurrency)
        .map(|c| {
            let load = load.clone();
            let concurrency = o.concurrency;
            tokio::spawn(async move {
                let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
                stream.set_nodelay(true).expect("nodelay");
                let (mut sender, conn) =
                    hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
                        .await
                        .expect("handshake");
                tokio::spawn(conn);
                let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("hist");
                let (mut failed, mut body_bytes, mut i) = (0u64, 0usize, c);
                loop {
                    let now = Instant::now();
                    if now >= until {
                        break;
                    }
                    let body = load.bodies[i % load.bodies.len()].clone();
                    i += concurrency;
                    let mut req = Request::builder()
                        .method(load.method.clone())
                        .uri(&load.path)
                        .header(HOST, "127.0.0.1");
                    if !body.is_empty() {
                        req = req.header(CONTENT_TYPE, "application/json");
                    }
                    if let Some((name, value)) = &load.auth {
                        req = req.header(name, value);
                    }
                    let req = req.body(Full::new(body)).expect("request");
                    let sent = Instant::now();
                    let ok = match sender.send_request(req).await {
                        Ok(resp) => {
                            let status = resp.status();
                            match resp.into_body().collect().await {
                                Ok(b) => {
                                    body_bytes = b.to_bytes().len();
                                    status == load.expect
                                }
                                Err(_) => false,
                            }
                        }
                        Err(_) => false,
                    };
                    if sent < measure_from {
                        continue;
                    }
                    if ok {
                        let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                        hist.saturating_record(micros.max(1));
                    } else {
                        failed += 1;
                    }
                }
                (hist, failed, body_bytes)
            })
        })
        .collect();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("hist");
    let (mut failed, mut body_bytes) = (0, 0);
    for c in clients {
        let (h, f, b) = c.await.expect("client");
        hist.add(h).expect("same bounds");
        failed += f;
        body_bytes = body_bytes.max(b);
    }
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    Figures {
        name: name.to_owned(),
        rps: hist.len() as f64 / o.seconds,
        p50: ms(0.50),
        p99: ms(0.99),
        p999: ms(0.999),
        ok: hist.len(),
        failed,
        body_bytes,
    }
}

fn redeem_load(t: &Target, handles: &[String]) -> Load {
    Load {
        auth: Some((AUTHORIZATION, format!("Bearer {}", t.token))),
        ..redeem_load_bodies(handles)
    }
}

/// Redemptions of `handles`, in turn, without credentials.
fn redeem_load_bodies(handles: &[String]) -> Load {
    Load {
        method: hyper::Method::POST,
        path: "/v1/redeem".into(),
        auth: None,
        bodies: Arc::new(
            handles
                .iter()
                .map(|h| Bytes::from(json!({ "handle": h }).to_string()))
                .collect(),
        ),
        expect: hyper::StatusCode::OK,
    }
}

/// The ceiling: a bare axum handler that reads the same request and answers a JSON body
/// of `answer_len` bytes, on its own loopback listener in this process.
async fn ceiling(answer_len: usize, template: &Load, o: &Options) -> Figures {
    let mut answer = String::from("{\"pad\":\"");
    while answer.len() + 2 < answer_len {
        answer.push('x');
    }
    answer.push_str("\"}");
    let answer = Bytes::from(answer);
    let app = axum::Router::new().route(
        "/v1/redeem",
        axum::routing::post(move |_body: Bytes| {
            let answer = answer.clone();
            async move { ([(CONTENT_TYPE, "application/json")], answer) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    let figures = drive("ceiling (bare axum)", addr, template.clone(), o).await;
    let _ = stop.send(());
    let _ = server.await;
    figures
}

fn rss_kib() -> Option<u64> {
    rss_kib_of("self")
}

/// `VmRSS` of process `pid` (or `self`), in KiB.
fn rss_kib_of(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn print_row(f: &Figures, ceiling: Option<f64>) {
    let ratio = ceiling.map_or("      ".to_owned(), |c| format!("{:>5.2}×", f.rps / c));
    println!(
        "{:<26} {:>9.0} req/s  {ratio}  p50 {:>7.2} ms  p99 {:>7.2} ms  p99.9 {:>7.2} ms  ({} ok, {} failed, {} B answers)",
        f.name, f.rps, f.p50, f.p99, f.p999, f.ok, f.failed, f.body_bytes
    );
}

fn main() {
    let o = Options::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench(o));
}

async fn bench(o: Options) {
    println!(
        "consent-broker redeem bench: {} grants, concurrency {}, {} s measured after {} s warm-up, {} cores",
        o.grants,
        o.concurrency,
        o.seconds,
        o.warmup,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut rows: Vec<Figures> = Vec::new();

    // The embedded broker first: its first answer sets the ceiling's answer size.
    let embedded = Target::start(|_| {}).await;
    let seeding = Instant::now();
    let handles = embedded.seed(o.grants, "bench").await;
    println!(
        "seeded {} grants on the embedded store in {:.1} s",
        handles.len(),
        seeding.elapsed().as_secs_f64()
    );
    let redeem = redeem_load(&embedded, &handles);
    let sample = reqwest::Client::new()
        .post(format!("http://{}/v1/redeem", embedded.addr))
        .bearer_auth(&embedded.token)
        .json(&json!({ "handle": handles[0] }))
        .send()
        .await
        .expect("redeem")
        .bytes()
        .await
        .expect("answer");

    // `BENCH_NO_CEILING=1` (profiling): the ceiling's load would mix into the profile.
    let top = if std::env::var_os("BENCH_NO_CEILING").is_some() {
        f64::NAN
    } else {
        let ceiling_figures = ceiling(sample.len(), &redeem, &o).await;
        print_row(&ceiling_figures, None);
        let top = ceiling_figures.rps;
        rows.push(ceiling_figures);
        top
    };

    if o.wanted("healthz") {
        // The broker's own floor: `GET /healthz` passes every layer (request id, span,
        // metrics, security headers) but touches neither store nor vault.
        let load = Load {
            method: hyper::Method::GET,
            path: "/healthz".into(),
            auth: None,
            bodies: Arc::new(vec![Bytes::new()]),
            expect: hyper::StatusCode::OK,
        };
        let f = drive("healthz (broker layers)", embedded.addr, load, &o).await;
        print_row(&f, Some(top));
        rows.push(f);
    }
    if o.wanted("redeem-embedded") {
        let f = drive("redeem embedded", embedded.addr, redeem.clone(), &o).await;
        print_row(&f, Some(top));
        rows.push(f);
    }
    if o.wanted("elicit-embedded") {
        let load = Load {
            method: hyper::Method::POST,
            path: "/v1/elicitations".into(),
            auth: Some((AUTHORIZATION, format!("Bearer {}", embedded.token))),
            bodies: Arc::new(
                (0..64)
                    .map(|i| {
                        Bytes::from(
                            json!({"subject": format!("asker-{i}"), "provider": "acme", "scopes": ["read"]})
                                .to_string(),
                        )
                    })
                    .collect(),
            ),
            expect: hyper::StatusCode::CREATED,
        };
        let f = drive("elicitation create embedded", embedded.addr, load, &o).await;
        print_row(&f, Some(top));
        rows.push(f);
    }
    if o.wanted("page-embedded") {
        let service = embedded.service();
        let id = match embedded
            .broker
            .create_elicitation(&service, request("page-user"))
            .await
            .expect("elicitation")
        {
            Created::Pending(e) => e.id.to_string(),
            Created::Ready { .. } => panic!("page-user has no grant"),
        };
        let cookie = embedded.session_cookie("page-user").await;
        let load = Load {
            method: hyper::Method::GET,
            path: format!("/e/{id}"),
            auth: Some((COOKIE, cookie)),
            bodies: Arc::new(vec![Bytes::new()]),
            expect: hyper::StatusCode::OK,
        };
        let f = drive("consent page embedded", embedded.addr, load, &o).await;
        print_row(&f, Some(top));
        rows.push(f);
    }
    embedded.shut_down().await;

    if o.wanted("redeem-redis") {
        let server = redis_harness::RedisServer::start();
        let url = server.url();
        let t = Target::start(|c| {
            c.store.kind = StoreKind::Redis;
            c.store.url = Some(url);
        })
        .await;
        let seeding = Instant::now();
        let handles = t.seed(o.grants, "bench").await;
        println!(
            "seeded {} grants on Redis in {:.1} s",
            handles.len(),
            seeding.elapsed().as_secs_f64()
        );
        let f = drive("redeem redis", t.addr, redeem_load(&t, &handles), &o).await;
        print_row(&f, Some(top));
        rows.push(f);
        t.shut_down().await;
        drop(server);
    }

    let mut rss_line = String::new();
    if o.wanted("rss") {
        let before = rss_kib().unwrap_or(0);
        let t = Target::start(|_| {}).await;
        let seeding = Instant::now();
        let handles = t.seed(o.rss_grants, "rss").await;
        drop(handles);
        let after = rss_kib().unwrap_or(0);
        rss_line = format!(
            "RSS {:.0} MB with {} grants",
            after as f64 / 1024.0,
            o.rss_grants
        );
        println!(
            "memory: VmRSS {:.1} MB after seeding {} grants on the embedded store in {:.1} s (process: broker + load generator; {:.1} MB before this broker started)",
            after as f64 / 1024.0,
            o.rss_grants,
            seeding.elapsed().as_secs_f64(),
            before as f64 / 1024.0
        );
        t.shut_down().await;
    }

    if o.named("scale") {
        rss_line = format!("{rss_line} | {}", scale(&o).await);
    }

    if rows.is_empty() {
        return;
    }
    let summary: Vec<String> = rows
        .iter()
        .skip(1)
        .map(|f| {
            format!(
                "{} {:.2}× ({:.0}/s, p99 {:.1} ms)",
                f.name,
                f.rps / top,
                f.rps,
                f.p99
            )
        })
        .collect();
    println!(
        "SUMMARY c={} ceiling {:.0}/s p99 {:.1} ms | {} | {rss_line}",
        o.concurrency,
        top,
        rows[0].p99,
        summary.join(" | ")
    );
}

/// The embedded store at `--scale-grants` grants (1 000 000 by default): the time to seed
/// them, a redemption's p99 there against its p99 at `--grants`, then the real binary
/// (`consent-broker serve --dev`, its own process) reopening that store: its start time
/// (spawn to the first `/healthz` answer), an admin page of 50 grants, a redemption load
/// on it, and its RSS. Returns the summary's part.
async fn scale(o: &Options) -> String {
    let total = o.scale_grants.max(o.grants + 1);
    let t = Target::start(|_| {}).await;
    let seeding = Instant::now();
    let first = t.seed(o.grants, "scale-a").await;
    let mut seed_secs = seeding.elapsed().as_secs_f64();
    let small = drive(
        &format!("redeem at {} grants", o.grants),
        t.addr,
        redeem_load(&t, &first),
        o,
    )
    .await;
    print_row(&small, None);
    let rest = total - o.grants;
    let seeding = Instant::now();
    // A sample of handles spread over the whole store, as many as at the small size.
    let sample = t
        .seed_keeping(rest, "scale-b", (rest / o.grants).max(1))
        .await;
    seed_secs += seeding.elapsed().as_secs_f64();
    println!("scale: seeded {total} grants on the embedded store in {seed_secs:.0} s");
    let large = drive(
        &format!("redeem at {total} grants"),
        t.addr,
        redeem_load(&t, &sample),
        o,
    )
    .await;
    print_row(&large, None);
    let (token, digest, (key_id, key)) = (t.token.clone(), t.digest.clone(), t.key.clone());
    let dir = t.shut_down().await;

    // The real binary reopens the store, alone in its process.
    let config = dir.path().join("scale.toml");
    std::fs::write(
        &config,
        format!(
            r#"[server]
bind = "127.0.0.1:0"
data_dir = "{data}"

[keyring]
active = "{key_id}"

[keyring.keys]
"{key_id}" = "{key}"

[limits]
api_per_second = 1e9
api_burst = 4294967295

[[providers]]
kind = "api_key"
id = "acme"
name = "Acme"
header = "X-Acme-Key"

[providers.scopes]
read = "Read your Acme projects"

[[services]]
id = "svc"
name = "Service"
token_sha256 = "{digest}"

[services.allow]
acme = ["read"]
"#,
            data = dir.path().display()
        ),
    )
    .expect("config written");
    let started = Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_consent-broker"))
        .args(["serve", "--dev", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the broker binary starts");
    let pid = child.id().to_string();
    let stdout = child.stdout.take().expect("stdout");
    let addr: SocketAddr = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(stdout).lines();
        let addr = lines
            .by_ref()
            .take(50)
            .map_while(Result::ok)
            .find_map(|l| {
                l.strip_prefix("consent-broker listening on ")
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|a| a.parse().ok())
            })
            .expect("the broker says where it listens");
        // Keep reading, so that the broker never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        addr
    })
    .await
    .expect("reader");
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    let base = format!("http://{addr}");
    let mut healthy = false;
    for _ in 0..6_000 {
        if client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        healthy,
        "the reopened broker answers /healthz within a minute"
    );
    let start_secs = started.elapsed().as_secs_f64();
    let rss_idle = rss_kib_of(&pid).unwrap_or(0);

    // An admin page of 50 grants: the dev administrator signs in, then the page is timed.
    let login = client
        .get(format!("{base}/login"))
        .send()
        .await
        .expect("login page")
        .text()
        .await
        .expect("login html");
    let csrf = after(&login, "name=\"csrf\" value=\"").expect("csrf field");
    client
        .post(format!("{base}/login/dev"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "root"),
            ("admin", "on"),
            ("return_to", "/admin/grants"),
        ])
        .send()
        .await
        .expect("dev sign-in");
    let mut pages = Vec::new();
    for _ in 0..20 {
        let at = Instant::now();
        let page = client
            .get(format!("{base}/admin/grants"))
            .send()
            .await
            .expect("admin page");
        assert!(page.status().is_success(), "admin page: {}", page.status());
        let html = page.text().await.expect("admin html");
        pages.push(at.elapsed().as_secs_f64() * 1e3);
        assert!(
            html.contains("scale-b-user"),
            "the page lists seeded grants"
        );
    }
    pages.sort_by(f64::total_cmp);
    let (page_median, page_max) = (pages[pages.len() / 2], pages[pages.len() - 1]);
    let own = Load {
        auth: Some((AUTHORIZATION, format!("Bearer {token}"))),
        ..redeem_load_bodies(&sample)
    };
    let alone = drive(&format!("redeem at {total}, own process"), addr, own, o).await;
    print_row(&alone, None);
    let rss_loaded = rss_kib_of(&pid).unwrap_or(0);
    let _ = child.kill();
    let _ = child.wait();
    println!(
        "scale: {total} grants: seeded in {seed_secs:.0} s; broker start {start_secs:.2} s; \
         RSS {:.0} MB idle, {:.0} MB after load; admin page of 50: median {page_median:.1} ms, \
         max {page_max:.1} ms; redemption p99 {:.2} ms at {total} against {:.2} ms at {} \
         ({:.2}×; {:.2} ms in its own process)",
        rss_idle as f64 / 1024.0,
        rss_loaded as f64 / 1024.0,
        large.p99,
        small.p99,
        o.grants,
        large.p99 / small.p99,
        alone.p99
    );
    format!(
        "scale {total}: start {start_secs:.2} s, RSS {:.0} MB, admin page {page_median:.1} ms, p99 {:.2}× of {}",
        rss_loaded as f64 / 1024.0,
        large.p99 / small.p99,
        o.grants
    )
}
