//! History over a window of time, read once and answered per instant in memory: the series of
//! balances ([`crate::Store::held_window`]) and of rate tables ([`crate::Store::rates_window`]).
//! Each instant's answer is exactly what [`crate::Store::held_at`] and
//! [`crate::Store::rates_at`] answer for it (the conformance suite compares them), so a series
//! costs one read of the window instead of one per point.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use coffer_core::{Account, Currency};
use rust_decimal::Decimal;

use crate::at::ObservationCols;
use crate::rows::{self, AccountCols};
use crate::{HeldAt, Observation, RateSource, Result, StoredRate};

/// One (customer, provider) pair over the window.
#[derive(Debug, Clone)]
struct PairWindow {
    customer_id: String,
    provider_id: String,
    /// Oldest first: the last at or before the window's start, then every one in it.
    observations: Vec<(DateTime<Utc>, Vec<String>)>,
    /// Per account, its versions oldest first (`None`: closed from then on).
    accounts: Vec<Vec<(DateTime<Utc>, Option<Account>)>>,
}

/// What the store held over `[from, to]`, enough to answer [`HeldWindow::at`] for any instant
/// in it.
#[derive(Debug, Clone, Default)]
pub struct HeldWindow {
    /// In the store's order of (customer, provider), the order `held_at` answers in.
    pairs: Vec<PairWindow>,
    /// Pairs linked now, in scope, in the store's order.
    links: Vec<(String, String)>,
}

/// One account version as read for a window: the account (its `fetched_at` is filled per
/// instant), from when, and whether it closed then.
pub(crate) struct WindowVersion {
    pub account: AccountCols,
    pub valid_from: DateTime<Utc>,
    pub closed: bool,
}

/// Builds a window from observations ordered by (customer, provider, instant), versions ordered
/// by (customer, provider, account, valid_from) and links in the store's order. A version of a
/// pair without observations in the window can never be served and is dropped.
pub(crate) fn window(
    observations: Vec<ObservationCols>,
    versions: Vec<WindowVersion>,
    links: Vec<(String, String)>,
) -> Result<HeldWindow> {
    let mut pairs: Vec<PairWindow> = Vec::new();
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    for o in observations {
        let key = (o.customer_id.clone(), o.provider_id.clone());
        let i = *index.entry(key).or_insert_with(|| {
            pairs.push(PairWindow {
                customer_id: o.customer_id.clone(),
                provider_id: o.provider_id.clone(),
                observations: Vec::new(),
                accounts: Vec::new(),
            });
            pairs.len() - 1
        });
        pairs[i]
            .observations
            .push((o.observed_at, rows::strings(&o.rejected)?));
    }
    let mut last: Option<(usize, String)> = None;
    for v in versions {
        let key = (v.account.customer_id.clone(), v.account.provider_id.clone());
        let Some(&i) = index.get(&key) else {
            continue;
        };
        let id = v.account.id.clone();
        let account = if v.closed {
            None
        } else {
            Some(v.account.into_account()?)
        };
        let same = last.as_ref().is_some_and(|(p, a)| *p == i && *a == id);
        if !same {
            pairs[i].accounts.push(Vec::new());
            last = Some((i, id));
        }
        if let Some(list) = pairs[i].accounts.last_mut() {
            list.push((v.valid_from, account));
        }
    }
    Ok(HeldWindow { pairs, links })
}

impl HeldWindow {
    /// What [`crate::Store::held_at`] answers at `at` (without an account id), for an instant
    /// in the window.
    pub fn at(&self, at: DateTime<Utc>) -> HeldAt {
        let mut newest: HashMap<&str, (DateTime<Utc>, Account)> = HashMap::new();
        let mut observations = Vec::new();
        let mut observed: std::collections::HashSet<(&str, &str)> = Default::default();
        for p in &self.pairs {
            let n = p.observations.partition_point(|(t, _)| *t <= at);
            let Some((observed_at, rejected)) = n.checked_sub(1).map(|i| &p.observations[i]) else {
                continue;
            };
            observed.insert((&p.customer_id, &p.provider_id));
            observations.push(Observation {
                customer_id: p.customer_id.clone(),
                provider_id: p.provider_id.clone(),
                observed_at: *observed_at,
                rejected: rejected.clone(),
            });
            for versions in &p.accounts {
                let k = versions.partition_point(|(t, _)| t <= observed_at);
                let Some((from, Some(stored))) = k.checked_sub(1).map(|i| &versions[i]) else {
                    continue;
                };
                // An account that moved between pairs: the newer version (where it went) wins.
                if newest
                    .get(stored.id.as_str())
                    .is_some_and(|(f, _)| f >= from)
                {
                    continue;
                }
                let mut a = stored.clone();
                a.fetched_at = *observed_at;
                newest.insert(stored.id.as_str(), (*from, a));
            }
        }
        let mut accounts: Vec<Account> = newest.into_values().map(|(_, a)| a).collect();
        accounts.sort_by(|a, b| a.id.cmp(&b.id));
        let unobserved = self
            .links
            .iter()
            .filter(|(c, p)| !observed.contains(&(c.as_str(), p.as_str())))
            .cloned()
            .collect();
        HeldAt {
            accounts,
            observations,
            unobserved,
        }
    }
}

/// A rate's quote and value from an instant on; `None`: a manual rate removed then.
type RateValue = (DateTime<Utc>, Option<(Currency, Decimal)>);

/// One rate key's values over a window, oldest first.
#[derive(Debug, Clone)]
struct RateKey {
    source: RateSource,
    provider: String,
    currency: Currency,
    /// A provider rate's quote (part of its key); empty for a manual rate.
    quote: String,
    /// `(as_of, quote, rate)`; a manual removal has no quote and rate.
    values: Vec<RateValue>,
}

/// The rates in force over `[from, to]`, enough to answer [`RateWindow::at`] for any instant
/// in it.
#[derive(Debug, Clone, Default)]
pub struct RateWindow {
    keys: Vec<RateKey>,
}

/// One row of a rate window: manual versions ordered by (currency, as_of, id), provider rows by
/// (provider, currency, quote, as_of); the provider's key includes the quote.
pub(crate) struct RateRowCols {
    pub source: RateSource,
    pub provider: String,
    pub currency: String,
    pub quote: Option<String>,
    pub rate: Option<String>,
    pub as_of: DateTime<Utc>,
}

pub(crate) fn rate_window(rows_in: Vec<RateRowCols>) -> Result<RateWindow> {
    let mut keys: Vec<RateKey> = Vec::new();
    for r in rows_in {
        let value = match (r.quote, r.rate) {
            (Some(q), Some(v)) => Some((
                Currency::new(&q),
                rows::decimal(&v, &format!("rate of {}", r.currency))?,
            )),
            _ => None,
        };
        let currency = Currency::new(&r.currency);
        let quote = match r.source {
            RateSource::Manual => String::new(),
            RateSource::Provider => value
                .as_ref()
                .map(|v| v.0.code().to_owned())
                .unwrap_or_default(),
        };
        let same = keys.last().is_some_and(|k| {
            k.source == r.source
                && k.provider == r.provider
                && k.currency == currency
                && k.quote == quote
        });
        if !same {
            keys.push(RateKey {
                source: r.source,
                provider: r.provider,
                currency,
                quote,
                values: Vec::new(),
            });
        }
        if let Some(k) = keys.last_mut() {
            k.values.push((r.as_of, value));
        }
    }
    Ok(RateWindow { keys })
}

impl RateWindow {
    /// What [`crate::Store::rates_at`] answers at `at`, for an instant in the window.
    pub fn at(&self, at: DateTime<Utc>) -> Vec<StoredRate> {
        let mut out: Vec<StoredRate> = self
            .keys
            .iter()
            .filter_map(|k| {
                let n = k.values.partition_point(|(t, _)| *t <= at);
                let (as_of, value) = &k.values[n.checked_sub(1)?];
                let (quote, rate) = value.as_ref()?;
                Some(StoredRate {
                    currency: k.currency.clone(),
                    quote: quote.clone(),
                    rate: *rate,
                    source: k.source,
                    provider: (k.source == RateSource::Provider).then(|| k.provider.clone()),
                    as_of: *as_of,
                })
            })
            .collect();
        out.sort_by(|a, b| {
            let key = |r: &StoredRate| {
                (
                    r.currency.code().to_owned(),
                    r.source == RateSource::Provider,
                    r.provider.clone().unwrap_or_default(),
                    r.quote.code().to_owned(),
                )
            };
            key(a).cmp(&key(b))
        });
        out
    }
}
