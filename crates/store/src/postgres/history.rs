//! History over a window on PostgreSQL: the reads behind the series (`held_window`,
//! `rates_window`) and one account's changes.

use chrono::{DateTime, Utc};

use super::PgStore;
use crate::at::ObservationCols;
use crate::error::db_err;
use crate::history::{self, HeldWindow, RateRowCols, RateWindow, WindowVersion};
use crate::rows::{self, AccountCols};
use crate::{AccountChange, ChangesQuery, Result, Scope};

/// Each pair's last observation at or before $1 (the window's start), in scope $3 (NULL: all):
/// where its part of the window begins.
const BASE: &str = "base AS (
    SELECT customer_id, provider_id, max(fetched_at) AS b FROM observations
    WHERE fetched_at <= $1 AND ($3::text[] IS NULL OR customer_id = ANY($3))
    GROUP BY customer_id, provider_id)";

#[derive(sqlx::FromRow)]
pub(super) struct VersionRow {
    account_id: String,
    customer_id: String,
    provider_id: String,
    provider_account_id: String,
    provider_customer_ref: Option<String>,
    currency: String,
    is_crypto: bool,
    status: String,
    active: bool,
    closed: bool,
    balance: String,
    wallets: String,
    iban: Option<String>,
    balance_type: String,
    provider_rate: Option<String>,
    provider_rate_quote: Option<String>,
    valid_from: DateTime<Utc>,
}

impl VersionRow {
    pub(super) fn into_version(self) -> WindowVersion {
        WindowVersion {
            valid_from: self.valid_from,
            closed: self.closed,
            account: AccountCols {
                fetched_at: self.valid_from,
                id: self.account_id,
                customer_id: self.customer_id,
                provider_id: self.provider_id,
                provider_account_id: self.provider_account_id,
                provider_customer_ref: self.provider_customer_ref,
                currency: self.currency,
                is_crypto: self.is_crypto,
                status: self.status,
                active: self.active,
                balance: self.balance,
                wallets: self.wallets,
                iban: self.iban,
                balance_type: self.balance_type,
                provider_rate: self.provider_rate,
                provider_rate_quote: self.provider_rate_quote,
            },
        }
    }
}

pub(super) const VERSION_COLS: &str = "av.account_id, av.customer_id, av.provider_id,
    av.provider_account_id, av.provider_customer_ref, av.currency, av.is_crypto, av.status,
    av.active, av.closed, av.balance::text AS balance, av.wallets, av.iban, av.balance_type,
    av.provider_rate::text AS provider_rate, av.provider_rate_quote, av.valid_from";

/// Each pair's observations from its base up to the window's end.
fn observations_sql() -> String {
    format!(
        "WITH {BASE}
         SELECT o.customer_id, o.provider_id, o.fetched_at, o.rejected FROM observations o
         LEFT JOIN base ON base.customer_id = o.customer_id AND base.provider_id = o.provider_id
         WHERE o.fetched_at <= $2 AND ($3::text[] IS NULL OR o.customer_id = ANY($3))
           AND (base.b IS NULL OR o.fetched_at >= base.b)
         ORDER BY o.customer_id, o.provider_id, o.fetched_at"
    )
}

/// Per account: the version in force at its pair's base observation, and every later one up
/// to the window's end.
fn versions_sql() -> String {
    format!(
        "WITH {BASE}
         SELECT {VERSION_COLS} FROM account_versions av
         LEFT JOIN base ON base.customer_id = av.customer_id
          AND base.provider_id = av.provider_id
         WHERE av.valid_from <= $2 AND ($3::text[] IS NULL OR av.customer_id = ANY($3))
           AND (base.b IS NULL OR av.valid_from > base.b OR av.valid_from = (
               SELECT max(x.valid_from) FROM account_versions x
               WHERE x.customer_id = av.customer_id AND x.provider_id = av.provider_id
                 AND x.account_id = av.account_id AND x.valid_from <= base.b))
         ORDER BY av.customer_id, av.provider_id, av.account_id, av.valid_from"
    )
}

#[derive(sqlx::FromRow)]
struct ObservationRow {
    customer_id: String,
    provider_id: String,
    fetched_at: DateTime<Utc>,
    rejected: String,
}

#[derive(sqlx::FromRow)]
struct RateRow {
    source: String,
    provider: String,
    currency: String,
    quote: Option<String>,
    rate: Option<String>,
    as_of: DateTime<Utc>,
}

impl PgStore {
    pub(super) async fn held_window_impl(
        &self,
        scope: &Scope,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<HeldWindow> {
        let scope: Option<Vec<String>> = match scope {
            Scope::All => None,
            Scope::Customers(ids) => Some(ids.clone()),
        };
        // One snapshot of the database for the three reads, as `held_at`.
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let observations: Vec<ObservationRow> =
            sqlx::query_as(sqlx::AssertSqlSafe(observations_sql()))
                .bind(from)
                .bind(to)
                .bind(&scope)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err)?;
        let versions: Vec<VersionRow> = sqlx::query_as(sqlx::AssertSqlSafe(versions_sql()))
            .bind(from)
            .bind(to)
            .bind(&scope)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        let links: Vec<(String, String)> = sqlx::query_as(
            "SELECT customer_id, provider FROM customer_links
             WHERE ($1::text[] IS NULL OR customer_id = ANY($1))
             ORDER BY customer_id, provider",
        )
        .bind(&scope)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        let observations = observations
            .into_iter()
            .map(|o| ObservationCols {
                customer_id: o.customer_id,
                provider_id: o.provider_id,
                observed_at: o.fetched_at,
                rejected: o.rejected,
            })
            .collect();
        history::window(
            observations,
            versions.into_iter().map(VersionRow::into_version).collect(),
            links,
        )
    }

    pub(super) async fn rates_window_impl(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<RateWindow> {
        // Per key, the row in force at $1 and every later one up to $2.
        let rows: Vec<RateRow> = sqlx::query_as(
            "SELECT 'manual' AS source, '' AS provider, m.currency, m.quote, m.rate::text AS rate,
                 m.as_of, '' AS k, m.id AS seq
             FROM manual_rate_versions m
             WHERE m.as_of <= $2 AND m.as_of >= coalesce((
                 SELECT max(x.as_of) FROM manual_rate_versions x
                 WHERE x.currency = m.currency AND x.as_of <= $1), '-infinity')
             UNION ALL
             SELECT 'provider', h.provider, h.currency, h.quote, h.rate::text, h.as_of, h.quote,
                 0
             FROM provider_rate_history h
             WHERE h.as_of <= $2 AND h.as_of >= coalesce((
                 SELECT max(y.as_of) FROM provider_rate_history y
                 WHERE y.provider = h.provider AND y.currency = h.currency
                   AND y.quote = h.quote AND y.as_of <= $1), '-infinity')
             ORDER BY source, provider, currency, k, as_of, seq",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let rows = rows
            .into_iter()
            .map(|r| {
                Ok(RateRowCols {
                    source: rows::source(&r.source)?,
                    provider: r.provider,
                    currency: r.currency,
                    quote: r.quote,
                    rate: r.rate,
                    as_of: r.as_of,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        history::rate_window(rows)
    }
}

#[derive(sqlx::FromRow)]
struct ChangeRow {
    customer_id: String,
    valid_from: DateTime<Utc>,
    balance: String,
    status: String,
    active: bool,
    closed: bool,
}

impl PgStore {
    pub(super) async fn account_changes_impl(
        &self,
        scope: &Scope,
        account_id: &str,
        q: &ChangesQuery,
    ) -> Result<Option<Vec<AccountChange>>> {
        let scope: Option<Vec<String>> = match scope {
            Scope::All => None,
            Scope::Customers(ids) => Some(ids.clone()),
        };
        let known: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM account_versions
                            WHERE account_id = $1 AND ($2::text[] IS NULL OR customer_id = ANY($2)))",
        )
        .bind(account_id)
        .bind(&scope)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        if !known {
            return Ok(None);
        }
        let (after_at, after_customer) = q.after.clone().unzip();
        let found: Vec<ChangeRow> = sqlx::query_as(
            "SELECT customer_id, valid_from, balance::text AS balance, status, active, closed
             FROM account_versions
             WHERE account_id = $1 AND ($2::text[] IS NULL OR customer_id = ANY($2))
               AND ($3::timestamptz IS NULL OR valid_from >= $3)
               AND ($4::timestamptz IS NULL OR valid_from <= $4)
               AND ($5::timestamptz IS NULL OR valid_from < $5
                    OR (valid_from = $5 AND customer_id < $6))
             ORDER BY valid_from DESC, customer_id DESC LIMIT $7",
        )
        .bind(account_id)
        .bind(&scope)
        .bind(q.from)
        .bind(q.to)
        .bind(after_at)
        .bind(after_customer)
        .bind(i64::from(q.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        found
            .into_iter()
            .map(|r| {
                Ok(AccountChange {
                    balance: rows::decimal(&r.balance, "account version balance")?,
                    status: rows::status(&r.status)?,
                    customer_id: r.customer_id,
                    observed_at: r.valid_from,
                    active: r.active,
                    closed: r.closed,
                })
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }
}
