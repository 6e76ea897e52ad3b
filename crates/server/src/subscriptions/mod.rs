//! Delivering events to subscriptions: a worker beside the sync worker fans the outbox out into
//! deliveries, leases due ones (any replica; never the same attempt on two) and POSTs each,
//! signed per Standard Webhooks, at least once. A failed attempt is retried with backoff; a
//! subscription failing for `subscriptions.disable_after` is disabled.
//!
//! A dead or slow receiver costs this worker only (each attempt is bounded by
//! `subscriptions.timeout`): syncs and requests never wait for a delivery.

pub mod sign;

use std::time::Duration;

use chrono::Utc;
use coffer_store::{AttemptOutcome, LeasedDelivery};
use tokio::sync::watch;

use crate::config::SubscriptionsConfig;
use crate::event_body::EventOut;
use crate::state::AppState;

/// Events fanned out per subscription per round.
const FAN_OUT: u32 = 500;

/// Runs until `shutdown`.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let cfg = state.config.subscriptions.clone();
    let client = match reqwest::Client::builder()
        .timeout(cfg.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "subscription deliveries cannot start");
            return;
        }
    };
    let mut wake = state.store.event_wake();
    loop {
        wake.borrow_and_update();
        let full = round(&state, &client, &cfg).await;
        if *shutdown.borrow() {
            return;
        }
        if full {
            continue;
        }
        tokio::select! {
            r = wake.changed() => if r.is_err() { tokio::time::sleep(cfg.poll_interval).await },
            () = tokio::time::sleep(cfg.poll_interval) => {},
            _ = shutdown.changed() => if *shutdown.borrow() { return },
        }
    }
}

/// One round: fan out, lease, attempt, record. `true` when there may be more due at once.
async fn round(state: &AppState, client: &reqwest::Client, cfg: &SubscriptionsConfig) -> bool {
    if let Err(e) = state.store.fan_out(FAN_OUT).await {
        tracing::warn!(error = %e, "events not fanned out to subscriptions; retrying");
    }
    let leased = match state
        .store
        .lease_deliveries(&state.instance_id, cfg.batch, cfg.lease)
        .await
    {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "deliveries not leased; retrying");
            return false;
        }
    };
    let full = leased.len() as u64 >= u64::from(cfg.batch);
    let attempts = leased.into_iter().map(|d| async move {
        let outcome = attempt(client, &d, cfg).await;
        crate::metrics::delivery(if outcome.delivered {
            "delivered"
        } else {
            "failed"
        });
        if let Err(e) = state
            .store
            .finish_delivery(d.delivery.id, &state.instance_id, &outcome)
            .await
        {
            tracing::warn!(error = %e, delivery = d.delivery.id, "delivery outcome not recorded");
        }
    });
    futures::future::join_all(attempts).await;
    full
}

/// The wait before attempt `attempts + 1`: `retry_base` doubled per attempt made, at most
/// `max_backoff`.
pub fn backoff(cfg: &SubscriptionsConfig, attempts: u32) -> Duration {
    let doubled = cfg
        .retry_base
        .saturating_mul(1u32 << attempts.saturating_sub(1).min(20));
    doubled.min(cfg.max_backoff)
}

/// The message id a receiver deduplicates on: the same for every attempt of one delivery.
pub fn message_id(event_id: i64) -> String {
    format!("evt_{event_id}")
}

async fn attempt(
    client: &reqwest::Client,
    d: &LeasedDelivery,
    cfg: &SubscriptionsConfig,
) -> AttemptOutcome {
    let retry_at = Utc::now()
        + chrono::Duration::from_std(backoff(cfg, d.delivery.attempts))
            .unwrap_or(chrono::Duration::MAX);
    let failed = |status: Option<u16>, error: String| AttemptOutcome {
        delivered: false,
        status,
        error: Some(error),
        retry_at,
        disable_after: cfg.disable_after,
    };
    let Some(key) = sign::secret_key(&d.secret) else {
        return failed(
            None,
            "the subscription's secret is not whsec_<base64>".into(),
        );
    };
    let body = match serde_json::to_vec(&EventOut::from(d.event.clone())) {
        Ok(b) => b,
        Err(e) => return failed(None, format!("event not serialised: {e}")),
    };
    let id = message_id(d.event.id);
    let ts = Utc::now().timestamp();
    let sent = client
        .post(&d.url)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", sign::signature(&key, &id, ts, &body))
        .body(body)
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => AttemptOutcome {
            delivered: true,
            status: Some(r.status().as_u16()),
            error: None,
            retry_at,
            disable_after: cfg.disable_after,
        },
        Ok(r) => failed(Some(r.status().as_u16()), format!("HTTP {}", r.status())),
        Err(e) if e.is_timeout() => failed(None, format!("no answer within {:?}", cfg.timeout)),
        Err(e) => failed(None, format!("not delivered: {}", without_url(&e))),
    }
}

/// reqwest's error text names the URL, which may carry a token: leave it out.
fn without_url(e: &reqwest::Error) -> String {
    if e.is_connect() {
        "cannot connect".into()
    } else if e.is_request() {
        "request failed".into()
    } else {
        "transport error".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let cfg = SubscriptionsConfig::default();
        assert_eq!(backoff(&cfg, 1), Duration::from_secs(5));
        assert_eq!(backoff(&cfg, 2), Duration::from_secs(10));
        assert_eq!(backoff(&cfg, 5), Duration::from_secs(80));
        assert_eq!(backoff(&cfg, 40), cfg.max_backoff);
    }
}
