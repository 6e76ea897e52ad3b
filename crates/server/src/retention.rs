//! Retention (`history.retention`): a background task prunes the history older than now −
//! retention, keeping the state at that horizon, once at start and then every
//! `history.prune_interval`. On PostgreSQL an advisory lock lets one replica prune at a time;
//! the others skip that round. The same task prunes the outbox (`events.retention`): events and
//! finished deliveries older than their horizon, and the webhook inbox (`webhooks.retention`):
//! deliveries processed before theirs (deleting twice deletes nothing more, so replicas need no
//! lock for either).

use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;

use crate::state::AppState;

/// Default `history.prune_interval`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(3600);

/// Runs until shutdown; returns at once when nothing is to be pruned (no retention).
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    if !enabled(&state.config) {
        return;
    }
    let every = state
        .config
        .history
        .prune_interval
        .unwrap_or(DEFAULT_INTERVAL)
        .max(Duration::from_secs(1));
    loop {
        prune_once(&state).await;
        tokio::select! {
            _ = tokio::time::sleep(every) => {},
            _ = shutdown.changed() => {},
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

/// Whether anything is to be pruned.
pub fn enabled(config: &crate::config::Config) -> bool {
    config.history.retention.is_some()
        || config.events.retention.is_some()
        || !config.webhooks.retention.is_zero()
}

/// One round: prunes up to the horizons now, logging what went.
pub async fn prune_once(state: &AppState) {
    prune_events(state).await;
    prune_webhooks(state).await;
    prune_history(state).await;
}

/// Now − `keep`, unless that is before the earliest instant.
fn horizon(keep: Duration) -> Option<chrono::DateTime<Utc>> {
    chrono::TimeDelta::from_std(keep)
        .ok()
        .and_then(|k| Utc::now().checked_sub_signed(k))
}

/// Webhook deliveries processed before `webhooks.retention` (never a pending or failed one).
pub async fn prune_webhooks(state: &AppState) {
    let keep = state.config.webhooks.retention;
    if keep.is_zero() {
        return;
    }
    let Some(horizon) = horizon(keep) else {
        return;
    };
    match state.store.prune_webhooks(horizon).await {
        Ok(deleted) => {
            crate::metrics::webhooks_pruned(deleted);
            tracing::info!(%horizon, deliveries = deleted, "webhook inbox pruned");
        }
        Err(e) => tracing::warn!(error = %e, "webhook inbox not pruned; retried next round"),
    }
}

/// Events and finished deliveries older than `events.retention`.
pub async fn prune_events(state: &AppState) {
    let Some(keep) = state.config.events.retention else {
        return;
    };
    let Some(horizon) = horizon(keep) else {
        return;
    };
    match state.store.prune_events(horizon).await {
        Ok((events, deliveries)) => {
            tracing::info!(%horizon, events, deliveries, "events pruned");
        }
        Err(e) => tracing::warn!(error = %e, "events not pruned; retried next round"),
    }
}

async fn prune_history(state: &AppState) {
    let Some(horizon) = state.config.history.horizon(Utc::now()) else {
        return;
    };
    match state.store.prune_history(horizon).await {
        Ok(Some(p)) => tracing::info!(
            %horizon,
            observations = p.observations,
            account_versions = p.account_versions,
            balance_history = p.balance_history,
            rate_versions = p.rate_versions,
            "history pruned"
        ),
        Ok(None) => tracing::debug!("another replica is pruning history"),
        Err(e) => tracing::warn!(error = %e, "history not pruned; retried next round"),
    }
}
