//! Snapshots, account reads, filtered lists, totals and history on PostgreSQL.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use coffer_core::Account;
use coffer_core::query::Filter;
use sqlx::{Postgres, QueryBuilder, Transaction};

use super::PgStore;
use crate::error::db_err;
use crate::plan::{self, Existing, Writes};
use crate::rows::{self, AccountCols, HistoryCols};
use crate::{
    CurrencyTotal, CustomerAccounts, HistoryEntry, Result, SaveOutcome, Scope, SnapshotMeta,
    StoreError, StoredRate, Totals,
};

/// The account columns, money as text so it is parsed exactly; `fetched_at` from the given
/// expression (the account row's own, or when it was last seen: `seen_at!`).
macro_rules! account_cols {
    () => {
        account_cols!("accounts.fetched_at")
    };
    ($fetched:expr) => {
        concat!(
            "accounts.id, accounts.customer_id, accounts.provider_id, \
             accounts.provider_account_id, accounts.provider_customer_ref, accounts.currency, \
             accounts.is_crypto, accounts.status, accounts.active, \
             accounts.balance::text AS balance, accounts.wallets, accounts.iban, \
             accounts.balance_type, accounts.provider_rate::text AS provider_rate, \
             accounts.provider_rate_quote, ",
            $fetched,
            " AS fetched_at, accounts.closed, accounts.rollup_shard"
        )
    };
}

/// When an account was last seen: an open account by its pair's last saved snapshot (a sync
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

/// The snapshot upsert's conflict clause, for one snapshot and a batch alike: a write older
/// than the stored one changes nothing (and returns no row); `accounts_unchanged` says whether
/// the stored digest already was this one (a NULL digest is never equal), i.e. whether the
/// pair's stored accounts already are the ones reported, read under the pair's row lock.
macro_rules! snapshot_upsert {
    () => {
        " ON CONFLICT (customer_id, provider_id) DO UPDATE
         SET provider_customer_ref = excluded.provider_customer_ref,
             fetched_at = excluded.fetched_at, rejected = excluded.rejected,
             accounts_unchanged =
                 coalesce(snapshots.accounts_digest = excluded.accounts_digest, false),
             accounts_digest = excluded.accounts_digest
         WHERE snapshots.fetched_at <= excluded.fetched_at
         RETURNING customer_id, provider_id, xmax = 0 AS inserted, accounts_unchanged"
    };
}
pub(super) use snapshot_upsert;

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
    fetched_at: DateTime<Utc>,
    closed: bool,
    rollup_shard: i16,
}

impl AccountRow {
    fn into_existing(self) -> Result<Existing> {
        let (closed, shard) = (self.closed, self.rollup_shard);
        Ok(Existing {
            account: self.into_account()?,
            closed,
            shard,
        })
    }

    fn into_account(self) -> Result<Account> {
        AccountCols {
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
            fetched_at: self.fetched_at,
        }
        .into_account()
    }
}

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
struct TotalRow {
    currency: String,
    is_crypto: bool,
    balance: String,
    accounts: i64,
    available: i64,
    unspecified: i64,
}

#[derive(sqlx::FromRow)]
struct SpanRow {
    customers: i64,
    oldest: Option<DateTime<Utc>>,
    newest: Option<DateTime<Utc>>,
}

pub(super) fn accounts(rows: Vec<AccountRow>) -> Result<Vec<Account>> {
    rows.into_iter().map(AccountRow::into_account).collect()
}

/// Pushes down every constraint PostgreSQL evaluates exactly (NUMERIC compares exactly).
pub(super) fn push_filter(
    qb: &mut QueryBuilder<Postgres>,
    scope: &Scope,
    f: &Filter,
    table_closed: bool,
) {
    qb.push(if table_closed {
        " WHERE NOT closed"
    } else {
        " WHERE accounts <> 0"
    });
    if let Scope::Customers(ids) = scope {
        qb.push(" AND customer_id = ANY(")
            .push_bind(ids.clone())
            .push(")");
    }
    push_dims(qb, f);
    let b = &f.balance;
    for (op, v) in [
        (" > ", b.gt),
        (" >= ", b.gte),
        (" < ", b.lt),
        (" <= ", b.lte),
    ] {
        if let Some(v) = v {
            qb.push(" AND balance")
                .push(op)
                .push_bind(v.to_string())
                .push("::numeric");
        }
    }
}

/// The constraints the totals rollup can answer too.
fn push_dims(qb: &mut QueryBuilder<Postgres>, f: &Filter) {
    if !f.providers.is_empty() {
        qb.push(" AND provider_id = ANY(")
            .push_bind(f.providers.clone())
            .push(")");
    }
    if let [one] = f.currencies.as_slice() {
        // Equality, not `= ANY`, so a walk in (currency, balance) order can use that index.
        qb.push(" AND currency = ").push_bind(one.code().to_owned());
    } else if !f.currencies.is_empty() {
        let codes: Vec<String> = f.currencies.iter().map(|c| c.code().to_owned()).collect();
        qb.push(" AND currency = ANY(").push_bind(codes).push(")");
    }
    if let Some(c) = f.is_crypto {
        qb.push(" AND is_crypto = ").push_bind(c);
    }
    if let Some(a) = f.active {
        qb.push(" AND active = ").push_bind(a);
    }
    if !f.statuses.is_empty() {
        let s: Vec<String> = f.statuses.iter().map(|s| s.as_str().to_owned()).collect();
        qb.push(" AND status = ANY(").push_bind(s).push(")");
    }
    if !f.balance_types.is_empty() {
        let t: Vec<String> = f
            .balance_types
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect();
        qb.push(" AND balance_type = ANY(").push_bind(t).push(")");
    }
}

impl PgStore {
    pub(super) async fn save_snapshot_impl(
        &self,
        meta: &SnapshotMeta,
        accounts: &[Account],
    ) -> Result<SaveOutcome> {
        plan::validate(meta, accounts)?;
        let digest = plan::digest(accounts)?;
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        // A snapshot is a copy of what a provider said: losing the last few milliseconds of
        // them in a database crash only means fetching again. So the commit does not wait for
        // the WAL flush (still atomic and consistent; see docs/store.md).
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        // The snapshot row first: it locks the (customer, provider) pair, so concurrent writes
        // of one pair queue here, and a write older than the stored one changes nothing.
        // Under that lock it also says whether the pair's stored accounts already are these.
        let applied: Option<(String, String, bool, bool)> = sqlx::query_as(concat!(
            "INSERT INTO snapshots (customer_id, provider_id, provider_customer_ref, fetched_at,
                 rejected, accounts_digest)
             VALUES ($1, $2, $3, $4, $5, $6)",
            snapshot_upsert!()
        ))
        .bind(&meta.customer_id)
        .bind(&meta.provider_id)
        .bind(&meta.provider_customer_ref)
        .bind(meta.fetched_at)
        .bind(rows::strings_json(&meta.rejected))
        .bind(&digest)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| match crate::error::violation(&e) {
            Some(crate::error::Violation::ForeignKey) => StoreError::NotFound {
                what: format!("customer {}", meta.customer_id),
            },
            _ => db_err(e),
        })?;
        let Some((_, _, inserted, unchanged)) = applied else {
            return Ok(SaveOutcome {
                stale: true,
                ..SaveOutcome::default()
            });
        };
        let mut covered = BTreeMap::new();
        if inserted
            && first_snapshot(&mut tx, &meta.customer_id)
                .await
                .map_err(db_err)?
        {
            covered.insert(plan::shard_of(&meta.customer_id), 1);
        }
        let plan = if unchanged {
            plan::unchanged(meta, accounts)
        } else {
            let existing = lock_named(&mut tx, meta, accounts).await?;
            plan::plan(meta, accounts, existing, plan::shard_of(&meta.customer_id))
        };
        let outcome = plan.outcome.clone();
        let mut writes = Writes::default();
        writes.add(meta, plan);
        // Every stored row these ids name was read (and locked) above.
        write_all(&mut tx, &writes, NewRows::Upsert)
            .await
            .map_err(db_err)?;
        add_covered(&mut tx, &covered).await.map_err(db_err)?;
        let newest = super::events::write(&mut tx, &writes.events)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        self.wake.wrote(newest, &writes.events);
        Ok(outcome)
    }

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
            // Unscoped and without a balance range, the rollup answers (a few hundred rows);
            // otherwise SUM over the matching open accounts (exact on NUMERIC).
            let rollup = *scope == Scope::All && f.balance.is_empty();
            // The counts per balance type beside the sum: one row per (currency, kind), its
            // balance summed by SQL once, exactly.
            let mut qb = QueryBuilder::new(
                "SELECT currency, is_crypto, sum(balance)::text AS balance, \
                 sum(accounts)::bigint AS accounts, \
                 coalesce(sum(accounts) FILTER (WHERE balance_type = 'available'), 0)::bigint \
                     AS available, \
                 coalesce(sum(accounts) FILTER (WHERE balance_type = 'unspecified'), 0)::bigint \
                     AS unspecified FROM ",
            );
            if rollup {
                qb.push("totals_rollup");
                push_filter(&mut qb, scope, f, false);
            } else {
                qb.push(
                    "(SELECT currency, is_crypto, balance, balance_type, 1 AS accounts \
                     FROM accounts",
                );
                push_filter(&mut qb, scope, f, true);
                qb.push(") AS matching");
            }
            qb.push(" GROUP BY currency, is_crypto HAVING sum(accounts) <> 0 ORDER BY currency, is_crypto");
            let rows: Vec<TotalRow> = qb
                .build_query_as()
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
            rows.into_iter()
                .map(|r| {
                    Ok(CurrencyTotal {
                        balance: rows::decimal(&r.balance, &format!("total of {}", r.currency))?,
                        currency: coffer_core::Currency::new(&r.currency),
                        is_crypto: r.is_crypto,
                        accounts: u64::try_from(r.accounts).unwrap_or(0),
                        balance_types: coffer_core::BalanceTypeCounts {
                            available: u64::try_from(r.available).unwrap_or(0),
                            unspecified: u64::try_from(r.unspecified).unwrap_or(0),
                        },
                    })
                })
                .collect::<Result<Vec<_>>>()?
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

/// Locks (in id order) and reads the stored rows of several (customer, provider) pairs. Rows of
/// other pairs whose ids a snapshot names (an account moving between customers) are not read:
/// [`write_all`] with [`NewRows::Insert`] refuses them, and the batch is then written pair by
/// pair.
pub(super) async fn lock_pairs(
    tx: &mut Transaction<'static, Postgres>,
    customers: Vec<String>,
    providers: Vec<String>,
) -> Result<Vec<Existing>> {
    let rows: Vec<AccountRow> = sqlx::query_as(concat!(
        "SELECT ",
        account_cols!(),
        " FROM accounts WHERE (customer_id, provider_id) IN
             (SELECT c, p FROM UNNEST($1::text[], $2::text[]) AS t(c, p))
         ORDER BY id FOR UPDATE"
    ))
    .bind(customers)
    .bind(providers)
    .fetch_all(&mut **tx)
    .await
    .map_err(db_err)?;
    rows.into_iter().map(AccountRow::into_existing).collect()
}

/// Locks (in id order) and reads the stored rows of one snapshot's pair and every stored row
/// its ids name. An account stored under another pair moves to this one: that pair's digest
/// no longer describes its stored accounts, so it is forgotten (its next write reads them).
async fn lock_named(
    tx: &mut Transaction<'static, Postgres>,
    meta: &SnapshotMeta,
    accounts: &[Account],
) -> Result<Vec<Existing>> {
    let ids: Vec<String> = accounts.iter().map(|a| a.id.clone()).collect();
    let existing: Vec<AccountRow> = sqlx::query_as(concat!(
        "SELECT ",
        account_cols!(),
        " FROM accounts WHERE (customer_id = $1 AND provider_id = $2) OR id = ANY($3)
         ORDER BY id FOR UPDATE"
    ))
    .bind(&meta.customer_id)
    .bind(&meta.provider_id)
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await
    .map_err(db_err)?;
    let moved_from: std::collections::BTreeSet<(&str, &str)> = existing
        .iter()
        .filter(|r| r.customer_id != meta.customer_id || r.provider_id != meta.provider_id)
        .map(|r| (r.customer_id.as_str(), r.provider_id.as_str()))
        .collect();
    if !moved_from.is_empty() {
        // Rare (an account moving between customers). Taken after the account rows: a writer
        // of that pair holding its snapshot row and waiting for one of those rows deadlocks
        // with this one, and one of the two is retried (see docs/store.md).
        sqlx::query(
            "UPDATE snapshots SET accounts_digest = NULL
             FROM UNNEST($1::text[], $2::text[]) AS t(c, p)
             WHERE customer_id = t.c AND provider_id = t.p",
        )
        .bind(
            moved_from
                .iter()
                .map(|m| m.0.to_owned())
                .collect::<Vec<_>>(),
        )
        .bind(
            moved_from
                .iter()
                .map(|m| m.1.to_owned())
                .collect::<Vec<_>>(),
        )
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    }
    existing
        .into_iter()
        .map(AccountRow::into_existing)
        .collect()
}

/// Whether this transaction's snapshot is the customer's first (of any provider): it adds the
/// customer to the covered-customers count. The customer row lock (NO KEY UPDATE: it does not
/// conflict with the foreign-key checks of concurrent snapshot writes) makes the first writers of
/// two providers take turns, so exactly one of them sees a single snapshot.
async fn first_snapshot(
    tx: &mut Transaction<'static, Postgres>,
    customer_id: &str,
) -> std::result::Result<bool, sqlx::Error> {
    sqlx::query("SELECT 1 FROM customers WHERE id = $1 FOR NO KEY UPDATE")
        .bind(customer_id)
        .execute(&mut **tx)
        .await?;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM snapshots WHERE customer_id = $1")
        .bind(customer_id)
        .fetch_one(&mut **tx)
        .await?;
    Ok(n == 1)
}

/// Adds newly covered customers to their shards' counts. Every writer of a snapshot may touch
/// these few rows, so this comes last before the commit (after the rollup, in the same order
/// everywhere): the rows stay locked as briefly as possible.
pub(super) async fn add_covered(
    tx: &mut Transaction<'static, Postgres>,
    shards: &BTreeMap<i16, i64>,
) -> std::result::Result<(), sqlx::Error> {
    if shards.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO snapshot_customers (shard, customers)
         SELECT s, n FROM UNNEST($1::int2[], $2::int8[]) AS t(s, n) ORDER BY s
         ON CONFLICT (shard) DO UPDATE
         SET customers = snapshot_customers.customers + excluded.customers",
    )
    .bind(shards.keys().copied().collect::<Vec<_>>())
    .bind(shards.values().copied().collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// How accounts no stored row was read for are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NewRows {
    /// Upserted: a row inserted meanwhile (by another customer's snapshot naming the same
    /// account) is taken over.
    Upsert,
    /// Plainly inserted (cheaper): a row stored meanwhile or elsewhere — an account moving in
    /// from a pair whose rows were not read — fails the write with a conflict.
    Insert,
}

/// Writes merged plans with one statement per table (arrays through UNNEST). Rows are written in
/// key order, so concurrent writers (a request's snapshot, a sync batch) lock them in one order.
pub(super) async fn write_all(
    tx: &mut Transaction<'static, Postgres>,
    w: &Writes<'_>,
    new_rows: NewRows,
) -> std::result::Result<(), sqlx::Error> {
    match new_rows {
        NewRows::Upsert => {
            let all: Vec<(&Account, i16)> = w.upserts.iter().chain(&w.inserts).copied().collect();
            write_accounts(tx, &all, true).await?;
        }
        NewRows::Insert => {
            write_accounts(tx, &w.upserts, true).await?;
            write_accounts(tx, &w.inserts, false).await?;
        }
    }
    if !w.close.is_empty() {
        sqlx::query(
            // Last seen: the pair's observation before the one that found it gone (the row
            // of an unchanged account is not rewritten, so its own `fetched_at` may be older).
            "UPDATE accounts SET closed = true, closed_at = t.at,
                 fetched_at = coalesce((SELECT max(o.fetched_at) FROM observations o
                     WHERE o.customer_id = accounts.customer_id
                       AND o.provider_id = accounts.provider_id AND o.fetched_at < t.at),
                     accounts.fetched_at)
             FROM UNNEST($1::text[], $2::timestamptz[]) AS t(id, at) WHERE accounts.id = t.id",
        )
        .bind(w.close.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>())
        .bind(w.close.iter().map(|(_, at)| *at).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    }
    if !w.history.is_empty() {
        let h = &w.history;
        sqlx::query(
            "INSERT INTO balance_history (account_id, customer_id, balance, status, closed, recorded_at)
             SELECT a, c, b::numeric, s, x, r
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bool[], $6::timestamptz[])
                  AS t(a, c, b, s, x, r)",
        )
        .bind(h.iter().map(|e| e.account_id.clone()).collect::<Vec<_>>())
        .bind(h.iter().map(|e| e.customer_id.clone()).collect::<Vec<_>>())
        .bind(h.iter().map(|e| e.balance.to_string()).collect::<Vec<_>>())
        .bind(h.iter().map(|e| e.status.as_str().to_owned()).collect::<Vec<_>>())
        .bind(h.iter().map(|e| e.closed).collect::<Vec<_>>())
        .bind(h.iter().map(|e| e.recorded_at).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    }
    super::at::write_versions(tx, w).await?;
    let rates: Vec<&StoredRate> = w.rates().collect();
    super::rates::write_provider_rates(tx, &rates, &w.rate_history()).await?;
    if !w.rollup.is_empty() {
        let r = &w.rollup;
        // Summed per row in SQL (exact, unbounded NUMERIC) and applied in key order, so
        // concurrent writers lock rollup rows in the same order.
        sqlx::query(
            "INSERT INTO totals_rollup
                 (shard, currency, is_crypto, provider_id, status, active, balance_type, balance,
                  accounts)
             SELECT sh, c, k, p, s, a, bt, sum(b::numeric), sum(n)
             FROM UNNEST($1::int2[], $2::text[], $3::bool[], $4::text[], $5::text[], $6::bool[],
                         $7::text[], $8::text[], $9::int8[]) AS t(sh, c, k, p, s, a, bt, b, n)
             GROUP BY sh, c, k, p, s, a, bt
             ORDER BY sh, c, k, p, s, a, bt
             ON CONFLICT (shard, currency, is_crypto, provider_id, status, active, balance_type)
             DO UPDATE
             SET balance = totals_rollup.balance + excluded.balance,
                 accounts = totals_rollup.accounts + excluded.accounts",
        )
        .bind(r.iter().map(|e| e.shard).collect::<Vec<_>>())
        .bind(r.iter().map(|e| e.currency.clone()).collect::<Vec<_>>())
        .bind(r.iter().map(|e| e.is_crypto).collect::<Vec<_>>())
        .bind(r.iter().map(|e| e.provider_id.clone()).collect::<Vec<_>>())
        .bind(r.iter().map(|e| e.status.to_owned()).collect::<Vec<_>>())
        .bind(r.iter().map(|e| e.active).collect::<Vec<_>>())
        .bind(
            r.iter()
                .map(|e| e.balance_type.to_owned())
                .collect::<Vec<_>>(),
        )
        .bind(r.iter().map(|e| e.balance.to_string()).collect::<Vec<_>>())
        .bind(r.iter().map(|e| e.accounts).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Inserts the accounts, or with `upsert` updates the rows already stored under their ids.
async fn write_accounts(
    tx: &mut Transaction<'static, Postgres>,
    u: &[(&Account, i16)],
    upsert: bool,
) -> std::result::Result<(), sqlx::Error> {
    if u.is_empty() {
        return Ok(());
    }
    let text = |f: fn(&Account) -> String| u.iter().map(|(a, _)| f(a)).collect::<Vec<String>>();
    let opt = |f: fn(&Account) -> Option<String>| {
        u.iter().map(|(a, _)| f(a)).collect::<Vec<Option<String>>>()
    };
    let mut wallets = Vec::with_capacity(u.len());
    for (a, _) in u {
        wallets.push(rows::wallets_json(&a.wallets).map_err(|e| sqlx::Error::Encode(e.into()))?);
    }
    let insert = "INSERT INTO accounts (id, customer_id, provider_id, provider_account_id,
             provider_customer_ref, currency, is_crypto, status, active, balance, wallets, iban,
             provider_rate, provider_rate_quote, fetched_at, closed, closed_at, rollup_shard,
             balance_type)
         SELECT id, c, p, pa, pr, cur, k, s, act, b::numeric, w, iban, r::numeric, q, f, false, NULL, sh,
             bt
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::bool[], $8::text[], $9::bool[], $10::text[], $11::text[], $12::text[],
                     $13::text[], $14::text[], $15::timestamptz[], $16::int2[], $17::text[])
              AS t(id, c, p, pa, pr, cur, k, s, act, b, w, iban, r, q, f, sh, bt)";
    let sql = if upsert {
        format!(
            "{insert}
         ON CONFLICT (id) DO UPDATE SET
             customer_id = excluded.customer_id, provider_id = excluded.provider_id,
             provider_account_id = excluded.provider_account_id,
             provider_customer_ref = excluded.provider_customer_ref,
             currency = excluded.currency, is_crypto = excluded.is_crypto,
             status = excluded.status, active = excluded.active, balance = excluded.balance,
             wallets = excluded.wallets, iban = excluded.iban,
             balance_type = excluded.balance_type, provider_rate = excluded.provider_rate,
             provider_rate_quote = excluded.provider_rate_quote,
             fetched_at = excluded.fetched_at, closed = false, closed_at = NULL,
             rollup_shard = excluded.rollup_shard"
        )
    } else {
        insert.to_owned()
    };
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(text(|a| a.id.clone()))
        .bind(text(|a| a.customer_id.clone()))
        .bind(text(|a| a.provider_id.clone()))
        .bind(text(|a| a.provider_account_id.clone()))
        .bind(opt(|a| a.provider_customer_ref.clone()))
        .bind(text(|a| a.currency.code().to_owned()))
        .bind(u.iter().map(|(a, _)| a.is_crypto).collect::<Vec<_>>())
        .bind(text(|a| a.status.as_str().to_owned()))
        .bind(u.iter().map(|(a, _)| a.active).collect::<Vec<_>>())
        .bind(text(|a| a.balance.to_string()))
        .bind(wallets)
        .bind(opt(|a| a.iban.clone()))
        .bind(opt(|a| {
            a.provider_rate.as_ref().map(|r| r.rate.to_string())
        }))
        .bind(opt(|a| {
            a.provider_rate.as_ref().map(|r| r.quote.code().to_owned())
        }))
        .bind(u.iter().map(|(a, _)| a.fetched_at).collect::<Vec<_>>())
        .bind(u.iter().map(|(_, sh)| *sh).collect::<Vec<_>>())
        .bind(text(|a| a.balance_type.as_str().to_owned()))
        .execute(&mut **tx)
        .await?;
    Ok(())
}
