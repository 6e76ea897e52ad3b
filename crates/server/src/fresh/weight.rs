//! What a customer's view costs the L1 and last-known caches (`cache.max_bytes`), counted with
//! the helpers of [`crate::weigh`].

use crate::weigh::{ENTRY_OVERHEAD, saturate, string};

use super::{CustomerView, ProviderView};

fn provider(p: &ProviderView) -> usize {
    std::mem::size_of::<ProviderView>()
        + p.provider_id.capacity()
        + p.accounts.weight()
        + p.rejected.iter().map(|r| r.capacity() + 24).sum::<usize>()
}

/// A customer's view, as L1 and the last-known cache hold it (behind an `Arc`).
pub(super) fn view(key: &str, v: &CustomerView) -> u32 {
    let bytes = ENTRY_OVERHEAD
        + string(key)
        + std::mem::size_of::<CustomerView>()
        + v.customer_id.capacity()
        + v.providers.iter().map(provider).sum::<usize>();
    saturate(bytes)
}
