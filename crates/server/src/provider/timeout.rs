//! The one timeout of an attempt: the provider's `timeout`, cut short by the call's deadline.

use std::time::{Duration, Instant};

use coffer_core::{ProviderError, ProviderErrorKind};

use super::{Call, FetchResult, Layer};

pub struct Timeout<L> {
    pub inner: L,
    pub provider: String,
    pub per_attempt: Duration,
}

impl<L: Layer> Layer for Timeout<L> {
    async fn fetch(&self, call: &Call) -> FetchResult {
        let until = Instant::now()
            .checked_add(self.per_attempt)
            .map_or(call.deadline, |t| t.min(call.deadline));
        match tokio::time::timeout_at(until.into(), self.inner.fetch(call)).await {
            Ok(r) => r,
            Err(_) => Err(ProviderError::new(
                &self.provider,
                ProviderErrorKind::Timeout,
                format!("no answer within {:?}", self.per_attempt),
            )),
        }
    }
}
