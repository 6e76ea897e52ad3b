//! Telling every replica that something changed: the local L1 cache and rate cache are dropped
//! at once, and other replicas hear it through the store's notifications (PostgreSQL
//! `LISTEN/NOTIFY`; nothing to tell with SQLite, which runs one replica).

use std::time::Duration;

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
/// serves one replica (SQLite). When the store cannot be reached at start-up, keeps trying (and
/// drops everything once it listens, since changes announced meanwhile were missed).
pub async fn listen(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(100);
    let mut missed = false;
    let mut rx = loop {
        match state.store.subscribe_changes().await {
            Ok(Some(rx)) => break rx,
            Ok(None) => return,
            Err(e) => {
                if !missed {
                    tracing::warn!(error = %e, "cannot listen for other replicas' changes yet; retrying");
                }
                missed = true;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {},
            _ = shutdown.changed() => if *shutdown.borrow() { return },
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    };
    if missed {
        apply_local(&state, None).await;
    }
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
