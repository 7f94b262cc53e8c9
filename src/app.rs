//! Wires one node together: store, catalog, signers, hub, leader and
//! router. `App::build` prepares everything without serving, so tests can
//! drive the router directly; `App::spawn` binds and serves.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::catalog::Catalog;
use crate::config::{Secret, Settings};
use crate::domain::Experience;
use crate::domain::clock::now_ms;
use crate::leader::Leader;
use crate::migrations::{self, MigrationError};
use crate::store::memory::MemoryStore;
use crate::store::redis::RedisStore;
use crate::store::{Event, PutOutcome, Store, StoreError};
use crate::tokens::{HandoffKeys, HandoffSigner, SessionSigner, ShopKeys};
use crate::ws::hub::Hub;

/// What every handler can reach. Cheap to clone: all shared parts are `Arc`s.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Arc<dyn Store>,
    pub catalog: Arc<Catalog>,
    pub sessions: Arc<SessionSigner>,
    pub handoff: Arc<HandoffSigner>,
    pub hub: Arc<Hub>,
    pub metrics: PrometheusHandle,
    pub admin_key: Secret,
    pub merchant_key: Secret,
    pub node_id: Arc<str>,
    pub shutdown: watch::Receiver<bool>,
}

pub struct App {
    pub state: AppState,
    shutdown: watch::Sender<bool>,
}

/// A node serving on `addr` until `shutdown` is called.
pub struct RunningNode {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("migrations: {0}")]
    Migration(#[from] MigrationError),
    #[error("invalid setting `{key}`: {reason}")]
    Config { key: &'static str, reason: String },
    #[error("experiences file `{file}`: {reason}")]
    Experiences { file: String, reason: String },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

fn config_error(key: &'static str, reason: impl Into<String>) -> StartError {
    StartError::Config {
        key,
        reason: reason.into(),
    }
}

impl App {
    /// Connects to the configured store and prepares a node.
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        let seeds = settings.redis.cluster_nodes.expose();
        let store: Arc<dyn Store> = if !seeds.is_empty() {
            let seeds: Vec<&str> = seeds
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            Arc::new(RedisStore::connect_cluster(&seeds).await?)
        } else if settings.redis.url.is_empty() {
            tracing::info!(
                "no Redis configured: using the in-process store (one node only)"
            );
            Arc::new(MemoryStore::new())
        } else {
            Arc::new(RedisStore::connect(settings.redis.url.expose()).await?)
        };
        Self::with_store(settings, store).await
    }

    pub async fn with_store(
        settings: Settings,
        store: Arc<dyn Store>,
    ) -> Result<Self, StartError> {
        let metrics = crate::metrics::install();
        let node_id: Arc<str> = uuid::Uuid::new_v4().simple().to_string().into();
        migrations::run(store.as_ref(), &node_id).await?;

        let (admin_key, merchant_key) = bearer_keys(&settings)?;
        let sessions = Arc::new(session_signer(&settings)?);
        let handoff = Arc::new(handoff_signer(&settings)?);

        let catalog = Arc::new(Catalog::new(store.clone()));
        load_experiences(&settings, store.as_ref()).await?;
        catalog.refresh().await?;
        catalog.refresh_stats(now_ms()).await?;

        let hub = Arc::new(Hub::new(
            store.clone(),
            catalog.clone(),
            settings.ws.send_queue,
        ));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let state = AppState {
            settings: Arc::new(settings),
            store,
            catalog,
            sessions,
            handoff,
            hub,
            metrics,
            admin_key,
            merchant_key,
            node_id,
            shutdown: shutdown_rx,
        };
        spawn_background(&state);
        Ok(Self { state, shutdown })
    }

    pub fn router(&self) -> Router {
        crate::http::router(self.state.clone())
    }

    /// Binds the configured address and serves until `shutdown`.
    pub async fn spawn(self) -> Result<RunningNode, StartError> {
        let addr = self.state.settings.server.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| StartError::Bind { addr, source })?;
        let router = self.router();
        let mut stop = self.state.shutdown.clone();
        let server = tokio::spawn(async move {
            let service = router.into_make_service_with_connect_info::<SocketAddr>();
            axum::serve(listener, service)
                .with_graceful_shutdown(async move {
                    let _ = stop.changed().await;
                })
                .await
        });
        Ok(RunningNode {
            addr,
            state: self.state,
            shutdown: self.shutdown,
            server,
        })
    }
}

impl RunningNode {
    /// Stops accepting, closes sockets with 1001, hands leases back, and
    /// waits for open requests up to the configured grace period.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let grace = Duration::from_millis(self.state.settings.server.shutdown_grace_ms);
        if tokio::time::timeout(grace, self.server).await.is_err() {
            tracing::warn!("shutdown grace period ran out with requests still open");
        }
        // Give the leader task a moment to release its leases.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn bearer_keys(settings: &Settings) -> Result<(Secret, Secret), StartError> {
    let loopback = settings.server.listen.ip().is_loopback();
    let mut keys = Vec::new();
    for (key, value, dev) in [
        ("auth.admin_key", &settings.auth.admin_key, "dev-admin-key"),
        (
            "auth.merchant_key",
            &settings.auth.merchant_key,
            "dev-merchant-key",
        ),
    ] {
        if !value.is_empty() {
            keys.push(value.clone());
        } else if loopback {
            tracing::warn!(setting = key, "not set: using the development key `{dev}`");
            keys.push(Secret::new(dev));
        } else {
            return Err(config_error(key, "required when listening beyond loopback"));
        }
    }
    Ok((keys.remove(0), keys.remove(0)))
}

fn session_signer(settings: &Settings) -> Result<SessionSigner, StartError> {
    let auth = &settings.auth;
    let secret = if auth.session_secret.is_empty() {
        tracing::warn!(
            "auth.session_secret not set: sessions use an ephemeral secret and will not \
             survive a restart or work across nodes"
        );
        rand::random::<[u8; 32]>().to_vec()
    } else {
        auth.session_secret.expose().as_bytes().to_vec()
    };
    let shop = if !auth.shop_jwks_file.is_empty() {
        let text = std::fs::read_to_string(&auth.shop_jwks_file)
            .map_err(|e| config_error("auth.shop_jwks_file", e.to_string()))?;
        let keys = ShopKeys::from_jwks(&text)
            .map_err(|e| config_error("auth.shop_jwks_file", e.to_string()))?;
        Some(keys)
    } else {
        let secret = auth.shop_secret.expose().as_bytes();
        (!secret.is_empty()).then(|| ShopKeys::secret(secret))
    };
    Ok(SessionSigner::new(&secret, auth.session_ttl_seconds, shop))
}

fn handoff_signer(settings: &Settings) -> Result<HandoffSigner, StartError> {
    let t = &settings.tokens;
    let mut keys = if t.signing_key_file.is_empty() {
        tracing::warn!(
            "tokens.signing_key_file not set: handoff tokens are signed with an ephemeral \
             development key"
        );
        if !settings.redis.url.is_empty() {
            tracing::warn!(
                "with several nodes on one Redis, each signs with its own ephemeral key: \
                 set tokens.signing_key_file so every node's tokens verify everywhere"
            );
        }
        HandoffKeys::generate()
    } else {
        let pem = std::fs::read_to_string(&t.signing_key_file)
            .map_err(|e| config_error("tokens.signing_key_file", e.to_string()))?;
        HandoffKeys::from_pem(&pem)
            .map_err(|e| config_error("tokens.signing_key_file", e.to_string()))?
    };
    for file in &t.previous_public_key_files {
        let pem = std::fs::read_to_string(file).map_err(|e| {
            config_error("tokens.previous_public_key_files", e.to_string())
        })?;
        keys.add_previous(&pem).map_err(|e| {
            config_error("tokens.previous_public_key_files", e.to_string())
        })?;
    }
    Ok(HandoffSigner::new(keys, &t.issuer, &t.audience))
}

/// Creates the experiences of the configured file that do not exist yet;
/// ones changed through the admin API since are left as they are.
async fn load_experiences(
    settings: &Settings,
    store: &dyn Store,
) -> Result<(), StartError> {
    let file = &settings.experiences.file;
    if file.is_empty() {
        return Ok(());
    }
    let fail = |reason: String| StartError::Experiences {
        file: file.clone(),
        reason,
    };
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        // The default demo file is optional: a node run elsewhere has none.
        Err(_) if *file == crate::config::ExperienceSettings::default().file => {
            tracing::warn!(file = %file, "demo experiences file not found; starting without");
            return Ok(());
        }
        Err(e) => return Err(fail(e.to_string())),
    };
    let experiences: Vec<Experience> =
        serde_json::from_str(&text).map_err(|e| fail(e.to_string()))?;
    for (i, mut exp) in experiences.into_iter().enumerate() {
        if exp.id.is_none() {
            return Err(fail(format!("[{i}].id: required")));
        }
        exp.validate().map_err(|e| fail(format!("[{i}].{e}")))?;
        match store.put_experience(&exp, true).await? {
            PutOutcome::Written => {
                tracing::info!(experience = %exp.id(), "experience created from file");
            }
            PutOutcome::Kept => {}
            PutOutcome::SequenceOwned { sequence, owner } => {
                return Err(fail(format!(
                    "[{i}]: sequence `{sequence}` belongs to experience `{owner}`"
                )));
            }
        }
    }
    Ok(())
}

fn spawn_background(state: &AppState) {
    let s = &state.settings;
    let leader = Leader::new(
        state.node_id.to_string(),
        state.store.clone(),
        state.catalog.clone(),
        state.handoff.clone(),
        Duration::from_millis(s.admission.tick_ms),
        Duration::from_millis(s.admission.lease_ttl_ms),
    );
    tokio::spawn(leader.run(state.shutdown.clone()));
    tokio::spawn(pump_events(state.clone()));
    tokio::spawn(refresh_catalog(state.clone()));
    tokio::spawn(crate::ws::maintain(
        state.hub.clone(),
        state.shutdown.clone(),
    ));
}

/// Feeds the store's events to the catalog and the hub, in order.
async fn pump_events(app: AppState) {
    let mut events = app.store.subscribe();
    let mut shutdown = app.shutdown.clone();
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            _ = shutdown.changed() => return,
        };
        match event {
            Ok(Event::Experience { id }) => {
                if let Err(e) = app.catalog.refresh().await {
                    tracing::warn!(error = %e, "catalog refresh failed");
                }
                app.hub.on_event(Event::Experience { id });
            }
            Ok(event) => app.hub.on_event(event),
            // This node fell behind its own feed: re-read everyone's place.
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "event feed lagged; re-reading positions");
                app.hub.on_event(Event::Resync);
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Keeps the catalog and queue counts at most a second old.
async fn refresh_catalog(app: AppState) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    let mut shutdown = app.shutdown.clone();
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.changed() => return,
        }
        let refreshed = async {
            app.catalog.refresh().await?;
            app.catalog.refresh_stats(now_ms()).await
        };
        if let Err(e) = refreshed.await {
            tracing::warn!(error = %e, "catalog refresh failed");
        }
    }
}
