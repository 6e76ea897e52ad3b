//! The sync status on PostgreSQL: three aggregate reads (see `status.rs`). The ranks are
//! integer arithmetic over `ROW_NUMBER`, the same statement as SQLite's, so both backends pick
//! the same pair for p50 and p99 (`percentile_disc`'s float fraction could round differently).

use chrono::{DateTime, Utc};

use super::PgStore;
use crate::Result;
use crate::error::db_err;
use crate::status::{FailingPair, LagInstants, PairStats, SyncStatus};

#[derive(sqlx::FromRow)]
struct CountRow {
    provider_id: String,
    total: i64,
    due: i64,
    leased: i64,
    failing: i64,
    never_observed: i64,
}

#[derive(sqlx::FromRow)]
struct LagRow {
    provider_id: String,
    p50: DateTime<Utc>,
    p99: DateTime<Utc>,
    oldest: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct FailingRow {
    customer_id: String,
    provider_id: String,
    failures: i32,
    last_error_kind: Option<String>,
    last_error_at: Option<DateTime<Utc>>,
    last_success: Option<DateTime<Utc>>,
    failing_since: Option<DateTime<Utc>>,
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl PgStore {
    pub(super) async fn sync_status_impl(
        &self,
        now: DateTime<Utc>,
        failing_limit: u32,
    ) -> Result<SyncStatus> {
        Ok(SyncStatus {
            providers: self.pair_stats(now).await?,
            failing: self.failing_pairs(failing_limit).await?,
            last_webhooks: self.last_webhooks().await?,
        })
    }

    /// Per provider: its pairs by state, and the lag's instants.
    async fn pair_stats(&self, now: DateTime<Utc>) -> Result<Vec<PairStats>> {
        let counts: Vec<CountRow> = sqlx::query_as(
            "SELECT s.provider_id, COUNT(*) AS total,
                    COUNT(*) FILTER (WHERE s.next_due <= $1
                        AND (s.lease_expires IS NULL OR s.lease_expires <= $1)) AS due,
                    COUNT(*) FILTER (WHERE s.lease_expires > $1) AS leased,
                    COUNT(*) FILTER (WHERE s.failures > 0) AS failing,
                    COUNT(*) FILTER (WHERE n.customer_id IS NULL) AS never_observed
             FROM sync_state s
             LEFT JOIN snapshots n
                 ON n.customer_id = s.customer_id AND n.provider_id = s.provider_id
             GROUP BY s.provider_id ORDER BY s.provider_id",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let lags: Vec<LagRow> = sqlx::query_as(
            "WITH obs AS (
                 SELECT s.provider_id, n.fetched_at,
                        ROW_NUMBER() OVER (PARTITION BY s.provider_id
                                           ORDER BY n.fetched_at DESC) AS rn,
                        COUNT(*) OVER (PARTITION BY s.provider_id) AS n
                 FROM sync_state s
                 JOIN snapshots n
                     ON n.customer_id = s.customer_id AND n.provider_id = s.provider_id)
             SELECT provider_id,
                    MAX(CASE WHEN rn = (n * 50 + 99) / 100 THEN fetched_at END) AS p50,
                    MAX(CASE WHEN rn = (n * 99 + 99) / 100 THEN fetched_at END) AS p99,
                    MIN(fetched_at) AS oldest
             FROM obs GROUP BY provider_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(counts
            .into_iter()
            .map(|c| PairStats {
                lag: lags
                    .iter()
                    .find(|l| l.provider_id == c.provider_id)
                    .map(|l| LagInstants {
                        p50: l.p50,
                        p99: l.p99,
                        oldest: l.oldest,
                    }),
                provider_id: c.provider_id,
                total: count(c.total),
                due: count(c.due),
                leased: count(c.leased),
                failing: count(c.failing),
                never_observed: count(c.never_observed),
            })
            .collect())
    }

    /// The failing pairs, worst first.
    async fn failing_pairs(&self, failing_limit: u32) -> Result<Vec<FailingPair>> {
        let failing: Vec<FailingRow> = sqlx::query_as(
            "SELECT s.customer_id, s.provider_id, s.failures, s.last_error_kind,
                    s.last_error_at, s.last_success,
                    (SELECT MAX(e.occurred_at) FROM events e
                     WHERE e.customer_id = s.customer_id AND e.provider_id = s.provider_id
                       AND e.kind = 'sync.failed' AND e.occurred_at >= s.last_success)
                        AS failing_since
             FROM sync_state s WHERE s.failures > 0
             ORDER BY s.failures DESC, s.last_success ASC NULLS FIRST, s.customer_id,
                      s.provider_id
             LIMIT $1",
        )
        .bind(i64::from(failing_limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(failing
            .into_iter()
            .map(|f| FailingPair {
                customer_id: f.customer_id,
                provider_id: f.provider_id,
                failures: u32::try_from(f.failures).unwrap_or(0),
                last_error_kind: f.last_error_kind,
                last_error_at: f.last_error_at,
                last_success: f.last_success,
                failing_since: f.failing_since,
            })
            .collect())
    }

    /// The newest delivery kept per provider.
    async fn last_webhooks(&self) -> Result<Vec<(String, DateTime<Utc>)>> {
        let last_webhooks: Vec<(String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT provider_id, MAX(received_at) FROM webhook_inbox
             GROUP BY provider_id ORDER BY provider_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(last_webhooks)
    }
}
