//! The balance answer's body and the helpers every answer about balances shares (the list, the
//! one account, the answers at an instant, the series and the exports): error mapping, the
//! rate table an answer uses, the target and `strict` checks, and building the body from a
//! computed balance or from per-currency sums. Apart from the handlers (`accounts.rs`) so the
//! other answers need not import the handler that dispatches to them.

use chrono::{DateTime, Utc};
use coffer_core::BalanceTypeCounts;
use coffer_core::query::{self, ParamError, Query, QueryError};
use coffer_core::rates::RateTable;
use coffer_store::Scope;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::routes::dto::{
    self, AccountOut, BalanceTypesOut, CoverageOut, FreshnessOut, GroupOut, UnconvertedOut,
};
use crate::routes::rates::RateOut;
use crate::routes::{at, source};
use crate::state::AppState;

pub(crate) fn param_error(e: ParamError) -> ApiError {
    ApiError::InvalidParam {
        param: e.param,
        message: e.message,
    }
}

pub(crate) fn query_error(e: QueryError) -> ApiError {
    match e {
        QueryError::Param(p) => param_error(p),
        QueryError::Overflow { what } => overflow(&what),
    }
}

/// A sum past a decimal's 28 significant digits. Real balances in their own currency never get
/// there; amounts converted into a currency whose rate is tiny (an admin may set any positive
/// rate) do, so the answer names the target currency instead of failing as a server error.
pub(crate) fn overflow(what: &str) -> ApiError {
    ApiError::param(
        "currency",
        format!(
            "the {what} overflows a decimal (more than 28 significant digits) in this currency; \
             ask in a currency of larger units, or correct the rate that makes its unit so small"
        ),
    )
}

/// One customer's (or a reader's customers') answer uses the rates reported with its own
/// accounts; an admin's all-customer answer uses one table for everybody (the providers' latest
/// rates), whether it is built from every account or from per-currency sums, so both agree.
pub(crate) async fn table_for(state: &AppState, src: &source::Sourced) -> ApiResult<RateTable> {
    match &src.scope {
        Some(scope) => source::table_for_scope(state, scope).await,
        None => Ok(state
            .rates
            .table_for(state.store.as_ref(), &src.accounts)
            .await),
    }
}

/// A target other than the base needs a rate, or every amount would come back unconverted.
pub(crate) fn check_target(q: &Query, table: &RateTable) -> ApiResult<()> {
    if let Some(t) = &q.currency
        && t != table.base()
        && table.rate(t).is_none()
    {
        return Err(ApiError::param(
            "currency",
            format!(
                "no rate converts {} to {t}; an admin can set one with PUT /v2/rates",
                table.base()
            ),
        ));
    }
    Ok(())
}

/// With `strict`, a stale or partial answer is an error instead.
pub(crate) fn check_strict(q: &Query, f: &crate::routes::answer::Freshness) -> ApiResult<()> {
    if q.strict && (f.stale || f.partial) {
        return Err(ApiError::Provider {
            message: "a provider failed and `strict` was asked".into(),
            details: serde_json::json!({ "warnings": f.warnings }),
        });
    }
    Ok(())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceOut {
    /// Total in `currency`, rounded half-even to its minor units.
    pub total_balance: String,
    /// The target currency.
    pub currency: String,
    pub fiat_balance: String,
    pub crypto_balance: String,
    /// The same three totals, exact (before the one presentation rounding).
    pub exact: ExactOut,
    /// With `stack=currency`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<GroupOut>>,
    /// With `details=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<DetailsOut>,
    /// Every rate used, with source and `as_of`.
    pub rates: Vec<RateOut>,
    /// Accounts left out of the totals because no rate converts them (never counted as 0).
    pub unconverted: Vec<UnconvertedOut>,
    pub accounts_count: usize,
    /// The accounts `total_balance` adds (the converted ones), by balance type.
    pub balance_types: BalanceTypesOut,
    #[serde(flatten)]
    pub freshness: FreshnessOut,
    /// All-customer answers: how many customers, and the span of their data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<CoverageOut>,
    /// The `at` asked for: the answer is as of that instant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExactOut {
    pub total_balance: String,
    pub fiat_balance: String,
    pub crypto_balance: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DetailsOut {
    pub fiat_accounts: Vec<AccountOut>,
    pub crypto_assets: Vec<AccountOut>,
}

/// A scope's balance without `details` (every customer for an admin, a reader's customers):
/// per-currency sums from the store, so the answer costs the same at a million accounts as at
/// ten. Also gives the rate table the answer was converted with.
pub(crate) async fn all_customer_totals(
    state: &AppState,
    scope: &Scope,
    q: Query,
) -> ApiResult<(BalanceOut, RateTable)> {
    let (src, totals) = source::all_totals(state, scope, &q.filter).await?;
    let table = source::table_for_scope(state, scope).await?;
    check_target(&q, &table)?;
    let out = totals_out(&src, &totals, &q, &table, None)?;
    Ok((out, table))
}

/// The groups of a stacked answer over `totals` (a scope's per-currency sums): each sums every
/// matching account of its currency, as the balance answer with `stack=currency` gives them for
/// the same question. The stacked list read a page at a time from the store takes them from
/// here, so its groups and the balance's are one computation.
pub(crate) fn stacked_groups(
    totals: &[coffer_store::CurrencyTotal],
    q: &Query,
    table: &RateTable,
) -> ApiResult<Vec<GroupOut>> {
    let (accounts, _) = source::aggregates(totals, Utc::now());
    let src = source::Sourced {
        accounts,
        freshness: Default::default(),
        coverage: None,
        generation: None,
        scope: None,
    };
    let q = Query {
        stack: Some(coffer_core::query::Stack::Currency),
        details: false,
        cursor: None,
        ..q.clone()
    };
    Ok(totals_out(&src, totals, &q, table, None)?
        .groups
        .unwrap_or_default())
}

/// The balance answer of per-currency aggregates (`source::aggregates` of `totals`, one per
/// total): the store applied the filters, the aggregates are converted and grouped as they
/// are, and the counts (by balance type too) are of accounts, not aggregates.
pub(crate) fn totals_out(
    src: &source::Sourced,
    totals: &[coffer_store::CurrencyTotal],
    q: &Query,
    table: &RateTable,
    at: Option<DateTime<Utc>>,
) -> ApiResult<BalanceOut> {
    let unfiltered = Query {
        filter: Default::default(),
        ..q.clone()
    };
    let a = query::balance(&src.accounts, &unfiltered, table).map_err(query_error)?;
    let mut out = balance_out(&a, src.freshness.clone(), src.coverage.clone(), at);
    let types_of = |currency: &str, is_crypto: bool| -> BalanceTypeCounts {
        let mut types = BalanceTypeCounts::default();
        for (acc, t) in src.accounts.iter().zip(totals) {
            if acc.currency.code() == currency && acc.is_crypto == is_crypto {
                types.merge(&t.balance_types);
            }
        }
        types
    };
    let n = |types: BalanceTypeCounts| usize::try_from(types.total()).unwrap_or(usize::MAX);
    let all: u64 = totals.iter().map(|t| t.accounts).sum();
    out.accounts_count = usize::try_from(all).unwrap_or(usize::MAX);
    // The total adds the aggregates that were converted (an aggregate is one currency: all of
    // its accounts or none).
    let unconverted: std::collections::HashSet<&str> = a
        .unconverted
        .iter()
        .map(|u| u.account_id.as_str())
        .collect();
    let mut added = BalanceTypeCounts::default();
    for (acc, t) in src.accounts.iter().zip(totals) {
        if !unconverted.contains(acc.id.as_str()) {
            added.merge(&t.balance_types);
        }
    }
    out.balance_types = added.into();
    for g in out.groups.iter_mut().flatten() {
        let types = types_of(&g.currency, g.is_crypto);
        g.accounts_count = n(types);
        g.balance_types = types.into();
        if g.unconverted_count > 0 {
            g.unconverted_count = n(types);
        }
    }
    Ok(out)
}

pub(crate) fn balance_out(
    a: &query::BalanceAnswer<'_>,
    freshness: crate::routes::answer::Freshness,
    coverage: Option<CoverageOut>,
    at: Option<DateTime<Utc>>,
) -> BalanceOut {
    let target = a.currency.clone();
    let accounts = |list: &[query::ConvertedAccount<'_>]| -> Vec<AccountOut> {
        list.iter()
            .map(|c| at::observed(dto::converted(c, &target), at))
            .collect()
    };
    let mut rates = dto::rates(&a.rates);
    if at.is_some() {
        // In one order whatever the accounts were summed in: an all-customer answer at an
        // instant is the same from checkpoints (per-currency sums) as from each account.
        rates.sort_by(|x, y| {
            let key = |r: &RateOut| {
                (
                    r.currency.clone(),
                    r.quote.clone(),
                    r.source.clone(),
                    r.provider.clone(),
                )
            };
            key(x).cmp(&key(y))
        });
    }
    BalanceOut {
        total_balance: a.total.rounded.to_string(),
        currency: target.to_string(),
        fiat_balance: a.fiat.rounded.to_string(),
        crypto_balance: a.crypto.rounded.to_string(),
        exact: ExactOut {
            total_balance: a.total.exact.to_string(),
            fiat_balance: a.fiat.exact.to_string(),
            crypto_balance: a.crypto.exact.to_string(),
        },
        groups: a
            .groups
            .as_ref()
            .map(|g| g.iter().map(dto::group).collect()),
        details: a.details.as_ref().map(|d| DetailsOut {
            fiat_accounts: accounts(&d.fiat_accounts),
            crypto_assets: accounts(&d.crypto_assets),
        }),
        rates,
        unconverted: a.unconverted.iter().map(dto::unconverted).collect(),
        accounts_count: a.accounts,
        balance_types: a.balance_types.into(),
        freshness: freshness.into(),
        coverage,
        at,
    }
}
