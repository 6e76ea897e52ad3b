//! Retention on PostgreSQL (`history.retention`): removes the history older than a horizon but
//! the state at it, one set-based statement per table, in one transaction under an advisory
//! lock so that one replica prunes at a time.

use chrono::{DateTime, Utc};

use super::PgStore;
use crate::error::db_err;
use crate::{Pruned, Result};

/// Per pair, its last observation at or before $1: the state at the horizon is served from it.
const BASE: &str = "base AS (
    SELECT customer_id, provider_id, max(fetched_at) AS b FROM observations
    WHERE fetched_at <= $1 GROUP BY customer_id, provider_id)";

/// Per account of a pair, the version in force at the base observation stays (a closing too:
/// the account's changes still say when it closed) and the older ones go.
const VERSIONS: &str = "keep AS (
    SELECT av.customer_id, av.provider_id, av.account_id, max(av.valid_from) AS k
    FROM account_versions av JOIN base ON base.customer_id = av.customer_id
     AND base.provider_id = av.provider_id
    WHERE av.valid_from <= base.b
    GROUP BY av.customer_id, av.provider_id, av.account_id)
    DELETE FROM account_versions av USING keep
    WHERE av.customer_id = keep.customer_id AND av.provider_id = keep.provider_id
      AND av.account_id = keep.account_id
      AND av.valid_from < keep.k";

const OBSERVATIONS: &str = "DELETE FROM observations o USING base
    WHERE o.customer_id = base.customer_id AND o.provider_id = base.provider_id
      AND o.fetched_at < base.b";

/// Per account, its last row at or before the horizon stays.
const BALANCE_HISTORY: &str = "DELETE FROM balance_history WHERE id IN (
    SELECT id FROM (SELECT id, row_number() OVER (
        PARTITION BY account_id ORDER BY recorded_at DESC, id DESC) AS n
        FROM balance_history WHERE recorded_at <= $1) x WHERE n > 1)";

const PROVIDER_RATES: &str = "DELETE FROM provider_rate_history h USING (
    SELECT provider, currency, quote, max(as_of) AS k FROM provider_rate_history
    WHERE as_of <= $1 GROUP BY provider, currency, quote) keep
    WHERE h.provider = keep.provider AND h.currency = keep.currency AND h.quote = keep.quote
      AND h.as_of < keep.k";

const MANUAL_RATES: &str = "DELETE FROM manual_rate_versions m USING (
    SELECT DISTINCT ON (currency) currency, as_of, id FROM manual_rate_versions
    WHERE as_of <= $1 ORDER BY currency, as_of DESC, id DESC) keep
    WHERE m.currency = keep.currency AND (m.as_of, m.id) < (keep.as_of, keep.id)";

const CHECKPOINT_MARKS: &str = "DELETE FROM totals_checkpoint_marks WHERE at < $1";
const CHECKPOINTS: &str = "DELETE FROM totals_checkpoints WHERE at < $1";
const OBSERVATION_MARKS: &str = "DELETE FROM observation_marks WHERE at < $1";

impl PgStore {
    pub(super) async fn prune_history_impl(
        &self,
        horizon: DateTime<Utc>,
    ) -> Result<Option<Pruned>> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(crate::PRUNER_LOCK_KEY)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        if !locked {
            return Ok(None);
        }
        // A checkpoint step in progress finishes first; the next one waits for this prune.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(crate::PRUNE_LOCK_KEY)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let mut run = async |sql: String| -> Result<u64> {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(horizon)
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
        // Checkpoints before the horizon summed versions that are gone; a total after it
        // must not start from one (crate::checkpoint).
        run(CHECKPOINT_MARKS.to_owned()).await?;
        run(CHECKPOINTS.to_owned()).await?;
        run(OBSERVATION_MARKS.to_owned()).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(Some(Pruned {
            observations,
            account_versions,
            balance_history,
            rate_versions,
        }))
    }
}
