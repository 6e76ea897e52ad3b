//! The circuit breaker: after consecutive failures that say the provider is unhealthy it
//! refuses calls for a cool-down, then lets one trial through. The trial is a guard
//! ([`Trial`]): a trial that succeeds closes the breaker, one that fails opens it again, and one
//! that ends any other way (cancelled, panicked) frees the slot for the next trial, so the
//! breaker can never stay half-open with no trial running.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coffer_core::{ProviderError, ProviderErrorKind};

use super::{Call, FetchResult, Layer};

/// Consecutive failures that open the breaker.
const THRESHOLD: u32 = 5;
/// How long an open breaker refuses calls before letting one trial through.
const COOL_DOWN: Duration = Duration::from_secs(30);

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
pub struct Circuit {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    failures: u32,
    open_until: Option<Instant>,
    trial_in_flight: bool,
}

/// Permission for one call. Settle it with [`Trial::success`] or [`Trial::failure`]; dropped
/// unsettled, it only frees the half-open trial slot.
pub struct Trial<'a> {
    circuit: &'a Circuit,
    settled: bool,
}

impl Trial<'_> {
    pub fn success(mut self) {
        self.settled = true;
        *self.circuit.lock() = Inner::default();
    }

    pub fn failure(mut self) {
        self.settled = true;
        let mut b = self.circuit.lock();
        b.failures += 1;
        b.trial_in_flight = false;
        if b.failures >= THRESHOLD {
            b.open_until = Instant::now().checked_add(COOL_DOWN);
        }
    }
}

impl Drop for Trial<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.circuit.lock().trial_in_flight = false;
        }
    }
}

impl Circuit {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A permission to call, or `None` while open (or while another trial runs).
    pub fn allow(&self) -> Option<Trial<'_>> {
        let mut b = self.lock();
        let allowed = match b.open_until {
            None => true,
            Some(until) if Instant::now() < until => false,
            Some(_) if b.trial_in_flight => false,
            Some(_) => {
                b.trial_in_flight = true;
                true
            }
        };
        drop(b);
        // Not `then_some`: a refused permit must never exist, since dropping one frees the
        // trial slot.
        if allowed {
            Some(Trial {
                circuit: self,
                settled: false,
            })
        } else {
            None
        }
    }

    pub fn state(&self) -> BreakerState {
        let b = self.lock();
        match b.open_until {
            None => BreakerState::Closed,
            Some(until) if Instant::now() < until => BreakerState::Open,
            Some(_) => BreakerState::HalfOpen,
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

pub struct Breaker<L> {
    pub inner: L,
    pub provider: String,
    pub circuit: Arc<Circuit>,
}

impl<L: Layer> Layer for Breaker<L> {
    async fn fetch(&self, call: &Call) -> FetchResult {
        let Some(trial) = self.circuit.allow() else {
            crate::metrics::breaker_refusal(&self.provider);
            return Err(ProviderError::new(
                &self.provider,
                ProviderErrorKind::Unavailable,
                "circuit breaker open after repeated failures; not calling the provider",
            ));
        };
        let result = self.inner.fetch(call).await;
        match &result {
            Err(e) if counts_against_health(e.kind) => trial.failure(),
            // Success, or a sensible answer (e.g. unknown customer): the provider is healthy.
            _ => trial.success(),
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(c: &Circuit) {
        for _ in 0..THRESHOLD {
            c.allow().expect("closed").failure();
        }
    }

    #[test]
    fn opens_after_threshold_and_closes_on_success() {
        let c = Circuit::default();
        for _ in 0..THRESHOLD - 1 {
            c.allow().expect("closed").failure();
        }
        assert_eq!(c.state(), BreakerState::Closed);
        c.allow().expect("closed").failure();
        assert_eq!(c.state(), BreakerState::Open);
        assert!(c.allow().is_none());
    }

    /// Moves an open breaker's cool-down into the past, as if it had elapsed.
    fn cool_down(c: &Circuit) {
        c.lock().open_until = Some(Instant::now() - Duration::from_millis(1));
    }

    #[test]
    fn a_half_open_breaker_lets_one_trial_through() {
        let c = Circuit::default();
        open(&c);
        cool_down(&c);
        assert_eq!(c.state(), BreakerState::HalfOpen);
        let trial = c.allow().expect("the trial");
        assert!(c.allow().is_none(), "a second call while the trial runs");
        trial.success();
        assert_eq!(c.state(), BreakerState::Closed);
    }

    struct Failing;

    impl Layer for Failing {
        async fn fetch(&self, _: &Call) -> FetchResult {
            Err(ProviderError::new(
                "t",
                ProviderErrorKind::Unavailable,
                "down",
            ))
        }
    }

    // docs/operations.md said refusals were counted; they were not.
    #[tokio::test]
    async fn refusals_are_counted() {
        let metrics = crate::metrics::handle();
        let layer = Breaker {
            inner: Failing,
            provider: "breaker-test".into(),
            circuit: Arc::new(Circuit::default()),
        };
        let call = Call {
            external_id: "x".into(),
            deadline: Instant::now() + Duration::from_secs(1),
        };
        for _ in 0..THRESHOLD + 2 {
            let _ = layer.fetch(&call).await;
        }
        let text = metrics.render();
        let refused = text
            .lines()
            .find(|l| {
                l.starts_with("coffer_breaker_refusals_total")
                    && l.contains("provider=\"breaker-test\"")
            })
            .unwrap_or_else(|| panic!("no refusals counted:\n{text}"));
        assert!(refused.ends_with(" 2"), "{refused}");
    }

    #[test]
    fn a_dropped_or_panicked_trial_frees_the_slot() {
        let c = Circuit::default();
        open(&c);
        cool_down(&c);
        drop(c.allow().expect("the trial"));
        // Before the guard, the flag stayed set and every call was refused until restart.
        let trial = c.allow().expect("a new trial after a dropped one");
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _t = trial;
            panic!("trial panics");
        }));
        assert!(caught.is_err());
        assert!(c.allow().is_some(), "a new trial after a panicked one");
    }
}
