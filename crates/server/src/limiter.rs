//! Per-key rate limit: a token bucket per API key, per replica.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::error::ApiError;

pub struct KeyLimiter {
    /// Tokens added per second; 0 = no limit.
    rate: u32,
    burst: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    /// Tokens, in thousandths, so refills need no floating point.
    milli_tokens: u64,
    last: Instant,
}

impl KeyLimiter {
    pub fn new(rate: u32, burst: u32) -> Self {
        Self {
            rate,
            burst: burst.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key_id`, or says how long to wait.
    pub fn check(&self, key_id: &str) -> Result<(), ApiError> {
        if self.rate == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let cap = u64::from(self.burst) * 1000;
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let b = map.entry(key_id.to_owned()).or_insert(Bucket {
            milli_tokens: cap,
            last: now,
        });
        let elapsed_ms = u64::try_from(now.duration_since(b.last).as_millis()).unwrap_or(u64::MAX);
        b.milli_tokens = b
            .milli_tokens
            .saturating_add(elapsed_ms.saturating_mul(u64::from(self.rate)))
            .min(cap);
        b.last = now;
        if b.milli_tokens >= 1000 {
            b.milli_tokens -= 1000;
            Ok(())
        } else {
            let missing = 1000 - b.milli_tokens;
            let wait_ms = missing.div_ceil(u64::from(self.rate));
            Err(ApiError::RateLimited {
                retry_after_secs: wait_ms.div_ceil(1000).max(1),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_limited_per_key() {
        let l = KeyLimiter::new(1, 3);
        for _ in 0..3 {
            l.check("a").unwrap();
        }
        match l.check("a") {
            Err(ApiError::RateLimited { retry_after_secs }) => assert_eq!(retry_after_secs, 1),
            other => panic!("expected rate limit, got {other:?}"),
        }
        l.check("b").unwrap();
    }

    #[test]
    fn zero_rate_means_unlimited() {
        let l = KeyLimiter::new(0, 1);
        for _ in 0..100 {
            l.check("a").unwrap();
        }
    }
}
