//! The one token bucket: per API key (`limiter.rs`) and per provider (`provider/quota.rs`).
//! Tokens are counted in thousandths so refills need no floating point.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct TokenBucket {
    milli_tokens: u64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens.
    pub fn full(burst: u32) -> Self {
        Self {
            milli_tokens: u64::from(burst.max(1)) * 1000,
            last: Instant::now(),
        }
    }

    /// Takes one token at `rate_milli` thousandths of a token per second, holding at most
    /// `burst` tokens; or says how long until one is there. `rate_milli` 0 never refills.
    pub fn try_take(&mut self, rate_milli: u64, burst: u32) -> Result<(), Duration> {
        let now = Instant::now();
        let cap = u64::from(burst.max(1)) * 1000;
        let elapsed_ms =
            u64::try_from(now.duration_since(self.last).as_millis()).unwrap_or(u64::MAX);
        self.milli_tokens = self
            .milli_tokens
            .saturating_add(elapsed_ms.saturating_mul(rate_milli) / 1000)
            .min(cap);
        self.last = now;
        if self.milli_tokens >= 1000 {
            self.milli_tokens -= 1000;
            return Ok(());
        }
        let missing = 1000 - self.milli_tokens;
        if rate_milli == 0 {
            return Err(Duration::MAX);
        }
        Err(Duration::from_millis((missing * 1000).div_ceil(rate_milli)))
    }

    /// The thousandths of a token there now (refilled to now, capped at `burst`), taking none.
    pub fn available_milli(&mut self, rate_milli: u64, burst: u32) -> u64 {
        match self.try_take(rate_milli, burst) {
            Ok(()) => {
                self.milli_tokens += 1000;
                self.milli_tokens
            }
            Err(_) => self.milli_tokens,
        }
    }

    /// Whether a token is there now, without taking it.
    pub fn ready(&mut self, rate_milli: u64, burst: u32) -> Result<(), Duration> {
        let taken = self.try_take(rate_milli, burst);
        if taken.is_ok() {
            self.milli_tokens += 1000;
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_bucket_gives_its_burst_then_says_how_long_to_wait() {
        let mut b = TokenBucket::full(3);
        for _ in 0..3 {
            b.try_take(1000, 3).unwrap();
        }
        let wait = b.try_take(1000, 3).unwrap_err();
        assert!(
            wait <= Duration::from_secs(1) && wait > Duration::from_millis(900),
            "{wait:?}"
        );
        // Half a token per second: two seconds for a whole one.
        let mut b = TokenBucket::full(1);
        b.try_take(500, 1).unwrap();
        let wait = b.try_take(500, 1).unwrap_err();
        assert!(wait > Duration::from_millis(1900), "{wait:?}");
    }

    #[test]
    fn available_counts_without_taking() {
        let mut b = TokenBucket::full(2);
        assert_eq!(b.available_milli(1000, 2), 2000);
        b.try_take(1000, 2).unwrap();
        b.try_take(1000, 2).unwrap();
        assert!(b.available_milli(0, 2) < 1000);
        assert_eq!(
            b.available_milli(0, 2),
            b.available_milli(0, 2),
            "nothing taken"
        );
    }

    #[test]
    fn ready_does_not_take() {
        let mut b = TokenBucket::full(1);
        b.ready(1000, 1).unwrap();
        b.ready(1000, 1).unwrap();
        b.try_take(1000, 1).unwrap();
        assert!(b.ready(1000, 1).is_err());
    }
}
