//! Account reads on PostgreSQL: one customer's accounts with their snapshots, one account, the
//! filtered list, totals and history.

use chrono::{DateTime, Utc};
use coffer_core::Account;
use coffer_core::query::Filter;
use sqlx::QueryBuilder;

use super::PgStore;
use super::account_rows::{AccountRow, account_cols, accounts, from_accounts, seen_at};
use super::filter::push_filter;
use crate::error::db_err;
use crate::rows::{self, HistoryCols};
use crate::{CustomerAccounts, HistoryEntry, Result, Scope, StoreError, Totals};

#[derive(sqlx::FromRow)]
struct MetaRow {
    customer_id: String,
    provider_id: String,
    provider_customer_ref: Option<String>,
    fetched_at: DateTime<Utc>,
    rejected: String,
}

#[derive(sqlx::FromRow)]
struct HistoryRow {
    account_id: String,
    customer_id: String,
    balance: String,
    status: String,
    closed: bool,
    recorded_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct SpanRow {
    customers: i64,
    oldest: Option<DateTime<Utc>>,
    newest: Option<DateTime<Utc>>,
}

impl PgStore {
    pub(super) async fn customer_accounts_impl(
        &self,
        customer_id: &str,
    ) -> Result<CustomerAccounts> {
        // One snapshot of the database for both reads: a sync committing between them would
        // otherwise pair accounts of one fetch with the snapshot time of the next.
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let rows: Vec<AccountRow> = sqlx::query_as(concat!(
            "SELECT ",
            account_cols!(seen_at!()),
            from_accounts!(),
            " WHERE customer_id = $1 AND NOT closed ORDER BY id"
        ))
        .bind(customer_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        let metas: Vec<MetaRow> = sqlx::query_as(
            "SELECT customer_id, provider_id, provider_customer_ref, fetched_at, rejected
             FROM snapshots WHERE customer_id = $1 ORDER BY provider_id",
        )
        .bind(customer_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        if rows.is_empty() && metas.is_empty() {
            // Nothing stored yet: an existing customer, or none at all?
            self.get_customer_impl(customer_id).await?;
        }
        let snapshots = metas
            .into_iter()
            .map(|m| {
                Ok(crate::SnapshotMeta {
                    rejected: rows::strings(&m.rejected)?,
                    customer_id: m.customer_id,
                    provider_id: m.provider_id,
                    provider_customer_ref: m.provider_customer_ref,
                    fetched_at: m.fetched_at,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(CustomerAccounts {
            accounts: accounts(rows)?,
            snapshots,
        })
    }

    pub(super) async fn get_account_impl(&self, id: &str) -> Result<Account> {
        let row: Option<AccountRow> = sqlx::query_as(concat!(
            "SELECT ",
            account_cols!(seen_at!()),
            from_accounts!(),
            " WHERE id = $1 AND NOT closed"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.ok_or_else(|| StoreError::NotFound {
            what: format!("account {id}"),
        })?
        .into_account()
    }

    pub(super) async fn list_accounts_impl(
        &self,
        scope: &Scope,
        f: &Filter,
    ) -> Result<Vec<Account>> {
        let mut qb = QueryBuilder::new(concat!(
            "SELECT ",
            account_cols!(seen_at!()),
            from_accounts!()
        ));
        push_filter(&mut qb, scope, f, true);
        qb.push(" ORDER BY id");
        let rows: Vec<AccountRow> = qb
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        let mut out = accounts(rows)?;
        out.retain(|a| crate::keep(f, a, true));
        Ok(out)
    }

    /// One account per (provider, currency, quote) with a provider rate, as `rate_givers`
    /// chooses: `DISTINCT ON` the slot, newest seen first, then the largest balance by size,
    /// then the largest id (the last of equals in id order).
    pub(super) async fn rate_givers_impl(&self, scope: &Scope) -> Result<Vec<Account>> {
        let mut qb = QueryBuilder::new(concat!(
            "SELECT DISTINCT ON (accounts.provider_id, accounts.currency, \
             accounts.provider_rate_quote) ",
            account_cols!(seen_at!()),
            from_accounts!()
        ));
        push_filter(&mut qb, scope, &Filter::default(), true);
        qb.push(concat!(
            " AND provider_rate IS NOT NULL ORDER BY accounts.provider_id, accounts.currency, \
             accounts.provider_rate_quote, ",
            seen_at!(),
            " DESC, abs(accounts.balance) DESC, accounts.id DESC"
        ));
        let rows: Vec<AccountRow> = qb
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        accounts(rows)
    }

    pub(super) async fn totals_impl(&self, scope: &Scope, f: &Filter) -> Result<Totals> {
        let by_currency = if !f.fields.is_empty() || f.text.is_some() {
            // Field searches and free text are checked in Rust: sum what passes, a batch at a
            // time.
            crate::list::sum_walk(|after, n| {
                let by_id = coffer_core::query::SortSpec::default();
                async move {
                    self.list_page_impl(scope, f, &by_id, after.as_deref(), n)
                        .await
                }
            })
            .await?
        } else {
            self.sums(scope, f).await?
        };
        let span = self.span(scope, f).await?;
        Ok(Totals {
            by_currency,
            customers: u64::try_from(span.customers).unwrap_or(0),
            oldest_as_of: span.oldest,
            newest_as_of: span.newest,
        })
    }

    /// How many customers the scope covers (with at least one snapshot) and the oldest and
    /// newest snapshot of the filtered providers. Unscoped, from the maintained count and the
    /// `fetched_at` indexes, without scanning the snapshots.
    async fn span(&self, scope: &Scope, f: &Filter) -> Result<SpanRow> {
        let providers = (!f.providers.is_empty()).then(|| f.providers.clone());
        let q = match scope {
            Scope::All if providers.is_none() => sqlx::query_as(
                "SELECT (SELECT coalesce(sum(customers), 0) FROM snapshot_customers)::bigint
                            AS customers,
                        (SELECT min(fetched_at) FROM snapshots) AS oldest,
                        (SELECT max(fetched_at) FROM snapshots) AS newest",
            ),
            Scope::All => sqlx::query_as(
                "SELECT (SELECT coalesce(sum(customers), 0) FROM snapshot_customers)::bigint
                            AS customers,
                        (SELECT min((SELECT min(fetched_at) FROM snapshots s WHERE s.provider_id = p))
                         FROM unnest($1::text[]) AS p) AS oldest,
                        (SELECT max((SELECT max(fetched_at) FROM snapshots s WHERE s.provider_id = p))
                         FROM unnest($1::text[]) AS p) AS newest",
            ),
            Scope::Customers(_) => sqlx::query_as(
                "SELECT count(DISTINCT customer_id) AS customers,
                        min(fetched_at) FILTER (WHERE $1::text[] IS NULL OR provider_id = ANY($1))
                            AS oldest,
                        max(fetched_at) FILTER (WHERE $1::text[] IS NULL OR provider_id = ANY($1))
                            AS newest
                 FROM snapshots WHERE customer_id = ANY($2)",
            ),
        };
        let q = match scope {
            Scope::All if providers.is_none() => q,
            Scope::All => q.bind(providers),
            Scope::Customers(ids) => q.bind(providers).bind(ids.clone()),
        };
        q.fetch_one(&self.pool).await.map_err(db_err)
    }

    pub(super) async fn history_impl(
        &self,
        customer_id: Option<&str>,
        account_id: Option<&str>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<HistoryEntry>> {
        let q = if customer_id.is_some() {
            sqlx::query_as(
                "SELECT account_id, customer_id, balance::text AS balance, status, closed, recorded_at
                 FROM balance_history WHERE customer_id = $1 AND recorded_at >= $2 AND recorded_at <= $3
                 ORDER BY recorded_at, id",
            )
        } else {
            sqlx::query_as(
                "SELECT account_id, customer_id, balance::text AS balance, status, closed, recorded_at
                 FROM balance_history WHERE account_id = $1 AND recorded_at >= $2 AND recorded_at <= $3
                 ORDER BY recorded_at, id",
            )
        };
        let rows: Vec<HistoryRow> = q
            .bind(customer_id.or(account_id))
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.into_iter()
            .map(|r| {
                HistoryCols {
                    account_id: r.account_id,
                    customer_id: r.customer_id,
                    balance: r.balance,
                    status: r.status,
                    closed: r.closed,
                    recorded_at: r.recorded_at,
                }
                .into_entry()
            })
            .collect()
    }
}
