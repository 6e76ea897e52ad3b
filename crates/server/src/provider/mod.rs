//! One provider call path. Every call to a provider — a request's cold load, a refresh, the
//! sync worker — goes through the same stack of layers, one concern per file:
//!
//! ```text
//! coalesce → retry → breaker → quota → observe → timeout → adapter
//! ```
//!
//! - `coalesce.rs`: concurrent callers share one call, unless a caller needs data fetched
//!   after the call in flight started;
//! - `retry.rs`: jittered backoff for retryable errors, `Retry-After` clamped, bounded by the
//!   call's deadline;
//! - `breaker.rs`: the circuit breaker; its half-open trial is a guard, released however the
//!   trial ends;
//! - `quota.rs`: the provider's rate for the whole deployment, one bucket for requests and sync;
//! - `observe.rs`: the metrics of every attempt;
//! - `timeout.rs`: the one timeout of an attempt.
//!
//! The adapter (its span, logs and HTTP) is the provider crate's, executed by the kit.

mod breaker;
mod coalesce;
mod observe;
mod quota;
mod retry;
mod stack;
mod timeout;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use coffer_core::{BalanceProvider, ProviderError, ProviderSnapshot};

pub use breaker::BreakerState;
pub use coalesce::{Panicked, Role, SingleFlight};
pub use quota::{Headroom, ProviderQuota};
pub use retry::{DEFAULT_MAX_RETRY_AFTER, backoff};
pub use stack::{ProviderStack, StackConfig};

pub type FetchResult = Result<ProviderSnapshot, ProviderError>;

/// One call through the stack.
#[derive(Debug, Clone)]
pub struct Call {
    pub external_id: String,
    /// The whole call, retries and waits for quota included, ends by then.
    pub deadline: Instant,
}

/// A layer of the stack, or the adapter at its bottom.
pub trait Layer: Send + Sync + 'static {
    fn fetch(&self, call: &Call) -> impl Future<Output = FetchResult> + Send;
}

/// The adapter at the bottom of the stack.
pub struct Adapter(pub Arc<dyn BalanceProvider>);

impl Layer for Adapter {
    async fn fetch(&self, call: &Call) -> FetchResult {
        self.0.fetch(&call.external_id).await
    }
}
