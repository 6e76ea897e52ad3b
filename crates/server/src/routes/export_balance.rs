//! `GET /v2/accounts/balance?format=csv` (a row per currency group, then the fiat, crypto and
//! total rows) and the rows of `GET /v2/accounts/balance/history?format=csv` (a row per point),
//! built from the very JSON bodies those endpoints answer, so the numbers cannot differ.
//!
//! Decisions: the balance export always has its group rows (a spreadsheet wants the breakdown;
//! `stack` changes nothing there); `details` is refused (the accounts are the list's export);
//! a row's `balance` is the exact sum in the row's `currency` (a group's own currency, the
//! target for the totals) and `balance_in_base` the JSON's rounded figure in the target; the
//! `balance_types_*` counts are the JSON's `balance_types` of a group or of the total, and
//! empty on the fiat and crypto rows (the JSON gives none for those).

use axum::response::Response;
use chrono::{DateTime, Utc};
use coffer_core::Currency;
use coffer_core::query::{self, Query, Stack};
use coffer_core::rates::RateTable;
use rust_decimal::Decimal;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::routes::balance_body::{
    BalanceOut, all_customer_totals, balance_out, check_strict, check_target, query_error,
    table_for,
};
use crate::routes::dto::PointOut;
use crate::routes::rates::RateOut;
use crate::routes::{at, csv, dto, source};
use crate::state::AppState;

pub const BALANCE_COLUMNS: [&str; 17] = [
    "row",
    "currency",
    "is_crypto",
    "balance",
    "balance_in_base",
    "target_currency",
    "accounts_count",
    "unconverted_count",
    "balance_types_available",
    "balance_types_unspecified",
    "rate_currency",
    "rate",
    "rate_source",
    "rate_as_of",
    "as_of",
    "observed_at",
    "at",
];

/// The balance answer as CSV, from the same sources and with the same numbers as the JSON.
pub async fn balance(state: &AppState, caller: &Caller, mut q: Query) -> ApiResult<Response> {
    if q.details {
        return Err(ApiError::param(
            "details",
            "does not apply to a CSV balance: the accounts are GET /v2/accounts?format=csv",
        ));
    }
    q.stack = Some(Stack::Currency);
    let (out, table) = if let Some(t) = at::instant(state, &q)? {
        if caller.is_admin() && q.customer_id.is_none() {
            // As the JSON answers it: per-currency sums, from the checkpoints where they answer.
            let (out, table) = crate::routes::at_totals::balance(state, caller, &q, t).await?;
            let body = csv::body(&BALANCE_COLUMNS, balance_rows(&out, &table))?;
            return Ok(csv::response("balance", t, body));
        }
        let (src, table) = at::held(state, caller, &q, t).await?;
        check_target(&q, &table)?;
        let a = query::balance(&src.accounts, &q, &table).map_err(query_error)?;
        (balance_out(&a, src.freshness, src.coverage, Some(t)), table)
    } else if let Some(scope) = source::store_scope(caller, &q) {
        all_customer_totals(state, &scope, q).await?
    } else {
        let src = source::accounts(state, caller, &q).await?;
        check_strict(&q, &src.freshness)?;
        let table = table_for(state, &src).await?;
        check_target(&q, &table)?;
        let a = query::balance(&src.accounts, &q, &table).map_err(query_error)?;
        (balance_out(&a, src.freshness, src.coverage, None), table)
    };
    let when = out.at.unwrap_or_else(Utc::now);
    let body = csv::body(&BALANCE_COLUMNS, balance_rows(&out, &table))?;
    Ok(csv::response("balance", when, body))
}

/// The oldest data an answer is built from: per provider `as_of`, or the coverage's oldest.
fn oldest(out: &BalanceOut) -> Option<DateTime<Utc>> {
    let by_provider = out.freshness.as_of.values().flatten().min().copied();
    let covered = out.coverage.as_ref().and_then(|c| c.oldest_as_of);
    by_provider.into_iter().chain(covered).min()
}

fn balance_rows(out: &BalanceOut, table: &RateTable) -> Vec<Vec<String>> {
    let target = Currency::new(&out.currency);
    let as_of = oldest(out).map(csv::instant).unwrap_or_default();
    // At an instant the data is each pair's observation then: `observed_at`, as accounts say.
    let observed = if out.at.is_some() {
        as_of.clone()
    } else {
        String::new()
    };
    let at = out.at.map(csv::instant).unwrap_or_default();
    let tail = |rates: [String; 4]| -> Vec<String> {
        let mut v = rates.to_vec();
        v.extend([as_of.clone(), observed.clone(), at.clone()]);
        v
    };
    let groups = out.groups.as_deref().unwrap_or_default();
    let mut rows = Vec::with_capacity(groups.len() + 3);
    for g in groups {
        let rates = match (
            &g.balance_in_base,
            table.convert(Decimal::ONE, &Currency::new(&g.currency), &target),
        ) {
            (Some(_), Ok(one)) => csv::rate_cells(&dto::rates(&one.rates)),
            _ => Default::default(),
        };
        let mut row = vec![
            "group".to_owned(),
            g.currency.clone(),
            g.is_crypto.to_string(),
            g.balance.clone(),
            g.balance_in_base.clone().unwrap_or_default(),
            out.currency.clone(),
            g.accounts_count.to_string(),
            g.unconverted_count.to_string(),
        ];
        row.extend(type_cells(Some(g.balance_types)));
        row.extend(tail(rates));
        rows.push(row);
    }
    let count = |kind: Option<bool>, f: fn(&dto::GroupOut) -> usize| -> String {
        let n: usize = groups
            .iter()
            .filter(|g| kind.is_none_or(|k| g.is_crypto == k))
            .map(f)
            .sum();
        n.to_string()
    };
    let totals = [
        (
            "fiat",
            Some(false),
            &out.exact.fiat_balance,
            &out.fiat_balance,
        ),
        (
            "crypto",
            Some(true),
            &out.exact.crypto_balance,
            &out.crypto_balance,
        ),
        ("total", None, &out.exact.total_balance, &out.total_balance),
    ];
    for (name, kind, exact, rounded) in totals {
        let mut row = vec![
            name.to_owned(),
            out.currency.clone(),
            kind.map(|k| k.to_string()).unwrap_or_default(),
            exact.clone(),
            rounded.clone(),
            out.currency.clone(),
            if kind.is_none() {
                out.accounts_count.to_string()
            } else {
                count(kind, |g| g.accounts_count)
            },
            count(kind, |g| g.unconverted_count),
        ];
        row.extend(type_cells(kind.is_none().then_some(out.balance_types)));
        row.extend(tail(csv::rate_cells(&out.rates)));
        rows.push(row);
    }
    rows
}

/// The `balance_types_available` and `balance_types_unspecified` cells (empty: none given).
fn type_cells(types: Option<dto::BalanceTypesOut>) -> [String; 2] {
    match types {
        Some(t) => [t.available.to_string(), t.unspecified.to_string()],
        None => Default::default(),
    }
}

pub const POINT_COLUMNS: [&str; 14] = [
    "at",
    "currency",
    "total_balance",
    "fiat_balance",
    "crypto_balance",
    "balance_types_available",
    "balance_types_unspecified",
    "partial",
    "warnings",
    "rate_currency",
    "rate",
    "rate_source",
    "rate_as_of",
    "observed_at",
];

/// One point of a series as a row: its totals, the rates in force at it, and the oldest
/// observation it is built from (`observed`).
pub fn point_row(
    currency: &str,
    p: &PointOut,
    rates: &[RateOut],
    observed: Option<DateTime<Utc>>,
) -> Vec<String> {
    let warnings: Vec<&str> = p.warnings.iter().map(|w| w.code).collect();
    let mut row = vec![
        csv::instant(p.at),
        currency.to_owned(),
        p.total_balance.clone(),
        p.fiat_balance.clone(),
        p.crypto_balance.clone(),
    ];
    row.extend(type_cells(Some(p.balance_types)));
    row.extend([p.partial.to_string(), warnings.join(";")]);
    row.extend(csv::rate_cells(rates));
    row.push(observed.map(csv::instant).unwrap_or_default());
    row
}

/// The series as CSV: `extra` holds each point's rates and oldest observation.
pub fn series(
    currency: &str,
    points: &[PointOut],
    extra: &[(Vec<RateOut>, Option<DateTime<Utc>>)],
    to: DateTime<Utc>,
) -> ApiResult<Response> {
    let rows = points
        .iter()
        .zip(extra)
        .map(|(point, (rates, oldest))| point_row(currency, point, rates, *oldest));
    let body = csv::body(&POINT_COLUMNS, rows)?;
    Ok(csv::response("balance-history", to, body))
}
