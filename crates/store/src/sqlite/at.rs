//! Balances at an instant on SQLite: observations and account versions.

use chrono::{DateTime, Utc};
use sqlx::{Sqlite, Transaction};

use super::SqliteStore;
use crate::at::{self, ObservationCols, VersionCols};
use crate::error::db_err;
use crate::rows::{self, AccountCols};
use crate::{HeldAt, Result, Scope, SnapshotMeta};

/// Each pair's last observation at or before ?1, in scope ?2 (a JSON array; NULL: all), and
/// with ?3 only the pairs that ever held that account. Shared by the two reads below.
const LAST_OBS: &str = "last_obs AS (
    SELECT customer_id, provider_id, max(fetched_at) AS observed_at FROM observations
    WHERE fetched_at <= ?1
      AND (?2 IS NULL OR customer_id IN (SELECT value FROM json_each(?2)))
      AND (?3 IS NULL OR (customer_id, provider_id) IN
           (SELECT customer_id, provider_id FROM account_versions WHERE account_id = ?3))
    GROUP BY customer_id, provider_id)";

#[derive(sqlx::FromRow)]
struct VersionRow {
    account_id: String,
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
    valid_from: String,
    observed_at: String,
}

impl VersionRow {
    fn into_cols(self) -> Result<VersionCols> {
        Ok(VersionCols {
            valid_from: rows::parse_ts(&self.valid_from)?,
            account: AccountCols {
                fetched_at: rows::parse_ts(&self.observed_at)?,
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
        })
    }
}

fn scope_json(scope: &Scope) -> Option<String> {
    match scope {
        Scope::All => None,
        Scope::Customers(ids) => Some(rows::strings_json(ids)),
    }
}

impl SqliteStore {
    pub(super) async fn held_at_impl(
        &self,
        scope: &Scope,
        at: DateTime<Utc>,
        account_id: Option<&str>,
    ) -> Result<HeldAt> {
        // One read transaction: the three reads see one state of the database.
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let (at, scope) = (rows::ts(at), scope_json(scope));
        let versions: Vec<VersionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "WITH {LAST_OBS}, v AS (
                SELECT av.*, o.observed_at, row_number() OVER (
                    PARTITION BY av.customer_id, av.provider_id, av.account_id
                    ORDER BY av.valid_from DESC) AS rn
                FROM last_obs o JOIN account_versions av
                  ON av.customer_id = o.customer_id AND av.provider_id = o.provider_id
                 AND av.valid_from <= o.observed_at
                WHERE ?3 IS NULL OR av.account_id = ?3)
             SELECT * FROM v WHERE rn = 1 AND closed = 0 ORDER BY account_id"
        )))
        .bind(&at)
        .bind(&scope)
        .bind(account_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        let observations: Vec<(String, String, String, String)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "WITH {LAST_OBS}
                 SELECT o.customer_id, o.provider_id, o.observed_at, x.rejected
                 FROM last_obs o JOIN observations x ON x.customer_id = o.customer_id
                  AND x.provider_id = o.provider_id AND x.fetched_at = o.observed_at
                 ORDER BY o.customer_id, o.provider_id"
            )))
            .bind(&at)
            .bind(&scope)
            .bind(account_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        let unobserved: Vec<(String, String)> = if account_id.is_some() {
            Vec::new()
        } else {
            sqlx::query_as(
                "SELECT l.customer_id, l.provider FROM customer_links l
                 WHERE (?2 IS NULL OR l.customer_id IN (SELECT value FROM json_each(?2)))
                   AND NOT EXISTS (SELECT 1 FROM observations o WHERE o.customer_id = l.customer_id
                                   AND o.provider_id = l.provider AND o.fetched_at <= ?1)
                 ORDER BY l.customer_id, l.provider",
            )
            .bind(&at)
            .bind(&scope)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?
        };
        tx.commit().await.map_err(db_err)?;
        let versions = versions
            .into_iter()
            .map(VersionRow::into_cols)
            .collect::<Result<Vec<_>>>()?;
        let mut obs = Vec::with_capacity(observations.len());
        for (customer_id, provider_id, observed_at, rejected) in observations {
            obs.push(ObservationCols {
                customer_id,
                provider_id,
                observed_at: rows::parse_ts(&observed_at)?,
                rejected,
            });
        }
        at::held(versions, obs, unobserved)
    }
}

/// Records the observations and copies the changed accounts' rows (as just written) into
/// `account_versions`; a second write at the same instant replaces the version.
pub(super) async fn write_versions(
    tx: &mut Transaction<'static, Sqlite>,
    meta: &SnapshotMeta,
    versions: &[String],
) -> Result<()> {
    if !versions.is_empty() {
        // A version at t changes every total from t on (see postgres/at.rs).
        super::checkpoint::invalidate(tx, Some(meta.fetched_at)).await?;
    }
    let at = rows::ts(meta.fetched_at);
    sqlx::query(
        "INSERT INTO observations (customer_id, provider_id, fetched_at, rejected)
             VALUES (?, ?, ?, ?)
             ON CONFLICT (customer_id, provider_id, fetched_at) DO UPDATE
             SET rejected = excluded.rejected",
    )
    .bind(&meta.customer_id)
    .bind(&meta.provider_id)
    .bind(&at)
    .bind(rows::strings_json(&meta.rejected))
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    for id in versions {
        sqlx::query(
            "INSERT OR REPLACE INTO account_versions (customer_id, provider_id, account_id,
                 valid_from, closed, provider_account_id, provider_customer_ref, currency,
                 is_crypto, status, active, balance, wallets, iban, provider_rate,
                 provider_rate_quote, balance_type)
             SELECT customer_id, provider_id, id, ?, closed, provider_account_id,
                 provider_customer_ref, currency, is_crypto, status, active, balance, wallets,
                 iban, provider_rate, provider_rate_quote, balance_type
             FROM accounts WHERE id = ?",
        )
        .bind(&at)
        .bind(id)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    }
    Ok(())
}
