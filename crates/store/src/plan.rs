//! What one `save_snapshot` must write, computed from the stored rows and the new snapshot.
//! Pure, shared by both backends, so both write the same history and counts.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use coffer_core::{Account, Currency};
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

use crate::events::{self, NewEvent};
use crate::{
    HistoryEntry, Link, RateSource, Result, SaveOutcome, SnapshotMeta, StoreError, StoredRate,
};

/// Number of `totals_rollup` shards (PostgreSQL). Each customer's accounts go to one shard, so
/// concurrent snapshot writes of different customers rarely wait on the same rollup row.
pub(crate) const ROLLUP_SHARDS: u32 = 16;

/// A stored account row as the plan needs it.
pub(crate) struct Existing {
    pub account: Account,
    pub closed: bool,
    pub shard: i16,
}

/// One signed contribution to a `totals_rollup` row (PostgreSQL sums them in SQL, exactly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RollupEntry {
    pub shard: i16,
    pub currency: String,
    pub is_crypto: bool,
    pub provider_id: String,
    pub status: &'static str,
    pub active: bool,
    pub balance_type: &'static str,
    pub balance: Decimal,
    pub accounts: i64,
}

pub(crate) struct Plan<'a> {
    /// The accounts of the snapshot whose row must be written (new, reopened, moved, or
    /// anything but `fetched_at` changed), with its rollup shard and whether a row with its id
    /// was stored (read) before: all are upserted (open). An unchanged account's row is left as
    /// it is: when it was last seen is its pair's snapshot (`snapshots.fetched_at`).
    pub upserts: Vec<(&'a Account, i16, bool)>,
    /// Previously open accounts of this (customer, provider) absent from the snapshot.
    pub close: Vec<String>,
    pub history: Vec<HistoryEntry>,
    /// Accounts whose state (anything but `fetched_at`) changes with this snapshot, closing
    /// included: each gets an `account_versions` row copied from its written `accounts` row.
    pub versions: Vec<String>,
    pub rates: Vec<StoredRate>,
    pub rollup: Vec<RollupEntry>,
    /// One outbox event per changed account (opened, closed, or its balance changed).
    pub events: Vec<NewEvent>,
    pub outcome: SaveOutcome,
}

/// A stable shard for a customer (FNV-1a; persisted on the account row, so it may never change
/// for a stored account, but a different function would only spread new rows differently).
pub(crate) fn shard_of(customer_id: &str) -> i16 {
    let mut h: u32 = 0x811c_9dc5;
    for b in customer_id.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    i16::try_from(h % ROLLUP_SHARDS).unwrap_or(0)
}

/// Every account must belong to the snapshot's customer and provider, once.
pub(crate) fn validate(meta: &SnapshotMeta, accounts: &[Account]) -> Result<()> {
    let mut seen = HashSet::new();
    for a in accounts {
        if a.customer_id != meta.customer_id || a.provider_id != meta.provider_id {
            return Err(StoreError::Other(format!(
                "account {} belongs to {}/{}, not to the snapshot of {}/{}",
                a.id, a.customer_id, a.provider_id, meta.customer_id, meta.provider_id
            )));
        }
        if !seen.insert(a.id.as_str()) {
            return Err(StoreError::Other(format!(
                "account {} appears twice in one snapshot",
                a.id
            )));
        }
    }
    Ok(())
}

fn rollup_entry(a: &Account, shard: i16, sign: i64) -> RollupEntry {
    RollupEntry {
        shard,
        currency: a.currency.code().to_owned(),
        is_crypto: a.is_crypto,
        provider_id: a.provider_id.clone(),
        status: a.status.as_str(),
        active: a.active,
        balance_type: a.balance_type.as_str(),
        balance: if sign < 0 { -a.balance } else { a.balance },
        accounts: sign,
    }
}

fn history(a: &Account, closed: bool, meta: &SnapshotMeta) -> HistoryEntry {
    HistoryEntry {
        account_id: a.id.clone(),
        customer_id: a.customer_id.clone(),
        balance: a.balance,
        status: a.status,
        closed,
        recorded_at: meta.fetched_at,
    }
}

/// Whether anything but `fetched_at` differs (the balance's scale included).
fn differs(old: &Account, new: &Account) -> bool {
    old.balance.scale() != new.balance.scale()
        || Account {
            fetched_at: new.fetched_at,
            ..old.clone()
        } != *new
}

/// `existing`: the stored rows of this (customer, provider) plus any stored row whose id is in
/// the snapshot. `new_shard`: the rollup shard for accounts not stored yet (a stored account
/// keeps the shard its row names).
pub(crate) fn plan<'a>(
    meta: &SnapshotMeta,
    accounts: &'a [Account],
    existing: Vec<Existing>,
    new_shard: i16,
) -> Plan<'a> {
    let mut by_id: HashMap<String, Existing> = existing
        .into_iter()
        .map(|e| (e.account.id.clone(), e))
        .collect();
    let mut p = Plan {
        upserts: Vec::with_capacity(accounts.len()),
        close: Vec::new(),
        history: Vec::new(),
        versions: Vec::new(),
        rates: Vec::new(),
        rollup: Vec::new(),
        events: Vec::new(),
        outcome: SaveOutcome::default(),
    };
    for a in accounts {
        match by_id.remove(&a.id) {
            None => {
                p.outcome.inserted += 1;
                p.events.push(events::opened(a, meta.fetched_at));
                p.history.push(history(a, false, meta));
                p.versions.push(a.id.clone());
                p.rollup.push(rollup_entry(a, new_shard, 1));
                p.upserts.push((a, new_shard, false));
            }
            Some(old) => {
                let o = &old.account;
                let reopened = old.closed;
                if reopened || o.balance != a.balance || o.status != a.status {
                    p.history.push(history(a, false, meta));
                }
                // A moved account (another pair stored it) starts a version under its new pair.
                let moved = o.customer_id != a.customer_id || o.provider_id != a.provider_id;
                if reopened || moved {
                    p.events.push(events::opened(a, meta.fetched_at));
                } else if o.balance != a.balance {
                    p.events
                        .push(events::balance_changed(o, a, meta.fetched_at));
                }
                if reopened || moved || differs(o, a) {
                    p.versions.push(a.id.clone());
                }
                if reopened || differs(o, a) {
                    p.outcome.updated += 1;
                } else {
                    p.outcome.unchanged += 1;
                }
                let same_rollup =
                    !reopened && rollup_entry(o, old.shard, 1) == rollup_entry(a, old.shard, 1);
                if !same_rollup {
                    if !old.closed {
                        p.rollup.push(rollup_entry(o, old.shard, -1));
                    }
                    p.rollup.push(rollup_entry(a, old.shard, 1));
                }
                if reopened || moved || differs(o, a) {
                    p.upserts.push((a, old.shard, true));
                }
            }
        }
    }
    // What is left was stored for this pair and is absent now: close the open ones.
    let mut left: Vec<Existing> = by_id.into_values().collect();
    left.sort_by(|a, b| a.account.id.cmp(&b.account.id));
    for old in left {
        let o = &old.account;
        if !old.closed && o.customer_id == meta.customer_id && o.provider_id == meta.provider_id {
            p.outcome.closed += 1;
            p.events.push(events::closed(o, meta.fetched_at));
            p.history.push(history(o, true, meta));
            p.rollup.push(rollup_entry(o, old.shard, -1));
            p.close.push(o.id.clone());
            p.versions.push(o.id.clone());
        }
    }
    p.outcome.history_rows = p.history.len();
    p.rates = provider_rates(meta, accounts);
    p
}

/// The plan of a snapshot whose accounts are exactly those its pair's stored snapshot last
/// reported (same [`digest`], nothing moved away since): every account unchanged, so nothing
/// but the observation and the provider rates (dated at this fetch) is written. What
/// [`plan`] would give for these stored rows, without reading them.
pub(crate) fn unchanged<'a>(meta: &SnapshotMeta, accounts: &'a [Account]) -> Plan<'a> {
    Plan {
        upserts: Vec::new(),
        close: Vec::new(),
        history: Vec::new(),
        versions: Vec::new(),
        rates: provider_rates(meta, accounts),
        rollup: Vec::new(),
        events: Vec::new(),
        outcome: SaveOutcome {
            unchanged: accounts.len(),
            ..SaveOutcome::default()
        },
    }
}

/// A digest of everything of a snapshot's accounts but `fetched_at` (what [`plan`] compares),
/// in id order: two snapshots of a pair with the same digest have the same accounts. Stored
/// with the pair's snapshot (PostgreSQL's `snapshots.accounts_digest`), so a sync of a pair
/// whose accounts did not change is known without reading them. Every field is named here
/// (the destructuring does not compile when `Account` gains one), each length-prefixed.
pub(crate) fn digest(accounts: &[Account]) -> Result<Vec<u8>> {
    let mut sorted: Vec<&Account> = accounts.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    let mut h = Sha256::new();
    let mut put = |s: Option<&str>| match s {
        Some(s) => {
            h.update([1u8]);
            h.update((s.len() as u64).to_le_bytes());
            h.update(s.as_bytes());
        }
        None => h.update([0u8]),
    };
    for a in sorted {
        let Account {
            id,
            customer_id,
            provider_id,
            provider_account_id,
            provider_customer_ref,
            currency,
            is_crypto,
            status,
            active,
            balance,
            balance_type,
            wallets,
            iban,
            provider_rate,
            fetched_at: _,
        } = a;
        put(Some(id));
        put(Some(customer_id));
        put(Some(provider_id));
        put(Some(provider_account_id));
        put(provider_customer_ref.as_deref());
        put(Some(currency.code()));
        put(Some(if *is_crypto { "1" } else { "0" }));
        put(Some(status.as_str()));
        put(Some(if *active { "1" } else { "0" }));
        // The text keeps the scale: `3` and `3.0` differ, as `differs` says.
        put(Some(&balance.to_string()));
        put(Some(balance_type.as_str()));
        put(Some(&crate::rows::wallets_json(wallets)?));
        put(iban.as_deref());
        let rate = provider_rate.as_ref();
        put(rate.map(|r| r.rate.to_string()).as_deref());
        put(rate.map(|r| r.quote.code()));
    }
    Ok(h.finalize().to_vec())
}

/// Provider rates, one per (currency, quote), chosen as the rate table chooses them (the
/// largest balance gives it); keyed so they are written in key order.
fn provider_rates(meta: &SnapshotMeta, accounts: &[Account]) -> Vec<StoredRate> {
    let mut rates = BTreeMap::new();
    for a in coffer_core::rates::rate_givers(accounts) {
        if let Some(r) = &a.provider_rate {
            rates.insert(
                (a.currency.clone(), r.quote.clone()),
                StoredRate {
                    currency: a.currency.clone(),
                    quote: r.quote.clone(),
                    rate: r.rate,
                    source: RateSource::Provider,
                    provider: Some(meta.provider_id.clone()),
                    as_of: meta.fetched_at,
                },
            );
        }
    }
    rates.into_values().collect()
}

/// A customer has at most one link per provider.
pub(crate) fn check_links(links: &[Link]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for l in links {
        if !seen.insert(l.provider.as_str()) {
            return Err(StoreError::Conflict(format!(
                "two links for provider {}: a customer has at most one per provider",
                l.provider
            )));
        }
    }
    Ok(())
}

/// Several plans merged into the rows one set-based statement per table writes (PostgreSQL
/// writes a single snapshot and a sync batch alike through it).
#[derive(Default)]
pub(crate) struct Writes<'a> {
    /// Accounts whose rows were read: updated (or inserted, if gone meanwhile).
    pub upserts: Vec<(&'a Account, i16)>,
    /// Accounts no row was read for.
    pub inserts: Vec<(&'a Account, i16)>,
    /// Account id and when it was found closed.
    pub close: Vec<(String, DateTime<Utc>)>,
    pub history: Vec<HistoryEntry>,
    /// Account id and the observation instant its new version starts at.
    pub versions: Vec<(String, DateTime<Utc>)>,
    /// One per saved snapshot: customer, provider, `fetched_at`, rejected (JSON).
    pub observations: Vec<(String, String, DateTime<Utc>, String)>,
    /// One per (provider, currency, quote): a statement may not update a row twice.
    rates: BTreeMap<(String, Currency, Currency), StoredRate>,
    /// Every observation of each key, in the order added, for the rate history.
    observed: BTreeMap<(String, Currency, Currency), Vec<StoredRate>>,
    pub rollup: Vec<RollupEntry>,
    /// The outbox events of every plan, in the order added.
    pub events: Vec<NewEvent>,
}

impl<'a> Writes<'a> {
    pub fn add(&mut self, meta: &SnapshotMeta, p: Plan<'a>) {
        for (a, shard, stored) in p.upserts {
            if stored {
                self.upserts.push((a, shard));
            } else {
                self.inserts.push((a, shard));
            }
        }
        self.close
            .extend(p.close.into_iter().map(|id| (id, meta.fetched_at)));
        self.history.extend(p.history);
        self.versions
            .extend(p.versions.into_iter().map(|id| (id, meta.fetched_at)));
        self.observations.push((
            meta.customer_id.clone(),
            meta.provider_id.clone(),
            meta.fetched_at,
            crate::rows::strings_json(&meta.rejected),
        ));
        for r in p.rates {
            let key = (
                r.provider.clone().unwrap_or_default(),
                r.currency.clone(),
                r.quote.clone(),
            );
            self.observed
                .entry(key.clone())
                .or_default()
                .push(r.clone());
            // The latest answer wins, as the stored row's `as_of` guard would decide.
            match self.rates.get(&key) {
                Some(old) if old.as_of > r.as_of => {}
                _ => {
                    self.rates.insert(key, r);
                }
            }
        }
        self.rollup.extend(p.rollup);
        self.events.extend(p.events);
    }

    /// Provider rates ordered by key, so concurrent writers lock their rows in one order.
    pub fn rates(&self) -> impl ExactSizeIterator<Item = &StoredRate> {
        self.rates.values()
    }

    /// What the rate history may need of these writes, per key and in key order: the value the
    /// present table is given (the latest observation), from the first observation of the run
    /// of observations reporting exactly it (value and scale) up to the latest — those two
    /// rows, or one. At most two rows per key whatever the number of pairs, so a sync batch's
    /// history write costs a few index probes; an earlier value that only some pairs of the
    /// batch reported in between (rates derived per customer) is not kept, as the present
    /// table never shows it either.
    pub fn rate_history(&self) -> Vec<&StoredRate> {
        let mut out = Vec::new();
        for seen in self.observed.values() {
            let mut seen: Vec<&StoredRate> = seen.iter().collect();
            // Stable: of two reports of one instant the later added wins, as in `rates`.
            seen.sort_by_key(|r| r.as_of);
            let Some(last) = seen.last().copied() else {
                continue;
            };
            let same = |r: &StoredRate| r.rate == last.rate && r.rate.scale() == last.rate.scale();
            let start = seen.iter().rposition(|r| !same(r)).map_or(0, |i| i + 1);
            let first = seen[start];
            if first.as_of < last.as_of {
                out.push(first);
            }
            out.push(last);
        }
        out
    }
}
