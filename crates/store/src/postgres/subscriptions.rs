//! Subscriptions on PostgreSQL: fan-out from the outbox (each subscription's row locked with
//! `SKIP LOCKED`, so replicas fan out different ones), deliveries leased with `FOR UPDATE SKIP
//! LOCKED`, so replicas never make the same attempt.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::PgStore;
use super::audit::append;
use crate::error::db_err;
use crate::events::{Event, EventCols};
use crate::lease::lease_until;
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
    created_at: DateTime<Utc>,
    event_cursor: i64,
    failing_since: Option<DateTime<Utc>>,
    disabled_at: Option<DateTime<Utc>>,
}

impl SubRow {
    fn into_sub(self) -> Result<Subscription> {
        Ok(Subscription {
            types: subs::types(&self.types)?,
            id: self.id,
            url: self.url,
            customer_id: self.customer_id,
            secret: self.secret,
            created_at: self.created_at,
            cursor: self.event_cursor,
            failing_since: self.failing_since,
            disabled_at: self.disabled_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: i64,
    subscription_id: String,
    event_id: i64,
    state: String,
    attempts: i32,
    next_attempt_at: DateTime<Utc>,
    last_status: Option<i32>,
    last_error: Option<String>,
    last_attempt_at: Option<DateTime<Utc>>,
    delivered_at: Option<DateTime<Utc>>,
}

impl DeliveryRow {
    fn into_delivery(self) -> Result<Delivery> {
        Ok(Delivery {
            state: DeliveryState::stored(&self.state)?,
            id: self.id,
            subscription_id: self.subscription_id,
            event_id: self.event_id,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            next_attempt_at: self.next_attempt_at,
            last_status: self.last_status.and_then(|s| u16::try_from(s).ok()),
            last_error: self.last_error,
            last_attempt_at: self.last_attempt_at,
            delivered_at: self.delivered_at,
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
    occurred_at: DateTime<Utc>,
    customer_id: String,
    provider_id: String,
    account_id: Option<String>,
    data: String,
}

impl PgStore {
    pub(super) async fn create_subscription_impl(
        &self,
        s: &NewSubscription,
        by: &Actor,
    ) -> Result<Subscription> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let row: SubRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "INSERT INTO subscriptions (id, url, types, customer_id, secret, created_at, event_cursor)
             VALUES ($1, $2, $3, $4, $5, $6, (SELECT coalesce(max(id), 0) FROM events))
             RETURNING {SUB_COLS}"
        )))
        .bind(&s.id)
        .bind(&s.url)
        .bind(subs::types_json(&s.types))
        .bind(&s.customer_id)
        .bind(&s.secret)
        .bind(s.created_at)
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
            "SELECT {SUB_COLS} FROM subscriptions WHERE id = $1"
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
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let row: Option<SubRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "DELETE FROM subscriptions WHERE id = $1 RETURNING {SUB_COLS}"
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
             WHERE d.subscription_id = $1 AND d.id > $2 ORDER BY d.id LIMIT $3"
        )))
        .bind(subscription_id)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.into_iter().map(DeliveryRow::into_delivery).collect()
    }

    /// For each enabled subscription no other replica is fanning out: a delivery per matching
    /// event after its cursor (at most `per_subscription`), and the cursor moved on. The head
    /// is read first: ids commit in order, so every event up to it is visible and none is
    /// passed over.
    pub(super) async fn fan_out_impl(&self, per_subscription: u32) -> Result<u64> {
        // Most rounds have nothing to fan out: one cheap read instead of a transaction.
        let todo: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM subscriptions WHERE disabled_at IS NULL
               AND event_cursor < (SELECT coalesce(max(id), 0) FROM events) LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        if todo.is_none() {
            return Ok(0);
        }
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let subs: Vec<(String, i64, String, Option<String>)> = sqlx::query_as(
            "SELECT id, event_cursor, types, customer_id FROM subscriptions
             WHERE disabled_at IS NULL AND event_cursor < (SELECT coalesce(max(id), 0) FROM events)
             ORDER BY id FOR UPDATE SKIP LOCKED",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        let mut made = 0;
        for (id, cursor, types, customer) in subs {
            let head: i64 = sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM events")
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
            let types = subs::types(&types)?;
            let names: Option<Vec<&str>> =
                (!types.is_empty()).then(|| types.iter().map(|t| t.as_str()).collect());
            let ids: Vec<i64> = sqlx::query_scalar(
                "INSERT INTO deliveries (subscription_id, event_id, next_attempt_at)
                 SELECT $1, e.id, now() FROM events e
                 WHERE e.id > $2 AND e.id <= $3
                   AND ($4::text IS NULL OR e.customer_id = $4)
                   AND ($5::text[] IS NULL OR e.kind = ANY($5))
                 ORDER BY e.id LIMIT $6
                 ON CONFLICT (subscription_id, event_id) DO NOTHING
                 RETURNING event_id",
            )
            .bind(&id)
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
            sqlx::query("UPDATE subscriptions SET event_cursor = $2 WHERE id = $1")
                .bind(&id)
                .bind(next)
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
        let now = Utc::now();
        let until = lease_until(now, lease_for)?;
        let rows: Vec<LeasedRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "WITH due AS (
                 SELECT d.id FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id
                 WHERE d.state = 'pending' AND s.disabled_at IS NULL
                   AND GREATEST(d.next_attempt_at, d.lease_expires) <= $2
                 ORDER BY d.next_attempt_at, d.id LIMIT $3
                 FOR UPDATE OF d SKIP LOCKED)
             UPDATE deliveries d SET lease_owner = $1, lease_expires = $4,
                 attempts = d.attempts + 1
             FROM due, subscriptions s, events e
             WHERE d.id = due.id AND s.id = d.subscription_id AND e.id = d.event_id
             RETURNING {DELIVERY_COLS}, s.url, s.secret, e.kind, e.occurred_at, e.customer_id,
                       e.provider_id, e.account_id, e.data"
        )))
        .bind(owner)
        .bind(now)
        .bind(i64::from(n))
        .bind(until)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.into_iter()
            .map(|r| {
                let event = Event::from_cols(EventCols {
                    id: r.d.event_id,
                    kind: r.kind,
                    occurred_at: r.occurred_at,
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
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let sub: Option<String> = sqlx::query_scalar(
            "UPDATE deliveries SET lease_owner = NULL, lease_expires = NULL,
                 state = CASE WHEN $3 THEN 'delivered' ELSE 'pending' END,
                 delivered_at = CASE WHEN $3 THEN $6 ELSE NULL END,
                 last_status = $4, last_error = $5, last_attempt_at = $6, next_attempt_at = $7
             WHERE id = $1 AND lease_owner = $2 RETURNING subscription_id",
        )
        .bind(id)
        .bind(owner)
        .bind(o.delivered)
        .bind(o.status.map(i32::from))
        .bind(&o.error)
        .bind(now)
        .bind(o.retry_at)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some(sub) = sub else {
            return Ok(false);
        };
        let since: Option<DateTime<Utc>> = sqlx::query_scalar(
            "UPDATE subscriptions
             SET failing_since = CASE WHEN $2 THEN NULL ELSE coalesce(failing_since, $3) END
             WHERE id = $1 RETURNING failing_since",
        )
        .bind(&sub)
        .bind(o.delivered)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        if subs::expired(since, now, o.disable_after) {
            sqlx::query("UPDATE subscriptions SET disabled_at = $2 WHERE id = $1")
                .bind(&sub)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            sqlx::query(
                "UPDATE deliveries SET state = 'failed'
                 WHERE subscription_id = $1 AND state = 'pending'",
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
