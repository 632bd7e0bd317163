//! Redemptions per second on each store: the broker runs in-process on loopback (embedded
//! store in a temp dir; Redis on its own `redis-server` on a free port), one grant is
//! seeded through the service API and the consent use case, then 32 clients redeem it in
//! a closed loop for ~5 s each. Prints requests/s and p50/p99 latency per store.
//!
//! `cargo bench --bench redeem_stores` (needs `redis-server` on PATH). Client and broker
//! share this machine's cores, so the figures are for comparing stores, not capacity.
//! `cargo test --all-targets` runs it too, without `--bench`: then each store gets a
//! short smoke run only.

#[path = "../tests/common/redis.rs"]
#[allow(dead_code)]
mod redis_harness;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use consent_broker::app::App;
use consent_broker::broker::Broker;
use consent_broker::config::{Config, ProviderConfig, ServiceConfig, StoreKind};
use consent_broker::identity::{SessionUser, SignInMethod, service_token};
use serde_json::{Value, json};
use zeroize::Zeroizing;

const CONCURRENCY: usize = 32;
const RUN_FOR: Duration = Duration::from_secs(5);
const SMOKE_FOR: Duration = Duration::from_millis(300);
const KEY: &str = "acme_live_4f9a8b7c6d5e4f3a2b1c";

struct Target {
    base: String,
    token: String,
    broker: Arc<Broker>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

async fn start(store: impl FnOnce(&mut Config), data_dir: &std::path::Path) -> Target {
    let (token, digest) = service_token::generate();
    let mut config = Config::default();
    config.server.bind = "127.0.0.1:0".parse().expect("loopback address");
    config.server.data_dir = data_dir.to_path_buf();
    let (id, key) = consent_broker::config::keyring::new_key_entry();
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
        scopes: BTreeMap::new(),
    }];
    config.services = vec![ServiceConfig {
        id: "svc".into(),
        name: "Service".into(),
        token_sha256: digest,
        allow: BTreeMap::from([("acme".into(), vec!["read".into()])]),
        webhook_url: None,
        webhook_secret: None,
    }];
    store(&mut config);
    let app = App::build(&config, true).await.expect("broker starts");
    let base = format!("http://{}", app.local_addr());
    let broker = app.broker();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run(async {
        let _ = rx.await;
    }));
    Target {
        base,
        token,
        broker,
        _shutdown: tx,
    }
}

/// A grant made the way users make one: the service asks over the API, the person's
/// consent goes through the same use case the consent page calls. Returns its handle.
async fn seed(client: &reqwest::Client, t: &Target) -> String {
    let created: Value = client
        .post(format!("{}/v1/elicitations", t.base))
        .bearer_auth(&t.token)
        .json(&json!({"subject": "bench-user", "provider": "acme", "scopes": ["read"]}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("created JSON");
    let id = created["id"].as_str().expect("elicitation id");
    let user = SessionUser {
        subject: consent_broker::domain::Subject::parse("bench-user").expect("subject"),
        method: SignInMethod::Dev,
        admin: false,
    };
    t.broker
        .submit_api_key(&user, id, Zeroizing::new(KEY.to_owned()))
        .await
        .expect("consent");
    let status: Value = client
        .get(format!("{}/v1/elicitations/{id}", t.base))
        .bearer_auth(&t.token)
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("status JSON");
    status["handle"].as_str().expect("handle").to_owned()
}

async fn run(name: &str, t: Target, run_for: Duration) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .expect("client");
    let handle = seed(&client, &t).await;
    let url = format!("{}/v1/redeem", t.base);
    let body = json!({ "handle": handle });
    let started = Instant::now();
    let until = started + run_for;
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (client, url, body, token) =
                (client.clone(), url.clone(), body.clone(), t.token.clone());
            tokio::spawn(async move {
                let (mut latencies, mut failures) = (Vec::new(), 0usize);
                while Instant::now() < until {
                    let sent = Instant::now();
                    let ok = client
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&body)
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    if ok {
                        latencies.push(sent.elapsed());
                    } else {
                        failures += 1;
                    }
                }
                (latencies, failures)
            })
        })
        .collect();
    let (mut latencies, mut failures) = (Vec::new(), 0);
    for w in workers {
        let (l, f) = w.await.expect("worker");
        latencies.extend(l);
        failures += f;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: usize| {
        latencies
            .get((latencies.len() * p / 100).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "{name:<10} {:>8.0} redemptions/s   p50 {:>7.2} ms   p99 {:>7.2} ms   ({} ok, {failures} failed, {CONCURRENCY} clients, {:.1} s)",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(50).as_secs_f64() * 1e3,
        pct(99).as_secs_f64() * 1e3,
        latencies.len(),
        elapsed.as_secs_f64(),
    );
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; any other argument filters by store name.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let run_for = if args.iter().any(|a| a == "--bench") {
        RUN_FOR
    } else {
        SMOKE_FOR
    };
    let only: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| name.contains(o.as_str()));

    if wanted("embedded") {
        let dir = tempfile::tempdir().expect("temp dir");
        let t = start(|_| {}, dir.path()).await;
        run("embedded", t, run_for).await;
    }
    if wanted("redis") {
        let redis = redis_harness::RedisServer::start();
        let dir = tempfile::tempdir().expect("temp dir");
        let url = redis.url();
        let t = start(
            |c| {
                c.store.kind = StoreKind::Redis;
                c.store.url = Some(url);
            },
            dir.path(),
        )
        .await;
        run("redis", t, run_for).await;
    }
}
