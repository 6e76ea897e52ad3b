//! Processed webhook deliveries in one transaction: the snapshots their refreshes fetched
//! (written as a sync batch writes them), the pairs left to polling, every outcome, the
//! outbox events and the announcement to the other replicas. One delivery at a time cost a
//! dozen statements and two commits each, and a burst of 1,000 kept PostgreSQL's CPU busy for
//! seconds (docs/benchmarks.md, "Webhook inbox").

use std::collections::HashSet;

use sqlx::{Postgres, Transaction};

use super::PgStore;
use super::batch::Snap;
use crate::error::db_err;
use crate::webhooks::finish_webhooks_each;
use crate::{Result, Store, StoreError, WebhookWrite, plan};

impl PgStore {
    pub(super) async fn finish_webhooks_impl(
        &self,
        owner: &str,
        batch: &[WebhookWrite],
    ) -> Vec<Result<bool>> {
        let items: Vec<&WebhookWrite> = batch.iter().collect();
        if !distinct(&items) {
            // A pair (or an account) twice: one statement may not write a row twice, and the
            // later write must see the earlier one.
            return finish_webhooks_each(self, owner, &items).await;
        }
        match self.write_webhooks(owner, &items).await {
            Ok(recorded) => items.iter().map(|w| Ok(recorded.contains(&w.id))).collect(),
            Err(e) if e.is_retryable() && self.ping().await.is_err() => items
                .iter()
                .map(|_| Err(StoreError::Unavailable(e.to_string())))
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, deliveries = items.len(), "webhook batch not written at once; writing its deliveries one by one");
                finish_webhooks_each(self, owner, &items).await
            }
        }
    }

    /// The whole batch, or nothing; returns the deliveries whose outcomes were recorded (the
    /// others' leases were lost).
    async fn write_webhooks(&self, owner: &str, items: &[&WebhookWrite]) -> Result<HashSet<i64>> {
        let mut snaps: Vec<Snap<'_>> = Vec::new();
        for w in items {
            if let Some((meta, accounts)) = &w.snapshot {
                // Refused by the store whatever the batch: logged, as one by one would.
                match plan::validate(meta, accounts) {
                    Ok(()) => snaps.push((meta, accounts.as_slice())),
                    Err(e) => {
                        tracing::warn!(id = w.id, customer = %meta.customer_id, provider = %meta.provider_id, error = %e, "refreshed snapshot not saved");
                    }
                }
            }
        }
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        // As for a snapshot: a commit lost in a crash leaves the deliveries leased, and they
        // are processed again when their leases expire.
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let recorded = record_outcomes(&mut tx, owner, items).await?;
        due_now(&mut tx, items).await?;
        self.save_and_commit(tx, snaps, Vec::new()).await?;
        Ok(recorded)
    }
}

/// Whether every refreshed pair, and every account id, appears once in the batch.
fn distinct(items: &[&WebhookWrite]) -> bool {
    let mut pairs = HashSet::new();
    let mut ids = HashSet::new();
    items
        .iter()
        .filter_map(|w| w.snapshot.as_ref())
        .all(|(m, a)| {
            pairs.insert((&m.customer_id, &m.provider_id)) && a.iter().all(|a| ids.insert(&a.id))
        })
}

/// Every outcome, where `owner` still holds the delivery's lease (as `finish_webhook`).
async fn record_outcomes(
    tx: &mut Transaction<'static, Postgres>,
    owner: &str,
    items: &[&WebhookWrite],
) -> Result<HashSet<i64>> {
    let ids: Vec<i64> = items.iter().map(|w| w.id).collect();
    let states: Vec<&str> = items.iter().map(|w| w.outcome.state.as_str()).collect();
    let reasons: Vec<Option<&str>> = items.iter().map(|w| w.outcome.reason.as_deref()).collect();
    let customers: Vec<Option<&str>> = items
        .iter()
        .map(|w| w.outcome.customer_id.as_deref())
        .collect();
    let externals: Vec<Option<&str>> = items
        .iter()
        .map(|w| w.outcome.external_id.as_deref())
        .collect();
    let done: Vec<i64> = sqlx::query_scalar(
        "UPDATE webhook_inbox w SET state = t.s, reason = t.r, customer_id = t.c,
             external_id = t.x, processed_at = now(), lease_owner = NULL, lease_expires = NULL
         FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[])
             AS t(id, s, r, c, x)
         WHERE w.id = t.id AND w.lease_owner = $1 AND w.state = 'pending'
         RETURNING w.id",
    )
    .bind(owner)
    .bind(ids)
    .bind(states)
    .bind(reasons)
    .bind(customers)
    .bind(externals)
    .fetch_all(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(done.into_iter().collect())
}

/// The pairs whose refreshes failed: due now, so polling takes them at once.
async fn due_now(tx: &mut Transaction<'static, Postgres>, items: &[&WebhookWrite]) -> Result<()> {
    let mut pairs: Vec<(&str, &str)> = items
        .iter()
        .filter_map(|w| w.due_now.as_ref())
        .map(|(c, p)| (c.as_str(), p.as_str()))
        .collect();
    if pairs.is_empty() {
        return Ok(());
    }
    // Key order, as the snapshots.
    pairs.sort_unstable();
    pairs.dedup();
    let (customers, providers): (Vec<&str>, Vec<&str>) = pairs.into_iter().unzip();
    sqlx::query(
        "UPDATE sync_state s SET next_due = now()
         FROM UNNEST($1::text[], $2::text[]) AS t(c, p)
         WHERE s.customer_id = t.c AND s.provider_id = t.p",
    )
    .bind(customers)
    .bind(providers)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(())
}
