//! Sync leases on PostgreSQL: `FOR UPDATE SKIP LOCKED`, so replicas never lease the same pair.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::PgStore;
use crate::error::db_err;
use crate::events::{PairBefore, sync_event};
use crate::lease::lease_until;
use crate::{Lease, Result, SyncOutcome, SyncState};

#[derive(sqlx::FromRow)]
struct LeaseRow {
    customer_id: String,
    provider_id: String,
    external_id: String,
    lease_owner: String,
    lease_expires: DateTime<Utc>,
    failures: i32,
}

#[derive(sqlx::FromRow)]
struct BeforeRow {
    failures: i32,
    last_success: Option<DateTime<Utc>>,
    last_error_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct StateRow {
    customer_id: String,
    provider_id: String,
    last_success: Option<DateTime<Utc>>,
    last_error: Option<String>,
    last_error_kind: Option<String>,
    last_error_at: Option<DateTime<Utc>>,
    failures: i32,
    next_due: DateTime<Utc>,
    lease_owner: Option<String>,
    lease_expires: Option<DateTime<Utc>>,
}

impl PgStore {
    pub(super) async fn lease_due_impl(
        &self,
        owner: &str,
        n: u32,
        lease_for: Duration,
    ) -> Result<Vec<Lease>> {
        let now = Utc::now();
        let until = lease_until(now, lease_for)?;
        // The CTE locks up to n due, unleased (or expired) rows, skipping rows another
        // replica is leasing right now; under READ COMMITTED a row leased meanwhile is
        // re-checked against the WHERE clause and dropped. GREATEST skips NULL, so the
        // condition reads "next_due has passed and the lease, if any, has expired"; it is what
        // the index holds (migration 0005), so the pairs leased right now are not scanned.
        // The link is joined inside the CTE, where the LIMIT makes it an index probe per leased
        // row: joined in the UPDATE, the planner hashed the whole customer_links table on every
        // call, O(customers) per lease (62 ms at 60,000 links).
        let rows: Vec<LeaseRow> = sqlx::query_as(
            "WITH due AS (
                 SELECT s.customer_id, s.provider_id, l.external_id
                 FROM sync_state s
                 JOIN customer_links l ON l.customer_id = s.customer_id AND l.provider = s.provider_id
                 WHERE GREATEST(s.next_due, s.lease_expires) <= $2
                 ORDER BY GREATEST(s.next_due, s.lease_expires)
                 LIMIT $3
                 FOR UPDATE OF s SKIP LOCKED)
             UPDATE sync_state s SET lease_owner = $1, lease_expires = $4
             FROM due
             WHERE s.customer_id = due.customer_id AND s.provider_id = due.provider_id
             RETURNING s.customer_id, s.provider_id, due.external_id, s.lease_owner,
                       s.lease_expires, s.failures",
        )
        .bind(owner)
        .bind(now)
        .bind(i64::from(n))
        .bind(until)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(rows
            .into_iter()
            .map(|r| Lease {
                customer_id: r.customer_id,
                provider_id: r.provider_id,
                external_id: r.external_id,
                owner: r.lease_owner,
                expires_at: r.lease_expires,
                failures: u32::try_from(r.failures).unwrap_or(0),
            })
            .collect())
    }

    pub(super) async fn release_impl(&self, lease: &Lease, outcome: &SyncOutcome) -> Result<()> {
        let now = Utc::now();
        // The state before (read by the CTE, as the rows were) decides the transition event;
        // only the lease's holder changes `failures` and `last_success`.
        let (q, failure) = match outcome {
            SyncOutcome::Success { next_due } => (
                sqlx::query_as(
                    "WITH old AS (SELECT failures, last_success, last_error_at FROM sync_state
                                  WHERE customer_id = $1 AND provider_id = $2)
                     UPDATE sync_state SET lease_owner = NULL, lease_expires = NULL,
                         last_success = $4, failures = 0, next_due = $5
                     FROM old
                     WHERE customer_id = $1 AND provider_id = $2 AND lease_owner = $3
                     RETURNING old.failures, old.last_success, old.last_error_at",
                )
                .bind(&lease.customer_id)
                .bind(&lease.provider_id)
                .bind(&lease.owner)
                .bind(now)
                .bind(*next_due),
                None,
            ),
            SyncOutcome::Failure {
                kind,
                message,
                next_due,
            } => (
                sqlx::query_as(
                    "WITH old AS (SELECT failures, last_success, last_error_at FROM sync_state
                                  WHERE customer_id = $1 AND provider_id = $2)
                     UPDATE sync_state SET lease_owner = NULL, lease_expires = NULL,
                         last_error = $6, last_error_kind = $7, last_error_at = $4,
                         failures = sync_state.failures + 1, next_due = $5
                     FROM old
                     WHERE customer_id = $1 AND provider_id = $2 AND lease_owner = $3
                     RETURNING old.failures, old.last_success, old.last_error_at",
                )
                .bind(&lease.customer_id)
                .bind(&lease.provider_id)
                .bind(&lease.owner)
                .bind(now)
                .bind(*next_due)
                .bind(message)
                .bind(kind.as_str()),
                Some((kind.as_str(), message.as_str())),
            ),
        };
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let before: Option<BeforeRow> = q.fetch_optional(&mut *tx).await.map_err(db_err)?;
        let Some(b) = before else {
            tracing::debug!(
                customer = %lease.customer_id,
                provider = %lease.provider_id,
                owner = %lease.owner,
                "lease no longer held (expired and taken over, or the link is gone); outcome dropped"
            );
            return Ok(());
        };
        let before = PairBefore {
            customer_id: lease.customer_id.clone(),
            provider_id: lease.provider_id.clone(),
            failures: i64::from(b.failures),
            last_success: b.last_success,
            last_error_at: b.last_error_at,
        };
        let events: Vec<_> = sync_event(&before, failure, now).into_iter().collect();
        let newest = super::events::write(&mut tx, &events)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        self.wake.wrote(newest, &events);
        Ok(())
    }

    pub(super) async fn sync_states_impl(&self, customer_id: &str) -> Result<Vec<SyncState>> {
        let rows: Vec<StateRow> = sqlx::query_as(
            "SELECT customer_id, provider_id, last_success, last_error, last_error_kind,
                    last_error_at, failures, next_due, lease_owner, lease_expires
             FROM sync_state WHERE customer_id = $1 ORDER BY provider_id",
        )
        .bind(customer_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(rows
            .into_iter()
            .map(|r| SyncState {
                customer_id: r.customer_id,
                provider_id: r.provider_id,
                last_success: r.last_success,
                last_error: r.last_error,
                last_error_kind: r.last_error_kind,
                last_error_at: r.last_error_at,
                failures: u32::try_from(r.failures).unwrap_or(0),
                next_due: r.next_due,
                lease_owner: r.lease_owner,
                lease_expires: r.lease_expires,
            })
            .collect())
    }
}
