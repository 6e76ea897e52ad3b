//! The sync worker's writers: whatever the fetches have handed over is written as one batch
//! (`Store::finish_syncs`: snapshots, released leases and the announcement to the other
//! replicas in one transaction).

use std::sync::Arc;

use coffer_store::{SyncOutcome, SyncWrite};
use tokio::sync::{Mutex, mpsc};

use crate::state::AppState;

/// Writes what the fetches hand over, as batches of up to `max` pairs, until every sender is
/// gone and the queue is empty.
pub async fn write_batches(
    state: AppState,
    queue: Arc<Mutex<mpsc::Receiver<SyncWrite>>>,
    max: usize,
) {
    crate::batch_queue::drain(&queue, max, |batch| {
        let state = &state;
        async move { write_batch(state, &batch).await }
    })
    .await;
}

async fn write_batch(state: &AppState, batch: &[SyncWrite]) {
    let results = state.store.finish_syncs(batch).await;
    let mut lost = 0usize;
    let mut last_error = None;
    for (w, r) in batch.iter().zip(results) {
        match r {
            Ok(()) => {
                let kind = match &w.outcome {
                    SyncOutcome::Success { .. } => None,
                    SyncOutcome::Failure { kind, .. } => Some(*kind),
                };
                crate::metrics::sync_run(&w.lease.provider_id, kind);
                if w.snapshot.is_some() {
                    // Other replicas heard of it through the store.
                    state.fresh.invalidate(&w.lease.customer_id).await;
                }
            }
            // Not synced: the lease expires and the pair is fetched again then.
            Err(e) => {
                lost += 1;
                last_error = Some(e);
            }
        }
    }
    if let Some(e) = last_error {
        tracing::warn!(pairs = lost, error = %e, "sync: results not recorded; the pairs are fetched again when their leases expire");
    }
}
