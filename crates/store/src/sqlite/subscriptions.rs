//! Subscriptions on SQLite (one replica): the same fan-out and leases as PostgreSQL's, each in
//! a `BEGIN IMMEDIATE` transaction. Timestamps are fixed-width UTC text.

use std::time::Duration;

use chrono::Utc;

use super::SqliteStore;
use super::audit::append;
use crate::error::db_err;
use crate::events::{Event, EventCols};
use crate::lease::lease_until;
use crate::rows;
use crate::subscriptions::{self as subs, AttemptOutcome, Delivery, DeliveryState, audited};
use crate::{Actor, LeasedDelivery, NewAudit, NewSubscription, Result, StoreError, Subscription};

const SUB_COLS: &str =
    "id, url, types, customer_id, secret, created_at, event_cursor, failing_since, disabled_at";
const DELIVERY_COLS: &str = "d.id, d.subscription_id, d.event_id, d.state, d.attempts, \
     d.next_attempt_at, d.last_status, d.last_error, d.last_attempt_at, d.delivered_at";

#[derive(sqlx::FromRow)]
struct SubRow {
    id: String,
    url: String,
    types: String,
    customer_id: Option<String>,
    secret: String,
    created_at: String,
    event_cursor: i64,
    failing_since: Option<String>,
    disabled_at: Option<String>,
}

impl SubRow {
    fn into_sub(self) -> Result<Subscription> {
        Ok(Subscription {
            types: subs::types(&self.types)?,
            id: self.id,
            url: self.url,
            customer_id: self.customer_id,
            secret: self.secret,
            created_at: rows::parse_ts(&self.created_at)?,
            cursor: self.event_cursor,
            failing_since: rows::opt_ts(self.failing_since.as_deref())?,
            disabled_at: rows::opt_ts(self.disabled_at.as_deref())?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: i64,
    subscription_id: String,
    event_id: i64,
    state: String,
    attempts: i64,
    next_attempt_at: String,
    last_status: Option<i64>,
    last_error: Option<String>,
    last_attempt_at: Option<String>,
    delivered_at: Option<String>,
}

impl DeliveryRow {
    fn into_delivery(self) -> Result<Delivery> {
        Ok(Delivery {
            state: DeliveryState::stored(&self.state)?,
            id: self.id,
            subscription_id: self.subscription_id,
            event_id: self.event_id,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            next_attempt_at: rows::parse_ts(&self.next_attempt_at)?,
            last_status: self.last_status.and_then(|s| u16::try_from(s).ok()),
            last_error: self.last_error,
            last_attempt_at: rows::opt_ts(self.last_attempt_at.as_deref())?,
            delivered_at: rows::opt_ts(self.delivered_at.as_deref())?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct LeasedRow {
    #[sqlx(flatten)]
    d: DeliveryRow,
    url: String,
    secret: String,
    kind: String,
    occurred_at: String,
    customer_id: String,
    provider_id: String,
    account_id: Option<String>,
    data: String,
}

impl SqliteStore {
    pub(super) async fn create_subscription_impl(
        &self,
        s: &NewSubscription,
        by: &Actor,
    ) -> Result<Subscription> {
        let mut tx = self.write().await?;
        let row: SubRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO subscriptions (id, url, types, customer_id, secret, created_at, event_cursor)
             VALUES (?, ?, ?, ?, ?, ?, (SELECT coalesce(max(id), 0) FROM events))
             RETURNING {SUB_COLS}"
        )))
        .bind(&s.id)
        .bind(&s.url)
        .bind(subs::types_json(&s.types))
        .bind(&s.customer_id)
        .bind(&s.secret)
        .bind(rows::ts(s.created_at))
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        let created = row.into_sub()?;
        let entry = NewAudit::change(
            "subscription.create",
            &created.id,
            None,
            Some(audited(&created)),
        );
        append(&mut tx, by, entry).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(created)
    }

    pub(super) async fn list_subscriptions_impl(&self) -> Result<Vec<Subscription>> {
        let rows: Vec<SubRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SUB_COLS} FROM subscriptions ORDER BY created_at, id"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.into_iter().map(SubRow::into_sub).collect()
    }

    pub(super) async fn get_subscription_impl(&self, id: &str) -> Result<Subscription> {
        let row: Option<SubRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {SUB_COLS} FROM subscriptions WHERE id = ?"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.ok_or_else(|| StoreError::NotFound {
            what: format!("subscription {id}"),
        })?
        .into_sub()
    }

    pub(super) async fn delete_subscription_impl(&self, id: &str, by: &Actor) -> Result<()> {
        let mut tx = self.write().await?;
        let row: Option<SubRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "DELETE FROM subscriptions WHERE id = ? RETURNING {SUB_COLS}"
        )))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let gone = row
            .ok_or_else(|| StoreError::NotFound {
                what: format!("subscription {id}"),
            })?
            .into_sub()?;
        let entry = NewAudit::change("subscription.delete", id, Some(audited(&gone)), None);
        append(&mut tx, by, entry).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(())
    }

    pub(super) async fn list_deliveries_impl(
        &self,
        subscription_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        let rows: Vec<DeliveryRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLS} FROM deliveries d
             WHERE d.subscription_id = ? AND d.id > ? ORDER BY d.id LIMIT ?"
        )))
        .bind(subscription_id)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.into_iter().map(DeliveryRow::into_delivery).collect()
    }

    /// As on PostgreSQL, under the write lock.
    pub(super) async fn fan_out_impl(&self, per_subscription: u32) -> Result<u64> {
        // Without the write lock first: most rounds have nothing to do, and the lock is the
        // one every snapshot write needs.
        let todo: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM subscriptions WHERE disabled_at IS NULL
               AND event_cursor < (SELECT coalesce(max(id), 0) FROM events) LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        if todo.is_none() {
            return Ok(0);
        }
        let mut tx = self.write().await?;
        let head: i64 = sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM events")
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        let subs: Vec<(String, i64, String, Option<String>)> = sqlx::query_as(
            "SELECT id, event_cursor, types, customer_id FROM subscriptions
             WHERE disabled_at IS NULL AND event_cursor < ? ORDER BY id",
        )
        .bind(head)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        let now = rows::ts(Utc::now());
        let mut made = 0;
        for (id, cursor, types, customer) in subs {
            let names = (types != "[]").then_some(types);
            let ids: Vec<i64> = sqlx::query_scalar(
                "INSERT INTO deliveries (subscription_id, event_id, next_attempt_at)
                 SELECT ?1, e.id, ?2 FROM events e
                 WHERE e.id > ?3 AND e.id <= ?4
                   AND (?5 IS NULL OR e.customer_id = ?5)
                   AND (?6 IS NULL OR e.kind IN (SELECT value FROM json_each(?6)))
                 ORDER BY e.id LIMIT ?7
                 ON CONFLICT (subscription_id, event_id) DO NOTHING
                 RETURNING event_id",
            )
            .bind(&id)
            .bind(&now)
            .bind(cursor)
            .bind(head)
            .bind(&customer)
            .bind(names)
            .bind(i64::from(per_subscription))
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
            made += ids.len() as u64;
            let next = if ids.len() as u64 >= u64::from(per_subscription) {
                ids.iter().copied().max().unwrap_or(head)
            } else {
                head
            };
            sqlx::query("UPDATE subscriptions SET event_cursor = ? WHERE id = ?")
                .bind(next)
                .bind(&id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(made)
    }

    pub(super) async fn lease_deliveries_impl(
        &self,
        owner: &str,
        n: u32,
        lease_for: Duration,
    ) -> Result<Vec<LeasedDelivery>> {
        let now = rows::ts(Utc::now());
        let until = rows::ts(lease_until(Utc::now(), lease_for)?);
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM deliveries WHERE state = 'pending' AND next_attempt_at <= ? LIMIT 1",
        )
        .bind(&now)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let mut tx = self.write().await?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "UPDATE deliveries SET lease_owner = ?1, lease_expires = ?2, attempts = attempts + 1
             WHERE id IN (
                 SELECT d.id FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id
                 WHERE d.state = 'pending' AND s.disabled_at IS NULL AND d.next_attempt_at <= ?3
                   AND (d.lease_expires IS NULL OR d.lease_expires <= ?3)
                 ORDER BY d.next_attempt_at, d.id LIMIT ?4)
             RETURNING id",
        )
        .bind(owner)
        .bind(&until)
        .bind(&now)
        .bind(i64::from(n))
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        let rows: Vec<LeasedRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLS}, s.url, s.secret, e.kind, e.occurred_at, e.customer_id,
                    e.provider_id, e.account_id, e.data
             FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id
                  JOIN events e ON e.id = d.event_id
             WHERE d.id IN (SELECT value FROM json_each(?)) ORDER BY d.next_attempt_at, d.id"
        )))
        .bind(serde_json::Value::from(ids).to_string())
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        rows.into_iter()
            .map(|r| {
                let event = Event::from_cols(EventCols {
                    id: r.d.event_id,
                    kind: r.kind,
                    occurred_at: rows::parse_ts(&r.occurred_at)?,
                    customer_id: r.customer_id,
                    provider_id: r.provider_id,
                    account_id: r.account_id,
                    data: r.data,
                })?;
                Ok(LeasedDelivery {
                    delivery: r.d.into_delivery()?,
                    url: r.url,
                    secret: r.secret,
                    event,
                })
            })
            .collect()
    }

    pub(super) async fn finish_delivery_impl(
        &self,
        id: i64,
        owner: &str,
        o: &AttemptOutcome,
    ) -> Result<bool> {
        let now = Utc::now();
        let at = rows::ts(now);
        let mut tx = self.write().await?;
        let sub: Option<String> = sqlx::query_scalar(
            "UPDATE deliveries SET lease_owner = NULL, lease_expires = NULL,
                 state = CASE WHEN ?3 THEN 'delivered' ELSE 'pending' END,
                 delivered_at = CASE WHEN ?3 THEN ?6 ELSE NULL END,
                 last_status = ?4, last_error = ?5, last_attempt_at = ?6, next_attempt_at = ?7
             WHERE id = ?1 AND lease_owner = ?2 RETURNING subscription_id",
        )
        .bind(id)
        .bind(owner)
        .bind(o.delivered)
        .bind(o.status.map(i64::from))
        .bind(&o.error)
        .bind(&at)
        .bind(rows::ts(o.retry_at))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some(sub) = sub else {
            return Ok(false);
        };
        let since: Option<String> = sqlx::query_scalar(
            "UPDATE subscriptions
             SET failing_since = CASE WHEN ?2 THEN NULL ELSE coalesce(failing_since, ?3) END
             WHERE id = ?1 RETURNING failing_since",
        )
        .bind(&sub)
        .bind(o.delivered)
        .bind(&at)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        if subs::expired(rows::opt_ts(since.as_deref())?, now, o.disable_after) {
            sqlx::query("UPDATE subscriptions SET disabled_at = ? WHERE id = ?")
                .bind(&at)
                .bind(&sub)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            sqlx::query(
                "UPDATE deliveries SET state = 'failed'
                 WHERE subscription_id = ? AND state = 'pending'",
            )
            .bind(&sub)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }
}
