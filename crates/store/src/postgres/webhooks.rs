//! The webhook inbox on PostgreSQL: `FOR UPDATE SKIP LOCKED`, so replicas never lease the same
//! delivery.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::PgStore;
use crate::error::db_err;
use crate::lease::lease_until;
use crate::{
    NewWebhook, Result, StoreError, WebhookEntry, WebhookFilter, WebhookOutcome, WebhookState,
};

/// Every column, in `Row`'s order (a macro, so the queries stay literal strings).
macro_rules! columns {
    () => {
        "id, provider_id, delivery_id, body, received_at, state, reason, customer_id, \
         external_id, processed_at, attempts, lease_owner, lease_expires"
    };
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    provider_id: String,
    delivery_id: String,
    body: String,
    received_at: DateTime<Utc>,
    state: String,
    reason: Option<String>,
    customer_id: Option<String>,
    external_id: Option<String>,
    processed_at: Option<DateTime<Utc>>,
    attempts: i32,
    lease_owner: Option<String>,
    lease_expires: Option<DateTime<Utc>>,
}

impl Row {
    fn entry(self) -> Result<WebhookEntry> {
        Ok(WebhookEntry {
            id: self.id,
            state: WebhookState::stored(&self.state)?,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            received_at: self.received_at,
            processed_at: self.processed_at,
            lease_expires: self.lease_expires,
            provider_id: self.provider_id,
            delivery_id: self.delivery_id,
            body: self.body,
            reason: self.reason,
            customer_id: self.customer_id,
            external_id: self.external_id,
            lease_owner: self.lease_owner,
        })
    }
}

impl PgStore {
    pub(super) async fn insert_webhook_impl(&self, w: &NewWebhook) -> Result<(WebhookEntry, bool)> {
        // PostgreSQL text cannot hold NUL; such a body is kept with the byte replaced.
        let body = w.body.replace('\0', "\u{fffd}");
        let inserted: Option<Row> = sqlx::query_as(concat!(
            "INSERT INTO webhook_inbox (provider_id, delivery_id, body, received_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT (provider_id, delivery_id) DO NOTHING
             RETURNING ",
            columns!(),
            ""
        ))
        .bind(&w.provider_id)
        .bind(&w.delivery_id)
        .bind(&body)
        .bind(w.received_at)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        if let Some(row) = inserted {
            return Ok((row.entry()?, true));
        }
        let row: Row = sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM webhook_inbox WHERE provider_id = $1 AND delivery_id = $2"
        ))
        .bind(&w.provider_id)
        .bind(&w.delivery_id)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        Ok((row.entry()?, false))
    }

    /// One transaction: the new rows in one `INSERT … SELECT FROM unnest` (ids in input
    /// order), then the rows kept before for the others.
    pub(super) async fn insert_webhooks_impl(
        &self,
        ws: &[NewWebhook],
    ) -> Result<Vec<(WebhookEntry, bool)>> {
        if ws.is_empty() {
            return Ok(Vec::new());
        }
        let col = |f: fn(&NewWebhook) -> String| ws.iter().map(f).collect::<Vec<_>>();
        let providers = col(|w| w.provider_id.clone());
        let ids = col(|w| w.delivery_id.clone());
        // PostgreSQL text cannot hold NUL; such a body is kept with the byte replaced.
        let bodies = col(|w| w.body.replace('\0', "\u{fffd}"));
        let at: Vec<DateTime<Utc>> = ws.iter().map(|w| w.received_at).collect();
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let inserted: Vec<Row> = sqlx::query_as(concat!(
            "INSERT INTO webhook_inbox (provider_id, delivery_id, body, received_at)
             SELECT p, d, b, r
             FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])
                  WITH ORDINALITY AS t(p, d, b, r, o)
             ORDER BY o
             ON CONFLICT (provider_id, delivery_id) DO NOTHING
             RETURNING ",
            columns!(),
            ""
        ))
        .bind(&providers)
        .bind(&ids)
        .bind(&bodies)
        .bind(&at)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        let mut fresh: HashMap<(String, String), WebhookEntry> = HashMap::new();
        for row in inserted {
            let e = row.entry()?;
            fresh.insert((e.provider_id.clone(), e.delivery_id.clone()), e);
        }
        let kept: Vec<Row> = if fresh.len() == ws.len() {
            Vec::new()
        } else {
            sqlx::query_as(concat!(
                "SELECT ",
                columns!(),
                " FROM webhook_inbox
                 WHERE (provider_id, delivery_id) IN
                       (SELECT * FROM unnest($1::text[], $2::text[]))"
            ))
            .bind(&providers)
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?
        };
        tx.commit().await.map_err(db_err)?;
        let mut before: HashMap<(String, String), WebhookEntry> = HashMap::new();
        for row in kept {
            let e = row.entry()?;
            before.insert((e.provider_id.clone(), e.delivery_id.clone()), e);
        }
        answer_in_order(ws, fresh, &before)
    }

    pub(super) async fn lease_webhooks_impl(
        &self,
        owner: &str,
        n: u32,
        lease_for: Duration,
    ) -> Result<Vec<WebhookEntry>> {
        let now = Utc::now();
        let until = lease_until(now, lease_for)?;
        // As the sync leases: rows another replica is leasing right now are skipped, and a row
        // leased meanwhile is re-checked against the WHERE clause under READ COMMITTED.
        let rows: Vec<Row> = sqlx::query_as(
            "WITH due AS (
                 SELECT id FROM webhook_inbox
                 WHERE state = 'pending' AND (lease_expires IS NULL OR lease_expires <= $2)
                 ORDER BY id LIMIT $3
                 FOR UPDATE SKIP LOCKED)
             UPDATE webhook_inbox w
             SET lease_owner = $1, lease_expires = $4, attempts = w.attempts + 1
             FROM due WHERE w.id = due.id
             RETURNING w.id, w.provider_id, w.delivery_id, w.body, w.received_at, w.state,
                       w.reason, w.customer_id, w.external_id, w.processed_at, w.attempts,
                       w.lease_owner, w.lease_expires",
        )
        .bind(owner)
        .bind(now)
        .bind(i64::from(n))
        .bind(until)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let mut out = rows
            .into_iter()
            .map(Row::entry)
            .collect::<Result<Vec<_>>>()?;
        out.sort_by_key(|e| e.id);
        Ok(out)
    }

    pub(super) async fn finish_webhook_impl(
        &self,
        id: i64,
        owner: &str,
        outcome: &WebhookOutcome,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE webhook_inbox SET state = $3, reason = $4, customer_id = $5,
                 external_id = $6, processed_at = now(), lease_owner = NULL, lease_expires = NULL
             WHERE id = $1 AND lease_owner = $2 AND state = 'pending'",
        )
        .bind(id)
        .bind(owner)
        .bind(outcome.state.as_str())
        .bind(&outcome.reason)
        .bind(&outcome.customer_id)
        .bind(&outcome.external_id)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn list_webhooks_impl(&self, f: &WebhookFilter) -> Result<Vec<WebhookEntry>> {
        let rows: Vec<Row> = sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM webhook_inbox
             WHERE ($1::text IS NULL OR provider_id = $1) AND ($2::text IS NULL OR state = $2)
               AND id > $3
             ORDER BY id LIMIT $4"
        ))
        .bind(&f.provider_id)
        .bind(f.state.map(WebhookState::as_str))
        .bind(f.after.unwrap_or(0))
        .bind(i64::from(f.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.into_iter().map(Row::entry).collect()
    }

    pub(super) async fn replay_webhook_impl(&self, id: i64) -> Result<WebhookEntry> {
        let row: Option<Row> = sqlx::query_as(concat!(
            "UPDATE webhook_inbox SET state = 'pending', reason = NULL, customer_id = NULL,
                 external_id = NULL, processed_at = NULL, lease_owner = NULL, lease_expires = NULL
             WHERE id = $1 RETURNING ",
            columns!(),
            ""
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.ok_or_else(|| StoreError::NotFound {
            what: "webhook delivery".into(),
        })?
        .entry()
    }

    /// Retention (the partial index of migration 0019): finished rows only.
    pub(super) async fn prune_webhooks_impl(&self, horizon: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM webhook_inbox
             WHERE state IN ('processed', 'ignored') AND processed_at < $1",
        )
        .bind(horizon)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected())
    }

    pub(super) async fn customer_by_link_impl(
        &self,
        provider: &str,
        external_id: &str,
    ) -> Result<Option<String>> {
        sqlx::query_scalar(
            "SELECT customer_id FROM customer_links WHERE provider = $1 AND external_id = $2",
        )
        .bind(provider)
        .bind(external_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)
    }

    pub(super) async fn sync_due_now_impl(
        &self,
        customer_id: &str,
        provider_id: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE sync_state SET next_due = now() WHERE customer_id = $1 AND provider_id = $2",
        )
        .bind(customer_id)
        .bind(provider_id)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }
}

/// Each delivery's answer, in order: new for the first of its key that was inserted, the kept
/// row (not new) otherwise.
fn answer_in_order(
    ws: &[NewWebhook],
    mut fresh: HashMap<(String, String), WebhookEntry>,
    before: &HashMap<(String, String), WebhookEntry>,
) -> Result<Vec<(WebhookEntry, bool)>> {
    let mut seen: HashMap<(String, String), WebhookEntry> = HashMap::new();
    ws.iter()
        .map(|w| {
            let key = (w.provider_id.clone(), w.delivery_id.clone());
            if let Some(e) = fresh.remove(&key) {
                seen.insert(key, e.clone());
                return Ok((e, true));
            }
            seen.get(&key)
                .or_else(|| before.get(&key))
                .map(|e| (e.clone(), false))
                .ok_or_else(|| StoreError::Other("a kept delivery was not read back".into()))
        })
        .collect()
}
