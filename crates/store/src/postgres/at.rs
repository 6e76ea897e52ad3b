//! Balances at an instant on PostgreSQL: observations and account versions.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};

use super::PgStore;
use crate::at::{self, ObservationCols, VersionCols};
use crate::error::db_err;
use crate::plan::Writes;
use crate::rows::AccountCols;
use crate::{HeldAt, Result, Scope};

/// Each pair's last observation at or before $1, in scope $2 (NULL: all), and with $3 only the
/// pairs that ever held that account. Shared by the two reads below.
const LAST_OBS: &str = "last_obs AS (
    SELECT customer_id, provider_id, max(fetched_at) AS observed_at FROM observations
    WHERE fetched_at <= $1
      AND ($2::text[] IS NULL OR customer_id = ANY($2))
      AND ($3::text IS NULL OR (customer_id, provider_id) IN
           (SELECT customer_id, provider_id FROM account_versions WHERE account_id = $3))
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
    valid_from: DateTime<Utc>,
    observed_at: DateTime<Utc>,
}

impl VersionRow {
    fn into_cols(self) -> VersionCols {
        VersionCols {
            valid_from: self.valid_from,
            account: AccountCols {
                fetched_at: self.observed_at,
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

#[derive(sqlx::FromRow)]
struct ObservationRow {
    customer_id: String,
    provider_id: String,
    observed_at: DateTime<Utc>,
    rejected: String,
}

impl PgStore {
    pub(super) async fn held_at_impl(
        &self,
        scope: &Scope,
        at: DateTime<Utc>,
        account_id: Option<&str>,
    ) -> Result<HeldAt> {
        let scope: Option<Vec<String>> = match scope {
            Scope::All => None,
            Scope::Customers(ids) => Some(ids.clone()),
        };
        // One snapshot of the database for the three reads.
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let versions: Vec<VersionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "WITH {LAST_OBS}
             SELECT v.account_id, v.customer_id, v.provider_id, v.provider_account_id,
                 v.provider_customer_ref, v.currency, v.is_crypto, v.status, v.active,
                 v.balance::text AS balance, v.wallets, v.iban, v.balance_type,
                 v.provider_rate::text AS provider_rate, v.provider_rate_quote, v.valid_from,
                 o.observed_at
             FROM last_obs o CROSS JOIN LATERAL (
                 SELECT DISTINCT ON (av.account_id) av.* FROM account_versions av
                 WHERE av.customer_id = o.customer_id AND av.provider_id = o.provider_id
                   AND av.valid_from <= o.observed_at
                   AND ($3::text IS NULL OR av.account_id = $3)
                 ORDER BY av.account_id, av.valid_from DESC) v
             WHERE NOT v.closed
             ORDER BY v.account_id"
        )))
        .bind(at)
        .bind(&scope)
        .bind(account_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        let (obs, unobserved) = pairs(&mut tx, at, &scope, account_id).await?;
        tx.commit().await.map_err(db_err)?;
        at::held(
            versions.into_iter().map(VersionRow::into_cols).collect(),
            obs,
            unobserved,
        )
    }

    /// Each pair's observation and the unobserved pairs, as [`crate::Store::observed_at`].
    pub(super) async fn observed_at_impl(
        &self,
        scope: &Scope,
        at: DateTime<Utc>,
    ) -> Result<HeldAt> {
        let scope: Option<Vec<String>> = match scope {
            Scope::All => None,
            Scope::Customers(ids) => Some(ids.clone()),
        };
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let (obs, unobserved) = pairs(&mut tx, at, &scope, None).await?;
        tx.commit().await.map_err(db_err)?;
        at::held(Vec::new(), obs, unobserved)
    }
}

/// The observation reads of [`PgStore::held_at_impl`]: per pair in scope its last observation
/// at or before `at`, and (without an account) the linked pairs with none.
async fn pairs(
    tx: &mut Transaction<'static, Postgres>,
    at: DateTime<Utc>,
    scope: &Option<Vec<String>>,
    account_id: Option<&str>,
) -> Result<(Vec<ObservationCols>, Vec<(String, String)>)> {
    let observations: Vec<ObservationRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH {LAST_OBS}
             SELECT o.customer_id, o.provider_id, o.observed_at, x.rejected
             FROM last_obs o JOIN observations x ON x.customer_id = o.customer_id
              AND x.provider_id = o.provider_id AND x.fetched_at = o.observed_at
             ORDER BY o.customer_id, o.provider_id"
    )))
    .bind(at)
    .bind(scope)
    .bind(account_id)
    .fetch_all(&mut **tx)
    .await
    .map_err(db_err)?;
    let unobserved: Vec<(String, String)> = if account_id.is_some() {
        Vec::new()
    } else {
        sqlx::query_as(
            "SELECT l.customer_id, l.provider FROM customer_links l
                 WHERE ($2::text[] IS NULL OR l.customer_id = ANY($2))
                   AND NOT EXISTS (SELECT 1 FROM observations o WHERE o.customer_id = l.customer_id
                                   AND o.provider_id = l.provider AND o.fetched_at <= $1)
                 ORDER BY l.customer_id, l.provider",
        )
        .bind(at)
        .bind(scope)
        .fetch_all(&mut **tx)
        .await
        .map_err(db_err)?
    };
    let obs = observations
        .into_iter()
        .map(|o| ObservationCols {
            customer_id: o.customer_id,
            provider_id: o.provider_id,
            observed_at: o.observed_at,
            rejected: o.rejected,
        })
        .collect();
    Ok((obs, unobserved))
}

/// Records the observations and copies the changed accounts' rows (as just written) into
/// `account_versions`, one set-based statement each, like the other writes of a batch. A
/// second write at the same instant replaces the version.
pub(super) async fn write_versions(
    tx: &mut Transaction<'static, Postgres>,
    w: &Writes<'_>,
) -> std::result::Result<(), sqlx::Error> {
    if !w.observations.is_empty() {
        let o = &w.observations;
        sqlx::query(
            "INSERT INTO observations (customer_id, provider_id, fetched_at, rejected)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], $4::text[])
             ON CONFLICT (customer_id, provider_id, fetched_at) DO UPDATE
             SET rejected = excluded.rejected",
        )
        .bind(o.iter().map(|x| x.0.clone()).collect::<Vec<_>>())
        .bind(o.iter().map(|x| x.1.clone()).collect::<Vec<_>>())
        .bind(o.iter().map(|x| x.2).collect::<Vec<_>>())
        .bind(o.iter().map(|x| x.3.clone()).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
        if let Some(from) = o.iter().map(|x| x.2).min() {
            super::checkpoint::invalidate_observed(tx, from).await?;
        }
    }
    if !w.versions.is_empty() {
        let v = &w.versions;
        // A version at t changes every total from t on: checkpoints there are dropped (in
        // steady state none exist yet: they are built only for settled instants).
        super::checkpoint::invalidate(tx, v.iter().map(|x| x.1).min()).await?;
        sqlx::query(
            "INSERT INTO account_versions (customer_id, provider_id, account_id, valid_from,
                 closed, provider_account_id, provider_customer_ref, currency, is_crypto, status,
                 active, balance, wallets, iban, provider_rate, provider_rate_quote, balance_type)
             SELECT a.customer_id, a.provider_id, a.id, t.at, a.closed, a.provider_account_id,
                 a.provider_customer_ref, a.currency, a.is_crypto, a.status, a.active, a.balance,
                 a.wallets, a.iban, a.provider_rate, a.provider_rate_quote, a.balance_type
             FROM UNNEST($1::text[], $2::timestamptz[]) AS t(id, at)
             JOIN accounts a ON a.id = t.id
             ORDER BY a.customer_id, a.provider_id, a.id
             ON CONFLICT (customer_id, provider_id, account_id, valid_from) DO UPDATE
             SET closed = excluded.closed, provider_account_id = excluded.provider_account_id,
                 provider_customer_ref = excluded.provider_customer_ref,
                 currency = excluded.currency, is_crypto = excluded.is_crypto,
                 status = excluded.status, active = excluded.active, balance = excluded.balance,
                 wallets = excluded.wallets, iban = excluded.iban,
                 balance_type = excluded.balance_type, provider_rate = excluded.provider_rate,
                 provider_rate_quote = excluded.provider_rate_quote",
        )
        .bind(v.iter().map(|x| x.0.clone()).collect::<Vec<_>>())
        .bind(v.iter().map(|x| x.1).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
