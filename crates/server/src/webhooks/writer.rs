//! The inbox processor's writers: whatever the processing tasks have handed over is written as
//! one batch (`Store::finish_webhooks`: the refreshed snapshots, the outcomes, the outbox
//! events and the announcement to the other replicas in one transaction on PostgreSQL).

use std::sync::Arc;

use coffer_store::{WebhookState, WebhookWrite};
use tokio::sync::{Mutex, Semaphore, mpsc};

use crate::state::AppState;

/// One processed delivery, for a writer.
pub struct Processed {
    pub provider_id: String,
    pub write: WebhookWrite,
}

/// Writes what the processing tasks hand over, as batches of up to `max` deliveries, until
/// every sender is gone and the queue is empty. A batch holds one of the processor's
/// connections (`db`) while it is written.
pub async fn write_batches(
    state: AppState,
    queue: Arc<Mutex<mpsc::Receiver<Processed>>>,
    db: Arc<Semaphore>,
    max: usize,
) {
    crate::batch_queue::drain(&queue, max, |batch| {
        let (state, db) = (&state, &db);
        async move { write_batch(state, batch, db).await }
    })
    .await;
}

async fn write_batch(state: &AppState, batch: Vec<Processed>, db: &Semaphore) {
    let (providers, writes): (Vec<String>, Vec<WebhookWrite>) =
        batch.into_iter().map(|p| (p.provider_id, p.write)).unzip();
    let results = {
        let _db = db.acquire().await;
        state
            .store
            .finish_webhooks(&state.instance_id, &writes)
            .await
    };
    for ((provider, w), r) in providers.iter().zip(&writes).zip(results) {
        // Whatever was written: this replica's L1 drops the customer (the others heard of it
        // through the store).
        if let Some(customer) = &w.outcome.customer_id {
            state.fresh.invalidate(customer).await;
        }
        match r {
            Ok(true) => crate::metrics::webhook(provider, label(w.outcome.state)),
            Ok(false) => {
                tracing::debug!(id = w.id, "webhook lease lost; another replica records it");
            }
            Err(e) => {
                tracing::warn!(id = w.id, error = %e, "webhook outcome not recorded; processed again after its lease");
            }
        }
    }
}

fn label(state: WebhookState) -> &'static str {
    match state {
        WebhookState::Processed => "processed",
        WebhookState::Failed => "failed",
        WebhookState::Ignored | WebhookState::Pending => "ignored",
    }
}
