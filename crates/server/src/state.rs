//! The state every handler shares.

use std::ops::Deref;
use std::sync::Arc;

use coffer_core::Currency;
use coffer_store::Store;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::Config;
use crate::fresh::Freshness;
use crate::keys::KeyResolver;
use crate::limiter::KeyLimiter;
use crate::providers::Providers;
use crate::rates::RateBook;

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

pub struct Inner {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub providers: Arc<Providers>,
    pub fresh: Arc<Freshness>,
    pub keys: KeyResolver,
    pub limiter: KeyLimiter,
    pub base: Currency,
    pub rates: RateBook,
    /// Serialised answers about one customer, reused while nothing they depend on changed.
    pub answers: crate::answers::AnswerCache,
    pub metrics: PrometheusHandle,
    /// This replica's id, used as lease owner and in logs.
    pub instance_id: String,
    /// Wakes this replica's webhook processor as soon as a delivery is kept.
    pub webhook_wake: Arc<tokio::sync::Notify>,
    /// Keeps received webhook deliveries, several per commit under a burst.
    pub webhook_keeper: crate::webhook_keeper::Keeper,
    /// Set when the service shuts down: live event streams end, so draining can finish.
    pub closing: tokio::sync::watch::Sender<bool>,
    /// Set from SIGTERM on: `/readyz` answers 503 while the replica drains.
    pub draining: std::sync::atomic::AtomicBool,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Inner {
    /// The bytes every cache holds, by the weights they are bounded by (`cache.max_bytes`).
    pub fn cache_bytes(&self) -> Vec<(&'static str, u64)> {
        let mut held = self.fresh.weighed_bytes().to_vec();
        held.push(("answers", self.answers.weighed_bytes()));
        held.push(("keys", self.keys.weighed_bytes()));
        held
    }

    /// Settles every cache's pending inserts and evictions (benchmarks, tests).
    pub async fn settle_caches(&self) {
        self.fresh.settle().await;
        self.answers.settle().await;
    }
}
