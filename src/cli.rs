//! The command line: `serve`, `check-config`, `keys generate`, `service-token generate`,
//! `healthcheck`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::app::App;
use crate::config::{Config, Settings, dev};

#[derive(Parser)]
#[command(
    name = "consent-broker",
    version,
    about = "Out-of-band consent and credential broker for MCP services"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the broker.
    Serve {
        /// TOML config file (env `BROKER_…` and `BROKER_…_FILE` override it).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Development mode: dev sign-in, example service and providers, generated keyring.
        #[arg(long)]
        dev: bool,
        /// Listen address (overrides server.bind); port 0 picks a free one.
        #[arg(long)]
        bind: Option<SocketAddr>,
        /// Data directory (overrides server.data_dir).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Validate a config file and print every problem found.
    CheckConfig {
        file: PathBuf,
        /// Validate as `serve --dev` would.
        #[arg(long)]
        dev: bool,
    },
    /// List the compiled-in provider presets and what each needs (`preset = "…"`).
    Providers {
        /// Print the presets section of docs/providers.md instead.
        #[arg(long)]
        markdown: bool,
    },
    /// Key management.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Service bearer tokens.
    ServiceToken {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Exit 0 when the broker at URL answers 2xx within 3 s (for container HEALTHCHECKs:
    /// the runtime image needs no curl).
    Healthcheck {
        #[arg(long, default_value = "http://127.0.0.1:8080/healthz")]
        url: url::Url,
    },
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Print a new 256-bit key as a keyring entry.
    Generate,
    /// Add a new key to a keyring file and make it the active one (older keys stay).
    Rotate {
        /// The keyring file (`active = …` and a `[keys]` table); rewritten atomically.
        #[arg(long)]
        keyring: PathBuf,
    },
    /// How many grants each key seals.
    Status {
        #[arg(long)]
        config: PathBuf,
    },
    /// Re-seal every grant's data key under the active key (brokers also do it at start).
    Rewrap {
        #[arg(long)]
        config: PathBuf,
    },
    /// Remove a key from a keyring file; refused while any grant still uses it.
    Remove {
        id: String,
        #[arg(long)]
        keyring: PathBuf,
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Print a new service token and the digest to put in the config.
    Generate,
}

/// Runs a command; the result is the process exit code. `serve` sets up logging once its
/// config (which may ask for JSON logs) is read; the other commands log as text.
pub async fn run(cli: Cli) -> u8 {
    if !matches!(cli.command, Command::Serve { .. }) {
        crate::telemetry::init(crate::config::LogFormat::Text);
    }
    match cli.command {
        Command::Serve {
            config,
            dev,
            bind,
            data_dir,
        } => serve(config, dev, bind, data_dir).await,
        Command::CheckConfig { file, dev } => check_config(file, dev),
        Command::Providers { markdown } => {
            if markdown {
                print!("{}", crate::config::presets::markdown());
            } else {
                print!("{}", crate::config::presets::listing());
            }
            0
        }
        Command::Keys {
            command: KeysCommand::Generate,
        } => {
            let (id, key) = crate::config::keyring::new_key_entry();
            println!("# add to the [keys] table of your keyring file (keep it secret, mode 0600):");
            println!("{id} = \"{}\"", key.as_str());
            0
        }
        Command::Keys {
            command: KeysCommand::Status { config },
        } => keys_status(&config).await,
        Command::Keys {
            command: KeysCommand::Rewrap { config },
        } => keys_rewrap(&config).await,
        Command::Keys {
            command:
                KeysCommand::Remove {
                    id,
                    keyring,
                    config,
                },
        } => keys_remove(&id, &keyring, &config).await,
        Command::Keys {
            command: KeysCommand::Rotate { keyring },
        } => match crate::config::keyring::rotate_file(&keyring) {
            Ok(id) => {
                println!(
                    "{}: `{id}` is now the active key; older keys stay for reading.",
                    keyring.display()
                );
                println!(
                    "Roll the file out to every instance and restart them; each broker then re-seals \
                     grants under `{id}` in the background (`keys status` shows the progress)."
                );
                0
            }
            Err(e) => {
                eprintln!("keys rotate: {e}");
                2
            }
        },
        Command::Healthcheck { url } => healthcheck(url).await,
        Command::ServiceToken {
            command: TokenCommand::Generate,
        } => {
            let (token, digest) = crate::identity::service_token::generate();
            println!("token (give to the MCP service, shown once): {token}");
            println!("token_sha256 (put in [[services]]):          {digest}");
            0
        }
    }
}

async fn healthcheck(url: url::Url) -> u8 {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .redirect(reqwest::redirect::Policy::none())
        .build();
    let answer = match client {
        Ok(c) => c.get(url.clone()).send().await,
        Err(e) => Err(e),
    };
    match answer {
        Ok(r) if r.status().is_success() => 0,
        Ok(r) => {
            eprintln!("{url}: {}", r.status());
            1
        }
        Err(e) => {
            eprintln!("{url}: {e}");
            1
        }
    }
}

/// The broker on the configured store, for the `keys` commands; prints why not.
async fn offline(config: &std::path::Path) -> Option<crate::broker::Broker> {
    let loaded = match Config::load(Some(config)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("invalid configuration:\n  - {}", e.0.join("\n  - "));
            return None;
        }
    };
    match crate::app::offline_broker(&loaded).await {
        Ok(b) => Some(b),
        Err(e) => {
            eprintln!("cannot open the store: {e}");
            eprintln!(
                "(an embedded store is locked while a broker runs on it; brokers re-seal grants \
                 themselves at start)"
            );
            None
        }
    }
}

async fn keys_status(config: &std::path::Path) -> u8 {
    let Some(broker) = offline(config).await else {
        return 2;
    };
    let usage = match broker.sealed_per_key().await {
        Ok(u) => u,
        Err(e) => {
            eprintln!("keys status: {e}");
            return 1;
        }
    };
    let keyring = broker.keyring();
    println!("{:<32} {:>10}  note", "key id", "sealed");
    for id in keyring.key_ids() {
        let note = if id == keyring.active_id() {
            "active"
        } else {
            "retired once at 0 (keys rewrap)"
        };
        println!(
            "{:<32} {:>10}  {note}",
            id.as_str(),
            usage.get(id.as_str()).copied().unwrap_or(0)
        );
    }
    for (id, count) in usage
        .iter()
        .filter(|(id, _)| !keyring.key_ids().any(|k| k.as_str() == id.as_str()))
    {
        println!("{id:<32} {count:>10}  MISSING from the keyring: these grants cannot be opened");
    }
    0
}

async fn keys_rewrap(config: &std::path::Path) -> u8 {
    let Some(broker) = offline(config).await else {
        return 2;
    };
    match broker.rewrap_all().await {
        Ok(r) => {
            println!(
                "re-sealed {} grants (or webhook secrets) under `{}`; {} already were; {} skipped",
                r.rewrapped,
                broker.keyring().active_id(),
                r.current,
                r.skipped
            );
            u8::from(r.skipped > 0)
        }
        Err(e) => {
            eprintln!("keys rewrap: {e}");
            1
        }
    }
}

async fn keys_remove(id: &str, keyring: &std::path::Path, config: &std::path::Path) -> u8 {
    let Some(broker) = offline(config).await else {
        return 2;
    };
    let in_use = match broker.sealed_per_key().await {
        Ok(u) => u.get(id).copied().unwrap_or(0),
        Err(e) => {
            eprintln!("keys remove: {e}");
            return 1;
        }
    };
    if in_use > 0 {
        eprintln!(
            "keys remove: refused: {in_use} grants or webhook secrets are still sealed with `{id}`; run `keys rewrap` first"
        );
        return 2;
    }
    match crate::config::keyring::remove_from_file(keyring, id) {
        Ok(()) => {
            println!(
                "removed `{id}` from {}; roll the file out to every instance",
                keyring.display()
            );
            0
        }
        Err(e) => {
            eprintln!("keys remove: {e}");
            2
        }
    }
}

fn check_config(file: PathBuf, dev: bool) -> u8 {
    let mut notes = Vec::new();
    let result = Config::load(Some(&file)).and_then(|c| {
        let (settings, secret_notes) = Settings::check(&c, dev)?;
        notes.extend(secret_notes);
        match &c.keyring.file {
            // CI and build machines rarely hold production keys: say so, don't fail.
            Some(path) if c.keyring.keys.is_empty() && !path.exists() => notes.push(format!(
                "note: keyring.file {} is not present here; its keys were not checked",
                path.display()
            )),
            _ if dev && c.keyring.keys.is_empty() && c.keyring.file.is_none() => {
                notes.push("note: --dev generates a keyring under the data directory".into())
            }
            _ => {
                crate::config::keyring::load(&c.keyring, &settings.data_dir, false)?;
            }
        }
        Ok(settings)
    });
    match result {
        Ok(s) => {
            for note in notes {
                println!("{note}");
            }
            println!(
                "{}: ok ({} services, {} providers)",
                file.display(),
                s.services.len(),
                s.providers.len()
            );
            0
        }
        Err(e) => {
            eprintln!("{}: invalid configuration", file.display());
            for line in &e.0 {
                eprintln!("  - {line}");
            }
            2
        }
    }
}

async fn serve(
    file: Option<PathBuf>,
    dev: bool,
    bind: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
) -> u8 {
    let mut config = match Config::load(file.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("invalid configuration:\n  - {}", e.0.join("\n  - "));
            return 2;
        }
    };
    crate::telemetry::init(config.telemetry.log_format);
    if let Some(bind) = bind {
        config.server.bind = bind;
    }
    if let Some(dir) = data_dir {
        config.server.data_dir = dir;
    }
    let demo_token = if dev {
        dev::add_examples(&mut config, crate::identity::service_token::generate)
    } else {
        None
    };
    let app = match App::build(&config, dev).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("consent-broker cannot start: {e}");
            return 2;
        }
    };
    let url = app.public_url().clone();
    println!(
        "consent-broker listening on {} (public URL {url})",
        app.local_addr()
    );
    if dev {
        println!(
            "DEVELOPMENT MODE: sign-in is not verified. Never use --dev with real credentials."
        );
    }
    match demo_token {
        Some(token) => print_quick_start(&url, &token),
        None if dev => println!(
            "The configuration already uses an id of the --dev examples (service `{}`, \
             providers `{}` and `{}`), so they were not added.",
            dev::DEMO_SERVICE,
            dev::DEMO_API_KEY_PROVIDER,
            dev::DEMO_TERMS_PROVIDER
        ),
        None => {}
    }
    match app.run(shutdown_signal()).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("server error: {e}");
            1
        }
    }
}

fn print_quick_start(url: &url::Url, token: &str) {
    println!(
        "\nQuick start (demo service token, valid until restart):\n\n  export DEMO_SERVICE_TOKEN={token}\n  \
         curl -s -X POST {url}v1/elicitations \\\n    -H \"Authorization: Bearer $DEMO_SERVICE_TOKEN\" \
         -H 'Content-Type: application/json' \\\n    -d '{{\"subject\":\"alice\",\"provider\":\"{}\",\"scopes\":[\"read\"]}}'\n\n\
         Open the \"url\" it returns, sign in as alice, and approve.\n",
        dev::DEMO_API_KEY_PROVIDER
    );
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutting down; finishing in-flight requests");
}
