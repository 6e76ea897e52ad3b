//! The outbox on PostgreSQL: events written inside the writer's transaction, in commit order,
//! announced to every replica with the commit (`NOTIFY coffer_events`), read by cursor.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};

use super::PgStore;
use crate::error::db_err;
use crate::events::{Event, EventCols, EventFilter, NewEvent};
use crate::{Result, Scope};

/// The channel announcing committed events; the payload is the newest id of the commit.
pub(crate) const EVENTS_CHANNEL: &str = "coffer_events";

/// The advisory lock that orders event writers (any constant: only events writers take it).
const EVENTS_LOCK: i64 = 0x636f_6666_6572_0001;

#[derive(sqlx::FromRow)]
struct EventRow {
    id: i64,
    kind: String,
    occurred_at: DateTime<Utc>,
    customer_id: String,
    provider_id: String,
    account_id: Option<String>,
    data: String,
}

/// Writes `events` in the caller's transaction; returns the newest id written (`None`: nothing
/// to write, and no lock taken). Call it last before the commit: the lock it takes makes every
/// other events writer wait until this transaction ends, which is what makes ids commit in
/// order (an id taken after the lock is larger than any id committed before, and no smaller
/// one can commit later), so a reader's cursor never skips an event that commits late.
pub(super) async fn write(
    tx: &mut Transaction<'static, Postgres>,
    events: &[NewEvent],
) -> std::result::Result<Option<i64>, sqlx::Error> {
    if events.is_empty() {
        return Ok(None);
    }
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(EVENTS_LOCK)
        .execute(&mut **tx)
        .await?;
    let newest: i64 = sqlx::query_scalar(
        "WITH ins AS (
             INSERT INTO events (kind, occurred_at, customer_id, provider_id, account_id, data)
             SELECT k, o, c, p, a, d
             FROM UNNEST($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[],
                         $6::text[]) WITH ORDINALITY AS t(k, o, c, p, a, d, n)
             ORDER BY n
             RETURNING id)
         SELECT x.m FROM (SELECT max(id) AS m FROM ins) AS x, LATERAL pg_notify($7, x.m::text)",
    )
    .bind(events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.occurred_at).collect::<Vec<_>>())
    .bind(
        events
            .iter()
            .map(|e| e.customer_id.clone())
            .collect::<Vec<_>>(),
    )
    .bind(
        events
            .iter()
            .map(|e| e.provider_id.clone())
            .collect::<Vec<_>>(),
    )
    .bind(
        events
            .iter()
            .map(|e| e.account_id.clone())
            .collect::<Vec<_>>(),
    )
    .bind(
        events
            .iter()
            .map(|e| e.data.to_string())
            .collect::<Vec<_>>(),
    )
    .bind(EVENTS_CHANNEL)
    .fetch_one(&mut **tx)
    .await?;
    Ok(Some(newest))
}

impl PgStore {
    pub(super) async fn events_impl(&self, f: &EventFilter) -> Result<Vec<Event>> {
        let customers = match &f.scope {
            Scope::All => None,
            Scope::Customers(ids) if ids.is_empty() => return Ok(Vec::new()),
            Scope::Customers(ids) => Some(ids.clone()),
        };
        let rows: Vec<EventRow> = sqlx::query_as(
            "SELECT id, kind, occurred_at, customer_id, provider_id, account_id, data
             FROM events
             WHERE id > $1 AND ($2::text[] IS NULL OR customer_id = ANY($2))
               AND ($3::text[] IS NULL OR kind = ANY($3))
             ORDER BY id LIMIT $4",
        )
        .bind(f.after)
        .bind(customers)
        .bind(f.type_names())
        .bind(i64::from(f.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.into_iter()
            .map(|r| {
                Event::from_cols(EventCols {
                    id: r.id,
                    kind: r.kind,
                    occurred_at: r.occurred_at,
                    customer_id: r.customer_id,
                    provider_id: r.provider_id,
                    account_id: r.account_id,
                    data: r.data,
                })
            })
            .collect()
    }
}

impl PgStore {
    /// Retention: finished deliveries, then events no pending delivery and no enabled
    /// subscription's fan-out needs (its cursor is before them), both older than `horizon`.
    pub(super) async fn prune_events_impl(&self, horizon: DateTime<Utc>) -> Result<(u64, u64)> {
        let deliveries = sqlx::query(
            "DELETE FROM deliveries WHERE state <> 'pending'
               AND coalesce(delivered_at, last_attempt_at, next_attempt_at) < $1",
        )
        .bind(horizon)
        .execute(&self.pool)
        .await
        .map_err(db_err)?
        .rows_affected();
        let events = sqlx::query(
            "DELETE FROM events e WHERE e.occurred_at < $1
               AND NOT EXISTS (SELECT 1 FROM deliveries d
                               WHERE d.event_id = e.id AND d.state = 'pending')
               AND NOT EXISTS (SELECT 1 FROM subscriptions s
                               WHERE s.disabled_at IS NULL AND s.event_cursor < e.id)",
        )
        .bind(horizon)
        .execute(&self.pool)
        .await
        .map_err(db_err)?
        .rows_affected();
        Ok((events, deliveries))
    }
}
