//! The binary as an operator and a newcomer use it: `serve --dev` on port 0 prints where
//! it listens and a working quick start; its logs never carry a secret; `check-config`
//! names every problem; the generators print usable values.

use crate::common;

use std::io::Read;
use std::process::{Command, Stdio};

use reqwest::StatusCode;
use serde_json::{Value, json};

use common::binary::BIN;

#[tokio::test]
async fn serve_dev_runs_the_quick_start_and_its_logs_hold_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let mut served =
        common::binary::Served::dev(dir.path(), &[("RUST_LOG", "debug")], Stdio::piped());
    assert!(
        served.stdout.iter().any(|l| l.contains("curl -s -X POST")),
        "quick start printed"
    );
    assert!(dir.path().join("keyring.toml").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("keyring.toml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the generated keyring is private");
    }
    let api = reqwest::Client::new();
    assert_eq!(
        api.get(format!("{}/healthz", served.base))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        api.get(format!("{}/readyz", served.base))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    // The quick start, as printed.
    let created = common::binary::create_elicitation(
        &served.base,
        &served.token,
        json!({"subject": "alice", "provider": "example-api-key", "scopes": ["read"]}),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let browser = common::Browser::new(&served.base);
    let consent = browser
        .open_as(created["url"].as_str().unwrap(), "alice")
        .await;
    consent.assert_shows("Demo MCP service");
    let form = browser
        .submit(&format!("/e/{id}/approve"), &[("csrf", &consent.csrf())])
        .await;
    let secret = "sk_live_Zr8QwPq3Lm7Tx2Vb9Nc4";
    browser
        .submit(
            &format!("/e/{id}/api-key"),
            &[("csrf", &form.csrf()), ("api_key", secret)],
        )
        .await
        .assert_shows("Connected");
    let status: Value = api
        .get(format!("{}/v1/elicitations/{id}?wait=5", served.base))
        .bearer_auth(&served.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let handle = status["handle"].as_str().unwrap().to_owned();
    let redeemed: Value = api
        .post(format!("{}/v1/redeem", served.base))
        .bearer_auth(&served.token)
        .json(&json!({ "handle": handle }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(redeemed["credential"]["api_key"], secret);

    // Stop it and read everything it logged.
    served.child.kill().unwrap();
    let mut stderr = String::new();
    served
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        stderr.contains("grant_redeemed"),
        "debug logs were captured:\n{stderr}"
    );
    let everything = format!("{}\n{stderr}", served.stdout.join("\n"));
    assert!(!everything.contains(secret), "the API key reached the logs");
    assert!(!everything.contains(&handle), "the handle reached the logs");
    assert!(
        !everything.contains(&handle[4..]),
        "the handle body reached the logs"
    );
    assert!(
        !stderr.contains(&served.token),
        "the service token reached the logs"
    );
}

fn check_config(toml: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broker.toml");
    std::fs::write(&path, toml).unwrap();
    let out = Command::new(BIN)
        .args(["check-config"])
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

const KEY: &str = "k1 = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"";

#[test]
fn check_config_accepts_the_shipped_example() {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/broker.example.toml"
    ))
    .unwrap();
    let (ok, out) = check_config(&example);
    assert!(ok, "{out}");
    assert!(out.contains("ok (1 services, 3 providers)"), "{out}");
    assert!(
        out.contains(
            "note: providers[1].preset (`github`) fills in authorization_endpoint, token_endpoint"
        ),
        "check-config says what the preset filled in: {out}"
    );
}

#[test]
fn providers_lists_every_preset_with_what_it_needs() {
    let out = Command::new(BIN).arg("providers").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 12, "{text}");
    for line in [
        "entra        Microsoft Entra ID         needs client_id, client_secret, tenant",
        "salesforce   Salesforce                 needs client_id, client_secret, domain",
        "gitlab       GitLab                     needs client_id, client_secret, domain (default gitlab.com)",
        "github       GitHub (OAuth App)         needs client_id, client_secret (documentation read 2026-11-30)",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
}

#[test]
fn check_config_names_each_problem_and_its_field() {
    let (ok, out) = check_config(&format!(
        r#"
[server]
bind = "127.0.0.1:8080"
colour = "blue"
[keyring]
active = "k1"
[keyring.keys]
{KEY}
"#
    ));
    assert!(!ok);
    assert!(out.contains("colour"), "unknown key named: {out}");

    let (ok, out) = check_config(&format!(
        r#"
[keyring.keys]
{KEY}
[[providers]]
kind = "api_key"
id = "acme"
name = "Acme"
format = "([unclosed"
[[providers]]
kind = "api_key"
id = "acme"
name = "Acme again"
[[services]]
id = "svc"
name = "Svc"
token_sha256 = "not-hex"
[services.allow]
ghost = ["read"]
acme = ["two words"]
[scim]
token_sha256 = "cbs_a-plain-token"
[shared_signals]
issuer = "https://idp.example"
jwks_url = "http://idp.example/jwks"
audience = "https://broker.example/ssf"
subject_format = "email"
max_age_seconds = 1
"#
    ));
    assert!(!ok);
    for expected in [
        "providers[0].format: not a valid regex",
        "providers[1].id: duplicate provider id `acme`",
        "services[0].token_sha256: must be 64 hex digits",
        "services[0].allow.ghost: no provider with id `ghost`",
        "services[0].allow.acme: `two words`",
        "scim.token_sha256: must be 64 hex digits",
        "shared_signals.jwks_url: plain http is only allowed for loopback",
        "shared_signals.max_age_seconds: must be between 60 and 604800",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }

    let (ok, out) = check_config("[keyring.keys]\nk1 = \"c2hvcnQ=\"\n");
    assert!(!ok);
    assert!(
        out.contains("keyring.keys.k1") && out.contains("5 bytes"),
        "{out}"
    );
    assert!(!out.contains("c2hvcnQ"), "the key is not echoed: {out}");
}

#[test]
fn check_config_names_each_store_problem_and_never_echoes_a_redis_password() {
    let (ok, out) = check_config(&format!(
        r#"
[store]
kind = "redis"
url = "rediss://:hunter2-secret@redis.example:6380/0"
cluster_urls = ["redis://a:7000"]
key_prefix = "{{cb}}:"
connect_timeout_ms = 0
audit_max_len = 10
[keyring.keys]
{KEY}
"#
    ));
    assert!(!ok);
    for expected in [
        "store.cluster_urls: give either `url` or `cluster_urls`, not both",
        "store.key_prefix: must be 1-64 visible characters without `{` or `}`",
        "store.connect_timeout_ms: must be between 10 and 60000",
        "store.audit_max_len: must be at least 1000",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }

    let (ok, out) = check_config(&format!(
        r#"
[store]
kind = "redis"
cluster_urls = ["redis://a:7000", "http://user:hunter2-secret@b:7001"]
[keyring.keys]
{KEY}
"#
    ));
    assert!(!ok);
    assert!(
        out.contains("store.cluster_urls[1]: must start with redis:// (or rediss:// for TLS)"),
        "{out}"
    );
    assert!(
        !out.contains("hunter2"),
        "the password is not echoed: {out}"
    );

    let (ok, out) = check_config(&format!(
        "[store]\nkind = \"redis\"\nhost = \"redis\"\n[keyring.keys]\n{KEY}\n"
    ));
    assert!(!ok);
    assert!(out.contains("host"), "unknown key named: {out}");

    let (ok, out) = check_config(&format!(
        "[store]\nkind = \"redis\"\n[keyring.keys]\n{KEY}\n"
    ));
    assert!(!ok);
    assert!(
        out.contains("store.url: kind = \"redis\" needs `url`"),
        "{out}"
    );

    let (ok, out) = check_config(&format!(
        "[store]\nurl = \"redis://localhost\"\n[keyring.keys]\n{KEY}\n"
    ));
    assert!(!ok);
    assert!(
        out.contains("store.url: only for kind = \"redis\""),
        "{out}"
    );

    let (ok, out) = check_config(&format!(
        "[store]\nkind = \"redis\"\nurl = \"rediss://:hunter2-secret@redis.example:6380/0\"\n\
         key_prefix = \"broker-eu:\"\n[keyring.keys]\n{KEY}\n"
    ));
    assert!(ok, "{out}");
    assert!(!out.contains("hunter2"), "{out}");
}

#[test]
fn the_generators_print_values_the_config_accepts() {
    let out = Command::new(BIN)
        .args(["service-token", "generate"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let token = text
        .lines()
        .find_map(|l| l.split("): ").nth(1).filter(|v| v.starts_with("cbs_")))
        .unwrap()
        .trim()
        .to_owned();
    let digest = text
        .lines()
        .find_map(|l| l.strip_prefix("token_sha256 (put in [[services]]):"))
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(digest, hex_sha256(&token));

    let out = Command::new(BIN)
        .args(["keys", "generate"])
        .output()
        .unwrap();
    let key_line = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .find(|l| !l.starts_with('#'))
        .unwrap()
        .to_owned();
    let (ok, out) = check_config(&format!(
        "[keyring.keys]\n{key_line}\n[[providers]]\nkind = \"terms\"\nid = \"t\"\nname = \"T\"\ntitle = \"T\"\nversion = \"1\"\ntext = \"x\"\n\
         [[services]]\nid = \"s\"\nname = \"S\"\ntoken_sha256 = \"{digest}\"\n[services.allow]\nt = []\n"
    ));
    assert!(ok, "{out}");
}

fn hex_sha256(s: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

/// The `sh` blocks of README's "Five minutes with curl and a browser", unindented.
fn readme_walkthrough() -> (String, Vec<String>) {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme.find("## Five minutes").expect("the walkthrough");
    let section = &readme[start..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let blocks = section
        .split("```sh\n")
        .skip(1)
        .map(|rest| {
            rest[..rest.find("```").unwrap()]
                .lines()
                .map(|l| l.strip_prefix("   ").unwrap_or(l))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
    (readme, blocks)
}

/// Runs one README block in bash against `base`, with the variables earlier blocks set
/// (kept in `state`); returns its stdout.
fn run_block(block: &str, base: &str, token: &str, state: &std::path::Path) -> String {
    let script = format!(
        "set -euo pipefail\n[ -f '{state}' ] && source '{state}'\n{block}\n\
         declare -p ID HANDLE > '{state}' 2>/dev/null || true\n",
        block = block.replace("http://127.0.0.1:8080", base),
        state = state.display(),
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env("DEMO_SERVICE_TOKEN", token)
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "README block failed:\n{block}\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test]
async fn readme_walkthrough_runs_as_written_and_serve_dev_starts_again_in_its_environment() {
    let (readme, blocks) = readme_walkthrough();
    assert_eq!(blocks.len(), 5, "ask, wait, redeem, ask again, revoke");
    let dir = tempfile::tempdir().unwrap();
    let served = common::binary::Served::dev(dir.path(), &[], Stdio::null());
    // The variable README tells the reader to export is the one serve --dev prints.
    let exported: std::collections::BTreeSet<&str> = readme
        .split("export ")
        .skip(1)
        .filter_map(|rest| rest.split_once('='))
        .map(|(name, _)| name)
        .collect();
    assert_eq!(Vec::from_iter(exported), ["DEMO_SERVICE_TOKEN"]);
    assert!(
        served
            .stdout
            .iter()
            .any(|l| l.trim().starts_with("export DEMO_SERVICE_TOKEN=cbs_")),
        "{:?}",
        served.stdout
    );

    let state = dir.path().join("walkthrough.sh");
    let (base, token) = (served.base.as_str(), served.token.as_str());
    let asked = run_block(&blocks[0], base, token, &state);
    let url = asked
        .lines()
        .find_map(|l| l.strip_prefix("Open "))
        .expect("block 1 prints the consent link")
        .to_owned();
    assert!(url.starts_with(&format!("{base}/e/")), "{asked}");

    // Step 2, in the browser.
    let id = url.rsplit('/').next().unwrap();
    let browser = common::Browser::new(base);
    let consent = browser.open_as(&url, "alice").await;
    consent.assert_shows("I need read access to build your weekly report.");
    let form = browser
        .submit(&format!("/e/{id}/approve"), &[("csrf", &consent.csrf())])
        .await;
    let key = "sk_test_Readme4Walkthrough";
    browser
        .submit(
            &format!("/e/{id}/api-key"),
            &[("csrf", &form.csrf()), ("api_key", key)],
        )
        .await
        .assert_shows("Connected");

    let waited = run_block(&blocks[1], base, token, &state);
    assert!(waited.contains("\"completed\""), "{waited}");
    let redeemed = run_block(&blocks[2], base, token, &state);
    assert!(redeemed.contains(key), "{redeemed}");
    let again = run_block(&blocks[3], base, token, &state);
    assert!(again.contains("\"ready\""), "{again}");
    let revoked = run_block(&blocks[4], base, token, &state);
    assert!(revoked.contains("\"revoked\""), "{revoked}");
    assert!(revoked.contains("\"grant_revoked\""), "{revoked}");

    // A second serve --dev with everything README and the example MCP server have the
    // reader export: it starts (Served::dev panics if no ready line comes).
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/mcp-github-like/src/main.rs"
    ))
    .unwrap();
    let mut env: Vec<(String, String)> = example
        .split("env(\"")
        .skip(1)
        .filter_map(|rest| rest.split_once('"'))
        .map(|(name, _)| (name.to_owned(), "x".to_owned()))
        .collect();
    assert!(env.iter().any(|(n, _)| n == "CONSENT_BROKER_SERVICE_TOKEN"));
    env.push(("DEMO_SERVICE_TOKEN".into(), served.token.clone()));
    let env: Vec<(&str, &str)> = env.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let second_dir = tempfile::tempdir().unwrap();
    let second = common::binary::Served::dev(second_dir.path(), &env, Stdio::null());
    assert_ne!(second.token, served.token);
}

/// Starts `serve --dev` on `config` (TOML) and returns its first `lines` stdout lines
/// (bounded: at most 30 s).
fn serve_dev_lines(config: &str, lines: usize) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broker.toml");
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--dev", "--bind", "127.0.0.1:0", "--config"])
        .arg(&path)
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(out)).map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut printed = Vec::new();
    while printed.len() < lines {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => printed.push(line),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    printed.join("\n")
}

#[test]
fn serve_dev_adds_its_examples_beside_declared_providers_unless_an_id_is_taken() {
    let house = "[[providers]]\nkind = \"terms\"\nid = \"house\"\nname = \"House\"\ntitle = \"House rules\"\nversion = \"1\"\ntext = \"Be kind.\"\n";
    let beside = serve_dev_lines(house, 6);
    assert!(beside.contains("export DEMO_SERVICE_TOKEN="), "{beside}");
    let taken = house.replace("\"house\"", "\"example-terms\"");
    let refused = serve_dev_lines(&taken, 3);
    assert!(
        refused.contains("already uses an id of the --dev examples"),
        "{refused}"
    );
    assert!(!refused.contains("DEMO_SERVICE_TOKEN"), "{refused}");
}

#[test]
fn check_config_refuses_unreadable_or_remote_branding_and_names_the_fields() {
    let (ok, out) = check_config(&format!(
        r##"
[keyring.keys]
{KEY}
[branding]
product_name = "Acme Access"
logo_url = "https://cdn.acme.example/logo.png"
accent_colour = "#ffcc00"
support_url = "http://help.acme.example/"
time_zone = "Europe/Atlantis"
"##
    ));
    assert!(!ok, "{out}");
    for expected in [
        "branding.logo_url: must be a data: URL",
        "branding.accent_colour: #ffcc00 is too light",
        "WCAG AA needs 4.5:1",
        "branding.support_url: must be an https URL",
        "branding.time_zone: `Europe/Atlantis` is not an IANA time zone",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    assert!(!out.contains("branding.product_name"), "{out}");

    let (ok, out) = check_config(&format!(
        r##"
[keyring.keys]
{KEY}
[branding]
product_name = "Acme Access"
accent_colour = "#6a1b9a"
privacy_url = "https://acme.example/privacy"
time_zone = "Europe/Berlin"
"##
    ));
    assert!(ok, "{out}");
}
