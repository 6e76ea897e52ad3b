//! The sync status on SQLite: the same three aggregate reads as PostgreSQL's (see
//! `status.rs`), on text timestamps (fixed-width RFC 3339, so text order is time order).

use chrono::{DateTime, Utc};

use super::SqliteStore;
use crate::Result;
use crate::error::db_err;
use crate::rows;
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
    p50: String,
    p99: String,
    oldest: String,
}

#[derive(sqlx::FromRow)]
struct FailingRow {
    customer_id: String,
    provider_id: String,
    failures: i64,
    last_error_kind: Option<String>,
    last_error_at: Option<String>,
    last_success: Option<String>,
    failing_since: Option<String>,
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl SqliteStore {
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
                    SUM(s.next_due <= ?1
                        AND (s.lease_expires IS NULL OR s.lease_expires <= ?1)) AS due,
                    SUM(COALESCE(s.lease_expires > ?1, 0)) AS leased,
                    SUM(s.failures > 0) AS failing,
                    SUM(n.customer_id IS NULL) AS never_observed
             FROM sync_state s
             LEFT JOIN snapshots n
                 ON n.customer_id = s.customer_id AND n.provider_id = s.provider_id
             GROUP BY s.provider_id ORDER BY s.provider_id",
        )
        .bind(rows::ts(now))
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
        let mut providers = Vec::with_capacity(counts.len());
        for c in counts {
            let lag = match lags.iter().find(|l| l.provider_id == c.provider_id) {
                Some(l) => Some(LagInstants {
                    p50: rows::parse_ts(&l.p50)?,
                    p99: rows::parse_ts(&l.p99)?,
                    oldest: rows::parse_ts(&l.oldest)?,
                }),
                None => None,
            };
            providers.push(PairStats {
                provider_id: c.provider_id,
                total: count(c.total),
                due: count(c.due),
                leased: count(c.leased),
                failing: count(c.failing),
                never_observed: count(c.never_observed),
                lag,
            });
        }
        Ok(providers)
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
             LIMIT ?1",
        )
        .bind(i64::from(failing_limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        failing.into_iter().map(failing_pair).collect()
    }

    /// The newest delivery kept per provider.
    async fn last_webhooks(&self) -> Result<Vec<(String, DateTime<Utc>)>> {
        let webhooks: Vec<(String, String)> = sqlx::query_as(
            "SELECT provider_id, MAX(received_at) FROM webhook_inbox
             GROUP BY provider_id ORDER BY provider_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        webhooks
            .into_iter()
            .map(|(p, at)| Ok((p, rows::parse_ts(&at)?)))
            .collect()
    }
}

fn failing_pair(f: FailingRow) -> Result<FailingPair> {
    Ok(FailingPair {
        failures: u32::try_from(f.failures).unwrap_or(0),
        last_error_at: rows::opt_ts(f.last_error_at.as_deref())?,
        last_success: rows::opt_ts(f.last_success.as_deref())?,
        failing_since: rows::opt_ts(f.failing_since.as_deref())?,
        customer_id: f.customer_id,
        provider_id: f.provider_id,
        last_error_kind: f.last_error_kind,
    })
}
