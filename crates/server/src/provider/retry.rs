//! Retries of retryable errors with full-jitter exponential backoff, or the provider's
//! `Retry-After`, within the call's deadline. `Retry-After` is clamped to `max_retry_after`
//! (default 5 minutes) on every error leaving the stack: a provider cannot make Coffer sleep,
//! or schedule its next sync, arbitrarily far away (a huge value once overflowed `Instant`
//! and `DateTime` arithmetic and panicked). A wait past the deadline means "not now": the
//! error is returned, with the clamped wait for the sync worker to honour.

use std::time::{Duration, Instant};

use rand::Rng;

use super::{Call, FetchResult, Layer};

/// First retry delay; doubles per attempt, with full jitter.
const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// Default for a provider's `max_retry_after`.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

pub struct Retry<L> {
    pub inner: L,
    pub retries: u32,
    pub max_retry_after: Duration,
}

impl<L: Layer> Layer for Retry<L> {
    async fn fetch(&self, call: &Call) -> FetchResult {
        let mut attempt = 0;
        loop {
            let mut e = match self.inner.fetch(call).await {
                Ok(s) => return Ok(s),
                Err(e) => e,
            };
            e.retry_after = e.retry_after.map(|ra| ra.min(self.max_retry_after));
            if !e.retryable || attempt >= self.retries {
                return Err(e);
            }
            let wait = backoff(attempt, e.retry_after);
            match Instant::now().checked_add(wait) {
                Some(at) if at < call.deadline => {}
                _ => return Err(e),
            }
            tracing::debug!(provider = %e.provider, attempt, ?wait, error = %e, "retrying provider call");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
