//! All-customer totals at a past instant from checkpoints: the totals as held at fixed instants
//! (per the rollup's dimensions), plus the versions written since, so a past total costs one
//! checkpoint read and a bounded delta instead of every account's version
//! ([`crate::Store::totals_at`], [`crate::Store::build_checkpoints`]).
//!
//! An account's contribution at `t` is decided from its versions at or before `t` exactly as
//! [`crate::Store::held_at`] decides which version is held: per pair the newest, closed ones
//! dropped, and of an account open in two pairs the newer version. A checkpoint at `c` is the
//! sum of every contribution at `c`; the total at `t > c` adds, for each account with a version
//! in `(c, t]`, its contribution at `t` minus the one at `c`. Nothing else changed in between,
//! so the sum telescopes to the same total `held_at` gives (the conformance suite compares).

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use coffer_core::query::Filter;
use coffer_core::{Account, BalanceType, BalanceTypeCounts, Currency};
use rust_decimal::Decimal;

use crate::{CurrencyTotal, Result, StoreError};

/// The totals rollup's dimensions: what a checkpoint row is keyed by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Dim {
    pub currency: String,
    pub is_crypto: bool,
    pub provider_id: String,
    pub status: String,
    pub active: bool,
    pub balance_type: String,
}

/// Per dimension: the balance summed and the number of accounts.
pub(crate) type Sums = BTreeMap<Dim, (Decimal, i64)>;

/// An account version as the delta needs it.
#[derive(Debug, Clone)]
pub(crate) struct VersionLite {
    pub customer_id: String,
    pub provider_id: String,
    pub account_id: String,
    pub valid_from: DateTime<Utc>,
    pub closed: bool,
    pub dim: Dim,
    pub balance: Decimal,
}

/// What a backend reads and writes for checkpoints; the logic above it is shared.
#[async_trait::async_trait]
pub(crate) trait CheckpointIo: Send + Sync {
    /// The newest checkpoint at or before `at`.
    async fn latest_mark(&self, at: DateTime<Utc>) -> Result<Option<DateTime<Utc>>>;
    async fn read_checkpoint(&self, at: DateTime<Utc>) -> Result<Sums>;
    /// Every version at or before `to` of the accounts with a version in `(from, to]` (all
    /// accounts when `from` is `None`), ordered by account id.
    async fn versions_since(
        &self,
        from: Option<DateTime<Utc>>,
        to: DateTime<Utc>,
    ) -> Result<Vec<VersionLite>>;
    /// Writes the checkpoint at `at` (rows and mark) from the one at `after` and its sums
    /// (`None`: from before any version), reading the versions between them in the write's own
    /// transaction, while no version can be written and no prune runs: so none is missed. The
    /// sums written; `None`, and nothing written, when the checkpoint at `after` is gone
    /// (pruning or a late write dropped it since it was read).
    async fn write_checkpoint(
        &self,
        at: DateTime<Utc>,
        after: Option<(DateTime<Utc>, &Sums)>,
    ) -> Result<Option<Sums>>;
    /// Whether the checkpoint at `at` is (still) there.
    async fn has_mark(&self, at: DateTime<Utc>) -> Result<bool>;
    /// The oldest version's `valid_from`: where history starts.
    async fn first_version(&self) -> Result<Option<DateTime<Utc>>>;
}

/// The version of one account (all its versions, any pairs) held at `at`.
fn contribution(versions: &[VersionLite], at: DateTime<Utc>) -> Option<&VersionLite> {
    // Per pair, its newest version at or before `at`.
    let mut per_pair: BTreeMap<(&str, &str), &VersionLite> = BTreeMap::new();
    for v in versions.iter().filter(|v| v.valid_from <= at) {
        let e = per_pair
            .entry((v.customer_id.as_str(), v.provider_id.as_str()))
            .or_insert(v);
        if v.valid_from > e.valid_from {
            *e = v;
        }
    }
    let mut held: Option<&VersionLite> = None;
    for v in per_pair.into_values().filter(|v| !v.closed) {
        if held.is_none_or(|h| v.valid_from > h.valid_from) {
            held = Some(v);
        }
    }
    held
}

fn add(sums: &mut Sums, v: &VersionLite, sign: i64) -> Result<()> {
    let e = sums.entry(v.dim.clone()).or_insert((Decimal::ZERO, 0));
    let amount = if sign < 0 { -v.balance } else { v.balance };
    e.0 =
        e.0.checked_add(amount)
            .ok_or_else(|| StoreError::Other(format!("total of {} overflows", v.dim.currency)))?;
    e.1 += sign;
    if e.1 == 0 {
        sums.remove(&v.dim);
    }
    Ok(())
}

/// Moves `sums` from the totals at `from` (`None`: before any version) to the totals at `to`,
/// given [`CheckpointIo::versions_since`]`(from, to)`.
pub(crate) fn apply_delta(
    sums: &mut Sums,
    versions: &[VersionLite],
    from: Option<DateTime<Utc>>,
    to: DateTime<Utc>,
) -> Result<()> {
    for one in versions.chunk_by(|a, b| a.account_id == b.account_id) {
        if let Some(before) = from.and_then(|f| contribution(one, f)) {
            add(sums, before, -1)?;
        }
        if let Some(after) = contribution(one, to) {
            add(sums, after, 1)?;
        }
    }
    Ok(())
}

/// Whether checkpoints can answer `f`: only the rollup's dimensions (no balance range, field
/// search or free text, which need each account; a balance type is a dimension).
pub fn servable(f: &Filter) -> bool {
    f.balance.is_empty() && f.fields.is_empty() && f.text.is_none()
}

/// An account standing for a dimension, so the filter is applied by its own `matches`.
fn dim_account(d: &Dim) -> Result<Account> {
    let balance_type = BalanceType::parse(&d.balance_type).ok_or_else(|| {
        StoreError::Other(format!(
            "unknown balance type {} in a checkpoint",
            d.balance_type
        ))
    })?;
    Ok(Account {
        id: String::new(),
        customer_id: String::new(),
        provider_id: d.provider_id.clone(),
        provider_account_id: String::new(),
        provider_customer_ref: None,
        currency: Currency::new(&d.currency),
        is_crypto: d.is_crypto,
        status: crate::rows::status(&d.status)?,
        active: d.active,
        balance: Decimal::ZERO,
        balance_type,
        wallets: Vec::new(),
        iban: None,
        provider_rate: None,
        fetched_at: DateTime::<Utc>::UNIX_EPOCH,
    })
}

/// Per (currency, crypto) totals of the dimensions `f` selects, ordered as
/// [`crate::Store::totals`] orders them, currencies without accounts left out.
pub(crate) fn totals(sums: &Sums, f: &Filter) -> Result<Vec<CurrencyTotal>> {
    let mut by: BTreeMap<(String, bool), (Decimal, i64, BalanceTypeCounts)> = BTreeMap::new();
    for (d, (balance, n)) in sums {
        let account = dim_account(d)?;
        if !f.matches(&account) {
            continue;
        }
        let e = by.entry((d.currency.clone(), d.is_crypto)).or_insert((
            Decimal::ZERO,
            0,
            BalanceTypeCounts::default(),
        ));
        e.0 =
            e.0.checked_add(*balance)
                .ok_or_else(|| StoreError::Other(format!("total of {} overflows", d.currency)))?;
        e.1 += n;
        e.2.add(account.balance_type, u64::try_from(*n).unwrap_or(0));
    }
    Ok(by
        .into_iter()
        .filter(|(_, (_, n, _))| *n != 0)
        .map(
            |((currency, is_crypto), (balance, n, balance_types))| CurrencyTotal {
                currency: Currency::new(&currency),
                is_crypto,
                balance,
                accounts: u64::try_from(n).unwrap_or(0),
                balance_types,
            },
        )
        .collect())
}

/// The step's instant at or before `t` (steps counted from the Unix epoch).
pub(crate) fn floor(t: DateTime<Utc>, step: TimeDelta) -> DateTime<Utc> {
    let step_us = step.num_microseconds().unwrap_or(i64::MAX).max(1);
    let us = t.timestamp_micros();
    DateTime::from_timestamp_micros(us - us.rem_euclid(step_us)).unwrap_or(t)
}

/// Builds every missing checkpoint on the step's instants up to `until`, forward from the newest
/// one (or, with none, from before the first version, where the totals are empty). Returns how
/// many were written.
pub(crate) async fn build(
    io: &impl CheckpointIo,
    until: DateTime<Utc>,
    step: std::time::Duration,
) -> Result<u32> {
    let step = TimeDelta::from_std(step)
        .ok()
        .filter(|s| *s > TimeDelta::zero())
        .ok_or_else(|| StoreError::Other("checkpoint step must be positive".into()))?;
    let (mut at, mut sums, mut written) = match io.latest_mark(until).await? {
        Some(c) => (c, io.read_checkpoint(c).await?, 0),
        None => {
            let Some(first) = io.first_version().await? else {
                return Ok(0);
            };
            let start = floor(first, step) - step;
            if start > until {
                return Ok(0);
            }
            match io.write_checkpoint(start, None).await? {
                Some(sums) => (start, sums, 1),
                None => return Ok(0),
            }
        }
    };
    while let Some(next) = at.checked_add_signed(step).filter(|n| *n <= until) {
        let Some(built) = io.write_checkpoint(next, Some((at, &sums))).await? else {
            // Pruned or invalidated under the build: the next run starts again from what is
            // left, never from sums that mixed the history before and after.
            break;
        };
        sums = built;
        at = next;
        written += 1;
    }
    Ok(written)
}

/// The totals at `at` from the newest checkpoint at or before it; `None` when there is none or
/// `f` is not [`servable`].
pub(crate) async fn totals_at(
    io: &impl CheckpointIo,
    at: DateTime<Utc>,
    f: &Filter,
) -> Result<Option<Vec<CurrencyTotal>>> {
    if !servable(f) {
        return Ok(None);
    }
    let Some(c) = io.latest_mark(at).await? else {
        return Ok(None);
    };
    let mut sums = io.read_checkpoint(c).await?;
    if c < at {
        let versions = io.versions_since(Some(c), at).await?;
        apply_delta(&mut sums, &versions, Some(c), at)?;
        // A prune dropping the checkpoint after it was read may have removed versions read
        // since: the answer is then computed from each account instead.
        if !io.has_mark(c).await? {
            return Ok(None);
        }
    }
    totals(&sums, f).map(Some)
}

#[cfg(all(test, feature = "sqlite"))]
#[path = "checkpoint_race.rs"]
mod race;

#[cfg(test)]
mod tests {
    use super::*;

    fn v(pair: &str, id: &str, t: i64, closed: bool, balance: i64) -> VersionLite {
        VersionLite {
            customer_id: pair.into(),
            provider_id: "p".into(),
            account_id: id.into(),
            valid_from: DateTime::from_timestamp(t, 0).unwrap(),
            closed,
            dim: Dim {
                currency: "EUR".into(),
                is_crypto: false,
                provider_id: "p".into(),
                status: "active".into(),
                active: true,
                balance_type: "available".into(),
            },
            balance: Decimal::from(balance),
        }
    }

    fn at(t: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(t, 0).unwrap()
    }

    #[test]
    fn an_account_moved_between_pairs_counts_once_where_it_went() {
        let one = [v("a", "x", 10, false, 5), v("b", "x", 20, false, 7)];
        assert_eq!(
            contribution(&one, at(15)).unwrap().balance,
            Decimal::from(5)
        );
        assert_eq!(
            contribution(&one, at(25)).unwrap().balance,
            Decimal::from(7)
        );
        // Closed where it went: the older pair's open version is what is held.
        let closed = [v("a", "x", 10, false, 5), v("b", "x", 20, true, 7)];
        assert_eq!(
            contribution(&closed, at(25)).unwrap().balance,
            Decimal::from(5)
        );
        assert!(contribution(&closed, at(5)).is_none());
    }

    #[test]
    fn a_delta_telescopes_and_drops_emptied_dimensions() {
        let versions = [v("a", "x", 10, false, 5), v("a", "x", 20, true, 5)];
        let mut sums = Sums::new();
        apply_delta(&mut sums, &versions[..1], None, at(15)).unwrap();
        assert_eq!(sums.values().next(), Some(&(Decimal::from(5), 1)));
        apply_delta(&mut sums, &versions, Some(at(15)), at(25)).unwrap();
        assert!(sums.is_empty());
        assert!(totals(&sums, &Filter::default()).unwrap().is_empty());
    }

    #[test]
    fn steps_are_counted_from_the_epoch() {
        let hour = TimeDelta::hours(1);
        assert_eq!(floor(at(7_200 + 59), hour), at(7_200));
        assert_eq!(floor(at(7_200), hour), at(7_200));
    }
}
