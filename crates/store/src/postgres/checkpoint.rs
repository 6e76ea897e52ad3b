//! Checkpoints of the all-customer totals on PostgreSQL: the reads and writes
//! `crate::checkpoint` needs.

use chrono::{DateTime, Utc};

use super::PgStore;
use crate::checkpoint::{CheckpointIo, Dim, Sums, VersionLite};
use crate::error::db_err;
use crate::{Result, rows};

#[derive(sqlx::FromRow)]
struct SumRow {
    currency: String,
    is_crypto: bool,
    provider_id: String,
    status: String,
    active: bool,
    balance_type: String,
    balance: String,
    accounts: i64,
}

#[derive(sqlx::FromRow)]
struct LiteRow {
    customer_id: String,
    provider_id: String,
    account_id: String,
    valid_from: DateTime<Utc>,
    closed: bool,
    currency: String,
    is_crypto: bool,
    status: String,
    active: bool,
    balance_type: String,
    balance: String,
}

#[async_trait::async_trait]
impl CheckpointIo for PgStore {
    async fn latest_mark(&self, at: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
        sqlx::query_scalar("SELECT max(at) FROM totals_checkpoint_marks WHERE at <= $1")
            .bind(at)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)
    }

    async fn read_checkpoint(&self, at: DateTime<Utc>) -> Result<Sums> {
        let rows: Vec<SumRow> = sqlx::query_as(
            "SELECT currency, is_crypto, provider_id, status, active, balance_type,
                 balance::text AS balance, accounts FROM totals_checkpoints WHERE at = $1",
        )
        .bind(at)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.into_iter()
            .map(|r| {
                let balance = rows::decimal(&r.balance, &format!("checkpoint of {}", r.currency))?;
                let dim = Dim {
                    currency: r.currency,
                    is_crypto: r.is_crypto,
                    provider_id: r.provider_id,
                    status: r.status,
                    active: r.active,
                    balance_type: r.balance_type,
                };
                Ok((dim, (balance, r.accounts)))
            })
            .collect()
    }

    async fn versions_since(
        &self,
        from: Option<DateTime<Utc>>,
        to: DateTime<Utc>,
    ) -> Result<Vec<VersionLite>> {
        versions_between(&self.pool, from, to).await
    }

    async fn write_checkpoint(
        &self,
        at: DateTime<Utc>,
        after: Option<(DateTime<Utc>, &Sums)>,
    ) -> Result<Option<Sums>> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        super::locks::lock_step(&mut tx).await?;
        if let Some((prev, _)) = after {
            let there: Option<i32> =
                sqlx::query_scalar("SELECT 1 FROM totals_checkpoint_marks WHERE at = $1")
                    .bind(prev)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err)?;
            if there.is_none() {
                return Ok(None);
            }
        }
        let from = after.map(|(prev, _)| prev);
        let versions = versions_between(&mut *tx, from, at).await?;
        let mut sums = after.map(|(_, s)| s.clone()).unwrap_or_default();
        crate::checkpoint::apply_delta(&mut sums, &versions, from, at)?;
        sqlx::query("DELETE FROM totals_checkpoints WHERE at = $1")
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let dims: Vec<&Dim> = sums.keys().collect();
        sqlx::query(
            "INSERT INTO totals_checkpoints (at, currency, is_crypto, provider_id, status,
                 active, balance_type, balance, accounts)
             SELECT $1, c, k, p, s, a, bt, b::numeric, n
             FROM UNNEST($2::text[], $3::bool[], $4::text[], $5::text[], $6::bool[], $7::text[],
                         $8::text[], $9::bigint[]) AS t(c, k, p, s, a, bt, b, n)",
        )
        .bind(at)
        .bind(dims.iter().map(|d| d.currency.clone()).collect::<Vec<_>>())
        .bind(dims.iter().map(|d| d.is_crypto).collect::<Vec<_>>())
        .bind(
            dims.iter()
                .map(|d| d.provider_id.clone())
                .collect::<Vec<_>>(),
        )
        .bind(dims.iter().map(|d| d.status.clone()).collect::<Vec<_>>())
        .bind(dims.iter().map(|d| d.active).collect::<Vec<_>>())
        .bind(
            dims.iter()
                .map(|d| d.balance_type.clone())
                .collect::<Vec<_>>(),
        )
        .bind(sums.values().map(|v| v.0.to_string()).collect::<Vec<_>>())
        .bind(sums.values().map(|v| v.1).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query("INSERT INTO totals_checkpoint_marks (at) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(Some(sums))
    }

    async fn has_mark(&self, at: DateTime<Utc>) -> Result<bool> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM totals_checkpoint_marks WHERE at = $1)")
            .bind(at)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)
    }

    async fn first_version(&self) -> Result<Option<DateTime<Utc>>> {
        sqlx::query_scalar("SELECT min(valid_from) FROM account_versions")
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)
    }
}

/// [`CheckpointIo::versions_since`] on any connection (a checkpoint write reads them in its own
/// transaction).
async fn versions_between<'e>(
    e: impl sqlx::PgExecutor<'e>,
    from: Option<DateTime<Utc>>,
    to: DateTime<Utc>,
) -> Result<Vec<VersionLite>> {
    let rows: Vec<LiteRow> = sqlx::query_as(
        "SELECT customer_id, provider_id, account_id, valid_from, closed, currency,
             is_crypto, status, active, balance_type, balance::text AS balance
         FROM account_versions
         WHERE valid_from <= $2
           AND ($1::timestamptz IS NULL OR account_id IN (SELECT account_id
                FROM account_versions WHERE valid_from > $1 AND valid_from <= $2))
         ORDER BY account_id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(e)
    .await
    .map_err(db_err)?;
    rows.into_iter()
        .map(|r| {
            Ok(VersionLite {
                balance: rows::decimal(&r.balance, &format!("balance of {}", r.account_id))?,
                customer_id: r.customer_id,
                provider_id: r.provider_id.clone(),
                account_id: r.account_id,
                valid_from: r.valid_from,
                closed: r.closed,
                dim: Dim {
                    currency: r.currency,
                    is_crypto: r.is_crypto,
                    provider_id: r.provider_id,
                    status: r.status,
                    active: r.active,
                    balance_type: r.balance_type,
                },
            })
        })
        .collect()
}

/// Drops the checkpoints at or after `from` (`None`: all of them), inside a write's
/// transaction: versions written at `from` change every total from then on.
pub(super) async fn invalidate(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    from: Option<DateTime<Utc>>,
) -> std::result::Result<(), sqlx::Error> {
    // Held until the write commits: a checkpoint being written is waited for (and dropped below
    // if this write makes it wrong); one written after reads these versions.
    sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
        .bind(crate::CHECKPOINT_LOCK_KEY)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM totals_checkpoint_marks WHERE $1::timestamptz IS NULL OR at >= $1")
        .bind(from)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM totals_checkpoints WHERE $1::timestamptz IS NULL OR at >= $1")
        .bind(from)
        .execute(&mut **tx)
        .await?;
    // Versions come with their observation, and a deletion takes observations too.
    super::observed::invalidate(tx, from).await
}

/// Drops the marks of the observations at or after `from`, inside the write of an
/// observation at `from`, under the checkpoint lock shared as [`invalidate`] (no mark in
/// steady state: they are built only for settled instants).
pub(super) async fn invalidate_observed(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    from: DateTime<Utc>,
) -> std::result::Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
        .bind(crate::CHECKPOINT_LOCK_KEY)
        .execute(&mut **tx)
        .await?;
    super::observed::invalidate(tx, Some(from)).await
}
