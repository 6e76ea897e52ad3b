//! The outbox on SQLite: events written inside the writer's `BEGIN IMMEDIATE` transaction (one
//! writer at a time, so ids commit in order), read by cursor, and a local wake after commit.

use chrono::{DateTime, Utc};
use sqlx::{Sqlite, Transaction};

use super::SqliteStore;
use crate::error::db_err;
use crate::events::{Event, EventCols, EventFilter, NewEvent};
use crate::rows;
use crate::{Result, Scope};

#[derive(sqlx::FromRow)]
struct EventRow {
    id: i64,
    kind: String,
    occurred_at: String,
    customer_id: String,
    provider_id: String,
    account_id: Option<String>,
    data: String,
}

/// Writes `events` in the caller's transaction; returns the newest id written.
pub(super) async fn write(
    tx: &mut Transaction<'static, Sqlite>,
    events: &[NewEvent],
) -> Result<Option<i64>> {
    let mut newest = None;
    for e in events {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO events (kind, occurred_at, customer_id, provider_id, account_id, data)
             VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(e.kind.as_str())
        .bind(rows::ts(e.occurred_at))
        .bind(&e.customer_id)
        .bind(&e.provider_id)
        .bind(&e.account_id)
        .bind(e.data.to_string())
        .fetch_one(&mut **tx)
        .await
        .map_err(db_err)?;
        newest = Some(id);
    }
    Ok(newest)
}

impl SqliteStore {
    pub(super) async fn events_impl(&self, f: &EventFilter) -> Result<Vec<Event>> {
        let customers = match &f.scope {
            Scope::All => None,
            Scope::Customers(ids) if ids.is_empty() => return Ok(Vec::new()),
            Scope::Customers(ids) => Some(rows::strings_json(ids)),
        };
        let rows: Vec<EventRow> = sqlx::query_as(
            "SELECT id, kind, occurred_at, customer_id, provider_id, account_id, data
             FROM events
             WHERE id > ?1
               AND (?2 IS NULL OR customer_id IN (SELECT value FROM json_each(?2)))
               AND (?3 IS NULL OR kind IN (SELECT value FROM json_each(?3)))
             ORDER BY id LIMIT ?4",
        )
        .bind(f.after)
        .bind(customers)
        .bind(f.type_names().map(|t| rows::strings_json(&t)))
        .bind(i64::from(f.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.into_iter()
            .map(|r| {
                Event::from_cols(EventCols {
                    occurred_at: rows::parse_ts(&r.occurred_at)?,
                    id: r.id,
                    kind: r.kind,
                    customer_id: r.customer_id,
                    provider_id: r.provider_id,
                    account_id: r.account_id,
                    data: r.data,
                })
            })
            .collect()
    }
}

impl SqliteStore {
    /// Retention, as `postgres/events.rs` (timestamps are fixed-width UTC text, so they compare
    /// as text).
    pub(super) async fn prune_events_impl(&self, horizon: DateTime<Utc>) -> Result<(u64, u64)> {
        let at = rows::ts(horizon);
        let mut tx = self.write().await?;
        let deliveries = sqlx::query(
            "DELETE FROM deliveries WHERE state <> 'pending'
               AND coalesce(delivered_at, last_attempt_at, next_attempt_at) < ?",
        )
        .bind(&at)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?
        .rows_affected();
        let events = sqlx::query(
            "DELETE FROM events WHERE occurred_at < ?1
               AND NOT EXISTS (SELECT 1 FROM deliveries d
                               WHERE d.event_id = events.id AND d.state = 'pending')
               AND NOT EXISTS (SELECT 1 FROM subscriptions s
                               WHERE s.disabled_at IS NULL AND s.event_cursor < events.id)",
        )
        .bind(&at)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?
        .rows_affected();
        tx.commit().await.map_err(db_err)?;
        Ok((events, deliveries))
    }
}
