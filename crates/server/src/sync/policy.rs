//! When the sync worker asks again: after a success (the interval, jittered), after a failure
//! (backoff, Retry-After, rare retries of unknown customers), and how long a lease must be.

use std::time::Duration;

use coffer_core::ProviderErrorKind;
use rand::Rng;

use crate::config::SyncConfig;
use crate::state::AppState;

/// First retry delay of a failing pair; doubles per consecutive failure up to `max_backoff`.
pub const FAILURE_BACKOFF_BASE: Duration = Duration::from_secs(5);
/// Time a lease must leave after a fetch's whole budget, for writing the snapshot and the
/// outcome.
const LEASE_MARGIN: Duration = Duration::from_secs(2);

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
pub fn jitter(interval: Duration) -> chrono::Duration {
    let ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
    let spread = ms / 10;
    let ms = if spread == 0 {
        ms
    } else {
        ms.saturating_add(rand::rng().random_range(0..=spread))
    };
    chrono::Duration::milliseconds(i64::try_from(ms).unwrap_or(i64::MAX))
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
pub fn lease_duration(state: &AppState, cfg: &SyncConfig) -> Duration {
    let needed = longest_budget(state) + LEASE_MARGIN;
    if cfg.lease < needed {
        tracing::warn!(configured = ?cfg.lease, used = ?needed, "sync.lease is shorter than a provider's request budget; using a longer lease");
        needed
    } else {
        cfg.lease
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
