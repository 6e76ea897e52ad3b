//! What `GET /v2/sync/status` reads from the store (DESIGN.md "Console"): per provider, its
//! linked pairs by sync state and the age of their observations; the failing pairs, worst
//! first; the last webhook received. Each backend answers in a few aggregate queries
//! (`postgres/status.rs`, `sqlite/status.rs`), never by loading every pair.

use chrono::{DateTime, Utc};

/// One provider's linked (customer, provider) pairs at an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairStats {
    pub provider_id: String,
    /// Linked pairs (one sync state each).
    pub total: u64,
    /// Due now and not leased: what the sync worker takes next.
    pub due: u64,
    /// Leased now (a live lease): being fetched.
    pub leased: u64,
    /// With at least one failure since their last success.
    pub failing: u64,
    /// Linked but never observed (no snapshot yet): left out of [`PairStats::lag`].
    pub never_observed: u64,
    /// The age of each observed pair's latest observation, as the instants at the ranks:
    /// `None` when no pair of the provider was observed.
    pub lag: Option<LagInstants>,
}

/// Observation instants at the nearest ranks of the ages: the median, the 99th percentile and
/// the oldest (rank ⌈p·n⌉ of the ages in ascending order, as PostgreSQL's `percentile_disc`).
/// An instant, not an age, so that the answer's ages are taken against one `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LagInstants {
    pub p50: DateTime<Utc>,
    pub p99: DateTime<Utc>,
    pub oldest: DateTime<Utc>,
}

/// A pair whose last sync failed, as the status lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailingPair {
    pub customer_id: String,
    pub provider_id: String,
    /// Consecutive failures.
    pub failures: u32,
    pub last_error_kind: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    /// The first failure after the last success (its `sync.failed` event); `None` when the
    /// pair never succeeded (then it has been failing since it was linked) or that event was
    /// pruned.
    pub failing_since: Option<DateTime<Utc>>,
}

/// The whole store side of the status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncStatus {
    /// One entry per provider that has linked pairs, by provider id.
    pub providers: Vec<PairStats>,
    /// Worst first: most consecutive failures, then the longest since a success (never first),
    /// then by customer and provider; at most the limit asked for.
    pub failing: Vec<FailingPair>,
    /// The newest delivery kept in the webhook inbox, per provider (by provider id).
    pub last_webhooks: Vec<(String, DateTime<Utc>)>,
}

/// The 1-based rank of quantile `percent` among `n` values: ⌈percent·n/100⌉, at least 1.
pub fn nearest_rank(percent: u64, n: u64) -> u64 {
    (percent * n).div_ceil(100).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_are_nearest_rank() {
        assert_eq!(nearest_rank(50, 1), 1);
        assert_eq!(nearest_rank(99, 1), 1);
        assert_eq!(nearest_rank(50, 4), 2);
        assert_eq!(nearest_rank(50, 5), 3);
        assert_eq!(nearest_rank(99, 100), 99);
        assert_eq!(nearest_rank(99, 101), 100);
        assert_eq!(nearest_rank(100, 7), 7);
    }
}
