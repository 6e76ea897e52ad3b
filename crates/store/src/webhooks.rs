//! The webhook inbox's types (DESIGN.md "Push", In): a provider's delivery is kept before it is
//! answered, then processed under a lease by one replica.

use chrono::{DateTime, Utc};

use crate::{Result, StoreError};

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookState {
    /// Received, not processed yet (or re-queued by a replay).
    Pending,
    /// Processed: it refreshed the pair it names.
    Processed,
    /// Kept but acted on by nothing (unknown event, no link, malformed JSON): see its reason.
    Ignored,
    /// Processing failed (the provider's refresh failed): see its reason. Polling reconciles.
    Failed,
}

impl WebhookState {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookState::Pending => "pending",
            WebhookState::Processed => "processed",
            WebhookState::Ignored => "ignored",
            WebhookState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => WebhookState::Pending,
            "processed" => WebhookState::Processed,
            "ignored" => WebhookState::Ignored,
            "failed" => WebhookState::Failed,
            _ => return None,
        })
    }

    pub(crate) fn stored(s: &str) -> Result<Self> {
        Self::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown webhook state `{s}`")))
    }
}

/// A delivery to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    pub provider_id: String,
    /// Derived from the body by the caller: a retried delivery has the same one.
    pub delivery_id: String,
    /// The raw body (as text; bytes that are not UTF-8 are replaced).
    pub body: String,
    pub received_at: DateTime<Utc>,
}

/// A kept delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEntry {
    /// Increasing: the listing's cursor.
    pub id: i64,
    pub provider_id: String,
    pub delivery_id: String,
    pub body: String,
    pub received_at: DateTime<Utc>,
    pub state: WebhookState,
    pub reason: Option<String>,
    /// The pair it refreshed (with `provider_id`), once processed.
    pub customer_id: Option<String>,
    pub external_id: Option<String>,
    pub processed_at: Option<DateTime<Utc>>,
    /// Times it was leased for processing.
    pub attempts: u32,
    pub lease_owner: Option<String>,
    pub lease_expires: Option<DateTime<Utc>>,
}

/// How processing a leased delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookOutcome {
    /// `Processed`, `Ignored` or `Failed` (never `Pending`).
    pub state: WebhookState,
    pub reason: Option<String>,
    pub customer_id: Option<String>,
    pub external_id: Option<String>,
}

/// The admin listing's filters: ids after `after`, ascending.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookFilter {
    pub provider_id: Option<String>,
    pub state: Option<WebhookState>,
    pub after: Option<i64>,
    pub limit: u32,
}

/// One processed delivery, for [`crate::Store::finish_webhooks`]: its outcome with the snapshot
/// its refresh fetched, written together.
#[derive(Debug, Clone)]
pub struct WebhookWrite {
    pub id: i64,
    pub outcome: WebhookOutcome,
    /// The pair's refreshed snapshot, when the refresh succeeded.
    pub snapshot: Option<(crate::SnapshotMeta, Vec<coffer_core::Account>)>,
    /// A pair to make due now (`customer_id`, `provider_id`): a refresh that failed is left to
    /// polling, at once.
    pub due_now: Option<(String, String)>,
}

/// [`crate::Store::finish_webhooks`] one delivery at a time, then one announcement of the
/// customers whose snapshots were written.
pub(crate) async fn finish_webhooks_each<S: crate::Store + ?Sized>(
    store: &S,
    owner: &str,
    batch: &[&WebhookWrite],
) -> Vec<Result<bool>> {
    let mut out = Vec::with_capacity(batch.len());
    let mut saved: Vec<&str> = Vec::new();
    for w in batch {
        if let Some((meta, accounts)) = &w.snapshot {
            // The outcome is still recorded: the refresh answered, and the next sync writes
            // the pair again.
            match store.save_snapshot(meta, accounts).await {
                Ok(_) => saved.push(&meta.customer_id),
                Err(e) => {
                    tracing::warn!(id = w.id, customer = %meta.customer_id, provider = %meta.provider_id, error = %e, "refreshed snapshot not saved");
                }
            }
        }
        if let Some((customer, provider)) = &w.due_now
            && let Err(e) = store.sync_due_now(customer, provider).await
        {
            out.push(Err(e));
            continue;
        }
        out.push(store.finish_webhook(w.id, owner, &w.outcome).await);
    }
    saved.sort_unstable();
    saved.dedup();
    for customer in saved {
        if let Err(e) = store.notify_changed(Some(customer)).await {
            tracing::debug!(error = %e, "refresh not announced to other replicas");
        }
    }
    out
}
