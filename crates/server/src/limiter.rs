//! Per-key rate limit: a token bucket per API key, per replica.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::bucket::TokenBucket;
use crate::error::ApiError;

pub struct KeyLimiter {
    /// Tokens added per second; 0 = no limit.
    rate: u32,
    burst: u32,
    buckets: Mutex<HashMap<String, TokenBucket>>,
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
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = map
            .entry(key_id.to_owned())
            .or_insert_with(|| TokenBucket::full(self.burst));
        bucket
            .try_take(u64::from(self.rate) * 1000, self.burst)
            .map_err(|wait| ApiError::RateLimited {
                retry_after_secs: u64::try_from(wait.as_millis())
                    .unwrap_or(u64::MAX)
                    .div_ceil(1000)
                    .max(1),
            })
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
