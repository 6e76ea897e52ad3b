//! Background sync: every linked (customer, provider) pair is refreshed every `sync.interval`.
//!
//! Replicas share the work through leases in the store (no pair is fetched by two replicas at
//! once; a dead replica's leases expire and are taken over). Each replica bounds its fetches in
//! flight and spends at most its share of each provider's rate, so the deployment as a whole
//! stays under the configured quota. The fetch itself goes through the same loader as requests,
//! so a request and a sync of the same pair share one provider call.
//!
//! Fetches hand their results to writer tasks, which write whatever has accumulated as one
//! batch (`Store::finish_syncs`: snapshots, released leases and the announcement to the other
//! replicas in one transaction), so the database costs a few statements per batch, not a dozen
//! round trips per pair.
//!
//! Exactly once per cycle: a pair is due again `interval` (plus up to 10 % jitter, never less)
//! after its fetch ended, and a lease always outlives the fetch it covers (it is at least the
//! provider's whole request budget plus a margin; a fetch that could not start in time is not
//! started), so no other replica takes a pair over while its fetch may still be running.

mod policy;
mod writer;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use coffer_store::{Lease, SyncOutcome, SyncWrite};
use tokio::sync::{Mutex, Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use crate::config::SyncConfig;
use crate::state::AppState;
pub use policy::retry_wait;
use policy::{jitter, lease_duration};
use writer::write_batches;

/// Longest time between two refreshes of the sync-lag gauge (it costs a query).
const LAG_EVERY: Duration = Duration::from_secs(10);
/// Batches written at once: one fills while others are written, so fetching, preparing a
/// batch and the database's work on earlier ones overlap. Three measured faster than two on 2
/// cores (docs/benchmarks.md).
const WRITERS: usize = 3;

/// Runs until `shutdown` turns true. Returns after the fetches in flight have finished. When
/// the task running it is aborted (a killed replica), its fetches in flight and its heartbeat
/// are aborted with it.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let cfg = state.config.sync.clone();
    let lease_for = lease_duration(&state, &cfg);
    let heartbeat = AbortOnDrop(tokio::spawn(heartbeat(state.clone(), shutdown.clone())));
    let permits = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
    let max_batch = usize::try_from(cfg.batch.max(1)).unwrap_or(usize::MAX);
    // Bounded: when the database falls behind, fetches wait instead of piling up results.
    let (writes, queue) = mpsc::channel::<SyncWrite>(max_batch * WRITERS);
    let queue = Arc::new(Mutex::new(queue));
    let writers: Vec<AbortOnDrop> = (0..WRITERS)
        .map(|_| {
            AbortOnDrop(tokio::spawn(write_batches(
                state.clone(),
                Arc::clone(&queue),
                max_batch,
            )))
        })
        .collect();
    let mut tasks = JoinSet::new();
    let lease_at_least = cfg
        .batch
        .min(u32::try_from(cfg.concurrency / 2).unwrap_or(u32::MAX))
        .max(1);
    let lag_every = LAG_EVERY.min(cfg.interval).max(Duration::from_millis(100));
    tracing::info!(instance = %state.instance_id, interval = ?cfg.interval, lease = ?lease_for, "sync worker started");
    let mut last_lag: Option<Instant> = None;
    loop {
        if *shutdown.borrow() {
            break;
        }
        while tasks.try_join_next().is_some() {}
        if last_lag.is_none_or(|t| t.elapsed() >= lag_every) {
            update_lag(&state).await;
            last_lag = Some(Instant::now());
        }
        // Lease no more than we can start now, so leases are not held while waiting for permits,
        // and (while fetches are running) no fewer than half a batch: leasing the one or two
        // permits each ending fetch frees would cost a round trip per pair.
        let free = u32::try_from(permits.available_permits())
            .unwrap_or(u32::MAX)
            .min(cfg.batch);
        let free = if free < lease_at_least && !tasks.is_empty() {
            0
        } else {
            free
        };
        let leases = if free == 0 {
            Vec::new()
        } else {
            match state
                .store
                .lease_due(&state.instance_id, free, lease_for)
                .await
            {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "sync: cannot lease work; retrying");
                    Vec::new()
                }
            }
        };
        if leases.is_empty() {
            // Nothing due (or every permit busy, or the store unreachable): wait a little, or
            // until a fetch ends when the permits were the limit.
            tokio::select! {
                _ = tokio::time::sleep(cfg.idle_poll) => {},
                _ = shutdown.changed() => {},
                Some(_) = tasks.join_next(), if free == 0 => {},
            }
            continue;
        }
        for lease in leases {
            let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                break;
            };
            let state = state.clone();
            let cfg = cfg.clone();
            let writes = writes.clone();
            tasks.spawn(async move {
                if let Some(w) = sync_one(&state, &cfg, lease).await {
                    // Only fails when the writers are gone (shutdown): the lease expires.
                    let _ = writes.send(w).await;
                }
                drop(permit);
            });
        }
    }
    // Drain: wait for the fetches in flight, then for the writers to write what they left.
    while tasks.join_next().await.is_some() {}
    drop(writes);
    for mut w in writers {
        let _ = (&mut w.0).await;
    }
    let mut heartbeat = heartbeat;
    let _ = (&mut heartbeat.0).await;
    tracing::info!("sync worker stopped");
}

/// Aborts the task when dropped (the sync worker aborted with a killed replica).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Announces this replica and learns how many are alive, so each takes its share of every
/// provider's quota.
async fn heartbeat(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let ttl = state.config.sync.lease.max(Duration::from_secs(3));
    loop {
        match state.store.heartbeat(&state.instance_id, ttl).await {
            Ok(n) => state.providers.set_live_replicas(n),
            Err(e) => tracing::debug!(error = %e, "heartbeat not recorded"),
        }
        tokio::select! {
            _ = tokio::time::sleep(ttl / 3) => {},
            _ = shutdown.changed() => {},
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

/// Fetches one leased pair; `None` when the fetch was not started (the lease ran short).
async fn sync_one(state: &AppState, cfg: &SyncConfig, lease: Lease) -> Option<SyncWrite> {
    // The provider's quota is shared with requests: wait for this replica's share here, for
    // as long as it takes, before a fetch that must fit in the lease.
    if let Some(p) = state.providers.get(&lease.provider_id) {
        p.quota().ready().await;
    }
    // Waiting for the quota may have eaten the lease: a fetch that could outlive it might run
    // alongside another replica's. Leave the pair; it is leased again when the lease expires.
    let budget = state.providers.request_budget(&lease.provider_id);
    let left = (lease.expires_at - Utc::now())
        .to_std()
        .unwrap_or(Duration::ZERO);
    if left < budget {
        tracing::debug!(customer = %lease.customer_id, provider = %lease.provider_id, "sync: lease too short to fetch now; left for later");
        return None;
    }
    let result = state
        .fresh
        .fetch_snapshot(
            &lease.customer_id,
            &lease.provider_id,
            &lease.external_id,
            None,
        )
        .await;
    let now = Utc::now();
    Some(match result {
        Ok((accounts, meta)) => SyncWrite {
            lease,
            snapshot: Some((meta, accounts)),
            outcome: SyncOutcome::Success {
                next_due: now + jitter(cfg.interval),
            },
        },
        Err(e) => {
            tracing::warn!(customer = %lease.customer_id, provider = %lease.provider_id, error = %e, "sync failed");
            let wait = retry_wait(cfg, e.kind, e.retry_after, lease.failures);
            SyncWrite {
                outcome: SyncOutcome::Failure {
                    kind: e.kind,
                    message: e.message.clone(),
                    // Checked: a wait no calendar can hold is an hour, not a panic.
                    next_due: chrono::Duration::from_std(wait)
                        .ok()
                        .and_then(|w| now.checked_add_signed(w))
                        .unwrap_or(now + chrono::Duration::hours(1)),
                },
                lease,
                snapshot: None,
            }
        }
    })
}

async fn update_lag(state: &AppState) {
    if let Ok(Some(oldest)) = state.store.oldest_snapshot().await {
        let lag = (Utc::now() - oldest).num_milliseconds().max(0);
        #[allow(clippy::cast_precision_loss)] // a gauge in seconds; precision loss is irrelevant
        crate::metrics::sync_lag(lag as f64 / 1000.0);
    }
}
