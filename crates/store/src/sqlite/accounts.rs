//! Snapshots, account reads, filtered lists, totals and history on SQLite.

use chrono::{DateTime, Utc};
use coffer_core::Account;
use coffer_core::query::Filter;
use sqlx::{QueryBuilder, Sqlite, Transaction};

use super::SqliteStore;
use crate::error::db_err;
use crate::plan::{self, Existing, Plan};
use crate::rows::{self, AccountCols, HistoryCols};
use crate::{
    CustomerAccounts, HistoryEntry, Result, SaveOutcome, Scope, SnapshotMeta, StoreError, Totals,
};

/// The account columns; `fetched_at` from the given expression (the account row's own, or
/// when it was last seen: `seen_at!`).
macro_rules! account_cols {
    () => {
        account_cols!("accounts.fetched_at")
    };
    ($fetched:expr) => {
        concat!(
            "accounts.id, accounts.customer_id, accounts.provider_id, \
             accounts.provider_account_id, accounts.provider_customer_ref, accounts.currency, \
             accounts.is_crypto, accounts.status, accounts.active, accounts.balance, \
             accounts.wallets, accounts.iban, accounts.balance_type, accounts.provider_rate, \
             accounts.provider_rate_quote, ",
            $fetched,
            " AS fetched_at, accounts.closed"
        )
    };
}

/// When an account was last seen: an open account by its pair's last saved snapshot (a save
/// that found it unchanged does not write its row), a closed one by the fetch before the one
/// that found it gone (set when it is closed). Read with `from_accounts!`.
macro_rules! seen_at {
    () => {
        "CASE WHEN accounts.closed THEN accounts.fetched_at \
         ELSE coalesce(snapshots.fetched_at, accounts.fetched_at) END"
    };
}

/// The accounts with their pairs' snapshots, for `seen_at!` (`USING` keeps `customer_id` and
/// `provider_id` unqualified names of the account's columns).
macro_rules! from_accounts {
    () => {
        " FROM accounts LEFT JOIN snapshots USING (customer_id, provider_id)"
    };
}

/// The account columns with when each was last seen, for the list's reads (`list.rs`), from
/// [`FROM_ACCOUNTS`].
pub(super) const ACCOUNT_COLS: &str = account_cols!(seen_at!());
pub(super) const FROM_ACCOUNTS: &str = from_accounts!();

#[derive(sqlx::FromRow)]
pub(super) struct AccountRow {
    id: String,
    customer_id: String,
    provider_id: String,
    provider_account_id: String,
    provider_customer_ref: Option<String>,
    currency: String,
    is_crypto: bool,
    status: String,
    active: bool,
    balance: String,
    wallets: String,
    iban: Option<String>,
    balance_type: String,
    provider_rate: Option<String>,
    provider_rate_quote: Option<String>,
    fetched_at: String,
    closed: bool,
}

impl AccountRow {
    fn into_existing(self) -> Result<Existing> {
        let closed = self.closed;
        Ok(Existing {
            account: self.into_account()?,
            closed,
            shard: 0,
        })
    }

    fn into_account(self) -> Result<Account> {
        AccountCols {
            fetched_at: rows::parse_ts(&self.fetched_at)?,
            id: self.id,
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
        }
        .into_account()
    }
}

#[derive(sqlx::FromRow)]
struct MetaRow {
    customer_id: String,
    provider_id: String,
    provider_customer_ref: Option<String>,
    fetched_at: String,
    rejected: String,
}

#[derive(sqlx::FromRow)]
struct HistoryRow {
    account_id: String,
    customer_id: String,
    balance: String,
    status: String,
    closed: bool,
    recorded_at: String,
}

#[derive(sqlx::FromRow)]
struct SpanRow {
    customers: i64,
    oldest: Option<String>,
    newest: Option<String>,
}

pub(super) fn accounts(rows: Vec<AccountRow>) -> Result<Vec<Account>> {
    rows.into_iter().map(AccountRow::into_account).collect()
}

fn json<T: AsRef<str>>(items: impl IntoIterator<Item = T>) -> String {
    let v: Vec<String> = items.into_iter().map(|s| s.as_ref().to_owned()).collect();
    rows::strings_json(&v)
}

/// Everything but the balance range (text money compares in Rust) goes to SQL.
pub(super) fn push_filter(qb: &mut QueryBuilder<Sqlite>, scope: &Scope, f: &Filter) {
    qb.push(" WHERE closed = 0");
    if let Scope::Customers(ids) = scope {
        qb.push(" AND customer_id IN (SELECT value FROM json_each(")
            .push_bind(json(ids))
            .push("))");
    }
    if !f.providers.is_empty() {
        qb.push(" AND provider_id IN (SELECT value FROM json_each(")
            .push_bind(json(&f.providers))
            .push("))");
    }
    if !f.currencies.is_empty() {
        qb.push(" AND currency IN (SELECT value FROM json_each(")
            .push_bind(json(f.currencies.iter().map(|c| c.code())))
            .push("))");
    }
    if let Some(c) = f.is_crypto {
        qb.push(" AND is_crypto = ").push_bind(c);
    }
    if let Some(a) = f.active {
        qb.push(" AND active = ").push_bind(a);
    }
    if !f.statuses.is_empty() {
        qb.push(" AND status IN (SELECT value FROM json_each(")
            .push_bind(json(f.statuses.iter().map(|s| s.as_str())))
            .push("))");
    }
    if !f.balance_types.is_empty() {
        qb.push(" AND balance_type IN (SELECT value FROM json_each(")
            .push_bind(json(f.balance_types.iter().map(|t| t.as_str())))
            .push("))");
    }
}

impl SqliteStore {
    pub(super) async fn save_snapshot_impl(
        &self,
        meta: &SnapshotMeta,
        accounts: &[Account],
    ) -> Result<SaveOutcome> {
        plan::validate(meta, accounts)?;
        let mut tx = self.write().await?;
        let known: Option<i64> = sqlx::query_scalar("SELECT 1 FROM customers WHERE id = ?")
            .bind(&meta.customer_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        if known.is_none() {
            return Err(StoreError::NotFound {
                what: format!("customer {}", meta.customer_id),
            });
        }
        let stored: Option<String> = sqlx::query_scalar(
            "SELECT fetched_at FROM snapshots WHERE customer_id = ? AND provider_id = ?",
        )
        .bind(&meta.customer_id)
        .bind(&meta.provider_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let stored = stored.as_deref().map(rows::parse_ts).transpose()?;
        if stored.is_some_and(|t| t > meta.fetched_at) {
            return Ok(SaveOutcome {
                stale: true,
                ..SaveOutcome::default()
            });
        }
        sqlx::query(
            "INSERT INTO snapshots (customer_id, provider_id, provider_customer_ref, fetched_at, rejected)
             VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (customer_id, provider_id) DO UPDATE
             SET provider_customer_ref = excluded.provider_customer_ref,
                 fetched_at = excluded.fetched_at, rejected = excluded.rejected",
        )
        .bind(&meta.customer_id)
        .bind(&meta.provider_id)
        .bind(&meta.provider_customer_ref)
        .bind(rows::ts(meta.fetched_at))
        .bind(rows::strings_json(&meta.rejected))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        let existing: Vec<AccountRow> = sqlx::query_as(concat!(
            "SELECT ",
            account_cols!(),
            " FROM accounts WHERE (customer_id = ? AND provider_id = ?)
               OR id IN (SELECT value FROM json_each(?)) ORDER BY id"
        ))
        .bind(&meta.customer_id)
        .bind(&meta.provider_id)
        .bind(json(accounts.iter().map(|a| a.id.as_str())))
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        let existing = existing
            .into_iter()
            .map(AccountRow::into_existing)
            .collect::<Result<Vec<_>>>()?;
        let plan = plan::plan(meta, accounts, existing, plan::shard_of(&meta.customer_id));
        write_plan(&mut tx, meta, &plan).await?;
        super::at::write_versions(&mut tx, meta, &plan.versions).await?;
        let newest = super::events::write(&mut tx, &plan.events).await?;
        tx.commit().await.map_err(db_err)?;
        self.wake.wrote(newest, &plan.events);
        Ok(plan.outcome)
    }

    pub(super) async fn customer_accounts_impl(
        &self,
        customer_id: &str,
    ) -> Result<CustomerAccounts> {
        // One read transaction for both reads (WAL keeps its snapshot from the first read): a
        // sync committing between them would otherwise pair accounts of one fetch with the
        // snapshot time of the next.
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let rows: Vec<AccountRow> = sqlx::query_as(concat!(
            "SELECT ",
            account_cols!(seen_at!()),
            from_accounts!(),
            " WHERE customer_id = ? AND closed = 0 ORDER BY id"
        ))
        .bind(customer_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        let metas: Vec<MetaRow> = sqlx::query_as(
            "SELECT customer_id, provider_id, provider_customer_ref, fetched_at, rejected
             FROM snapshots WHERE customer_id = ? ORDER BY provider_id",
        )
        .bind(customer_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        if rows.is_empty() && metas.is_empty() {
            self.get_customer_impl(customer_id).await?;
        }
        let snapshots = metas
            .into_iter()
            .map(|m| {
                Ok(SnapshotMeta {
                    rejected: rows::strings(&m.rejected)?,
                    fetched_at: rows::parse_ts(&m.fetched_at)?,
                    customer_id: m.customer_id,
                    provider_id: m.provider_id,
                    provider_customer_ref: m.provider_customer_ref,
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
            " WHERE id = ? AND closed = 0"
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
        push_filter(&mut qb, scope, f);
        qb.push(" ORDER BY id");
        let rows: Vec<AccountRow> = qb
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        let mut out = accounts(rows)?;
        out.retain(|a| crate::keep(f, a, false));
        Ok(out)
    }

    pub(super) async fn totals_impl(&self, scope: &Scope, f: &Filter) -> Result<Totals> {
        // Money is text here: summed in Rust, a batch at a time.
        let by_currency = crate::list::sum_walk(|after, n| {
            let by_id = coffer_core::query::SortSpec::default();
            async move {
                self.list_page_impl(scope, f, &by_id, after.as_deref(), n)
                    .await
            }
        })
        .await?;
        // Customers covered: the scope's customers with a snapshot; as_of: the filtered providers.
        let providers = (!f.providers.is_empty()).then(|| json(&f.providers));
        let mut qb = QueryBuilder::new("SELECT count(DISTINCT customer_id) AS customers, ");
        for agg in ["min", "max"] {
            qb.push(agg)
                .push("(fetched_at) FILTER (WHERE ")
                .push_bind(providers.clone())
                .push(" IS NULL OR provider_id IN (SELECT value FROM json_each(")
                .push_bind(providers.clone())
                .push(")))")
                .push(if agg == "min" {
                    " AS oldest, "
                } else {
                    " AS newest"
                });
        }
        qb.push(" FROM snapshots WHERE 1");
        if let Scope::Customers(ids) = scope {
            qb.push(" AND customer_id IN (SELECT value FROM json_each(")
                .push_bind(json(ids))
                .push("))");
        }
        let span: SpanRow = qb
            .build_query_as()
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(Totals {
            by_currency,
            customers: u64::try_from(span.customers).unwrap_or(0),
            oldest_as_of: rows::opt_ts(span.oldest.as_deref())?,
            newest_as_of: rows::opt_ts(span.newest.as_deref())?,
        })
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
                "SELECT account_id, customer_id, balance, status, closed, recorded_at
                 FROM balance_history WHERE customer_id = ? AND recorded_at >= ? AND recorded_at <= ?
                 ORDER BY recorded_at, id",
            )
        } else {
            sqlx::query_as(
                "SELECT account_id, customer_id, balance, status, closed, recorded_at
                 FROM balance_history WHERE account_id = ? AND recorded_at >= ? AND recorded_at <= ?
                 ORDER BY recorded_at, id",
            )
        };
        let rows: Vec<HistoryRow> = q
            .bind(customer_id.or(account_id))
            .bind(rows::ts(from))
            .bind(rows::ts(to))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.into_iter()
            .map(|r| {
                HistoryCols {
                    recorded_at: rows::parse_ts(&r.recorded_at)?,
                    account_id: r.account_id,
                    customer_id: r.customer_id,
                    balance: r.balance,
                    status: r.status,
                    closed: r.closed,
                }
                .into_entry()
            })
            .collect()
    }
}

async fn write_plan(
    tx: &mut Transaction<'static, Sqlite>,
    meta: &SnapshotMeta,
    p: &Plan<'_>,
) -> Result<()> {
    for (a, _, _) in &p.upserts {
        sqlx::query(
            "INSERT INTO accounts (id, customer_id, provider_id, provider_account_id,
                 provider_customer_ref, currency, is_crypto, status, active, balance, wallets,
                 iban, provider_rate, provider_rate_quote, fetched_at, closed, closed_at,
                 balance_type)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, NULL, ?)
             ON CONFLICT (id) DO UPDATE SET
                 customer_id = excluded.customer_id, provider_id = excluded.provider_id,
                 provider_account_id = excluded.provider_account_id,
                 provider_customer_ref = excluded.provider_customer_ref,
                 currency = excluded.currency, is_crypto = excluded.is_crypto,
                 status = excluded.status, active = excluded.active, balance = excluded.balance,
                 wallets = excluded.wallets, iban = excluded.iban,
                 balance_type = excluded.balance_type, provider_rate = excluded.provider_rate,
                 provider_rate_quote = excluded.provider_rate_quote,
                 fetched_at = excluded.fetched_at, closed = 0, closed_at = NULL",
        )
        .bind(&a.id)
        .bind(&a.customer_id)
        .bind(&a.provider_id)
        .bind(&a.provider_account_id)
        .bind(&a.provider_customer_ref)
        .bind(a.currency.code())
        .bind(a.is_crypto)
        .bind(a.status.as_str())
        .bind(a.active)
        .bind(a.balance.to_string())
        .bind(rows::wallets_json(&a.wallets)?)
        .bind(&a.iban)
        .bind(a.provider_rate.as_ref().map(|r| r.rate.to_string()))
        .bind(a.provider_rate.as_ref().map(|r| r.quote.code().to_owned()))
        .bind(rows::ts(a.fetched_at))
        .bind(a.balance_type.as_str())
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    }
    for id in &p.close {
        // Last seen: the pair's observation before the one that found it gone (the row of an
        // unchanged account is not rewritten, so its own `fetched_at` may be older).
        sqlx::query(
            "UPDATE accounts SET closed = 1, closed_at = ?1,
                 fetched_at = coalesce((SELECT max(o.fetched_at) FROM observations o
                     WHERE o.customer_id = accounts.customer_id
                       AND o.provider_id = accounts.provider_id AND o.fetched_at < ?1),
                     accounts.fetched_at)
             WHERE id = ?2",
        )
        .bind(rows::ts(meta.fetched_at))
        .bind(id)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    }
    for h in &p.history {
        sqlx::query(
            "INSERT INTO balance_history (account_id, customer_id, balance, status, closed, recorded_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&h.account_id)
        .bind(&h.customer_id)
        .bind(h.balance.to_string())
        .bind(h.status.as_str())
        .bind(h.closed)
        .bind(rows::ts(h.recorded_at))
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    }
    super::rates::write_provider_rates(tx, meta, &p.rates).await?;
    Ok(())
}
