//! Retention (`history.retention`): a background task prunes the history older than now −
//! retention, keeping the state at that horizon, once at start and then every
//! `history.prune_interval`. On PostgreSQL an advisory lock lets one replica prune at a time;
//! the others skip that round.

use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;

use crate::state::AppState;

/// Default `history.prune_interval`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(3600);

/// Runs until shutdown; returns at once when nothing is to be pruned (no retention).
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    if state.config.history.retention.is_none() {
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

/// One round: prunes up to the horizon now, logging what went.
pub async fn prune_once(state: &AppState) {
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
