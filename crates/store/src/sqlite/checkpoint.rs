//! Checkpoints of the all-customer totals on SQLite: the reads and writes `crate::checkpoint`
//! needs (instants as fixed-width text, decimals as exact text).

use chrono::{DateTime, Utc};

use super::SqliteStore;
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
    valid_from: String,
    closed: bool,
    currency: String,
    is_crypto: bool,
    status: String,
    active: bool,
    balance_type: String,
    balance: String,
}

#[async_trait::async_trait]
impl CheckpointIo for SqliteStore {
    async fn latest_mark(&self, at: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
        let t: Option<String> =
            sqlx::query_scalar("SELECT max(at) FROM totals_checkpoint_marks WHERE at <= ?")
                .bind(rows::ts(at))
                .fetch_one(&self.pool)
                .await
                .map_err(db_err)?;
        rows::opt_ts(t.as_deref())
    }

    async fn read_checkpoint(&self, at: DateTime<Utc>) -> Result<Sums> {
        let rows: Vec<SumRow> = sqlx::query_as(
            "SELECT currency, is_crypto, provider_id, status, active, balance_type, balance,
                 accounts
             FROM totals_checkpoints WHERE at = ?",
        )
        .bind(rows::ts(at))
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
        // One writer at a time: no version is written and no prune runs inside this
        // transaction, so the versions it reads are all there are.
        let mut tx = self.write().await?;
        if let Some((prev, _)) = after {
            let there: Option<i64> =
                sqlx::query_scalar("SELECT 1 FROM totals_checkpoint_marks WHERE at = ?")
                    .bind(rows::ts(prev))
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
        let at = rows::ts(at);
        sqlx::query("DELETE FROM totals_checkpoints WHERE at = ?")
            .bind(&at)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        for (d, (balance, n)) in &sums {
            sqlx::query(
                "INSERT INTO totals_checkpoints (at, currency, is_crypto, provider_id, status,
                     active, balance_type, balance, accounts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&at)
            .bind(&d.currency)
            .bind(d.is_crypto)
            .bind(&d.provider_id)
            .bind(&d.status)
            .bind(d.active)
            .bind(&d.balance_type)
            .bind(balance.to_string())
            .bind(n)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        sqlx::query("INSERT OR IGNORE INTO totals_checkpoint_marks (at) VALUES (?)")
            .bind(&at)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(Some(sums))
    }

    async fn has_mark(&self, at: DateTime<Utc>) -> Result<bool> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM totals_checkpoint_marks WHERE at = ?)")
            .bind(rows::ts(at))
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)
    }

    async fn first_version(&self) -> Result<Option<DateTime<Utc>>> {
        let t: Option<String> = sqlx::query_scalar("SELECT min(valid_from) FROM account_versions")
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        rows::opt_ts(t.as_deref())
    }
}

/// [`CheckpointIo::versions_since`] on any connection (a checkpoint write reads them in its own
/// transaction).
async fn versions_between<'e>(
    e: impl sqlx::SqliteExecutor<'e>,
    from: Option<DateTime<Utc>>,
    to: DateTime<Utc>,
) -> Result<Vec<VersionLite>> {
    let rows: Vec<LiteRow> = sqlx::query_as(
        "SELECT customer_id, provider_id, account_id, valid_from, closed, currency,
             is_crypto, status, active, balance_type, balance
         FROM account_versions
         WHERE valid_from <= ?2
           AND (?1 IS NULL OR account_id IN (SELECT account_id FROM account_versions
                WHERE valid_from > ?1 AND valid_from <= ?2))
         ORDER BY account_id",
    )
    .bind(from.map(rows::ts))
    .bind(rows::ts(to))
    .fetch_all(e)
    .await
    .map_err(db_err)?;
    rows.into_iter()
        .map(|r| {
            Ok(VersionLite {
                balance: rows::decimal(&r.balance, &format!("balance of {}", r.account_id))?,
                valid_from: rows::parse_ts(&r.valid_from)?,
                customer_id: r.customer_id,
                provider_id: r.provider_id.clone(),
                account_id: r.account_id,
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
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    from: Option<DateTime<Utc>>,
) -> Result<()> {
    let from = from.map(rows::ts);
    for sql in [
        "DELETE FROM totals_checkpoint_marks WHERE ?1 IS NULL OR at >= ?1",
        "DELETE FROM totals_checkpoints WHERE ?1 IS NULL OR at >= ?1",
    ] {
        sqlx::query(sql)
            .bind(&from)
            .execute(&mut **tx)
            .await
            .map_err(db_err)?;
    }
    Ok(())
}
