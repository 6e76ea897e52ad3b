//! What both endpoints share: picking the accounts a query asks for and converting each into
//! the target currency, keeping apart those that could not be converted.

use std::collections::HashMap;

use rust_decimal::Decimal;

use super::params::{ParamError, Query};
use crate::account::Account;
use crate::currency::Currency;
use crate::money::round_for;
use crate::rates::{ConvertError, Rate, RateTable};

/// An exact amount in the answer's target currency, and its presentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount {
    /// The exact sum (converted values carry at most `decimals + 10` places, see
    /// [`GUARD_DIGITS`](crate::rates::GUARD_DIGITS)).
    pub exact: Decimal,
    /// `exact` rounded once, half-even, to the target's minor units: what the API shows.
    pub rounded: Decimal,
}

impl Amount {
    pub fn new(currency: &Currency, exact: Decimal) -> Self {
        Amount {
            exact,
            rounded: round_for(currency, exact),
        }
    }
}

/// An account with its value in the target currency (the API's `balance_in_base`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertedAccount<'a> {
    pub account: &'a Account,
    /// `None` when it could not be converted; the answer's `unconverted` says why.
    pub value_in_target: Option<Decimal>,
}

/// An account left out of the totals because it could not be converted. Never counted as 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unconverted {
    pub account_id: String,
    pub currency: Currency,
    /// Its balance in its own currency.
    pub balance: Decimal,
    pub reason: ConvertError,
}

/// Why a query could not be answered at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A parameter is wrong in a way only visible with the data (a cursor of another target
    /// currency). The server answers 400, like a parse error.
    #[error(transparent)]
    Param(#[from] ParamError),
    /// A sum does not fit a decimal (about 7.9e28). Not reachable with real balances; reported
    /// instead of a panic or a wrong total.
    #[error("the {what} overflows a decimal")]
    Overflow { what: String },
}

/// Adds exactly, or says what overflowed.
pub(crate) fn add(
    acc: Decimal,
    v: Decimal,
    what: impl FnOnce() -> String,
) -> Result<Decimal, QueryError> {
    acc.checked_add(v)
        .ok_or_else(|| QueryError::Overflow { what: what() })
}

/// Rounds every converted value (half-even) to one scale at which any sum of them is exact.
///
/// A `Decimal` holds 28 significant digits. Converted values carry up to `decimals + 10`
/// places ([`GUARD_DIGITS`](crate::rates::GUARD_DIGITS)); if the selection's values are so
/// large that a sum would need more than 28 digits, rust_decimal would round that sum — each
/// sum differently — and `total = Σ groups = fiat + crypto` would fail in the last digit. So the
/// scale is lowered, for every value of the selection alike, until the largest possible sum
/// (Σ|v|) fits: with real balances it never is, and at worst the guard shrinks; the presented
/// minor units are only touched once a total passes 10^(28 - decimals).
fn sum_safe_scale(target: &Currency, items: &mut [ConvertedAccount<'_>]) {
    // An upper bound on |any sum|: Σ trunc|v| + one per value (for the fractions).
    let mut bound = Decimal::ZERO;
    for v in items.iter().filter_map(|i| i.value_in_target) {
        bound = bound
            .checked_add(v.abs().trunc())
            .and_then(|b| b.checked_add(Decimal::ONE))
            .unwrap_or(Decimal::MAX);
    }
    let int_digits = u32::try_from(bound.trunc().to_string().len()).unwrap_or(29);
    let scale =
        (target.decimals() + crate::rates::GUARD_DIGITS).min(28u32.saturating_sub(int_digits));
    for i in items.iter_mut() {
        if let Some(v) = &mut i.value_in_target {
            *v = v
                .round_dp_with_strategy(scale, rust_decimal::RoundingStrategy::MidpointNearestEven);
        }
    }
}

/// The accounts a query selects, each converted.
pub(crate) struct Selection<'a> {
    pub target: Currency,
    /// Every selected account, in input order, converted or not.
    pub items: Vec<ConvertedAccount<'a>>,
    /// Why each unconverted item was not converted, by account id.
    pub reasons: HashMap<&'a str, ConvertError>,
    /// The rates each source currency used.
    pub rates: HashMap<Currency, Vec<Rate>>,
}

impl<'a> Selection<'a> {
    /// Applies the query's customer and filter, and converts every account into the target
    /// (the query's currency, or the table's base).
    pub fn new(accounts: &'a [Account], q: &Query, table: &RateTable) -> Self {
        let target = q.currency.clone().unwrap_or_else(|| table.base().clone());
        let mut converter = table.converter(&target);
        let mut items = Vec::new();
        let mut reasons = HashMap::new();
        let mut rates = HashMap::new();
        for a in accounts {
            if q.customer_id.as_ref().is_some_and(|c| *c != a.customer_id) || !q.filter.matches(a) {
                continue;
            }
            let value_in_target = match converter.convert(a.balance, &a.currency) {
                Ok(c) => {
                    rates.entry(a.currency.clone()).or_insert(c.rates);
                    Some(c.value)
                }
                Err(e) => {
                    reasons.insert(a.id.as_str(), e);
                    None
                }
            };
            items.push(ConvertedAccount {
                account: a,
                value_in_target,
            });
        }
        sum_safe_scale(&target, &mut items);
        Selection {
            target,
            items,
            reasons,
            rates,
        }
    }

    /// The unconverted entries among `items`, in their order.
    pub fn unconverted<'i>(
        &self,
        items: impl IntoIterator<Item = &'i ConvertedAccount<'a>>,
    ) -> Vec<Unconverted>
    where
        'a: 'i,
    {
        items
            .into_iter()
            .filter_map(|i| {
                let reason = self.reasons.get(i.account.id.as_str())?;
                Some(Unconverted {
                    account_id: i.account.id.clone(),
                    currency: i.account.currency.clone(),
                    balance: i.account.balance,
                    reason: reason.clone(),
                })
            })
            .collect()
    }

    /// The rates used by the converted entries among `items`, each once, in first-use order.
    pub fn rates_of<'i>(
        &self,
        items: impl IntoIterator<Item = &'i ConvertedAccount<'a>>,
    ) -> Vec<Rate>
    where
        'a: 'i,
    {
        let mut out: Vec<Rate> = Vec::new();
        for i in items {
            if i.value_in_target.is_none() {
                continue;
            }
            for r in self.rates.get(&i.account.currency).into_iter().flatten() {
                if !out.contains(r) {
                    out.push(r.clone());
                }
            }
        }
        out
    }
}
