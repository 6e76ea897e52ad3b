//! Sync leases on SQLite: one replica, so one `BEGIN IMMEDIATE` transaction is enough.

use std::time::Duration;

use chrono::Utc;

use super::SqliteStore;
use crate::error::db_err;
use crate::events::{PairBefore, sync_event};
use crate::lease::lease_until;
use crate::rows;
use crate::{Lease, Result, SyncOutcome, SyncState};

#[derive(sqlx::FromRow)]
struct LeasedRow {
    customer_id: String,
    provider_id: String,
    failures: i64,
}

#[derive(sqlx::FromRow)]
struct BeforeRow {
    failures: i64,
    last_success: Option<String>,
    last_error_at: Option<String>,
}

#[derive(sqlx::FromRow)]
struct StateRow {
    customer_id: String,
    provider_id: String,
    last_success: Option<String>,
    last_error: Option<String>,
    last_error_kind: Option<String>,
    last_error_at: Option<String>,
    failures: i64,
    next_due: String,
    lease_owner: Option<String>,
    lease_expires: Option<String>,
}

impl SqliteStore {
    pub(super) async fn lease_due_impl(
        &self,
        owner: &str,
        n: u32,
        lease_for: Duration,
    ) -> Result<Vec<Lease>> {
        let now = Utc::now();
        let until = lease_until(now, lease_for)?;
        let mut tx = self.write().await?;
        let leased: Vec<LeasedRow> = sqlx::query_as(
            "UPDATE sync_state SET lease_owner = ?1, lease_expires = ?2
             WHERE rowid IN (
                 SELECT rowid FROM sync_state
                 WHERE next_due <= ?3 AND (lease_expires IS NULL OR lease_expires <= ?3)
                 ORDER BY next_due LIMIT ?4)
             RETURNING customer_id, provider_id, failures",
        )
        .bind(owner)
        .bind(rows::ts(until))
        .bind(rows::ts(now))
        .bind(i64::from(n))
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        let mut out = Vec::with_capacity(leased.len());
        for r in leased {
            let external_id: String = sqlx::query_scalar(
                "SELECT external_id FROM customer_links WHERE customer_id = ? AND provider = ?",
            )
            .bind(&r.customer_id)
            .bind(&r.provider_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
            out.push(Lease {
                customer_id: r.customer_id,
                provider_id: r.provider_id,
                external_id,
                owner: owner.to_owned(),
                expires_at: rows::parse_ts(&rows::ts(until))?,
                failures: u32::try_from(r.failures).unwrap_or(0),
            });
        }
        tx.commit().await.map_err(db_err)?;
        out.sort_by(|a, b| (&a.customer_id, &a.provider_id).cmp(&(&b.customer_id, &b.provider_id)));
        Ok(out)
    }

    pub(super) async fn release_impl(&self, lease: &Lease, outcome: &SyncOutcome) -> Result<()> {
        let now = Utc::now();
        let at = rows::ts(now);
        let mut tx = self.write().await?;
        // The state before decides the transition event (read under the write lock).
        let before: Option<BeforeRow> = sqlx::query_as(
            "SELECT failures, last_success, last_error_at FROM sync_state
             WHERE customer_id = ? AND provider_id = ? AND lease_owner = ?",
        )
        .bind(&lease.customer_id)
        .bind(&lease.provider_id)
        .bind(&lease.owner)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some(b) = before else {
            tracing::debug!(
                customer = %lease.customer_id,
                provider = %lease.provider_id,
                owner = %lease.owner,
                "lease no longer held; outcome dropped"
            );
            return Ok(());
        };
        let (q, failure) = match outcome {
            SyncOutcome::Success { next_due } => (
                sqlx::query(
                    "UPDATE sync_state SET lease_owner = NULL, lease_expires = NULL,
                         last_success = ?4, failures = 0, next_due = ?5
                     WHERE customer_id = ?1 AND provider_id = ?2 AND lease_owner = ?3",
                )
                .bind(&lease.customer_id)
                .bind(&lease.provider_id)
                .bind(&lease.owner)
                .bind(at)
                .bind(rows::ts(*next_due)),
                None,
            ),
            SyncOutcome::Failure {
                kind,
                message,
                next_due,
            } => (
                sqlx::query(
                    "UPDATE sync_state SET lease_owner = NULL, lease_expires = NULL,
                         last_error = ?6, last_error_kind = ?7, last_error_at = ?4,
                         failures = failures + 1, next_due = ?5
                     WHERE customer_id = ?1 AND provider_id = ?2 AND lease_owner = ?3",
                )
                .bind(&lease.customer_id)
                .bind(&lease.provider_id)
                .bind(&lease.owner)
                .bind(at)
                .bind(rows::ts(*next_due))
                .bind(message)
                .bind(kind.as_str()),
                Some((kind.as_str(), message.as_str())),
            ),
        };
        q.execute(&mut *tx).await.map_err(db_err)?;
        let before = PairBefore {
            customer_id: lease.customer_id.clone(),
            provider_id: lease.provider_id.clone(),
            failures: b.failures,
            last_success: rows::opt_ts(b.last_success.as_deref())?,
            last_error_at: rows::opt_ts(b.last_error_at.as_deref())?,
        };
        let events: Vec<_> = sync_event(&before, failure, now).into_iter().collect();
        let newest = super::events::write(&mut tx, &events).await?;
        tx.commit().await.map_err(db_err)?;
        self.wake.wrote(newest, &events);
        Ok(())
    }

    pub(super) async fn sync_states_impl(&self, customer_id: &str) -> Result<Vec<SyncState>> {
        let rows: Vec<StateRow> = sqlx::query_as(
            "SELECT customer_id, provider_id, last_success, last_error, last_error_kind,
                    last_error_at, failures, next_due, lease_owner, lease_expires
             FROM sync_state WHERE customer_id = ? ORDER BY provider_id",
        )
        .bind(customer_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.into_iter()
            .map(|r| {
                Ok(SyncState {
                    last_success: rows::opt_ts(r.last_success.as_deref())?,
                    last_error_at: rows::opt_ts(r.last_error_at.as_deref())?,
                    next_due: rows::parse_ts(&r.next_due)?,
                    lease_expires: rows::opt_ts(r.lease_expires.as_deref())?,
                    customer_id: r.customer_id,
                    provider_id: r.provider_id,
                    last_error: r.last_error,
                    last_error_kind: r.last_error_kind,
                    failures: u32::try_from(r.failures).unwrap_or(0),
                    lease_owner: r.lease_owner,
                })
            })
            .collect()
    }
}
