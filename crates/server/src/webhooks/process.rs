//! The inbox's processor: leases pending deliveries (shared by the replicas through leases in
//! the store, like the sync worker's pairs), acts on each, and records the outcome. Woken at
//! once by a delivery this replica kept; deliveries kept by other replicas, or left by one
//! that stopped, are found by polling every `webhooks.poll_interval`. Each delivery is its own
//! task, up to `webhooks.concurrency` at once: leasing a batch and waiting for all of it made a
//! burst of 1,000 take 63 rounds of the provider's latency (docs/benchmarks.md). What the
//! tasks fetched is written by a few writer tasks, whatever has accumulated as one batch
//! (`Store::finish_webhooks`, [`super::writer`]), as the sync worker writes its pairs.

use std::sync::Arc;
use std::time::Instant;

use coffer_store::{StoreError, WebhookEntry, WebhookOutcome, WebhookState, WebhookWrite};
use tokio::sync::{Mutex, Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use super::event::{Event, classify};
use super::writer::{Processed, write_batches};
use crate::state::AppState;

/// Batches written at once: one fills while another is written.
const WRITERS: usize = 2;

/// Runs until `shutdown` turns true; the deliveries being processed are finished first.
///
/// Up to `webhooks.concurrency` deliveries are processed at once, each as its own task: a
/// slow provider holds one slot per delivery, not a whole batch, and a burst is leased as
/// fast as slots are free (in round trips of at most `webhooks.batch`).
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let cfg = state.config.webhooks.clone();
    let slots = cfg.concurrency.max(1);
    tracing::info!(instance = %state.instance_id, poll = ?cfg.poll_interval, concurrency = slots, "webhook processor started");
    let batch = cfg.batch.max(1);
    // While deliveries run, lease no fewer than this (as the sync worker does): leasing the
    // one slot each ending delivery frees would cost a round trip per delivery.
    let lease_at_least = batch
        .min(u32::try_from(slots / 2).unwrap_or(u32::MAX))
        .max(1);
    // The deliveries' database work (a few statements before the provider call, the snapshot
    // and the outcome after it) takes at most half the pool: with every connection busy
    // processing a burst, the deliveries still arriving waited for one before their 200
    // (docs/benchmarks.md, "Webhook inbox").
    let db = Arc::new(Semaphore::new(db_share(&state)));
    // Bounded: when the database falls behind, processing waits instead of piling up results.
    let (writes, queue) = mpsc::channel::<Processed>(batch as usize * WRITERS);
    let queue = Arc::new(Mutex::new(queue));
    let writers: Vec<_> = (0..WRITERS)
        .map(|_| {
            tokio::spawn(write_batches(
                state.clone(),
                Arc::clone(&queue),
                Arc::clone(&db),
                batch as usize,
            ))
        })
        .collect();
    let mut tasks = JoinSet::new();
    loop {
        while tasks.try_join_next().is_some() {}
        if *shutdown.borrow() {
            break;
        }
        // Registered before leasing, so a delivery kept while leasing still wakes the loop.
        let woken = state.webhook_wake.notified();
        let room = u32::try_from(slots - tasks.len().min(slots)).unwrap_or(u32::MAX);
        let want = if room < lease_at_least && !tasks.is_empty() {
            0
        } else {
            room.min(batch)
        };
        let leased = if want == 0 {
            Vec::new()
        } else {
            lease(&state, want, cfg.lease).await
        };
        let full = !leased.is_empty() && leased.len() == want as usize;
        for entry in leased {
            let state = state.clone();
            let db = Arc::clone(&db);
            let writes = writes.clone();
            tasks.spawn(async move {
                if let Some(p) = process(&state, entry, &db).await {
                    // Only fails when the writers are gone: the lease expires.
                    let _ = writes.send(p).await;
                }
            });
        }
        if full {
            // More may be waiting: lease again while there is room.
            continue;
        }
        tokio::select! {
            () = woken, if want > 0 => {},
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {},
            () = tokio::time::sleep(cfg.poll_interval) => {},
            _ = shutdown.changed() => {},
        }
    }
    // Drain: the deliveries in flight, then what the writers were handed.
    while tasks.join_next().await.is_some() {}
    drop(writes);
    for w in writers {
        let _ = w.await;
    }
    tracing::info!("webhook processor stopped");
}

/// Half the store's pool (at least one connection); four when the store does not say.
fn db_share(state: &AppState) -> usize {
    match state.store.pool_stats().max {
        0 => 4,
        max => usize::try_from(max / 2).unwrap_or(1).max(1),
    }
}

async fn lease(state: &AppState, n: u32, lease: std::time::Duration) -> Vec<WebhookEntry> {
    match state
        .store
        .lease_webhooks(&state.instance_id, n, lease)
        .await
    {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "webhooks: cannot lease deliveries; retrying");
            Vec::new()
        }
    }
}

/// Processes one leased delivery; what it found is handed to the writers. A store that
/// cannot be reached leaves the delivery leased: it is processed again once the lease expires.
async fn process(state: &AppState, entry: WebhookEntry, db: &Semaphore) -> Option<Processed> {
    match handle(state, &entry, db).await {
        Ok(write) => Some(Processed {
            provider_id: entry.provider_id,
            write,
        }),
        Err(e) => {
            tracing::warn!(id = entry.id, error = %e, "webhook not processed; retried after its lease");
            None
        }
    }
}

fn ignored(reason: String, external_id: Option<String>) -> WebhookOutcome {
    WebhookOutcome {
        state: WebhookState::Ignored,
        reason: Some(reason),
        customer_id: None,
        external_id,
    }
}

/// An outcome alone: nothing fetched, nothing else to write.
fn only(id: i64, outcome: WebhookOutcome) -> WebhookWrite {
    WebhookWrite {
        id,
        outcome,
        snapshot: None,
        due_now: None,
    }
}

async fn handle(
    state: &AppState,
    entry: &WebhookEntry,
    db: &Semaphore,
) -> Result<WebhookWrite, StoreError> {
    let (external_id, activated) = match classify(entry.body.as_bytes()) {
        Event::Ignored(reason) => return Ok(only(entry.id, ignored(reason, None))),
        Event::UserStatus {
            status,
            external_id,
        } if status != "ACTIVE" => {
            return Ok(only(
                entry.id,
                ignored(format!("user status `{status}`"), Some(external_id)),
            ));
        }
        Event::UserStatus { external_id, .. } => (external_id, true),
        Event::ForUser { external_id, .. } => (external_id, false),
    };
    let provider = &entry.provider_id;
    let customer = {
        let _db = db.acquire().await;
        let Some(customer) = state.store.customer_by_link(provider, &external_id).await? else {
            return Ok(only(
                entry.id,
                ignored("no link to this user".into(), Some(external_id)),
            ));
        };
        if activated {
            // A pending link (the user not ACTIVE yet) waits out a backoff: make it syncable
            // now, so polling takes it at once even if this refresh fails or this replica
            // stops before its outcome is written.
            state.store.sync_due_now(&customer, provider).await?;
        }
        customer
    };
    // No connection is held while the provider answers.
    let refreshed = state
        .fresh
        .fetch_snapshot(&customer, provider, &external_id, Some(Instant::now()))
        .await;
    Ok(match refreshed {
        Ok((accounts, meta)) => WebhookWrite {
            id: entry.id,
            outcome: WebhookOutcome {
                state: WebhookState::Processed,
                reason: None,
                customer_id: Some(customer),
                external_id: Some(external_id),
            },
            snapshot: Some((meta, accounts)),
            due_now: None,
        },
        // Left to polling, at once.
        Err(e) => WebhookWrite {
            id: entry.id,
            outcome: WebhookOutcome {
                state: WebhookState::Failed,
                reason: Some(format!("refresh failed: {}", e.kind.as_str())),
                customer_id: Some(customer.clone()),
                external_id: Some(external_id),
            },
            snapshot: None,
            due_now: Some((customer, provider.clone())),
        },
    })
}
