//! An admin's all-customer balance at a past instant (without `details`): per-currency sums,
//! converted as sums, like the present all-customer balance. The sums come from the store's
//! checkpoints of the totals when it has one by then (`Store::totals_at`: a checkpoint plus the
//! versions since), else from every account held then (`at::held`), summed here the same way:
//! both give the same answer byte for byte (the store's conformance suite compares the sums,
//! tests/checkpoints.rs the answers). Warnings and coverage come from every pair's observation
//! at the instant either way: summarised by the store's marks when it keeps them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use coffer_core::query::{Filter, Query};
use coffer_core::rates::RateTable;
use coffer_core::{Account, BalanceTypeCounts};
use coffer_store::{CurrencyTotal, ObservedSummary, Scope};
use rust_decimal::Decimal;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::routes::answer::Freshness;
use crate::routes::at;
use crate::routes::balance_body::{BalanceOut, check_target, totals_out};
use crate::routes::dto::CoverageOut;
use crate::routes::source::{self, Sourced};
use crate::state::AppState;

pub async fn balance(
    state: &AppState,
    caller: &Caller,
    q: &Query,
    at: DateTime<Utc>,
) -> ApiResult<(BalanceOut, RateTable)> {
    let (totals, freshness, coverage, table) = match state.store.totals_at(at, &q.filter).await? {
        Some(totals) => {
            let s = observed(state, at).await?;
            let table = state.rates.table_at(state.store.as_ref(), at).await?;
            let mut freshness = at::freshness_of(&s, at, state.config.max_gap());
            at::unsettled(&mut freshness, at, state.config.settle());
            (totals, freshness, Some(at::coverage_of(&s)), table)
        }
        None => {
            let (src, table) = at::held(state, caller, q, at).await?;
            let totals = sum(&src.accounts, &q.filter)?;
            (totals, src.freshness, src.coverage, table)
        }
    };
    let out = out_of(q, at, &totals, freshness, coverage, &table)?;
    Ok((out, table))
}

/// The summary of every pair's observation at `at`: from the store's marks when they answer,
/// else from every pair (the same summary: the PostgreSQL test
/// `observation_marks_answer_as_every_pair` compares them).
pub(crate) async fn observed(state: &AppState, at: DateTime<Utc>) -> ApiResult<ObservedSummary> {
    let max_gap = state.config.max_gap();
    if let Some(s) = state.store.observed_summary(at, max_gap).await? {
        return Ok(s);
    }
    let h = state.store.observed_at(&Scope::All, at).await?;
    Ok(coffer_store::summarize(&h, at, at::gap(max_gap)))
}

/// The balance answer of per-currency sums at `at`, converted with the table in force then.
pub(crate) fn out_of(
    q: &Query,
    at: DateTime<Utc>,
    totals: &[CurrencyTotal],
    freshness: Freshness,
    coverage: Option<CoverageOut>,
    table: &RateTable,
) -> ApiResult<BalanceOut> {
    check_target(q, table)?;
    let (accounts, _) = source::aggregates(totals, at);
    let src = Sourced {
        accounts,
        freshness,
        coverage,
        generation: None,
        scope: None,
    };
    totals_out(&src, totals, q, table, Some(at))
}

/// Per (currency, crypto) sums of the accounts `f` selects, in the order and form
/// `Store::totals_at` gives them.
pub(crate) fn sum(accounts: &[Account], f: &Filter) -> ApiResult<Vec<CurrencyTotal>> {
    let mut by: BTreeMap<(String, bool), (Decimal, BalanceTypeCounts)> = BTreeMap::new();
    for a in accounts.iter().filter(|a| f.matches(a)) {
        let e = by
            .entry((a.currency.code().to_owned(), a.is_crypto))
            .or_insert((Decimal::ZERO, BalanceTypeCounts::default()));
        e.0 = e
            .0
            .checked_add(a.balance)
            .ok_or_else(|| ApiError::Internal(format!("the total of {} overflows", a.currency)))?;
        e.1.add(a.balance_type, 1);
    }
    Ok(by
        .into_iter()
        .map(
            |((currency, is_crypto), (balance, balance_types))| CurrencyTotal {
                currency: coffer_core::Currency::new(&currency),
                is_crypto,
                balance,
                accounts: balance_types.total(),
                balance_types,
            },
        )
        .collect())
}
