//! Pages of the unified list read from the store (`Store::list_page`), shared by both backends.
//!
//! Core's engine (`coffer_core::query::list`) defines the order and the pages; a backend asks SQL
//! for the accounts in that order, strictly after a cursor's key, `LIMIT` a batch. What SQL
//! cannot decide exactly (field searches and free text, and on SQLite balance ranges) is checked
//! with `Filter::matches` on each batch, and the walk goes on after the batch's last row until
//! the page is full, so memory holds a batch, never the whole result.

#[cfg(feature = "sqlite")]
use std::cmp::Ordering;
use std::collections::BTreeMap;

use coffer_core::query::{KeyValue, SortField, SortSpec};
use coffer_core::{Account, BalanceTypeCounts, Currency};
use rust_decimal::Decimal;

use crate::{CurrencyTotal, Result, StoreError};

/// Rows read per round trip when some accounts of a batch may be dropped by the Rust check.
const CHECKED_BATCH: usize = 500;

/// The error for a sort the store cannot page: `balance_in_base` depends on the rates.
pub(crate) fn unsupported(sort: &SortSpec) -> StoreError {
    StoreError::Other(format!(
        "the store cannot page by `{sort}`: balance_in_base depends on the rates"
    ))
}

/// The key of `a` under `sort` (which does not use converted values).
pub(crate) fn key(sort: &SortSpec, a: &Account) -> Vec<KeyValue> {
    sort.key_of(a, None)
}

/// Walks the SQL order batch by batch until `limit` accounts pass `residual` (or the rows end).
/// `fetch(after, n)` returns the next `n` rows that SQL selects, strictly after `after`.
pub(crate) async fn walk<F, Fut>(
    sort: &SortSpec,
    after: Option<&[KeyValue]>,
    limit: usize,
    checked: bool,
    residual: impl Fn(&Account) -> bool,
    mut fetch: F,
) -> Result<Vec<Account>>
where
    F: FnMut(Option<Vec<KeyValue>>, usize) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<Account>>>,
{
    if sort.uses_rates() {
        return Err(unsupported(sort));
    }
    let n = if checked {
        limit.max(CHECKED_BATCH)
    } else {
        limit
    };
    let mut out = Vec::with_capacity(limit.min(CHECKED_BATCH));
    let mut after = after.map(<[KeyValue]>::to_vec);
    loop {
        let batch = fetch(after.take(), n).await?;
        let full = batch.len() >= n;
        after = batch.last().map(|a| key(sort, a));
        out.extend(batch.into_iter().filter(|a| residual(a)));
        if out.len() >= limit || !full {
            out.truncate(limit);
            return Ok(out);
        }
    }
}

/// Rows per round trip when summing accounts that only Rust can filter.
pub(crate) const SUM_BATCH: usize = 5000;

/// Sums the accounts a paged read returns, walking them by id a batch at a time: the totals of
/// field searches and free text, in memory one batch, never the whole result.
/// `page(after, n)` is the backend's `list_page` by id.
pub(crate) async fn sum_walk<F, Fut>(mut page: F) -> Result<Vec<CurrencyTotal>>
where
    F: FnMut(Option<Vec<KeyValue>>, usize) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<Account>>>,
{
    let by_id = SortSpec::default();
    let mut sums = Sums::default();
    let mut after = None;
    loop {
        let batch = page(after.take(), SUM_BATCH).await?;
        for a in &batch {
            sums.add(a)?;
        }
        match batch.last() {
            Some(last) if batch.len() >= SUM_BATCH => after = Some(key(&by_id, last)),
            _ => return Ok(sums.finish()),
        }
    }
}

/// The page by sorting in Rust: for what a backend cannot order in SQL (SQLite's text money).
#[cfg(feature = "sqlite")]
pub(crate) fn sort_in_memory(
    sort: &SortSpec,
    all: Vec<Account>,
    after: Option<&[KeyValue]>,
    limit: usize,
) -> Result<Vec<Account>> {
    if sort.uses_rates() {
        return Err(unsupported(sort));
    }
    let mut keyed: Vec<(Vec<KeyValue>, Account)> = all
        .into_iter()
        .map(|a| (key(sort, &a), a))
        .filter(|(k, _)| after.is_none_or(|after| sort.compare(k, after) == Ordering::Greater))
        .collect();
    keyed.sort_by(|(a, _), (b, _)| sort.compare(a, b));
    Ok(keyed.into_iter().take(limit).map(|(_, a)| a).collect())
}

/// The SQL column (or expression) of a sort field, ordered as core orders its key: `collate`
/// is appended to text so it compares by bytes (PostgreSQL: `COLLATE "C"`; SQLite's default
/// BINARY already does). `None` for `balance_in_base`. Qualified by the table: a bare name in
/// `ORDER BY` would be the selected column of that name (`balance::text AS balance`).
pub(crate) fn column(field: SortField, collate: &str) -> Option<String> {
    Some(match field {
        SortField::BalanceInBase => return None,
        SortField::Balance => "accounts.balance".to_owned(),
        SortField::IsCrypto => "accounts.is_crypto".to_owned(),
        SortField::Active => "accounts.active".to_owned(),
        // Core upper-cases the code (`EURe` among the EUR… codes); stored codes are canonical,
        // so only ASCII letters can be lower case and SQL's upper() is enough.
        SortField::Currency => format!("(upper(accounts.currency){collate})"),
        SortField::Id => format!("(accounts.id{collate})"),
        SortField::CustomerId => format!("(accounts.customer_id{collate})"),
        SortField::Provider => format!("(accounts.provider_id{collate})"),
        SortField::Status => format!("(accounts.status{collate})"),
    })
}

/// Sums accounts one at a time (a streamed scan), exactly, per (currency, is_crypto), counting
/// them by balance type.
#[derive(Default)]
pub(crate) struct Sums(BTreeMap<(Currency, bool), (Decimal, BalanceTypeCounts)>);

impl Sums {
    pub(crate) fn add(&mut self, a: &Account) -> Result<()> {
        let e = self
            .0
            .entry((a.currency.clone(), a.is_crypto))
            .or_insert((Decimal::ZERO, BalanceTypeCounts::default()));
        // Decimal addition rounds (lowers the scale) when the digits do not fit: refuse that.
        // Adding to zero returns the other operand as it is (`0.00 + 1` is `1`): exact, and
        // given back the wider scale.
        let scale = e.0.scale().max(a.balance.scale());
        let zero_operand = e.0.is_zero() || a.balance.is_zero();
        let mut sum =
            e.0.checked_add(a.balance)
                .filter(|s| s.scale() >= scale || zero_operand)
                .ok_or_else(|| {
                    StoreError::Other(format!(
                        "the total of {} does not fit a decimal",
                        a.currency
                    ))
                })?;
        let mut wide = sum;
        wide.rescale(scale);
        if wide == sum {
            sum = wide;
        }
        e.0 = sum;
        e.1.add(a.balance_type, 1);
        Ok(())
    }

    /// Ordered by currency.
    pub(crate) fn finish(self) -> Vec<CurrencyTotal> {
        self.0
            .into_iter()
            .map(
                |((currency, is_crypto), (balance, balance_types))| CurrencyTotal {
                    currency,
                    is_crypto,
                    balance,
                    accounts: balance_types.total(),
                    balance_types,
                },
            )
            .collect()
    }
}
