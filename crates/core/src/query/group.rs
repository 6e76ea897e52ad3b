//! Grouping by currency and the consolidated balance (`GET /v2/accounts/balance`).
//!
//! Invariant (tested as a property): on the exact values, `total = Σ groups = fiat + crypto`.
//! It holds because every sum adds the same converted values, each with at most
//! `decimals + 10` places (see [`GUARD_DIGITS`](crate::rates::GUARD_DIGITS)), so no sum rounds;
//! presentation rounding happens once, on each final amount.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::params::{Query, Stack};
use super::select::{Amount, ConvertedAccount, QueryError, Selection, Unconverted, add};
use crate::account::{Account, BalanceTypeCounts};
use crate::currency::Currency;
use crate::rates::{Rate, RateTable};

/// One currency's accounts, summed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub currency: Currency,
    /// The registry's view; for an unknown currency, the accounts' own flag.
    pub is_crypto: bool,
    /// Exact sum of the balances, in the group's own currency.
    pub balance: Decimal,
    /// Sum of the converted values in the target (the API's `balance_in_base`); `None` when no
    /// account of the group could be converted.
    pub value: Option<Amount>,
    /// How many accounts the group holds (converted or not).
    pub accounts: usize,
    /// How many of them could not be converted (and so are not in `value`).
    pub unconverted: usize,
    /// The group's accounts by balance type: every one `balance` adds (converted or not).
    pub balance_types: BalanceTypeCounts,
}

/// Groups `items` by currency, ordered by currency code (case-insensitively).
pub(crate) fn group_by_currency(
    target: &Currency,
    items: &[ConvertedAccount<'_>],
) -> Result<Vec<Group>, QueryError> {
    // Keyed by the upper-cased code: the same order as the list's `currency` sort.
    let mut groups: BTreeMap<String, (Group, Option<Decimal>)> = BTreeMap::new();
    for item in items {
        let a = item.account;
        let (g, value) = groups
            .entry(a.currency.code().to_uppercase())
            .or_insert_with(|| {
                let group = Group {
                    currency: a.currency.clone(),
                    is_crypto: a.currency.is_crypto().unwrap_or(a.is_crypto),
                    balance: Decimal::ZERO,
                    value: None,
                    accounts: 0,
                    unconverted: 0,
                    balance_types: BalanceTypeCounts::default(),
                };
                (group, None)
            });
        g.accounts += 1;
        g.balance_types.add(a.balance_type, 1);
        g.balance = add(g.balance, a.balance, || {
            format!("sum of {} balances", a.currency)
        })?;
        match item.value_in_target {
            Some(v) => {
                *value = Some(add(value.unwrap_or(Decimal::ZERO), v, || {
                    format!("value of {}", a.currency)
                })?)
            }
            None => g.unconverted += 1,
        }
    }
    Ok(groups
        .into_values()
        .map(|(mut g, value)| {
            g.value = value.map(|v| Amount::new(target, v));
            g
        })
        .collect())
}

/// The accounts of a balance answer, split as Corebanq does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Details<'a> {
    pub fiat_accounts: Vec<ConvertedAccount<'a>>,
    pub crypto_assets: Vec<ConvertedAccount<'a>>,
}

/// The answer of `GET /v2/accounts/balance`, before the server adds freshness (`stale`,
/// `partial`, warnings) and shapes it into its API body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceAnswer<'a> {
    /// The target currency every amount is in.
    pub currency: Currency,
    /// `total_balance`: fiat + crypto.
    pub total: Amount,
    /// `fiat_balance`: accounts whose `is_crypto` is false.
    pub fiat: Amount,
    /// `crypto_balance`: accounts whose `is_crypto` is true.
    pub crypto: Amount,
    /// With `stack=currency`: one group per currency.
    pub groups: Option<Vec<Group>>,
    /// With `details`: every selected account, ordered by currency then id.
    pub details: Option<Details<'a>>,
    /// Every rate used, each once, with source and `as_of`.
    pub rates: Vec<Rate>,
    /// Selected accounts left out of the totals (missing rate, overflow). When not empty, the
    /// totals exclude them and the answer must say so.
    pub unconverted: Vec<Unconverted>,
    /// How many accounts the query selected (converted or not).
    pub accounts: usize,
    /// The accounts `total` adds (the converted ones), by balance type.
    pub balance_types: BalanceTypeCounts,
    /// Per provider, the oldest `fetched_at` among the selected accounts: how old the answer's
    /// data is at worst.
    pub as_of: BTreeMap<String, DateTime<Utc>>,
}

/// Answers `GET /v2/accounts/balance`.
///
/// `accounts` are those the caller may see (the server applies key scope first); the query's
/// `customer_id` and filter select among them; `rates` is the table for this query (manual
/// rates plus [`RateTable::add_from_accounts`]). Totals are in the query's currency or else the
/// table's base. Accounts that cannot be converted are listed in `unconverted`, never counted
/// as 0. Only a sum beyond a decimal's range is an error ([`QueryError::Overflow`]).
pub fn balance<'a>(
    accounts: &'a [Account],
    q: &Query,
    rates: &RateTable,
) -> Result<BalanceAnswer<'a>, QueryError> {
    let sel = Selection::new(accounts, q, rates);
    let target = sel.target.clone();
    let (mut fiat, mut crypto) = (Decimal::ZERO, Decimal::ZERO);
    let mut as_of: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    let mut balance_types = BalanceTypeCounts::default();
    for item in &sel.items {
        let a = item.account;
        as_of
            .entry(a.provider_id.clone())
            .and_modify(|t| *t = (*t).min(a.fetched_at))
            .or_insert(a.fetched_at);
        if let Some(v) = item.value_in_target {
            balance_types.add(a.balance_type, 1);
            if a.is_crypto {
                crypto = add(crypto, v, || "crypto total".into())?;
            } else {
                fiat = add(fiat, v, || "fiat total".into())?;
            }
        }
    }
    let total = add(fiat, crypto, || "total".into())?;
    let groups = match q.stack {
        Some(Stack::Currency) => Some(group_by_currency(&target, &sel.items)?),
        None => None,
    };
    let details = q.details.then(|| {
        let mut items = sel.items.clone();
        items.sort_by(|x, y| {
            let key = |i: &ConvertedAccount<'_>| {
                (
                    i.account.currency.code().to_uppercase(),
                    i.account.id.clone(),
                )
            };
            key(x).cmp(&key(y))
        });
        let (crypto_assets, fiat_accounts) = items.into_iter().partition(|i| i.account.is_crypto);
        Details {
            fiat_accounts,
            crypto_assets,
        }
    });
    Ok(BalanceAnswer {
        total: Amount::new(&target, total),
        fiat: Amount::new(&target, fiat),
        crypto: Amount::new(&target, crypto),
        groups,
        details,
        rates: sel.rates_of(&sel.items),
        unconverted: sel.unconverted(&sel.items),
        accounts: sel.items.len(),
        balance_types,
        as_of,
        currency: target,
    })
}

#[cfg(test)]
#[path = "group_tests.rs"]
#[allow(clippy::unwrap_used)]
mod tests;
