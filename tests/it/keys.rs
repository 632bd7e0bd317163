//! Key rotation as an operator does it: rotate the keyring file, see which key seals how
//! many grants, rewrap, retire the old key (refused while it is in use), and every grant
//! still opens. And rewrapping while the broker serves, with redemptions running.

use crate::common;

use std::process::{Command, Stdio};

use common::binary::{BIN, Served};
use common::{API_KEY_PROVIDER, GOOD_KEY, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn keys(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN).arg("keys").args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Accepts the demo terms as `user` on a running `serve --dev`; returns the handle.
async fn accept_terms(served: &Served, user: &str) -> String {
    let api = reqwest::Client::new();
    let created = common::binary::create_elicitation(
        &served.base,
        &served.token,
        json!({"subject": user, "provider": "example-terms"}),
    )
    .await;
    let browser = common::Browser::new(&served.base);
    let consent = browser
        .open_as(created["url"].as_str().unwrap(), user)
        .await;
    let id = created["id"].as_str().unwrap();
    browser
        .submit(&format!("/e/{id}/approve"), &[("csrf", &consent.csrf())])
        .await
        .assert_shows("Connected");
    let status: Value = api
        .get(format!("{}/v1/elicitations/{id}", served.base))
        .bearer_auth(&served.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    status["handle"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_operator_rotates_rewraps_and_retires_a_key_and_every_grant_still_opens() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::dev(dir.path(), &[], Stdio::null());
    let mut handles = Vec::new();
    for user in ["ann", "ben", "cat"] {
        handles.push(accept_terms(&served, user).await);
    }
    drop(served);

    let keyring = dir.path().join("keyring.toml");
    let config = dir.path().join("broker.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\ndata_dir = {:?}\n[keyring]\nfile = {:?}\n",
            dir.path(),
            keyring
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let keyring_path = keyring.to_str().unwrap();
    let old_id = std::fs::read_to_string(&keyring)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("active = "))
        .unwrap()
        .trim_matches('"')
        .to_owned();

    let (code, out) = keys(&["status", "--config", config]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with(&old_id) && l.contains(" 3 ") && l.contains("active")),
        "{out}"
    );

    let (code, out) = keys(&["rotate", "--keyring", keyring_path]);
    assert_eq!(code, 0, "{out}");
    let new_id = out.split('`').nth(1).unwrap().to_owned();
    assert_ne!(new_id, old_id);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&keyring).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    let (code, out) = keys(&[
        "remove",
        &old_id,
        "--keyring",
        keyring_path,
        "--config",
        config,
    ]);
    assert_eq!(code, 2, "removing a key in use is refused: {out}");
    assert!(
        out.contains("3 grants or webhook secrets are still sealed with"),
        "{out}"
    );

    let (code, out) = keys(&["rewrap", "--config", config]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("re-sealed 3 grants (or webhook secrets)"),
        "{out}"
    );
    let (_, out) = keys(&["status", "--config", config]);
    assert!(
        out.lines()
            .any(|l| l.starts_with(&new_id) && l.contains(" 3 ")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with(&old_id) && l.contains(" 0 ")),
        "{out}"
    );

    let (code, out) = keys(&[
        "remove",
        &old_id,
        "--keyring",
        keyring_path,
        "--config",
        config,
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(!std::fs::read_to_string(&keyring).unwrap().contains(&old_id));

    // The broker, with only the new key, opens every grant.
    let served = Served::dev(dir.path(), &[], Stdio::null());
    for handle in &handles {
        let r = reqwest::Client::new()
            .post(format!("{}/v1/redeem", served.base))
            .bearer_auth(&served.token)
            .json(&json!({ "handle": handle }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn a_broker_restarted_with_a_new_active_key_rewraps_while_it_serves() {
    let app = TestApp::spawn().await;
    let mut handles = Vec::new();
    for user in ["dan", "eve", "fay", "gus"] {
        let created = app.create_pending(user, API_KEY_PROVIDER, &["read"]).await;
        handles.push(
            app.consent_api_key(&created, user, GOOD_KEY).await["handle"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let (new_id, new_key) = consent_broker::config::keyring::new_key_entry();
    let app = app
        .restart_with(|c| {
            c.keyring
                .keys
                .insert(new_id.clone(), new_key.to_string().into());
            c.keyring.active = Some(new_id.clone());
        })
        .await;
    // Redemptions run while the background rewrap goes; none fails.
    let mut all_new = false;
    for _ in 0..100 {
        for handle in &handles {
            assert_eq!(
                app.redeem(&app.token, handle).await.status(),
                StatusCode::OK
            );
        }
        let usage = app.broker.sealed_per_key().await.unwrap();
        let audited = app
            .audit_actions()
            .await
            .contains(&("grants_rewrapped".into(), "success".into()));
        if usage.get(&new_id) == Some(&4) && audited {
            all_new = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        all_new,
        "every grant ends up under the new key, and the rewrap is audited"
    );
}
