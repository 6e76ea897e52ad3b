//! What a cached value costs in memory: the weights the caches are bounded by
//! (`cache.max_bytes`). An estimate, counted from the values themselves: the inline size of each
//! struct, the capacity of each owned string and vector, and a fixed cost per entry for moka's
//! own bookkeeping (its node, the key's hash, the deque links and timers). It errs on the high
//! side, so the budget is kept.

use coffer_core::{Account, Wallet};

/// moka's cost per entry beyond the key and the value (measured: its node, hash, timer wheel
/// and deque links come to about this on 64-bit).
pub const ENTRY_OVERHEAD: usize = 160;

pub fn string(s: &str) -> usize {
    s.len()
}

fn opt(s: &Option<String>) -> usize {
    s.as_ref().map_or(0, |s| s.capacity())
}

pub fn wallet(w: &Wallet) -> usize {
    std::mem::size_of::<Wallet>()
        + w.network.capacity()
        + w.address.capacity()
        + opt(&w.tag)
        + opt(&w.network_name)
}

/// One account: its struct and everything it owns.
pub fn account(a: &Account) -> usize {
    std::mem::size_of::<Account>()
        + a.id.capacity()
        + a.customer_id.capacity()
        + a.provider_id.capacity()
        + a.provider_account_id.capacity()
        + opt(&a.provider_customer_ref)
        + a.currency.heap_bytes()
        + a.wallets.iter().map(wallet).sum::<usize>()
        + (a.wallets.capacity() - a.wallets.len()) * std::mem::size_of::<Wallet>()
        + opt(&a.iban)
        + a.provider_rate.as_ref().map_or(0, |r| r.quote.heap_bytes())
}

/// moka weighs in `u32`; a value beyond 4 GiB weighs the most it can (and is never kept).
pub fn saturate(bytes: usize) -> u32 {
    u32::try_from(bytes).unwrap_or(u32::MAX)
}
