//! Layers around a provider, never inside it: a timeout per attempt, retries with jittered
//! exponential backoff for retryable errors (honouring Retry-After), and a circuit breaker.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use coffer_core::{BalanceProvider, ProviderError, ProviderErrorKind, ProviderSnapshot};
use rand::Rng;
use std::sync::Arc;

/// Consecutive failures that open the breaker.
const BREAKER_THRESHOLD: u32 = 5;
/// How long an open breaker refuses calls before letting one trial through.
const BREAKER_COOL_DOWN: Duration = Duration::from_secs(30);
/// First retry delay; doubles per attempt, with full jitter.
const BACKOFF_BASE: Duration = Duration::from_millis(100);

/// A provider with its timeout, retries and breaker.
pub struct Guarded {
    inner: Arc<dyn BalanceProvider>,
    timeout: Duration,
    retries: u32,
    breaker: Breaker,
}

impl Guarded {
    pub fn new(inner: Arc<dyn BalanceProvider>, timeout: Duration, retries: u32) -> Self {
        Self {
            inner,
            timeout,
            retries,
            breaker: Breaker::default(),
        }
    }

    pub fn id(&self) -> &str {
        self.inner.id()
    }

    pub fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    pub fn rates_are_derived(&self) -> bool {
        self.inner.rates_are_derived()
    }

    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    /// One fetch with retries. `deadline` bounds the whole attempt sequence: a Retry-After that
    /// would pass it ends the retries instead of waiting.
    pub async fn fetch(
        &self,
        external_id: &str,
        deadline: Instant,
    ) -> Result<ProviderSnapshot, ProviderError> {
        let mut attempt = 0;
        loop {
            if !self.breaker.allow() {
                return Err(ProviderError::new(
                    self.id(),
                    ProviderErrorKind::Unavailable,
                    "circuit breaker open after repeated failures; not calling the provider",
                ));
            }
            let started = Instant::now();
            let result =
                match tokio::time::timeout(self.timeout, self.inner.fetch(external_id)).await {
                    Ok(r) => r,
                    Err(_) => Err(ProviderError::new(
                        self.id(),
                        ProviderErrorKind::Timeout,
                        format!("no answer within {:?}", self.timeout),
                    )),
                };
            let kind = result.as_ref().err().map(|e| e.kind);
            crate::metrics::provider_call(self.id(), kind, started.elapsed());
            match result {
                Ok(s) => {
                    self.breaker.success();
                    return Ok(s);
                }
                Err(e) => {
                    if counts_against_health(e.kind) {
                        self.breaker.failure();
                    } else {
                        // The provider answered sensibly (e.g. unknown customer): it is healthy.
                        self.breaker.success();
                    }
                    if !e.retryable || attempt >= self.retries {
                        return Err(e);
                    }
                    let wait = backoff(attempt, e.retry_after);
                    if Instant::now() + wait >= deadline {
                        return Err(e);
                    }
                    tracing::debug!(provider = self.id(), attempt, ?wait, error = %e, "retrying provider call");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }
}

/// Errors that say the provider is unhealthy (as opposed to "this customer is unknown").
fn counts_against_health(kind: ProviderErrorKind) -> bool {
    matches!(
        kind,
        ProviderErrorKind::Unavailable
            | ProviderErrorKind::Timeout
            | ProviderErrorKind::Connection
            | ProviderErrorKind::MalformedResponse
    )
}

/// Full-jitter exponential backoff, or the provider's Retry-After when it gave one.
pub fn backoff(attempt: u32, retry_after: Option<Duration>) -> Duration {
    if let Some(ra) = retry_after {
        return ra;
    }
    let cap = BACKOFF_BASE.saturating_mul(1u32 << attempt.min(16));
    let ms = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(rand::rng().random_range(ms / 2..=ms))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    /// 0 closed, 1 half-open, 2 open: the gauge value in metrics.
    pub fn as_gauge(self) -> f64 {
        match self {
            BreakerState::Closed => 0.0,
            BreakerState::HalfOpen => 1.0,
            BreakerState::Open => 2.0,
        }
    }
}

#[derive(Default)]
struct Breaker {
    inner: Mutex<BreakerInner>,
}

#[derive(Default)]
struct BreakerInner {
    failures: u32,
    open_until: Option<Instant>,
    trial_in_flight: bool,
}

impl Breaker {
    fn allow(&self) -> bool {
        let mut b = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match b.open_until {
            None => true,
            Some(until) if Instant::now() < until => false,
            Some(_) if b.trial_in_flight => false,
            Some(_) => {
                b.trial_in_flight = true;
                true
            }
        }
    }

    fn success(&self) {
        let mut b = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *b = BreakerInner::default();
    }

    fn failure(&self) {
        let mut b = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        b.failures += 1;
        b.trial_in_flight = false;
        if b.failures >= BREAKER_THRESHOLD {
            b.open_until = Some(Instant::now() + BREAKER_COOL_DOWN);
        }
    }

    fn state(&self) -> BreakerState {
        let b = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match b.open_until {
            None => BreakerState::Closed,
            Some(until) if Instant::now() < until => BreakerState::Open,
            Some(_) => BreakerState::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_opens_after_threshold_and_closes_on_success() {
        let b = Breaker::default();
        for _ in 0..BREAKER_THRESHOLD - 1 {
            b.failure();
            assert!(b.allow());
        }
        b.failure();
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.allow());
        b.success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.allow());
    }

    #[test]
    fn backoff_grows_and_honours_retry_after() {
        assert_eq!(
            backoff(0, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        for attempt in 0..5 {
            let d = backoff(attempt, None);
            let cap = BACKOFF_BASE * (1 << attempt);
            assert!(d <= cap && d >= cap / 2, "{d:?} for attempt {attempt}");
        }
    }
}
