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

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use coffer_core::ProviderErrorKind;
use coffer_store::{Lease, SyncOutcome, SyncWrite};
use rand::Rng;
use tokio::sync::{Mutex, Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use crate::config::SyncConfig;
use crate::state::AppState;

/// First retry delay of a failing pair; doubles per consecutive failure up to `max_backoff`.
const FAILURE_BACKOFF_BASE: Duration = Duration::from_secs(5);
/// Longest time between two refreshes of the sync-lag gauge (it costs a query).
const LAG_EVERY: Duration = Duration::from_secs(10);
/// Time a lease must leave after a fetch's whole budget, for writing the snapshot and the
/// outcome.
const LEASE_MARGIN: Duration = Duration::from_secs(2);
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
    let replicas = Arc::new(AtomicU32::new(1));
    let buckets = Arc::new(ProviderBuckets::new(&state, Arc::clone(&replicas)));
    let heartbeat = AbortOnDrop(tokio::spawn(heartbeat(
        state.clone(),
        replicas,
        shutdown.clone(),
    )));
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
            let buckets = Arc::clone(&buckets);
            let cfg = cfg.clone();
            let writes = writes.clone();
            tasks.spawn(async move {
                if let Some(w) = sync_one(&state, &buckets, &cfg, lease).await {
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

/// The longest fetch budget of any provider.
fn longest_budget(state: &AppState) -> Duration {
    state
        .providers
        .all()
        .map(|p| state.providers.request_budget(p.id()))
        .max()
        .unwrap_or(Duration::ZERO)
}

/// `sync.lease`, raised to cover the longest fetch (and writing its outcome) when it is too
/// short: a lease that expires while its fetch runs lets another replica fetch the pair again.
fn lease_duration(state: &AppState, cfg: &SyncConfig) -> Duration {
    let needed = longest_budget(state) + LEASE_MARGIN;
    if cfg.lease < needed {
        tracing::warn!(configured = ?cfg.lease, used = ?needed, "sync.lease is shorter than a provider's request budget; using a longer lease");
        needed
    } else {
        cfg.lease
    }
}

/// Announces this replica and learns how many are alive, so each takes its share of every
/// provider's quota.
async fn heartbeat(state: AppState, replicas: Arc<AtomicU32>, mut shutdown: watch::Receiver<bool>) {
    let ttl = state.config.sync.lease.max(Duration::from_secs(3));
    loop {
        match state.store.heartbeat(&state.instance_id, ttl).await {
            Ok(n) => replicas.store(n.max(1), Ordering::Relaxed),
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
async fn sync_one(
    state: &AppState,
    buckets: &ProviderBuckets,
    cfg: &SyncConfig,
    lease: Lease,
) -> Option<SyncWrite> {
    buckets.acquire(&lease.provider_id).await;
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
        .fetch_snapshot(&lease.customer_id, &lease.provider_id, &lease.external_id)
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
                    next_due: now
                        + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1)),
                },
                lease,
                snapshot: None,
            }
        }
    })
}

/// Writes what the fetches hand over, as batches of up to `max` pairs, until every sender is
/// gone and the queue is empty.
async fn write_batches(state: AppState, queue: Arc<Mutex<mpsc::Receiver<SyncWrite>>>, max: usize) {
    let mut batch = Vec::with_capacity(max);
    loop {
        // Whatever has accumulated (at least one): no timer, so a lone pair is not delayed.
        let got = queue.lock().await.recv_many(&mut batch, max).await;
        if got == 0 {
            return;
        }
        write_batch(&state, &batch).await;
        batch.clear();
    }
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

/// When to try a failing pair again.
pub fn retry_wait(
    cfg: &SyncConfig,
    kind: ProviderErrorKind,
    retry_after: Option<Duration>,
    failures: u32,
) -> Duration {
    match kind {
        // The provider does not know the customer (or may not show it yet): asking every cycle
        // would only spend quota.
        ProviderErrorKind::UnknownCustomer | ProviderErrorKind::CustomerNotVerified => {
            cfg.unknown_customer_retry
        }
        _ => {
            let exp = FAILURE_BACKOFF_BASE.saturating_mul(1u32 << failures.min(16));
            let wait = exp
                .min(cfg.max_backoff)
                .min(cfg.interval.max(FAILURE_BACKOFF_BASE));
            retry_after.map_or(wait, |ra| ra.max(wait))
        }
    }
}

/// The interval plus up to 10 %, so pairs created together spread out over time. Never less
/// than the interval: a pair is not fetched twice within one interval.
fn jitter(interval: Duration) -> chrono::Duration {
    let ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
    let spread = ms / 10;
    let ms = if spread == 0 {
        ms
    } else {
        ms.saturating_add(rand::rng().random_range(0..=spread))
    };
    chrono::Duration::milliseconds(i64::try_from(ms).unwrap_or(i64::MAX))
}

async fn update_lag(state: &AppState) {
    if let Ok(Some(oldest)) = state.store.oldest_snapshot().await {
        let lag = (Utc::now() - oldest).num_milliseconds().max(0);
        #[allow(clippy::cast_precision_loss)] // a gauge in seconds; precision loss is irrelevant
        crate::metrics::sync_lag(lag as f64 / 1000.0);
    }
}

/// A token bucket per provider: this replica's share of the provider's configured rate.
struct ProviderBuckets {
    buckets: HashMap<String, Mutex<Bucket>>,
    replicas: Arc<AtomicU32>,
}

struct Bucket {
    /// Calls per second for the whole deployment; 0 = unlimited.
    rate: u32,
    tokens_milli: u64,
    last: Instant,
}

impl ProviderBuckets {
    fn new(state: &AppState, replicas: Arc<AtomicU32>) -> Self {
        let buckets = state
            .config
            .providers
            .iter()
            .map(|p| {
                (
                    p.id.clone(),
                    Mutex::new(Bucket {
                        rate: p.rate_limit,
                        tokens_milli: 1000,
                        last: Instant::now(),
                    }),
                )
            })
            .collect();
        Self { buckets, replicas }
    }

    /// Waits for one call's worth of this replica's share.
    async fn acquire(&self, provider: &str) {
        let Some(bucket) = self.buckets.get(provider) else {
            return;
        };
        loop {
            let replicas = self.replicas.load(Ordering::Relaxed).max(1);
            let wait = {
                let mut b = bucket.lock().await;
                if b.rate == 0 {
                    return;
                }
                // This replica's share, in thousandths of a call per second.
                let share_milli = (u64::from(b.rate) * 1000 / u64::from(replicas)).max(1);
                let now = Instant::now();
                let elapsed_ms =
                    u64::try_from(now.duration_since(b.last).as_millis()).unwrap_or(u64::MAX);
                let cap = share_milli.max(1000);
                b.tokens_milli =
                    (b.tokens_milli + elapsed_ms.saturating_mul(share_milli) / 1000).min(cap);
                b.last = now;
                if b.tokens_milli >= 1000 {
                    b.tokens_milli -= 1000;
                    return;
                }
                Duration::from_millis(((1000 - b.tokens_milli) * 1000).div_ceil(share_milli))
            };
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_customers_are_retried_rarely() {
        let cfg = SyncConfig::default();
        assert_eq!(
            retry_wait(&cfg, ProviderErrorKind::UnknownCustomer, None, 0),
            cfg.unknown_customer_retry
        );
        assert_eq!(
            retry_wait(&cfg, ProviderErrorKind::CustomerNotVerified, None, 3),
            cfg.unknown_customer_retry
        );
    }

    #[test]
    fn jitter_never_brings_a_pair_back_before_the_interval() {
        let interval = Duration::from_secs(3);
        for _ in 0..1000 {
            let j = jitter(interval);
            assert!(j >= chrono::Duration::seconds(3), "{j}");
            assert!(j <= chrono::Duration::milliseconds(3300), "{j}");
        }
    }

    #[test]
    fn failures_back_off_exponentially_and_honour_retry_after() {
        let cfg = SyncConfig::default();
        let a = retry_wait(&cfg, ProviderErrorKind::Unavailable, None, 0);
        let b = retry_wait(&cfg, ProviderErrorKind::Unavailable, None, 3);
        assert_eq!(a, FAILURE_BACKOFF_BASE);
        assert_eq!(b, FAILURE_BACKOFF_BASE * 8);
        let ra = retry_wait(
            &cfg,
            ProviderErrorKind::RateLimited,
            Some(Duration::from_secs(120)),
            0,
        );
        assert_eq!(ra, Duration::from_secs(120));
    }
}
