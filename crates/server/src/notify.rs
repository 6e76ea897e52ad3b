//! Telling every replica that something changed: the local L1 cache and rate cache are dropped
//! at once, and other replicas hear it through the store's notifications (PostgreSQL
//! `LISTEN/NOTIFY`; nothing to tell with SQLite, which runs one replica).

use crate::state::AppState;

/// `customer`: that customer's data changed; `None`: rates or something global changed.
pub async fn changed(state: &AppState, customer: Option<&str>) {
    apply_local(state, customer).await;
    if let Err(e) = state.store.notify_changed(customer).await {
        tracing::warn!(error = %e, "change not announced to other replicas");
    }
}

/// Applies a change heard from another replica (or made here).
pub async fn apply_local(state: &AppState, customer: Option<&str>) {
    match customer {
        Some(c) => state.fresh.invalidate(c).await,
        None => {
            state.fresh.invalidate_all();
            state.rates.invalidate().await;
            state.keys.invalidate_all();
        }
    }
}

/// Applies what other replicas announce until `shutdown`. Returns at once on a backend that
/// serves one replica (SQLite).
pub async fn listen(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut rx = match state.store.subscribe_changes().await {
        Ok(Some(rx)) => rx,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for other replicas' changes; the L1 cache expires by its TTL only");
            return;
        }
    };
    loop {
        tokio::select! {
            change = rx.recv() => match change {
                // This replica already applied its own changes.
                Some(c) if c.local => {}
                Some(c) => apply_local(&state, c.customer_id.as_deref()).await,
                None => return,
            },
            _ = shutdown.changed() => if *shutdown.borrow() { return },
        }
    }
}
