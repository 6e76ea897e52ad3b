//! `GET /v2/accounts/balance`, `GET /v2/accounts`, `GET /v2/accounts/{id}`.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query as QueryExtract, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use coffer_core::query::{self, Endpoint, ListData, ParseOptions, Query};
use coffer_core::rates::RateTable;
use serde::Serialize;
use utoipa::ToSchema;

use crate::answers::{self, AnswerKey};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::fresh::Need;
use crate::routes::answer::{Warning, freshness_of};
use crate::routes::dto::{self, AccountOut, CoverageOut, FreshnessOut, GroupOut, UnconvertedOut};
use crate::routes::params::{AccountParams, BalanceParams, ListParams};
use crate::routes::rates::RateOut;
use crate::routes::{at, csv, export, export_balance, source};
use crate::state::AppState;

pub use crate::routes::balance_body::{BalanceOut, DetailsOut, ExactOut};
pub(crate) use crate::routes::balance_body::{
    all_customer_totals, balance_out, check_strict, check_target, param_error, query_error,
    stacked_groups, table_for,
};

type Pairs = Result<QueryExtract<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>;

fn parse(state: &AppState, pairs: Pairs, endpoint: Endpoint) -> ApiResult<Query> {
    let QueryExtract(pairs) = pairs.map_err(|e| ApiError::param("query", e.body_text()))?;
    parse_pairs(state, pairs, endpoint).map(|(q, _)| q)
}

/// The parsed query, the raw pairs (the question, for reusing answers) and whether CSV was
/// asked (`format=csv` or `Accept: text/csv`).
fn parse_answer(
    state: &AppState,
    pairs: Pairs,
    endpoint: Endpoint,
    headers: &HeaderMap,
) -> ApiResult<(Query, csv::Pairs, bool)> {
    let QueryExtract(pairs) = pairs.map_err(|e| ApiError::param("query", e.body_text()))?;
    let (format, pairs) = csv::take_format(pairs)?;
    let as_csv = csv::wanted(format.as_deref(), headers)?;
    let (q, pairs) = parse_pairs(state, pairs, endpoint)?;
    Ok((q, pairs, as_csv))
}

fn parse_pairs(
    state: &AppState,
    pairs: Vec<(String, String)>,
    endpoint: Endpoint,
) -> ApiResult<(Query, Vec<(String, String)>)> {
    let mut opts = ParseOptions::new(endpoint);
    opts.max_limit = state.config.server.max_page_size;
    opts.default_limit = opts.default_limit.min(opts.max_limit);
    let q = query::parse_query(&pairs, &opts).map_err(param_error)?;
    Ok((q, pairs))
}

/// Answers from the cache when this exact question about this exact view was answered already;
/// otherwise computes the answer with `compute` (rate table included, so a reused answer costs
/// none of it), serialises it, and keeps it when reusable.
async fn reuse_or<T: Serialize>(
    state: &AppState,
    endpoint: &'static str,
    src: &source::Sourced,
    pairs: &[(String, String)],
    compute: impl Future<Output = ApiResult<T>>,
) -> ApiResult<Response> {
    // Read the rates' generation before computing, so an answer computed while they change is
    // filed under the old generation and never served again.
    let key = src
        .generation
        .map(|g| AnswerKey::new(endpoint, g, state.rates.generation(), pairs));
    if let Some(k) = &key
        && let Some(body) = state.answers.get(k).await
    {
        return Ok(answers::json(body));
    }
    let out = compute.await?;
    let body =
        Bytes::from(serde_json::to_vec(&out).map_err(|e| ApiError::Internal(e.to_string()))?);
    if let Some(k) = key {
        state.answers.put(k, body.clone()).await;
    }
    Ok(answers::json(body))
}

/// Consolidated fiat + crypto balance, converted to one currency.
#[utoipa::path(get, path = "/v2/accounts/balance", tag = "accounts", params(BalanceParams),
    responses((status = 200, description = "The balance (CSV: a row per currency group, then fiat, crypto and total)",
            content((BalanceOut = "application/json"), (String = "text/csv"))), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn balance(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    pairs: Pairs,
) -> ApiResult<Response> {
    let (q, pairs, as_csv) = parse_answer(&state, pairs, Endpoint::Balance, &headers)?;
    if as_csv {
        return export_balance::balance(&state, &caller, q).await;
    }
    if let Some(at) = at::instant(&state, &q)? {
        if caller.is_admin() && q.customer_id.is_none() && !q.details {
            let (out, _) = crate::routes::at_totals::balance(&state, &caller, &q, at).await?;
            return Ok(Json(out).into_response());
        }
        let (src, table) = at::held(&state, &caller, &q, at).await?;
        check_target(&q, &table)?;
        let a = query::balance(&src.accounts, &q, &table).map_err(query_error)?;
        let out = balance_out(&a, src.freshness, src.coverage, Some(at));
        return Ok(Json(out).into_response());
    }
    if let Some(scope) = source::store_scope(&caller, &q).filter(|_| !q.details) {
        return all_customer_totals(&state, &scope, q)
            .await
            .map(|(out, _)| Json(out).into_response());
    }
    let src = source::accounts(&state, &caller, &q).await?;
    check_strict(&q, &src.freshness)?;
    crate::metrics::answer_flags(src.freshness.stale, src.freshness.partial);
    reuse_or(&state, "balance", &src, &pairs, async {
        let table = table_for(&state, &src).await?;
        check_target(&q, &table)?;
        let a = query::balance(&src.accounts, &q, &table).map_err(query_error)?;
        Ok(balance_out(
            &a,
            src.freshness.clone(),
            src.coverage.clone(),
            None,
        ))
    })
    .await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListOut {
    /// Accounts, or with `stack=currency` groups of accounts.
    #[schema(schema_with = list_data_schema)]
    pub data: serde_json::Value,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
    /// The target currency of `balance_in_base`.
    pub currency: String,
    /// Accounts matching the filters, over all pages.
    pub matched: usize,
    pub rates: Vec<RateOut>,
    pub unconverted: Vec<UnconvertedOut>,
    #[serde(flatten)]
    pub freshness: FreshnessOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<CoverageOut>,
    /// The `at` asked for: the answer is as of that instant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
}

/// `data` of the list: an array of accounts, or (stacked) an array of groups. `anyOf`, not
/// `oneOf`: an empty page is both.
fn list_data_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{AnyOfBuilder, ArrayBuilder, Ref, Schema};
    let any = AnyOfBuilder::new()
        .item(ArrayBuilder::new().items(Ref::from_schema_name("AccountOut")))
        .item(ArrayBuilder::new().items(<StackedGroupOut as utoipa::PartialSchema>::schema()))
        .description(Some(
            "Accounts, or with `stack=currency` groups of accounts",
        ))
        .build();
    Schema::AnyOf(any)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StackedGroupOut {
    #[serde(flatten)]
    pub group: GroupOut,
    pub accounts: Vec<AccountOut>,
}

/// The unified account list: filters, field searches, free text, sort, keyset pagination.
#[utoipa::path(get, path = "/v2/accounts", tag = "accounts", params(ListParams),
    responses((status = 200, description = "A page of accounts (CSV: every matching account, streamed, no page limit)",
            content((ListOut = "application/json"), (String = "text/csv"))), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    pairs: Pairs,
) -> ApiResult<Response> {
    let (q, pairs, as_csv) = parse_answer(&state, pairs, Endpoint::List, &headers)?;
    if as_csv {
        export::check_no_limit(&pairs)?;
        return export::list(&state, &caller, q).await;
    }
    if let Some(at) = at::instant(&state, &q)? {
        let (src, table) = at::held(&state, &caller, &q, at).await?;
        check_target(&q, &table)?;
        let out = list_out(&src, &q, &table, Some(at), None)?;
        return Ok(Json(out).into_response());
    }
    if let Some(scope) = source::pages_from_store(&caller, &q) {
        // The scope's table, as `table_for` gives the same answer read whole.
        let table = source::table_for_scope(&state, &scope).await?;
        check_target(&q, &table)?;
        if let Some(page) = source::page_from_store(&state, &scope, &q, &table).await? {
            crate::metrics::answer_flags(false, false);
            // Core pages the page and the one after it, exactly as it pages the whole
            // selection; the count of all matches and a stacked page's groups (each over
            // every matching account of its currency) come from the store's sums.
            let groups = match q.stack {
                Some(_) => Some(stacked_groups(&page.totals, &q, &table)?),
                None => None,
            };
            let mut out = list_out(&page.src, &q, &table, None, groups.as_deref())?;
            out.matched = page.matched;
            return Ok(Json(out).into_response());
        }
    }
    let src = source::accounts(&state, &caller, &q).await?;
    check_strict(&q, &src.freshness)?;
    crate::metrics::answer_flags(src.freshness.stale, src.freshness.partial);
    reuse_or(&state, "list", &src, &pairs, async {
        let table = table_for(&state, &src).await?;
        check_target(&q, &table)?;
        list_out(&src, &q, &table, None, None)
    })
    .await
}

/// The list's answer from `src`'s accounts as core pages them. A stacked page's groups sum
/// every matching account of their currency: `summed` gives them when `src` holds the page
/// only (read from the store), else core sums them over `src`.
fn list_out(
    src: &source::Sourced,
    q: &Query,
    table: &RateTable,
    at: Option<DateTime<Utc>>,
    summed: Option<&[GroupOut]>,
) -> ApiResult<ListOut> {
    let page = query::list(&src.accounts, q, table).map_err(query_error)?;
    let target = page.currency.clone();
    let out = |c: &query::ConvertedAccount<'_>| at::observed(dto::converted(c, &target), at);
    let data = match &page.data {
        ListData::Accounts(items) => {
            serde_json::to_value(items.iter().map(out).collect::<Vec<_>>())
        }
        ListData::Groups(groups) => serde_json::to_value(
            groups
                .iter()
                .map(|g| StackedGroupOut {
                    group: summed
                        .and_then(|all| {
                            all.iter()
                                .find(|o| o.currency == g.group.currency.to_string())
                        })
                        .cloned()
                        .unwrap_or_else(|| dto::group(&g.group)),
                    accounts: g.accounts.iter().map(out).collect(),
                })
                .collect::<Vec<_>>(),
        ),
    }
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(ListOut {
        data,
        next_cursor: page.next_cursor.clone(),
        currency: target.to_string(),
        matched: page.matched,
        rates: dto::rates(&page.rates),
        unconverted: page.unconverted.iter().map(dto::unconverted).collect(),
        freshness: src.freshness.clone().into(),
        coverage: src.coverage.clone(),
        at,
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountDetailOut {
    /// The account; its `as_of` is when its provider reported it.
    #[serde(flatten)]
    pub account: AccountOut,
    pub rates: Vec<RateOut>,
    /// Per provider of the customer: when the data served was fetched. Not flattened as
    /// `as_of`, which would write a second `as_of` key next to the account's own.
    pub as_of_by_provider: BTreeMap<String, Option<DateTime<Utc>>>,
    pub stale: bool,
    pub partial: bool,
    pub warnings: Vec<Warning>,
    /// The `at` asked for: the account as it was at that instant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
}

/// One account, as fresh as its customer's other accounts. Takes `currency`, `max_age`,
/// `strict`, or `at` (the account as it was then; 404 if it was not held then).
#[utoipa::path(get, path = "/v2/accounts/{id}", tag = "accounts",
    params(("id" = String, Path, description = "`{provider}:{provider_account_id}`"), AccountParams),
    responses((status = 200, body = AccountDetailOut), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_account(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    pairs: Pairs,
) -> ApiResult<Json<AccountDetailOut>> {
    let q = parse(&state, pairs, Endpoint::Balance)?;
    if q.customer_id.is_some() || q.filter != Default::default() || q.stack.is_some() || q.details {
        return Err(ApiError::param(
            "query",
            "only `currency`, `max_age`, `strict` and `at` apply to one account",
        ));
    }
    if let Some(at) = at::instant(&state, &q)? {
        let (account, freshness, table) = at::one(&state, &caller, &id, at).await?;
        return detail_out(&q, account, freshness, &table, Some(at)).map(Json);
    }
    let not_found = || ApiError::NotFound("account".into());
    // Same answer for "no such account" and "not yours": nothing to infer from.
    let stored = match state.store.get_account(&id).await {
        Ok(a) => a,
        Err(coffer_store::StoreError::NotFound { .. }) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    if !caller.can_see(&stored.customer_id) {
        return Err(not_found());
    }
    let view = state
        .fresh
        .customer(
            &stored.customer_id,
            Need::request(q.max_age, false, state.config.server.request_timeout),
        )
        .await?;
    let freshness = freshness_of(std::slice::from_ref(&view));
    check_strict(&q, &freshness)?;
    let account = view.accounts().find(|a| a.id == id).ok_or_else(not_found)?;
    let table = state
        .rates
        .table_for(state.store.as_ref(), std::slice::from_ref(&account))
        .await;
    detail_out(&q, account, freshness, &table, None).map(Json)
}

fn detail_out(
    q: &Query,
    account: coffer_core::Account,
    freshness: crate::routes::answer::Freshness,
    table: &RateTable,
    at: Option<DateTime<Utc>>,
) -> ApiResult<AccountDetailOut> {
    check_target(q, table)?;
    let target = q.currency.clone().unwrap_or_else(|| table.base().clone());
    let converted = table
        .convert(account.balance, &account.currency, &target)
        .ok();
    let f = FreshnessOut::from(freshness);
    Ok(AccountDetailOut {
        account: at::observed(
            dto::account(&account, converted.as_ref().map(|c| c.value), &target),
            at,
        ),
        rates: converted.map(|c| dto::rates(&c.rates)).unwrap_or_default(),
        as_of_by_provider: f.as_of,
        stale: f.stale,
        partial: f.partial,
        warnings: f.warnings,
        at,
    })
}
