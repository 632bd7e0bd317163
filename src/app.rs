//! Building and running the app: open the store (embedded, or Redis as configured), load
//! the keyring, bind (port 0 is fine), serve until told to stop. Tests and `main` both go through [`App::build`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use url::Url;

use crate::broker::Broker;
use crate::config::keyring::KeyringSource;
use crate::config::settings::StoreSettings;
use crate::config::{Config, ConfigError, Settings};
use crate::store::Stores;
use crate::store::embedded::EmbeddedStore;
use crate::store::redis::RedisStore;
use crate::vault::Vault;

pub struct App {
    listener: TcpListener,
    broker: Arc<Broker>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("configuration:\n{0}")]
    Config(#[from] ConfigError),
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Other(String),
}

impl App {
    /// Validates `config`, opens the store and binds the listener. Nothing is served yet.
    pub async fn build(config: &Config, dev: bool) -> Result<App, StartError> {
        Self::build_on(config, dev, None).await
    }

    /// Like [`App::build`], on a listener bound beforehand (so that its address can go into
    /// other parties' configuration first).
    pub async fn build_with_listener(
        config: &Config,
        dev: bool,
        listener: std::net::TcpListener,
    ) -> Result<App, StartError> {
        Self::build_on(config, dev, Some(listener)).await
    }

    async fn build_on(
        config: &Config,
        dev: bool,
        listener: Option<std::net::TcpListener>,
    ) -> Result<App, StartError> {
        if cfg!(feature = "bench-skip-redemption-write") && !dev {
            return Err(StartError::Other(
                "this build skips the durable write of redemptions (feature \
                 bench-skip-redemption-write, for profiling); it runs only with --dev"
                    .into(),
            ));
        }
        let settings = Settings::from_config(config, dev)?;
        let (stores, vault) = open_store_and_vault(config, &settings, dev).await?;
        let bind_error = |e| StartError::Bind(settings.bind, e);
        let listener = match listener {
            Some(l) => l
                .set_nonblocking(true)
                .and_then(|()| TcpListener::from_std(l))
                .map_err(bind_error)?,
            None => TcpListener::bind(settings.bind).await.map_err(bind_error)?,
        };
        let bound = listener
            .local_addr()
            .map_err(|e| StartError::Bind(settings.bind, e))?;
        let public_url = match &settings.public_url {
            Some(url) => url.clone(),
            None => Url::parse(&format!("http://{bound}/"))
                .map_err(|e| StartError::Other(e.to_string()))?,
        };
        let broker = Broker::new(settings, public_url, stores, vault)
            .map_err(|e| StartError::Other(e.to_string()))?;
        Ok(App {
            listener,
            broker: Arc::new(broker),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        // The listener is bound; this only fails for unbound sockets.
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    pub fn public_url(&self) -> &Url {
        self.broker.public_url()
    }

    pub fn broker(&self) -> Arc<Broker> {
        self.broker.clone()
    }

    /// Serves until `shutdown` completes, then stops accepting connections and lets
    /// in-flight requests finish for at most `server.shutdown_timeout_seconds`; requests
    /// still running then (typically long-polls) are dropped.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let sweeper = tokio::spawn(sweep_forever(self.broker.clone()));
        let rewrap = tokio::spawn(rewrap_in_background(self.broker.clone()));
        let webhooks = tokio::spawn(self.broker.clone().deliver_webhooks());
        let deferred = tokio::spawn(self.broker.clone().write_deferred_audits());
        let broker = self.broker.clone();
        let grace = self.broker.settings().shutdown_timeout;
        let stopping = Arc::new(tokio::sync::Notify::new());
        let signal = {
            let stopping = stopping.clone();
            async move {
                shutdown.await;
                stopping.notify_one();
            }
        };
        let limits = self.broker.settings().connections;
        let router = crate::http::router(self.broker);
        let serve = crate::http::serve::serve(self.listener, router, limits, signal);
        let result = tokio::select! {
            () = serve => Ok(()),
            () = async {
                stopping.notified().await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!(
                    grace_seconds = grace.as_secs(),
                    "shutdown timeout: dropping requests still in flight"
                );
                Ok(())
            }
        };
        // Stop the background work and wait for it to go, so that nothing holds the store
        // once `run` returns.
        for task in [sweeper, rewrap, webhooks] {
            task.abort();
            let _ = task.await;
        }
        // Queued audit events are written before the store is let go.
        broker.stop_deferred_audits();
        let _ = deferred.await;
        result
    }
}

/// The keyring and the configured store, opened (the store's directory created).
async fn open_store_and_vault(
    config: &Config,
    settings: &Settings,
    dev: bool,
) -> Result<(Stores, Vault), StartError> {
    let (keyring, source) = crate::config::keyring::load(&config.keyring, &settings.data_dir, dev)?;
    if let KeyringSource::GeneratedDev(path) = source {
        tracing::warn!(
            path = %path.display(),
            "generated a DEVELOPMENT keyring (mode 0600); grants sealed with it are only as safe as this file. \
             Never use --dev in production."
        );
    }
    let stores = match &settings.store {
        StoreSettings::Embedded {
            path,
            audit_max_len,
        } => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StartError::Other(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            Stores::from_backend(Arc::new(
                EmbeddedStore::open(path)?.with_audit_cap(*audit_max_len),
            ))
        }
        StoreSettings::Redis(redis) => {
            let store = RedisStore::connect(redis).await?;
            if let Err(e) = crate::store::Health::ping(&store).await {
                tracing::warn!(error = %e, "redis does not answer yet; /readyz says 503 until it does");
            }
            Stores::from_backend(Arc::new(store))
        }
    };
    Ok((stores, Vault::new(keyring)))
}

/// A broker on the configured store without a listener, for one-off commands (`keys`).
pub async fn offline_broker(config: &Config) -> Result<Broker, StartError> {
    let settings = Settings::from_config(config, false)?;
    let (stores, vault) = open_store_and_vault(config, &settings, false).await?;
    let public_url = match &settings.public_url {
        Some(url) => url.clone(),
        None => Url::parse("http://localhost/").map_err(|e| StartError::Other(e.to_string()))?,
    };
    Broker::new(settings, public_url, stores, vault).map_err(|e| StartError::Other(e.to_string()))
}

/// After a key rotation, re-seals grants under the new active key while serving. Every
/// instance may do it at once: the per-grant compare-and-set keeps them from colliding.
async fn rewrap_in_background(broker: Arc<Broker>) {
    match broker.rewrap_all().await {
        Ok(r) if r.rewrapped > 0 => tracing::info!(
            rewrapped = r.rewrapped,
            skipped = r.skipped,
            "grants re-sealed under the active key"
        ),
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, "re-sealing under the active key failed; `keys rewrap` retries")
        }
    }
}

/// Removes long-expired elicitations once a minute.
async fn sweep_forever(broker: Arc<Broker>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        match broker.sweep().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "swept expired elicitations"),
            Err(e) => tracing::warn!(error = %e, "sweep failed"),
        }
    }
}
