//! Checkpoints of the all-customer totals (`Store::build_checkpoints`): a background task
//! builds them on the hour, for settled instants only (older than `history.settle`, so no
//! write in flight can still land before them), at start and then every minute. An
//! all-customer answer at a past instant reads the newest one and the versions since
//! (`routes/at_totals.rs`). Replicas may race to build the same checkpoint: the loser's write
//! fails on the key, is logged, and the next round finds it built.

use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;

use crate::state::AppState;

/// Checkpoints are this far apart: the delta an answer reads is at most this much history.
pub const STEP: Duration = Duration::from_secs(3600);

/// How often the task looks for a checkpoint to build.
const EVERY: Duration = Duration::from_secs(60);

/// Runs until shutdown.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    loop {
        build_once(&state).await;
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {},
            _ = shutdown.changed() => {},
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

/// One round: every missing checkpoint up to now − settle.
pub async fn build_once(state: &AppState) {
    let settle =
        chrono::TimeDelta::from_std(state.config.settle()).unwrap_or(chrono::TimeDelta::MAX);
    let Some(until) = Utc::now().checked_sub_signed(settle) else {
        return;
    };
    match state.store.build_checkpoints(until, STEP).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(checkpoints = n, %until, "totals checkpoints built"),
        Err(e) => tracing::warn!(error = %e, "totals checkpoints not built; retried next round"),
    }
}
