//! Starting and stopping a whole Coffer service: store, providers, API, sync worker and
//! cross-replica invalidation. `coffer serve`, `coffer demo` and the end-to-end tests all start
//! the service through [`start`], so they run the same code.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use coffer_store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::{self, AppParts};
use crate::config::Config;
use crate::providers::Providers;
use crate::state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("database: {0}")]
    Store(#[from] coffer_store::StoreError),
    #[error(transparent)]
    Provider(#[from] crate::providers::ProviderBuildError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// How to start, beyond the config.
#[derive(Default)]
pub struct StartOptions {
    /// `COFFER_ADMIN_KEY`.
    pub bootstrap_admin_key: Option<String>,
    /// Providers to use instead of building them from the config (tests, demo).
    pub providers: Option<Providers>,
    /// A store already connected (tests share one); otherwise `database.url` is connected.
    pub store: Option<Arc<dyn Store>>,
    /// A listener already bound (tests bind port 0); otherwise `server.listen` is bound.
    pub listener: Option<TcpListener>,
    /// This replica's id; a random one when absent.
    pub instance_id: Option<String>,
    /// Routes served beside the API, behind the same middleware: the benchmarks mount their
    /// baseline here (`coffer-bench`'s `GET /v2/minimal`), so the service itself has no route
    /// that is not its own.
    pub extra_routes: Option<axum::Router>,
}

/// A running service.
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: watch::Sender<bool>,
    grace: Duration,
    server: JoinHandle<std::io::Result<()>>,
    background: Vec<JoinHandle<()>>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, drains requests in flight and the sync worker (within
    /// `server.shutdown_grace`), and returns.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.drain().await;
    }

    /// Resolves when the server has stopped (after a signal, for `coffer serve`): at most
    /// `server.shutdown_grace` after the signal.
    pub async fn wait(self) -> std::io::Result<()> {
        self.drain().await
    }

    /// Waits for the server and the background tasks to finish; once shutdown has begun, no
    /// longer than the grace. What is left then is aborted: its requests are cut.
    async fn drain(self) -> std::io::Result<()> {
        let Running {
            server,
            shutdown,
            background,
            grace,
            ..
        } = self;
        let mut aborts = vec![server.abort_handle()];
        aborts.extend(background.iter().map(JoinHandle::abort_handle));
        let mut stopping = shutdown.subscribe();
        let work = async {
            let r = server.await.unwrap_or(Ok(()));
            // The server may also end by itself (an accept error): stop the rest then.
            let _ = shutdown.send(true);
            for t in background {
                let _ = t.await;
            }
            r
        };
        let deadline = async {
            let _ = stopping.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            r = work => r,
            () = deadline => {
                tracing::warn!(grace = ?grace, "server.shutdown_grace has passed: cutting what is still in flight");
                for a in aborts {
                    a.abort();
                }
                Ok(())
            }
        }
    }

    /// Aborts at once, like a killed process: nothing is drained (tests of replica failure).
    pub fn kill(self) {
        self.server.abort();
        for t in self.background {
            t.abort();
        }
    }
}

/// The listen backlog asked for (the kernel caps it at `net.core.somaxconn`). Tokio's bind
/// asks for 1,024: a burst of 1,000 webhook deliveries on new connections overflowed it, and
/// each dropped connection attempt was retried by the sender's kernel after a second, so the
/// burst's p99 was over a second even to a handler doing nothing (docs/benchmarks.md, "Webhook
/// inbox").
pub const LISTEN_BACKLOG: u32 = 8192;

/// Binds a listener as `TcpListener::bind` does (`SO_REUSEADDR` on Unix), with
/// [`LISTEN_BACKLOG`].
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Starts the service. Shuts down when [`Running::stop`] is called or, if `until_signal`, on
/// SIGTERM/SIGINT.
pub async fn start(
    config: Config,
    opts: StartOptions,
    until_signal: bool,
) -> Result<Running, StartError> {
    config.validate()?;
    if let Some(w) = crate::cgroup::budget_warning(
        config.cache.max_bytes.as_u64(),
        crate::cgroup::memory_limit(),
    ) {
        tracing::warn!("{w}");
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let store = match opts.store {
        Some(s) => s,
        None => {
            tracing::info!(database = %crate::telemetry::redact_url(&config.database.url), "connecting to the store");
            let s = coffer_store::connect(&config.database.url).await?;
            if config.database.migrate_on_start {
                s.migrate().await?;
            }
            s
        }
    };
    let providers = match opts.providers {
        Some(p) => p,
        None => Providers::from_config(&config.providers)?,
    };
    let listener = match opts.listener {
        Some(l) => l,
        None => bind(config.server.listen).map_err(|source| StartError::Listen {
            addr: config.server.listen,
            source,
        })?,
    };
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: config.server.listen,
        source,
    })?;
    let instance_id = opts
        .instance_id
        .unwrap_or_else(|| format!("coffer-{}", uuid::Uuid::new_v4()));
    let metrics_listener = match config.server.metrics_listen {
        Some(addr) => Some(bind(addr).map_err(|source| StartError::Listen { addr, source })?),
        None => None,
    };
    let sync_enabled = config.sync.enabled;
    let (grace, delay) = (config.server.shutdown_grace, config.server.shutdown_delay);
    let state = app::state(AppParts {
        config,
        store,
        providers,
        bootstrap_admin_key: opts.bootstrap_admin_key,
        instance_id,
    });

    let (tx, rx) = watch::channel(false);
    let mut background = Vec::new();
    background.push(tokio::spawn(crate::notify::listen(
        state.clone(),
        rx.clone(),
    )));
    if sync_enabled {
        background.push(tokio::spawn(crate::sync::run(state.clone(), rx.clone())));
    }
    background.push(tokio::spawn(crate::checkpoints::run(
        state.clone(),
        rx.clone(),
    )));
    if crate::retention::enabled(&state.config) {
        background.push(tokio::spawn(crate::retention::run(
            state.clone(),
            rx.clone(),
        )));
    }
    if state.providers.any_webhooks() && state.config.webhooks.process {
        background.push(tokio::spawn(crate::webhooks::process::run(
            state.clone(),
            rx.clone(),
        )));
    }
    if state.config.subscriptions.deliver {
        background.push(tokio::spawn(crate::subscriptions::run(
            state.clone(),
            rx.clone(),
        )));
    }
    if state.config.alerts.evaluate {
        background.push(tokio::spawn(crate::routes::alert_eval::run(
            state.clone(),
            rx.clone(),
        )));
    }
    if let Some(l) = metrics_listener {
        background.push(tokio::spawn(serve_metrics(l, state.clone(), rx.clone())));
    }
    let router = app::router(state.clone(), opts.extra_routes);
    let shutdown = shutdown_trigger(state.clone(), tx.clone(), until_signal, delay);
    let server = tokio::spawn(app::serve(listener, router, shutdown));
    tracing::info!(%addr, instance = %state.instance_id, "coffer is listening");
    Ok(Running {
        addr,
        state,
        shutdown: tx,
        grace,
        server,
        background,
    })
}

/// Resolves when the listener should close: after a signal (if `until_signal`) or
/// [`Running::stop`], and then `delay`, during which `/readyz` already answers 503. The signal
/// also tells the background tasks to stop.
async fn shutdown_trigger(
    state: AppState,
    tx: watch::Sender<bool>,
    until_signal: bool,
    delay: Duration,
) {
    let mut stop = tx.subscribe();
    if until_signal {
        tokio::select! {
            () = app::shutdown_signal() => { let _ = tx.send(true); },
            _ = stop.wait_for(|s| *s) => {},
        }
    } else {
        let _ = stop.wait_for(|s| *s).await;
    }
    state.draining.store(true, Ordering::Relaxed);
    if !delay.is_zero() {
        tracing::info!(delay = ?delay, "not ready; still accepting for server.shutdown_delay");
        tokio::time::sleep(delay).await;
    }
    // Live event streams end, or draining would wait for them forever.
    state.closing.send_replace(true);
    tracing::info!("listener closed; draining requests in flight");
}

/// `/metrics` alone on `server.metrics_listen`, until shutdown.
async fn serve_metrics(listener: TcpListener, state: AppState, mut stop: watch::Receiver<bool>) {
    let addr = listener.local_addr().ok();
    let router = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(crate::routes::health::metrics),
        )
        .with_state(state);
    tracing::info!(?addr, "metrics are served on their own listener");
    let shutdown = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    if let Err(e) = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::warn!(error = %e, "the metrics listener failed");
    }
}
