//! The metrics of every attempt that reached the provider: outcome, errors by kind, latency.
//! (The span and logs of the call are the adapter's, executed once by the kit.)

use std::time::Instant;

use super::{Call, FetchResult, Layer};

pub struct Observe<L> {
    pub inner: L,
    pub provider: String,
}

impl<L: Layer> Layer for Observe<L> {
    async fn fetch(&self, call: &Call) -> FetchResult {
        let started = Instant::now();
        let result = self.inner.fetch(call).await;
        let kind = result.as_ref().err().map(|e| e.kind);
        crate::metrics::provider_call(&self.provider, kind, started.elapsed());
        result
    }
}
