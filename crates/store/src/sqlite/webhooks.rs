//! The webhook inbox on SQLite: one replica, so a `BEGIN IMMEDIATE` transaction makes a lease
//! exclusive.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::SqliteStore;
use crate::error::db_err;
use crate::lease::lease_until;
use crate::rows;
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
    received_at: String,
    state: String,
    reason: Option<String>,
    customer_id: Option<String>,
    external_id: Option<String>,
    processed_at: Option<String>,
    attempts: i64,
    lease_owner: Option<String>,
    lease_expires: Option<String>,
}

impl Row {
    fn entry(self) -> Result<WebhookEntry> {
        Ok(WebhookEntry {
            id: self.id,
            received_at: rows::parse_ts(&self.received_at)?,
            state: WebhookState::stored(&self.state)?,
            processed_at: rows::opt_ts(self.processed_at.as_deref())?,
            lease_expires: rows::opt_ts(self.lease_expires.as_deref())?,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
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

impl SqliteStore {
    pub(super) async fn insert_webhook_impl(&self, w: &NewWebhook) -> Result<(WebhookEntry, bool)> {
        let mut tx = self.write().await?;
        let out = insert_one(&mut tx, w).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(out)
    }

    /// One transaction, one commit for all (SQLite has one writer: statements are cheap, the
    /// commit is what costs).
    pub(super) async fn insert_webhooks_impl(
        &self,
        ws: &[NewWebhook],
    ) -> Result<Vec<(WebhookEntry, bool)>> {
        if ws.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.write().await?;
        let mut out = Vec::with_capacity(ws.len());
        for w in ws {
            out.push(insert_one(&mut tx, w).await?);
        }
        tx.commit().await.map_err(db_err)?;
        Ok(out)
    }

    pub(super) async fn lease_webhooks_impl(
        &self,
        owner: &str,
        n: u32,
        lease_for: Duration,
    ) -> Result<Vec<WebhookEntry>> {
        let now = Utc::now();
        let until = lease_until(now, lease_for)?;
        let mut tx = self.write().await?;
        let leased: Vec<Row> = sqlx::query_as(concat!(
            "UPDATE webhook_inbox SET lease_owner = ?1, lease_expires = ?2, attempts = attempts + 1
             WHERE id IN (
                 SELECT id FROM webhook_inbox
                 WHERE state = 'pending' AND (lease_expires IS NULL OR lease_expires <= ?3)
                 ORDER BY id LIMIT ?4)
             RETURNING ",
            columns!(),
            ""
        ))
        .bind(owner)
        .bind(rows::ts(until))
        .bind(rows::ts(now))
        .bind(i64::from(n))
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        let mut out = leased
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
            "UPDATE webhook_inbox SET state = ?3, reason = ?4, customer_id = ?5,
                 external_id = ?6, processed_at = ?7, lease_owner = NULL, lease_expires = NULL
             WHERE id = ?1 AND lease_owner = ?2 AND state = 'pending'",
        )
        .bind(id)
        .bind(owner)
        .bind(outcome.state.as_str())
        .bind(&outcome.reason)
        .bind(&outcome.customer_id)
        .bind(&outcome.external_id)
        .bind(rows::ts(Utc::now()))
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
             WHERE (?1 IS NULL OR provider_id = ?1) AND (?2 IS NULL OR state = ?2) AND id > ?3
             ORDER BY id LIMIT ?4"
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
             WHERE id = ? RETURNING ",
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

    /// Retention, as `postgres/webhooks.rs` (timestamps are fixed-width UTC text, so they
    /// compare as text).
    pub(super) async fn prune_webhooks_impl(&self, horizon: DateTime<Utc>) -> Result<u64> {
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "DELETE FROM webhook_inbox
             WHERE state IN ('processed', 'ignored') AND processed_at < ?",
        )
        .bind(rows::ts(horizon))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(done.rows_affected())
    }

    pub(super) async fn customer_by_link_impl(
        &self,
        provider: &str,
        external_id: &str,
    ) -> Result<Option<String>> {
        sqlx::query_scalar(
            "SELECT customer_id FROM customer_links WHERE provider = ? AND external_id = ?",
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
        sqlx::query("UPDATE sync_state SET next_due = ? WHERE customer_id = ? AND provider_id = ?")
            .bind(rows::ts(Utc::now()))
            .bind(customer_id)
            .bind(provider_id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }
}

async fn insert_one(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    w: &NewWebhook,
) -> Result<(WebhookEntry, bool)> {
    let inserted = sqlx::query(
        "INSERT INTO webhook_inbox (provider_id, delivery_id, body, received_at)
         VALUES (?, ?, ?, ?) ON CONFLICT (provider_id, delivery_id) DO NOTHING",
    )
    .bind(&w.provider_id)
    .bind(&w.delivery_id)
    .bind(&w.body)
    .bind(rows::ts(w.received_at))
    .execute(&mut **tx)
    .await
    .map_err(db_err)?
    .rows_affected()
        == 1;
    let row: Row = sqlx::query_as(concat!(
        "SELECT ",
        columns!(),
        " FROM webhook_inbox WHERE provider_id = ? AND delivery_id = ?"
    ))
    .bind(&w.provider_id)
    .bind(&w.delivery_id)
    .fetch_one(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok((row.entry()?, inserted))
}
