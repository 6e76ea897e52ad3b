//! Where a query's accounts come from, respecting the caller's scope:
//! - one customer (`customer_id`, or a reader whose key names one customer): the freshness
//!   loader (L1 → snapshot → providers);
//! - a question over several customers (an admin without `customer_id`: all of them; a reader
//!   whose key names several: those) is a [`store_scope`]: the store only, never the providers
//!   (the sync worker keeps it fresh), with `coverage`; the list's pages are read from the store
//!   page by page ([`page_from_store`]), the totals summed by the store ([`all_totals`]).

use std::sync::Arc;

use coffer_core::Account;
use coffer_core::query::{Filter, Query, SortField};
use coffer_core::rates::RateTable;
use coffer_store::Scope;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::fresh::{CustomerView, Need};
use crate::routes::answer::{Freshness, freshness_of};
use crate::routes::dto::CoverageOut;
use crate::state::AppState;

pub struct Sourced {
    pub accounts: Vec<Account>,
    pub freshness: Freshness,
    /// Set for all-customer answers read from the store.
    pub coverage: Option<CoverageOut>,
    /// For one customer whose data is all fresh: the view's generation. An answer computed from
    /// it may be reused for the same question while the view lives.
    pub generation: Option<u64>,
    /// Read from the store for this scope in the present (`None`: from the freshness loader, or
    /// at an instant, whose table is the one in force then). Its answer's rates are the scope's
    /// ([`table_for_scope`]).
    pub scope: Option<Scope>,
}

/// The scope a question without `at` is answered for from the store, or `None` when it is one
/// customer's (the freshness loader answers it): an admin's question without `customer_id`
/// covers every customer; a reader's covers the customers of its key, and one customer is that
/// customer's question.
pub fn store_scope(caller: &Caller, q: &Query) -> Option<Scope> {
    if q.customer_id.is_some() {
        return None;
    }
    if caller.is_admin() {
        return Some(Scope::All);
    }
    match caller.customers.as_slice() {
        [_] => None,
        ids => Some(Scope::Customers(ids.to_vec())),
    }
}

/// The rate table of an answer over a whole scope: for every customer one table for everybody
/// (the providers' latest rates); for a reader's customers the manual rates and the rates their
/// own accounts were reported with (as one customer's answer has), from the accounts the store
/// says give them, not from every account.
pub async fn table_for_scope(state: &AppState, scope: &Scope) -> ApiResult<RateTable> {
    Ok(match scope {
        Scope::All => state.rates.table_for_all(state.store.as_ref()).await,
        Scope::Customers(_) => {
            let givers = state.store.rate_givers(scope).await?;
            state.rates.table_for(state.store.as_ref(), &givers).await
        }
    })
}

/// The accounts for `q`, as the caller may see them.
pub async fn accounts(state: &AppState, caller: &Caller, q: &Query) -> ApiResult<Sourced> {
    let need = Need::request(q.max_age, false, state.config.server.request_timeout);
    if let Some(id) = &q.customer_id {
        if !caller.can_see(id) {
            return Err(ApiError::NotFound("customer".into()));
        }
        let view = state.fresh.customer(id, need).await?;
        return Ok(from_views(vec![view]));
    }
    if let Some(scope) = store_scope(caller, q) {
        return all_from_store(state, &scope, &q.filter).await;
    }
    // A reader whose key names one customer (several are a store scope): that customer's view.
    let mut views = Vec::with_capacity(1);
    for id in caller.customers.iter() {
        match state.fresh.customer(id, need).await {
            Ok(v) => views.push(v),
            // A customer deleted since the key was made is simply not there any more.
            Err(crate::fresh::LoadError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(from_views(views))
}

fn from_views(views: Vec<Arc<CustomerView>>) -> Sourced {
    let freshness = freshness_of(&views);
    let accounts = views.iter().flat_map(|v| v.accounts()).collect();
    // Only a fresh answer is reusable: a stale one's warnings carry ages that grow.
    let generation = match views.as_slice() {
        [v] if !v.has_failures() && freshness.warnings.is_empty() => Some(v.generation),
        _ => None,
    };
    Sourced {
        accounts,
        freshness,
        coverage: None,
        generation,
        scope: None,
    }
}

/// A scope's totals for a balance question without `details`: per-currency sums from the store
/// (for all customers PostgreSQL keeps them in a rollup), one aggregate per (currency, kind)
/// instead of every account, so the answer costs the same at a million accounts as at ten. The
/// aggregates are shaped as accounts so the one query engine converts and groups them; the
/// caller must query them without filters (the store applied them). Also gives the totals
/// the aggregates stand for, in the same order.
pub async fn all_totals(
    state: &AppState,
    scope: &Scope,
    filter: &Filter,
) -> ApiResult<(Sourced, Vec<coffer_store::CurrencyTotal>)> {
    let totals = state.store.totals(scope, filter).await?;
    let fetched_at = totals.newest_as_of.unwrap_or_else(chrono::Utc::now);
    let (accounts, _) = aggregates(&totals.by_currency, fetched_at);
    Ok((
        Sourced {
            accounts,
            freshness: Freshness::default(),
            coverage: Some(CoverageOut {
                customers: totals.customers,
                oldest_as_of: totals.oldest_as_of,
                newest_as_of: totals.newest_as_of,
            }),
            generation: None,
            scope: Some(scope.clone()),
        },
        totals.by_currency,
    ))
}

/// Per-currency totals as one account each (the engine converts and groups them like
/// accounts), with how many accounts each stands for.
pub fn aggregates(
    totals: &[coffer_store::CurrencyTotal],
    fetched_at: chrono::DateTime<chrono::Utc>,
) -> (Vec<Account>, Vec<u64>) {
    let counts = totals.iter().map(|t| t.accounts).collect();
    let accounts = totals
        .iter()
        .map(|t| {
            let kind = if t.is_crypto { "crypto" } else { "fiat" };
            Account {
                id: format!("all:{}:{kind}", t.currency),
                customer_id: "*".into(),
                provider_id: "*".into(),
                provider_account_id: format!("{}:{kind}", t.currency),
                provider_customer_ref: None,
                currency: t.currency.clone(),
                is_crypto: t.is_crypto,
                status: coffer_core::Status::Active,
                active: true,
                balance: t.balance,
                wallets: Vec::new(),
                iban: None,
                balance_type: coffer_core::BalanceType::Unspecified,
                provider_rate: None,
                fetched_at,
            }
        })
        .collect();
    (accounts, counts)
}

/// The scope whose list is read from the store one page at a time: a [`store_scope`]'s list,
/// stacked or not (a stacked group's sums come from the store's totals), not sorted by
/// `balance_in_base` after another key (a value sort first merges per-currency walks:
/// `coffer_store::value_page`; the stacked order puts the currency first). Otherwise core
/// pages the whole selection.
pub fn pages_from_store(caller: &Caller, q: &Query) -> Option<Scope> {
    let sort = q.effective_sort();
    let value_first = sort
        .keys()
        .first()
        .is_some_and(|k| k.field == SortField::BalanceInBase);
    store_scope(caller, q).filter(|_| !sort.uses_rates() || value_first)
}

/// One page of a scope's list, read from the store.
pub struct StorePage {
    /// The page's accounts and one more (so core's engine, run on them, knows whether a next
    /// page exists and issues its cursor).
    pub src: Sourced,
    /// How many accounts match in all (from the totals, which the rollup answers cheaply).
    pub matched: usize,
    /// The matching accounts' per-currency sums (a stacked page's groups).
    pub totals: Vec<coffer_store::CurrencyTotal>,
}

/// One page of a scope's list from the store; `None` when a value sort cannot be paged exactly
/// from the store (see `value_page`).
pub async fn page_from_store(
    state: &AppState,
    scope: &Scope,
    q: &Query,
    table: &RateTable,
) -> ApiResult<Option<StorePage>> {
    let limit = usize::try_from(q.limit.max(1))
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let sort = q.effective_sort();
    let after = q.cursor.as_ref().map(|c| c.key());
    let totals = state.store.totals(scope, &q.filter).await?;
    let accounts = if sort.uses_rates() {
        let target = q.currency.clone().unwrap_or_else(|| table.base().clone());
        let currencies: Vec<_> = totals
            .by_currency
            .iter()
            .map(|t| t.currency.clone())
            .collect();
        let page = coffer_store::value_page(
            state.store.as_ref(),
            scope,
            &q.filter,
            &sort,
            after,
            table,
            &target,
            &currencies,
            limit,
        )
        .await?;
        match page {
            Some(p) => p,
            None => return Ok(None),
        }
    } else {
        state
            .store
            .list_page(scope, &q.filter, &sort, after, limit)
            .await?
    };
    let matched: u64 = totals.by_currency.iter().map(|t| t.accounts).sum();
    Ok(Some(StorePage {
        src: Sourced {
            accounts,
            freshness: Freshness::default(),
            coverage: Some(CoverageOut {
                customers: totals.customers,
                oldest_as_of: totals.oldest_as_of,
                newest_as_of: totals.newest_as_of,
            }),
            generation: None,
            scope: Some(scope.clone()),
        },
        matched: usize::try_from(matched).unwrap_or(usize::MAX),
        totals: totals.by_currency,
    }))
}

async fn all_from_store(state: &AppState, scope: &Scope, filter: &Filter) -> ApiResult<Sourced> {
    let accounts = state.store.list_accounts(scope, filter).await?;
    let totals = state.store.totals(scope, filter).await?;
    Ok(Sourced {
        accounts,
        freshness: Freshness::default(),
        coverage: Some(CoverageOut {
            customers: totals.customers,
            oldest_as_of: totals.oldest_as_of,
            newest_as_of: totals.newest_as_of,
        }),
        generation: None,
        scope: Some(scope.clone()),
    })
}
