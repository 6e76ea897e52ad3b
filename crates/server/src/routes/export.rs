//! `GET /v2/accounts?format=csv`: every matching account, a row each, with the JSON list's
//! parameters, scope and numbers. An export over a scope (all customers for an admin, a reader's
//! customers) is streamed over the keyset (`Store::list_page`, a batch at a time, never the
//! whole set in memory); the other answers (one customer, `at=`) are held in memory by the JSON
//! list already.
//! A batch is `server.max_page_size` accounts: the most one JSON page may hold.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::response::Response;
use chrono::{DateTime, Utc};
use coffer_core::query::{self, ConvertedAccount, KeyValue, Query};
use coffer_core::rates::RateTable;
use coffer_core::{Account, Currency};
use coffer_store::Scope;
use rust_decimal::Decimal;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::routes::balance_body::{check_strict, check_target, query_error, table_for};
use crate::routes::{at, csv, dto, source};
use crate::state::AppState;

/// The columns of an account row; the JSON list's fields of the same names.
pub const COLUMNS: [&str; 22] = [
    "id",
    "customer_id",
    "provider",
    "provider_account_id",
    "provider_customer_ref",
    "currency",
    "is_crypto",
    "status",
    "active",
    "balance",
    "balance_type",
    "balance_in_base",
    "target_currency",
    "rate_currency",
    "rate",
    "rate_source",
    "rate_as_of",
    "as_of",
    "observed_at",
    "iban",
    "main_wallet_address",
    "main_wallet_address_tag",
];

/// Makes account rows, resolving each currency's rate cells once.
struct Rows {
    table: RateTable,
    target: Currency,
    at: Option<DateTime<Utc>>,
    rates: HashMap<Currency, [String; 4]>,
}

impl Rows {
    fn new(table: RateTable, q: &Query, at: Option<DateTime<Utc>>) -> Self {
        let target = q.currency.clone().unwrap_or_else(|| table.base().clone());
        Rows {
            table,
            target,
            at,
            rates: HashMap::new(),
        }
    }

    fn row(&mut self, c: &ConvertedAccount<'_>) -> Vec<String> {
        let a = at::observed(dto::converted(c, &self.target), self.at);
        let (table, target) = (&self.table, &self.target);
        let rates = self
            .rates
            .entry(c.account.currency.clone())
            .or_insert_with(
                || match table.convert(Decimal::ONE, &c.account.currency, target) {
                    Ok(one) => csv::rate_cells(&dto::rates(&one.rates)),
                    _ => Default::default(),
                },
            );
        let [rate_currency, rate, rate_source, rate_as_of] = rates.clone();
        let opt = Option::unwrap_or_default;
        vec![
            a.id,
            a.customer_id,
            a.provider,
            a.provider_account_id,
            opt(a.provider_customer_ref),
            a.currency,
            a.is_crypto.to_string(),
            a.status,
            a.active.to_string(),
            a.balance,
            a.balance_type,
            opt(a.balance_in_base),
            self.target.to_string(),
            rate_currency,
            rate,
            rate_source,
            rate_as_of,
            csv::instant(a.as_of),
            a.observed_at.map(csv::instant).unwrap_or_default(),
            opt(a.iban),
            opt(a.main_wallet_address),
            opt(a.main_wallet_address_tag),
        ]
    }

    /// `accounts` as core's list orders and converts them (every one, no page limit), as rows.
    fn all(&mut self, accounts: &[Account], q: &Query) -> ApiResult<Vec<Vec<String>>> {
        let page = query::list(accounts, &unlimited(q), &self.table).map_err(query_error)?;
        Ok(page
            .data
            .accounts()
            .into_iter()
            .map(|c| self.row(c))
            .collect())
    }
}

/// `q` without a page limit: an export holds every matching account.
fn unlimited(q: &Query) -> Query {
    Query {
        limit: u32::MAX,
        ..q.clone()
    }
}

/// `limit` pages a JSON list; an export is every matching account, so a `limit` is refused
/// rather than ignored (a caller who meant a short file should learn it is not one).
pub fn check_no_limit(pairs: &[(String, String)]) -> ApiResult<()> {
    match pairs
        .iter()
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("limit"))
    {
        Some((k, _)) => Err(ApiError::param(
            k.clone(),
            "does not apply to an export: CSV holds every matching account (use `cursor` to resume)",
        )),
        None => Ok(()),
    }
}

/// The list as CSV, from the same sources the JSON list reads.
pub async fn list(state: &AppState, caller: &Caller, q: Query) -> ApiResult<Response> {
    if let Some(t) = at::instant(state, &q)? {
        let (src, table) = at::held(state, caller, &q, t).await?;
        check_target(&q, &table)?;
        let rows = Rows::new(table, &q, Some(t)).all(&src.accounts, &q)?;
        return Ok(csv::response("accounts", t, csv::body(&COLUMNS, rows)?));
    }
    if let Some(scope) = source::pages_from_store(caller, &q) {
        let table = source::table_for_scope(state, &scope).await?;
        check_target(&q, &table)?;
        return streamed(state, scope, q, table).await;
    }
    let src = source::accounts(state, caller, &q).await?;
    check_strict(&q, &src.freshness)?;
    let table = table_for(state, &src).await?;
    check_target(&q, &table)?;
    let rows = Rows::new(table, &q, None).all(&src.accounts, &q)?;
    Ok(csv::response(
        "accounts",
        Utc::now(),
        csv::body(&COLUMNS, rows)?,
    ))
}

/// Where a streamed export is: the next batch starts strictly after `after`.
struct Walk {
    state: AppState,
    scope: Scope,
    q: Query,
    rows: Rows,
    /// The currencies that can match (for a `balance_in_base` sort's per-currency walks).
    currencies: Vec<Currency>,
    after: Option<Vec<KeyValue>>,
    first: bool,
    done: bool,
    batch: usize,
}

impl Walk {
    /// The next batch as CSV text (the first with the header); `None` once every row is out.
    async fn next(&mut self) -> ApiResult<Option<Bytes>> {
        if self.done {
            return Ok(None);
        }
        let Some(batch) = self.batch().await? else {
            // A value sort the store cannot page exactly from here: the rest in memory, as
            // the JSON list does for the whole selection.
            self.done = true;
            let rest = self.rest_in_memory().await?;
            let bytes = if std::mem::take(&mut self.first) {
                csv::body(&COLUMNS, rest)?
            } else {
                csv::rows(rest)?
            };
            return Ok(Some(Bytes::from(bytes)));
        };
        self.done = batch.len() < self.batch;
        // The cursor (if any) applies to the first batch only: the later ones start after it.
        let q = if self.first {
            unlimited(&self.q)
        } else {
            Query {
                cursor: None,
                ..unlimited(&self.q)
            }
        };
        let page = query::list(&batch, &q, &self.rows.table).map_err(query_error)?;
        let items = page.data.accounts();
        let sort = self.q.effective_sort();
        if let Some(last) = items.last() {
            self.after = Some(sort.key_of(last.account, last.value_in_target));
        }
        let rows: Vec<_> = items.into_iter().map(|c| self.rows.row(c)).collect();
        let bytes = if std::mem::take(&mut self.first) {
            csv::body(&COLUMNS, rows)?
        } else {
            csv::rows(rows)?
        };
        Ok(Some(Bytes::from(bytes)))
    }

    /// The next `batch` accounts in the list's order; `None` when a value sort cannot be paged
    /// exactly from the store (`coffer_store::value_page`).
    async fn batch(&self) -> ApiResult<Option<Vec<Account>>> {
        let sort = self.q.effective_sort();
        let after = self.after.as_deref();
        let store = self.state.store.as_ref();
        if sort.uses_rates() {
            let target = &self.rows.target;
            let (filter, table) = (&self.q.filter, &self.rows.table);
            let page = coffer_store::value_page(
                store,
                &self.scope,
                filter,
                &sort,
                after,
                table,
                target,
                &self.currencies,
                self.batch,
            );
            return Ok(page.await?);
        }
        let page = store.list_page(&self.scope, &self.q.filter, &sort, after, self.batch);
        Ok(Some(page.await?))
    }

    /// Every matching account after `after`, in memory (the JSON list's fallback).
    async fn rest_in_memory(&mut self) -> ApiResult<Vec<Vec<String>>> {
        let all = self
            .state
            .store
            .list_accounts(&self.scope, &self.q.filter)
            .await?;
        let q = if self.first {
            unlimited(&self.q)
        } else {
            Query {
                cursor: None,
                ..unlimited(&self.q)
            }
        };
        let page = query::list(&all, &q, &self.rows.table).map_err(query_error)?;
        let sort = self.q.effective_sort();
        let after = self.after.take();
        let mut out = Vec::new();
        for c in page.data.accounts() {
            let key = sort.key_of(c.account, c.value_in_target);
            if after
                .as_ref()
                .is_none_or(|a| sort.compare(&key, a) == std::cmp::Ordering::Greater)
            {
                out.push(self.rows.row(c));
            }
        }
        Ok(out)
    }
}

/// A scope's export (every customer for an admin, a reader's customers), a batch at a time. The first batch is read before the
/// answer starts, so a bad cursor or a failing store is still a proper error; a failure later
/// ends the body early (the client sees a cut transfer, never a complete-looking short file).
async fn streamed(
    state: &AppState,
    scope: Scope,
    q: Query,
    table: RateTable,
) -> ApiResult<Response> {
    let currencies = if q.effective_sort().uses_rates() {
        let totals = state.store.totals(&scope, &q.filter).await?;
        totals.by_currency.into_iter().map(|t| t.currency).collect()
    } else {
        Vec::new()
    };
    let mut walk = Walk {
        state: state.clone(),
        scope,
        rows: Rows::new(table, &q, None),
        q,
        currencies,
        after: None,
        first: true,
        done: false,
        batch: usize::try_from(state.config.server.max_page_size.max(1)).unwrap_or(1000),
    };
    if let Some(c) = &walk.q.cursor {
        walk.after = Some(c.key().to_vec());
    }
    let first = walk.next().await?.unwrap_or_default();
    let rest = futures::stream::try_unfold(walk, |mut w| async move {
        match w.next().await {
            Ok(Some(b)) => Ok(Some((b, w))),
            Ok(None) => Ok(None),
            Err(e) => {
                tracing::error!(error = %e, "account export cut short");
                Err(std::io::Error::other(e.to_string()))
            }
        }
    });
    let body = futures::StreamExt::chain(
        futures::stream::once(async move { Ok::<_, std::io::Error>(first) }),
        rest,
    );
    Ok(csv::streamed(
        "accounts",
        Utc::now(),
        Body::from_stream(body),
    ))
}
