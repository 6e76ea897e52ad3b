//! Processed deliveries written together (`finish_webhooks`): the same rows as saving each
//! refreshed snapshot, making failed pairs due and recording each outcome one by one.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::Utc;
use coffer_store::{
    EventType, NewWebhook, Store, WebhookFilter, WebhookOutcome, WebhookState, WebhookWrite,
};

use super::*;

const HOUR: Duration = Duration::from_secs(3600);

/// Keeps one delivery per body and leases them all to `a`; their ids in order.
async fn leased(s: &dyn Store, bodies: &[&str]) -> Vec<i64> {
    for b in bodies {
        s.insert_webhook(&NewWebhook {
            provider_id: "p100".into(),
            delivery_id: (*b).to_owned(),
            body: (*b).to_owned(),
            received_at: Utc::now(),
        })
        .await
        .unwrap();
    }
    let mut ids: Vec<i64> = s
        .lease_webhooks("a", 100, HOUR)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    ids.sort_unstable();
    assert_eq!(ids.len(), bodies.len());
    ids
}

fn outcome(state: WebhookState, customer: &str) -> WebhookOutcome {
    WebhookOutcome {
        state,
        reason: (state != WebhookState::Processed).then(|| "why".to_owned()),
        customer_id: Some(customer.into()),
        external_id: Some(format!("e-{customer}")),
    }
}

fn refreshed(id: i64, c: &str, at: i64, accounts: Vec<coffer_core::Account>) -> WebhookWrite {
    WebhookWrite {
        id,
        outcome: outcome(WebhookState::Processed, c),
        snapshot: Some((meta(c, "p100", at), accounts)),
        due_now: None,
    }
}

/// `finish_webhooks` by `a`, each answer unwrapped: whether `a` still held the lease.
async fn finish_as_a(s: &dyn Store, batch: &[WebhookWrite]) -> Vec<bool> {
    s.finish_webhooks("a", batch)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

async fn state_of(s: &dyn Store, id: i64) -> (WebhookState, Option<String>) {
    let e = s
        .list_webhooks(&WebhookFilter {
            after: Some(id - 1),
            limit: 1,
            ..WebhookFilter::default()
        })
        .await
        .unwrap()
        .remove(0);
    assert_eq!(e.id, id);
    (e.state, e.customer_id)
}

pub async fn webhook_batches_write_like_one_by_one(s: &dyn Store) {
    for c in ["c1", "c2", "c3", "c4"] {
        s.create_customer(&customer(c, &[("p100", &format!("e-{c}"))]))
            .await
            .unwrap();
    }
    // c2's pair was synced and is not due for an hour.
    let l = s.lease_due("w", 10, HOUR).await.unwrap();
    for l in &l {
        s.release(
            l,
            &coffer_store::SyncOutcome::Success {
                next_due: Utc::now() + chrono::Duration::hours(1),
            },
        )
        .await
        .unwrap();
    }
    save(
        s,
        "c1",
        "p100",
        0,
        &[account("c1", "p100", "x", "BTC", "1", 0)],
    )
    .await;
    let ids = leased(s, &["d1", "d2", "d3", "d4"]).await;
    // d4's lease is lost: replayed meanwhile, so `a` no longer holds it.
    s.replay_webhook(ids[3]).await.unwrap();

    let x1 = account("c1", "p100", "x", "BTC", "0.09872368", 10);
    let y1 = account(
        "c1",
        "p100",
        "y",
        "USDC",
        "1234567890123456789.012345678",
        10,
    );
    let c4 = account("c4", "p100", "z", "EUR", "0.0000001", 10);
    let batch = vec![
        refreshed(ids[0], "c1", 10, vec![x1.clone(), y1.clone()]),
        WebhookWrite {
            id: ids[1],
            outcome: outcome(WebhookState::Failed, "c2"),
            snapshot: None,
            due_now: Some(("c2".into(), "p100".into())),
        },
        WebhookWrite {
            id: ids[2],
            outcome: outcome(WebhookState::Ignored, "c3"),
            snapshot: None,
            due_now: None,
        },
        refreshed(ids[3], "c4", 10, vec![c4.clone()]),
    ];
    let before = super::events::events_after(s, 0).await;
    let r = finish_as_a(s, &batch).await;
    assert_eq!(r, vec![true, true, true, false], "d4's lease was lost");

    // The outcomes of the deliveries `a` held; d4 pending again, for whoever leases it.
    assert_eq!(
        state_of(s, ids[0]).await,
        (WebhookState::Processed, Some("c1".into()))
    );
    assert_eq!(
        state_of(s, ids[1]).await,
        (WebhookState::Failed, Some("c2".into()))
    );
    assert_eq!(
        state_of(s, ids[2]).await,
        (WebhookState::Ignored, Some("c3".into()))
    );
    assert_eq!(state_of(s, ids[3]).await, (WebhookState::Pending, None));

    // The snapshots, exactly, d4's too (the refresh answered whoever records it).
    let mut got = s.customer_accounts("c1").await.unwrap().accounts;
    got.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(got, vec![x1.clone(), y1.clone()]);
    assert_eq!(got[1].balance.to_string(), "1234567890123456789.012345678");
    assert_eq!(s.customer_accounts("c4").await.unwrap().accounts, vec![c4]);
    // History and events as for each snapshot saved alone: x changed, y and z opened.
    let h = s.customer_history("c1", t(5), t(15)).await.unwrap();
    assert_eq!(h.len(), 2, "{h:?}");
    let after = newest_id(&before);
    let mut events: Vec<(EventType, String)> = super::events::events_after(s, after)
        .await
        .into_iter()
        .map(|e| (e.kind, e.account_id.unwrap_or_default()))
        .collect();
    events.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[0].1, x1.id);
    assert!(events[1..].iter().all(|e| e.0 == EventType::AccountOpened));

    // Only the failed pair was made due; the refreshed ones keep their schedule.
    let due = s.lease_due("w", 10, HOUR).await.unwrap();
    let pairs: Vec<&str> = due.iter().map(|l| l.customer_id.as_str()).collect();
    assert_eq!(pairs, vec!["c2"]);
}

fn newest_id(events: &[coffer_store::Event]) -> i64 {
    events.last().map_or(0, |e| e.id)
}

/// Two deliveries refreshing one pair in a batch: both recorded, the newest snapshot kept.
pub async fn webhook_batch_with_a_pair_twice_keeps_the_newest(s: &dyn Store) {
    s.create_customer(&customer("c1", &[("p100", "e-c1")]))
        .await
        .unwrap();
    let ids = leased(s, &["d1", "d2"]).await;
    let newer = account("c1", "p100", "x", "ETH", "2.000000000000000001", 20);
    let batch = vec![
        refreshed(ids[0], "c1", 20, vec![newer.clone()]),
        refreshed(
            ids[1],
            "c1",
            10,
            vec![account("c1", "p100", "x", "ETH", "1", 10)],
        ),
    ];
    let r = finish_as_a(s, &batch).await;
    assert_eq!(r, vec![true, true]);
    assert_eq!(
        s.customer_accounts("c1").await.unwrap().accounts,
        vec![newer]
    );
}
