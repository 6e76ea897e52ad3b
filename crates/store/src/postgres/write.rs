//! Writing snapshots on PostgreSQL: the pair's snapshot row first (its lock orders writers of a
//! pair), then the stored rows read and locked, and every table written with one statement
//! (arrays through UNNEST). The sync batch (`batch.rs`) shares all but the first step.

use std::collections::BTreeMap;

use coffer_core::Account;
use sqlx::{Postgres, Transaction};

use super::PgStore;
use super::account_rows::{AccountRow, account_cols};
use crate::error::db_err;
use crate::plan::{self, Existing, Writes};
use crate::rows;
use crate::{Result, SaveOutcome, SnapshotMeta, StoreError, StoredRate};

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
