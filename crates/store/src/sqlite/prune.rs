//! Retention on SQLite (`history.retention`): the same removals as PostgreSQL's, in one write
//! transaction (SQLite serves one replica, so no lock beyond it is needed).

use chrono::{DateTime, Utc};

use super::SqliteStore;
use crate::error::db_err;
use crate::rows;
use crate::{Pruned, Result};

/// Per pair, its last observation at or before ?1: the state at the horizon is served from it.
const BASE: &str = "base AS (
    SELECT customer_id, provider_id, max(fetched_at) AS b FROM observations
    WHERE fetched_at <= ?1 GROUP BY customer_id, provider_id)";

/// Per account of a pair, the version in force at the base observation stays (a closing too:
/// the account's changes still say when it closed) and the older ones go.
const VERSIONS: &str = "keep AS (
    SELECT av.customer_id, av.provider_id, av.account_id, max(av.valid_from) AS k
    FROM account_versions av JOIN base ON base.customer_id = av.customer_id
     AND base.provider_id = av.provider_id
    WHERE av.valid_from <= base.b
    GROUP BY av.customer_id, av.provider_id, av.account_id)
    DELETE FROM account_versions WHERE EXISTS (SELECT 1 FROM keep
        WHERE keep.customer_id = account_versions.customer_id
          AND keep.provider_id = account_versions.provider_id
          AND keep.account_id = account_versions.account_id
          AND account_versions.valid_from < keep.k)";

const OBSERVATIONS: &str = "DELETE FROM observations WHERE EXISTS (SELECT 1 FROM base
    WHERE base.customer_id = observations.customer_id
      AND base.provider_id = observations.provider_id AND observations.fetched_at < base.b)";

/// Per account, its last row at or before the horizon stays.
const BALANCE_HISTORY: &str = "DELETE FROM balance_history WHERE id IN (
    SELECT id FROM (SELECT id, row_number() OVER (
        PARTITION BY account_id ORDER BY recorded_at DESC, id DESC) AS n
        FROM balance_history WHERE recorded_at <= ?1) WHERE n > 1)";

const PROVIDER_RATES: &str = "DELETE FROM provider_rate_history WHERE as_of < (
    SELECT max(k.as_of) FROM provider_rate_history k
    WHERE k.provider = provider_rate_history.provider
      AND k.currency = provider_rate_history.currency
      AND k.quote = provider_rate_history.quote AND k.as_of <= ?1)";

const MANUAL_RATES: &str = "DELETE FROM manual_rate_versions WHERE id IN (
    SELECT id FROM (SELECT id, row_number() OVER (
        PARTITION BY currency ORDER BY as_of DESC, id DESC) AS n
        FROM manual_rate_versions WHERE as_of <= ?1) WHERE n > 1)";

impl SqliteStore {
    pub(super) async fn prune_history_impl(
        &self,
        horizon: DateTime<Utc>,
    ) -> Result<Option<Pruned>> {
        let horizon = rows::ts(horizon);
        let mut tx = self.write().await?;
        let mut run = async |sql: String| -> Result<u64> {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&horizon)
                .execute(&mut *tx)
                .await
                .map(|r| r.rows_affected())
                .map_err(db_err)
        };
        // Versions first: both statements find the base observations, which stay.
        let account_versions = run(format!("WITH {BASE}, {VERSIONS}")).await?;
        let observations = run(format!("WITH {BASE} {OBSERVATIONS}")).await?;
        let balance_history = run(BALANCE_HISTORY.to_owned()).await?;
        let rate_versions =
            run(PROVIDER_RATES.to_owned()).await? + run(MANUAL_RATES.to_owned()).await?;
        // Checkpoints before the horizon summed versions that are gone (see postgres/prune.rs).
        run("DELETE FROM totals_checkpoint_marks WHERE at < ?1".to_owned()).await?;
        run("DELETE FROM totals_checkpoints WHERE at < ?1".to_owned()).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(Some(Pruned {
            observations,
            account_versions,
            balance_history,
            rate_versions,
        }))
    }
}
