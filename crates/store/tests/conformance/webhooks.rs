//! The webhook inbox: a retried delivery kept once, leases exclusive and taken over when
//! expired, outcomes written only by the lease's holder, replay, the listing's filters.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::Utc;
use coffer_store::{NewWebhook, Store, StoreError, WebhookFilter, WebhookOutcome, WebhookState};

use super::*;

fn delivery(provider: &str, body: &str) -> NewWebhook {
    NewWebhook {
        provider_id: provider.into(),
        // The caller derives it from the body; any stable function of it will do here.
        delivery_id: format!("{provider}:{body}"),
        body: body.into(),
        received_at: Utc::now(),
    }
}

fn processed(customer: &str) -> WebhookOutcome {
    WebhookOutcome {
        state: WebhookState::Processed,
        reason: None,
        customer_id: Some(customer.into()),
        external_id: Some(format!("ext-{customer}")),
    }
}

const HOUR: Duration = Duration::from_secs(3600);

pub async fn webhook_retries_are_kept_once(s: &dyn Store) {
    let (first, new) = s
        .insert_webhook(&delivery("p100", r#"{"a":1}"#))
        .await
        .unwrap();
    assert!(new);
    assert_eq!(first.state, WebhookState::Pending);
    assert_eq!(first.body, r#"{"a":1}"#);
    let (again, new) = s
        .insert_webhook(&delivery("p100", r#"{"a":1}"#))
        .await
        .unwrap();
    assert!(!new, "a retry is not kept again");
    assert_eq!(again.id, first.id);
    // Another body, or the same body at another provider, is another delivery.
    let (other, new) = s
        .insert_webhook(&delivery("p100", r#"{"a":2}"#))
        .await
        .unwrap();
    assert!(new);
    assert!(other.id > first.id, "ids increase");
    assert!(
        s.insert_webhook(&delivery("p2", r#"{"a":1}"#))
            .await
            .unwrap()
            .1
    );
    let all = s
        .list_webhooks(&WebhookFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
}

pub async fn webhook_leases_are_exclusive_and_expire(s: &dyn Store) {
    for i in 0..10 {
        s.insert_webhook(&delivery("p100", &format!("{i}")))
            .await
            .unwrap();
    }
    let (a, b) = tokio::join!(
        s.lease_webhooks("a", 6, HOUR),
        s.lease_webhooks("b", 6, HOUR)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.len() + b.len(), 10, "a {} b {}", a.len(), b.len());
    let mut ids: Vec<i64> = a.iter().chain(&b).map(|e| e.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 10, "no delivery leased twice");
    assert!(
        a.iter()
            .all(|e| e.lease_owner.as_deref() == Some("a") && e.attempts == 1)
    );
    assert!(s.lease_webhooks("c", 10, HOUR).await.unwrap().is_empty());

    // A dead owner's short lease is taken over once it expires; its late outcome is dropped.
    s.insert_webhook(&delivery("p100", "late")).await.unwrap();
    let short = s
        .lease_webhooks("dead", 10, Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(short.len(), 1);
    assert!(
        s.lease_webhooks("alive", 10, HOUR)
            .await
            .unwrap()
            .is_empty()
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let taken = s.lease_webhooks("alive", 10, HOUR).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].id, short[0].id);
    assert_eq!(taken[0].attempts, 2);
    assert!(
        !s.finish_webhook(short[0].id, "dead", &processed("x"))
            .await
            .unwrap()
    );
    assert!(
        s.finish_webhook(taken[0].id, "alive", &processed("c1"))
            .await
            .unwrap()
    );
    let done = s
        .list_webhooks(&WebhookFilter {
            state: Some(WebhookState::Processed),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].customer_id.as_deref(), Some("c1"));
    assert_eq!(done[0].external_id.as_deref(), Some("ext-c1"));
    assert!(done[0].processed_at.is_some());
    assert_eq!(done[0].lease_owner, None);
    // Finished, it is never leased again.
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(s.lease_webhooks("d", 10, HOUR).await.unwrap().is_empty());
}

pub async fn webhook_replay_requeues(s: &dyn Store) {
    let (e, _) = s.insert_webhook(&delivery("p100", "x")).await.unwrap();
    let l = s.lease_webhooks("a", 1, HOUR).await.unwrap();
    let ignored = WebhookOutcome {
        state: WebhookState::Ignored,
        reason: Some("no link".into()),
        customer_id: None,
        external_id: None,
    };
    assert!(s.finish_webhook(l[0].id, "a", &ignored).await.unwrap());
    let back = s.replay_webhook(e.id).await.unwrap();
    assert_eq!(back.state, WebhookState::Pending);
    assert_eq!((back.reason, back.processed_at), (None, None));
    let again = s.lease_webhooks("b", 1, HOUR).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);
    assert!(matches!(
        s.replay_webhook(e.id + 1000).await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn webhook_listing_filters_and_pages(s: &dyn Store) {
    for i in 0..5 {
        s.insert_webhook(&delivery("p100", &format!("{i}")))
            .await
            .unwrap();
        s.insert_webhook(&delivery("p2", &format!("{i}")))
            .await
            .unwrap();
    }
    let page = |after, provider: Option<&str>, state| WebhookFilter {
        provider_id: provider.map(str::to_owned),
        state,
        after,
        limit: 3,
    };
    let first = s
        .list_webhooks(&page(None, Some("p100"), None))
        .await
        .unwrap();
    assert_eq!(first.len(), 3);
    assert!(first.iter().all(|e| e.provider_id == "p100"));
    let rest = s
        .list_webhooks(&page(first.last().map(|e| e.id), Some("p100"), None))
        .await
        .unwrap();
    assert_eq!(rest.len(), 2);
    assert!(rest[0].id > first[2].id);
    let pending = s
        .list_webhooks(&page(None, None, Some(WebhookState::Pending)))
        .await
        .unwrap();
    assert_eq!(pending.len(), 3);
    let ignored = s
        .list_webhooks(&page(None, None, Some(WebhookState::Ignored)))
        .await
        .unwrap();
    assert!(ignored.is_empty());
}

pub async fn links_are_found_by_external_id_and_made_due(s: &dyn Store) {
    s.create_customer(&customer("c1", &[("p100", "e1")]))
        .await
        .unwrap();
    assert_eq!(
        s.customer_by_link("p100", "e1").await.unwrap().as_deref(),
        Some("c1")
    );
    assert_eq!(s.customer_by_link("p100", "nobody").await.unwrap(), None);
    assert_eq!(s.customer_by_link("bank", "e1").await.unwrap(), None);
    // Leased and released with a far next_due: not due.
    let l = s.lease_due("a", 10, HOUR).await.unwrap();
    s.release(
        &l[0],
        &coffer_store::SyncOutcome::Success {
            next_due: Utc::now() + chrono::Duration::hours(1),
        },
    )
    .await
    .unwrap();
    assert!(s.lease_due("a", 10, HOUR).await.unwrap().is_empty());
    s.sync_due_now("c1", "p100").await.unwrap();
    let st = s.sync_states("c1").await.unwrap();
    assert!(st[0].next_due <= Utc::now());
    assert_eq!(s.lease_due("a", 10, HOUR).await.unwrap().len(), 1);
}

/// Retention (`webhooks.retention`): what processing finished (`processed`, `ignored`) goes
/// once it finished before the horizon; `pending` (leased or not) and `failed` stay, however
/// old; a replayed delivery is pending again and kept until it finishes anew.
pub async fn webhook_retention_keeps_what_is_unfinished(s: &dyn Store) {
    let outcome = |state, reason: Option<&str>| WebhookOutcome {
        state,
        reason: reason.map(str::to_owned),
        customer_id: None,
        external_id: None,
    };
    let ids: Vec<i64> = {
        let mut v = Vec::new();
        for body in [
            "processed",
            "ignored",
            "failed",
            "leased",
            "replayed",
            "pending",
        ] {
            v.push(
                s.insert_webhook(&delivery("p100", body))
                    .await
                    .unwrap()
                    .0
                    .id,
            );
        }
        v
    };
    // Lease the first four, then the replayed one; `pending` is never leased.
    let leased = s.lease_webhooks("a", 4, HOUR).await.unwrap();
    assert_eq!(leased.len(), 4);
    let finish = |id, o: WebhookOutcome| async move {
        assert!(s.finish_webhook(id, "a", &o).await.unwrap());
    };
    finish(ids[0], processed("c1")).await;
    finish(ids[1], outcome(WebhookState::Ignored, Some("no link"))).await;
    finish(
        ids[2],
        outcome(WebhookState::Failed, Some("refresh failed")),
    )
    .await;
    // Leased and still being processed: `ids[3]`. The replayed one finishes, then is replayed.
    let r = s.lease_webhooks("a", 1, HOUR).await.unwrap();
    assert_eq!(r[0].id, ids[4]);
    finish(ids[4], processed("c2")).await;
    s.replay_webhook(ids[4]).await.unwrap();

    // A horizon before they finished deletes nothing.
    let before = Utc::now() - chrono::Duration::hours(1);
    assert_eq!(s.prune_webhooks(before).await.unwrap(), 0);
    // A horizon after: the processed and the ignored go, nothing else.
    let after = Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(s.prune_webhooks(after).await.unwrap(), 2);
    let kept = s
        .list_webhooks(&WebhookFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let kept: Vec<(i64, WebhookState)> = kept.iter().map(|e| (e.id, e.state)).collect();
    assert_eq!(
        kept,
        vec![
            (ids[2], WebhookState::Failed),
            (ids[3], WebhookState::Pending),
            (ids[4], WebhookState::Pending),
            (ids[5], WebhookState::Pending),
        ]
    );
    // Deleting twice deletes nothing more (replicas prune without a lock).
    assert_eq!(s.prune_webhooks(after).await.unwrap(), 0);
    // The lease still holds: the leased delivery finishes, and then it may go.
    assert!(
        s.finish_webhook(ids[3], "a", &processed("c3"))
            .await
            .unwrap()
    );
    let later = Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(s.prune_webhooks(later).await.unwrap(), 1);
    // A pruned body delivered again is a new delivery (the duplicate check is of kept rows).
    let (again, new) = s
        .insert_webhook(&delivery("p100", "processed"))
        .await
        .unwrap();
    assert!(new);
    assert!(again.id > ids[5]);
}

/// A batch (the receiving path's group commit) answers as one delivery at a time would: a
/// body kept before, or twice in the batch, is not new; new ones get increasing ids in order.
pub async fn webhook_batches_are_kept_like_single_deliveries(s: &dyn Store) {
    assert!(s.insert_webhooks(&[]).await.unwrap().is_empty());
    let (first, _) = s.insert_webhook(&delivery("p100", "before")).await.unwrap();
    let batch = [
        delivery("p100", "before"),
        delivery("p100", "a"),
        delivery("p100", "a"),
        delivery("p2", "a"),
        NewWebhook {
            // The server's ids are hex; the body is as sent.
            delivery_id: "p100:b-nul".into(),
            ..delivery("p100", "b\0nul")
        },
    ];
    let got = s.insert_webhooks(&batch).await.unwrap();
    let answers: Vec<(i64, bool)> = got.iter().map(|(e, new)| (e.id, *new)).collect();
    assert_eq!(answers.len(), 5);
    assert_eq!(answers[0], (first.id, false), "kept before");
    assert!(answers[1].1 && answers[1].0 > first.id);
    assert_eq!(
        answers[2],
        (answers[1].0, false),
        "twice in the batch: kept once"
    );
    assert!(
        answers[3].1 && answers[3].0 > answers[1].0,
        "ids in input order"
    );
    assert!(answers[4].1 && answers[4].0 > answers[3].0);
    assert_eq!(got[3].0.provider_id, "p2");
    assert!(got.iter().all(|(e, _)| e.state == WebhookState::Pending));
    // Each row as `insert_webhook` would keep it (a NUL may be replaced: PostgreSQL text).
    assert!(got[4].0.body.starts_with('b') && got[4].0.body.ends_with("nul"));
    let all = s
        .list_webhooks(&WebhookFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
    // And the batch's rows are leased like any.
    assert_eq!(s.lease_webhooks("a", 10, HOUR).await.unwrap().len(), 4);
}
