//! A provider behind its whole stack, as the registry hands it out.

use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

use coffer_core::{BalanceProvider, ProviderError, ProviderErrorKind};
use futures::FutureExt;

use super::breaker::{Breaker, Circuit};
use super::observe::Observe;
use super::quota::Quota;
use super::retry::Retry;
use super::timeout::Timeout;
use super::{Adapter, BreakerState, Call, FetchResult, Layer, ProviderQuota, SingleFlight};

type Layers = Retry<Breaker<Quota<Observe<Timeout<Adapter>>>>>;

/// How one provider's stack behaves.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// One attempt's timeout.
    pub timeout: Duration,
    /// Retries of a retryable failure within one call.
    pub retries: u32,
    /// Calls per second for the whole deployment; 0 = unlimited.
    pub rate_limit: u32,
    /// The longest `Retry-After` honoured.
    pub max_retry_after: Duration,
}

impl StackConfig {
    /// How long one call may take, retries included: one attempt per retry plus the backoff
    /// between them, bounded so a caller never waits on a provider for more than a few
    /// timeouts.
    pub fn budget(&self) -> Duration {
        self.timeout.saturating_mul(self.retries.saturating_add(1))
            + Duration::from_millis(500).saturating_mul(self.retries)
    }
}

pub struct ProviderStack {
    adapter: Arc<dyn BalanceProvider>,
    layers: Arc<Layers>,
    circuit: Arc<Circuit>,
    quota: Arc<ProviderQuota>,
    flights: SingleFlight<String, FetchResult>,
    budget: Duration,
}

impl ProviderStack {
    pub fn new(
        adapter: Arc<dyn BalanceProvider>,
        cfg: &StackConfig,
        replicas: Arc<AtomicU32>,
    ) -> Self {
        let id = adapter.id().to_owned();
        let circuit = Arc::new(Circuit::default());
        let quota = Arc::new(ProviderQuota::new(&id, cfg.rate_limit, replicas));
        let layers = Retry {
            inner: Breaker {
                inner: Quota {
                    inner: Observe {
                        inner: Timeout {
                            inner: Adapter(Arc::clone(&adapter)),
                            provider: id.clone(),
                            per_attempt: cfg.timeout,
                        },
                        provider: id.clone(),
                    },
                    quota: Arc::clone(&quota),
                },
                provider: id,
                circuit: Arc::clone(&circuit),
            },
            retries: cfg.retries,
            max_retry_after: cfg.max_retry_after,
        };
        Self {
            adapter,
            layers: Arc::new(layers),
            circuit,
            quota,
            flights: SingleFlight::default(),
            budget: cfg.budget(),
        }
    }

    pub fn id(&self) -> &str {
        self.adapter.id()
    }

    pub fn kind(&self) -> &'static str {
        self.adapter.kind()
    }

    pub fn rates_are_derived(&self) -> bool {
        self.adapter.rates_are_derived()
    }

    pub fn breaker_state(&self) -> BreakerState {
        self.circuit.state()
    }

    pub fn quota(&self) -> &ProviderQuota {
        &self.quota
    }

    /// How long one call may take, retries included.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// One call for `external_id`, shared with a call in flight when that gives data fetched
    /// after `fresh_after` (see `coalesce.rs`). The call runs on even if the caller stops
    /// waiting, and ends within the budget.
    pub async fn fetch(&self, external_id: &str, fresh_after: Option<Instant>) -> FetchResult {
        let layers = Arc::clone(&self.layers);
        let started = Instant::now();
        let call = Call {
            external_id: external_id.to_owned(),
            deadline: started.checked_add(self.budget).unwrap_or(started),
        };
        let (result, _) = self
            .flights
            .run(
                external_id.to_owned(),
                fresh_after,
                Some(started),
                move || async move { layers.fetch(&call).await }.boxed(),
            )
            .await;
        result.unwrap_or_else(|_| {
            Err(ProviderError::new(
                self.id(),
                ProviderErrorKind::Unexpected,
                "the provider call failed inside Coffer (a panic, logged); nothing was fetched",
            )
            .retryable(false))
        })
    }
}
