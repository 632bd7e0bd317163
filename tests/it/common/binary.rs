//! The compiled broker as a child process, as an operator runs it: `serve --dev` on
//! 127.0.0.1:0, its ready line and quick-start token read from stdout.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_consent-broker");

pub struct Served {
    pub child: Child,
    pub base: String,
    /// The demo service's token (minted anew at every start).
    pub token: String,
    pub stdout: Vec<String>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    /// Starts `serve --dev --bind 127.0.0.1:0 --data-dir DIR` with `env`, until the quick
    /// start is printed. Stderr goes where `stderr` says.
    pub fn dev(data_dir: &std::path::Path, env: &[(&str, &str)], stderr: Stdio) -> Served {
        let mut child = Command::new(BIN)
            .args(["serve", "--dev", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("binary starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut base, mut token, mut stdout) = (None, None, Vec::new());
        let deadline = Instant::now() + Duration::from_secs(30);
        while !stdout
            .last()
            .is_some_and(|l: &String| l.starts_with("Open the"))
            && Instant::now() < deadline
        {
            let Some(Ok(line)) = lines.next() else { break };
            if let Some(rest) = line.strip_prefix("consent-broker listening on ") {
                base = Some(format!(
                    "http://{}",
                    rest.split_whitespace().next().unwrap()
                ));
            }
            if let Some(t) = line.trim().strip_prefix("export DEMO_SERVICE_TOKEN=") {
                token = Some(t.to_owned());
            }
            stdout.push(line);
        }
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Served {
            child,
            base: base.expect("ready line printed"),
            token: token.expect("demo token printed"),
            stdout,
        }
    }
}

/// Asks the broker at `base` for an elicitation as the service holding `token` (`body`
/// is the request's JSON); returns its answer.
pub async fn create_elicitation(
    base: &str,
    token: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    reqwest::Client::new()
        .post(format!("{base}/v1/elicitations"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
