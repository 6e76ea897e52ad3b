//! The inbox's processor: leases pending deliveries (shared by the replicas through leases in
//! the store, like the sync worker's pairs), acts on each, and records the outcome. Woken at
//! once by a delivery this replica kept; deliveries kept by other replicas, or left by one
//! that stopped, are found by polling every `webhooks.poll_interval`.

use std::time::Instant;

use coffer_store::{StoreError, WebhookEntry, WebhookOutcome, WebhookState};
use tokio::sync::watch;

use super::event::{Event, classify};
use crate::state::AppState;

/// Runs until `shutdown` turns true; the delivery being processed is finished first.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let cfg = state.config.webhooks.clone();
    tracing::info!(instance = %state.instance_id, poll = ?cfg.poll_interval, "webhook processor started");
    loop {
        if *shutdown.borrow() {
            break;
        }
        // Registered before leasing, so a delivery kept while leasing still wakes the loop.
        let woken = state.webhook_wake.notified();
        let leased = match state
            .store
            .lease_webhooks(&state.instance_id, cfg.batch.max(1), cfg.lease)
            .await
        {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "webhooks: cannot lease deliveries; retrying");
                Vec::new()
            }
        };
        if leased.is_empty() {
            tokio::select! {
                () = woken => {},
                () = tokio::time::sleep(cfg.poll_interval) => {},
                _ = shutdown.changed() => {},
            }
            continue;
        }
        // At most `batch` at once, all within the lease.
        futures::future::join_all(leased.iter().map(|e| finish(&state, e))).await;
    }
    tracing::info!("webhook processor stopped");
}

/// Processes one leased delivery and records its outcome. A store that cannot be reached
/// leaves the delivery leased: it is processed again once the lease expires.
async fn finish(state: &AppState, entry: &WebhookEntry) {
    let outcome = match handle(state, entry).await {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(id = entry.id, error = %e, "webhook not processed; retried after its lease");
            return;
        }
    };
    let label = match outcome.state {
        WebhookState::Processed => "processed",
        WebhookState::Failed => "failed",
        WebhookState::Ignored | WebhookState::Pending => "ignored",
    };
    match state
        .store
        .finish_webhook(entry.id, &state.instance_id, &outcome)
        .await
    {
        Ok(true) => crate::metrics::webhook(&entry.provider_id, label),
        Ok(false) => {
            tracing::debug!(
                id = entry.id,
                "webhook lease lost; another replica records it"
            );
        }
        Err(e) => tracing::warn!(id = entry.id, error = %e, "webhook outcome not recorded"),
    }
}

fn ignored(reason: String, external_id: Option<String>) -> WebhookOutcome {
    WebhookOutcome {
        state: WebhookState::Ignored,
        reason: Some(reason),
        customer_id: None,
        external_id,
    }
}

async fn handle(state: &AppState, entry: &WebhookEntry) -> Result<WebhookOutcome, StoreError> {
    let external_id = match classify(entry.body.as_bytes()) {
        Event::Ignored(reason) => return Ok(ignored(reason, None)),
        Event::UserStatus {
            status,
            external_id,
        } if status != "ACTIVE" => {
            return Ok(ignored(
                format!("user status `{status}`"),
                Some(external_id),
            ));
        }
        Event::UserStatus { external_id, .. } | Event::ForUser { external_id, .. } => external_id,
    };
    let provider = &entry.provider_id;
    let Some(customer) = state.store.customer_by_link(provider, &external_id).await? else {
        return Ok(ignored("no link to this user".into(), Some(external_id)));
    };
    // A pending link (the user not ACTIVE yet) waits out a backoff: make it syncable now, so
    // polling takes it at once even if this refresh fails.
    state.store.sync_due_now(&customer, provider).await?;
    let refreshed = state
        .fresh
        .fetch_pair(&customer, provider, &external_id, Some(Instant::now()))
        .await;
    // `fetch_pair` announced the save to the other replicas; this replica's L1 is dropped here.
    state.fresh.invalidate(&customer).await;
    Ok(match refreshed {
        Ok(_) => WebhookOutcome {
            state: WebhookState::Processed,
            reason: None,
            customer_id: Some(customer),
            external_id: Some(external_id),
        },
        Err(e) => WebhookOutcome {
            state: WebhookState::Failed,
            reason: Some(format!("refresh failed: {}", e.kind.as_str())),
            customer_id: Some(customer),
            external_id: Some(external_id),
        },
    })
}
