//! A provider's quota: `rate_limit` calls per second for the whole deployment, shared by the
//! live replicas (each takes its share, from the heartbeats the sync worker keeps), and by
//! requests and the sync worker alike: one bucket per provider per replica.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use coffer_core::{ProviderError, ProviderErrorKind};
use tokio::sync::Mutex;

use super::{Call, FetchResult, Layer};
use crate::bucket::TokenBucket;

/// A quota's state on this replica (`GET /v2/sync/status`); all `None` when unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headroom {
    /// Calls per second for the whole deployment; 0 = unlimited.
    pub rate_limit: u32,
    /// This replica's share, in thousandths of a call per second.
    pub share_milli: Option<u64>,
    /// Calls' worth in the bucket now, in thousandths (at most one call: see `burst`).
    pub available_milli: Option<u64>,
    /// How long until the next call may go, when it may not go now.
    pub ready_in: Option<Duration>,
}

pub struct ProviderQuota {
    provider: String,
    /// Calls per second for the whole deployment; 0 = unlimited.
    rate: AtomicU32,
    /// Live replicas, at least 1.
    replicas: Arc<AtomicU32>,
    bucket: Mutex<TokenBucket>,
}

impl ProviderQuota {
    pub fn new(provider: &str, rate: u32, replicas: Arc<AtomicU32>) -> Self {
        Self {
            provider: provider.to_owned(),
            rate: AtomicU32::new(rate),
            replicas,
            bucket: Mutex::new(TokenBucket::full(1)),
        }
    }

    pub fn set_rate(&self, rate: u32) {
        self.rate.store(rate, Ordering::Relaxed);
    }

    pub fn rate(&self) -> u32 {
        self.rate.load(Ordering::Relaxed)
    }

    /// This replica's share, in thousandths of a call per second; `None` when unlimited.
    fn share_milli(&self) -> Option<u64> {
        let rate = self.rate();
        if rate == 0 {
            return None;
        }
        let replicas = self.replicas.load(Ordering::Relaxed).max(1);
        Some((u64::from(rate) * 1000 / u64::from(replicas)).max(1))
    }

    /// The bucket holds one call at most: the share is spread evenly, never spent in bursts.
    fn burst(share_milli: u64) -> u32 {
        u32::try_from(share_milli / 1000).unwrap_or(u32::MAX).max(1)
    }

    /// What is left of the quota on this replica now, without spending any.
    pub async fn headroom(&self) -> Headroom {
        let Some(share) = self.share_milli() else {
            return Headroom::default();
        };
        let mut bucket = self.bucket.lock().await;
        let available_milli = bucket.available_milli(share, Self::burst(share));
        let ready_in = bucket.ready(share, Self::burst(share)).err();
        Headroom {
            rate_limit: self.rate(),
            share_milli: Some(share),
            available_milli: Some(available_milli),
            ready_in,
        }
    }

    /// Takes one call's worth, waiting at most until `deadline`; `Err` with the wait still
    /// needed when the deadline comes first.
    pub async fn acquire_until(&self, deadline: Instant) -> Result<(), Duration> {
        loop {
            let Some(share) = self.share_milli() else {
                return Ok(());
            };
            let wait = match self.bucket.lock().await.try_take(share, Self::burst(share)) {
                Ok(()) => return Ok(()),
                Err(wait) => wait,
            };
            match Instant::now().checked_add(wait) {
                Some(at) if at <= deadline => tokio::time::sleep(wait).await,
                _ => return Err(wait),
            }
        }
    }

    /// Waits until a call's worth is there, without taking it (the sync worker waits here, for
    /// as long as it takes, before it starts a fetch that must fit in its lease).
    pub async fn ready(&self) {
        loop {
            let Some(share) = self.share_milli() else {
                return;
            };
            let wait = match self.bucket.lock().await.ready(share, Self::burst(share)) {
                Ok(()) => return,
                Err(wait) => wait,
            };
            tokio::time::sleep(wait).await;
        }
    }
}

pub struct Quota<L> {
    pub inner: L,
    pub quota: Arc<ProviderQuota>,
}

impl<L: Layer> Layer for Quota<L> {
    async fn fetch(&self, call: &Call) -> FetchResult {
        if let Err(wait) = self.quota.acquire_until(call.deadline).await {
            return Err(ProviderError::new(
                &self.quota.provider,
                ProviderErrorKind::RateLimited,
                format!(
                    "this deployment's quota of {} calls/s for the provider is used up; not calling it now",
                    self.quota.rate()
                ),
            )
            .retryable(false)
            .with_retry_after(Some(wait)));
        }
        self.inner.fetch(call).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_share_is_divided_by_the_live_replicas() {
        let replicas = Arc::new(AtomicU32::new(1));
        let q = ProviderQuota::new("p", 10, Arc::clone(&replicas));
        let soon = Instant::now() + Duration::from_millis(50);
        q.acquire_until(soon).await.unwrap();
        // 10/s for one replica: the next call is 100 ms away, past a 50 ms deadline.
        let wait = q.acquire_until(soon).await.unwrap_err();
        assert!(wait > Duration::from_millis(50), "{wait:?}");
        replicas.store(5, Ordering::Relaxed);
        // 2/s each for five replicas.
        let wait = q.acquire_until(soon).await.unwrap_err();
        assert!(wait > Duration::from_millis(400), "{wait:?}");
        q.set_rate(0);
        q.acquire_until(Instant::now()).await.unwrap();
    }
}
