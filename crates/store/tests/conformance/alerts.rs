//! Alerts: creation and deletion audited, an evaluation written by compare-and-set (two
//! evaluations of one version write one crossing), its event in the outbox; subscriptions'
//! creation and deletion audited without their secret.
#![allow(unused_imports, clippy::unwrap_used)]

use std::time::Duration;

use chrono::Utc;
use coffer_store::{
    Actor, Alert, AuditFilter, Direction, EventFilter, EventType, NewAlert, NewSubscription, Scope,
    Store, StoreError, evaluate_alert,
};

use super::*;

fn new_alert(id: &str) -> NewAlert {
    NewAlert {
        id: id.into(),
        name: "low cash".into(),
        query: "customer_id=c1&currency=EUR".into(),
        customer_id: Some("c1".into()),
        direction: Direction::Below,
        bound: d("100.10"),
        created_at: t(0),
    }
}

fn audit_actions(entries: &[coffer_store::AuditEntry]) -> Vec<&str> {
    entries.iter().rev().map(|e| e.action.as_str()).collect()
}

async fn crossings(s: &dyn Store) -> Vec<coffer_store::Event> {
    let f = EventFilter {
        scope: Scope::All,
        types: vec![EventType::ThresholdCrossed],
        after: 0,
        limit: 100,
    };
    s.events(&f).await.unwrap()
}

pub async fn alerts_cross_once_by_compare_and_set(s: &dyn Store) {
    s.create_customer(&customer("c1", &[])).await.unwrap();
    save(
        s,
        "c1",
        "p100",
        0,
        &[account("c1", "p100", "a", "EUR", "1", 0)],
    )
    .await;
    let by = Actor::key("k1", Some("req-1"));
    let a = s.create_alert_by(&new_alert("al_1"), &by).await.unwrap();
    assert!(a.cursor > 0, "follows the events written after it");
    assert_eq!((a.triggered, a.version), (None, 0));
    assert_eq!(a.bound, d("100.10"));
    assert_eq!(s.get_alert("al_1").await.unwrap(), a);
    assert_eq!(s.list_alerts().await.unwrap(), vec![a.clone()]);

    // First evaluation: above the bound, recorded without an event.
    let first = evaluate_alert(&a, d("150"), a.cursor, Utc::now(), Default::default());
    assert!(s.record_alert(&first).await.unwrap());
    let a = s.get_alert("al_1").await.unwrap();
    assert_eq!((a.triggered, a.version), (Some(false), 1));
    assert_eq!(a.last_total, Some(d("150")));

    // Two replicas evaluate the same version: one writes, the other finds it moved on.
    let one = evaluate_alert(&a, d("99.5"), a.cursor + 1, Utc::now(), Default::default());
    let other = evaluate_alert(&a, d("20"), a.cursor + 1, Utc::now(), Default::default());
    assert!(one.event.is_some() && other.event.is_some());
    let (x, y) = tokio::join!(s.record_alert(&one), s.record_alert(&other));
    assert!(x.as_ref().unwrap() ^ y.as_ref().unwrap(), "{x:?} {y:?}");
    let events = crossings(s).await;
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.customer_id, "c1");
    assert_eq!(e.data["alert_id"], "al_1");
    assert_eq!(e.data["below"], "100.10");
    assert_eq!(e.data["before"], "150");
    let a = s.get_alert("al_1").await.unwrap();
    assert_eq!(
        (a.triggered, a.version, a.cursor),
        (Some(true), 2, one.cursor)
    );

    // Still below: no second crossing.
    let again = evaluate_alert(&a, d("10"), a.cursor, Utc::now(), Default::default());
    assert!(s.record_alert(&again).await.unwrap());
    assert_eq!(crossings(s).await.len(), 1);

    s.delete_alert_by("al_1", &by).await.unwrap();
    assert!(matches!(
        s.get_alert("al_1").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.delete_alert_by("al_1", &by).await,
        Err(StoreError::NotFound { .. })
    ));
    let log = s
        .list_audit(&AuditFilter {
            action: Some("alert.".into()),
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(audit_actions(&log), ["alert.create", "alert.delete"]);
    assert_eq!(log[1].key_id, "k1");
    assert!(log[1].after.as_deref().unwrap().contains("100.10"));
}

pub async fn subscription_changes_are_audited_without_secrets(s: &dyn Store) {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let new = NewSubscription {
        id: "sub_1".into(),
        url: "http://127.0.0.1:9/hook".into(),
        types: vec![EventType::ThresholdCrossed],
        customer_id: None,
        secret: secret.into(),
        created_at: t(0),
    };
    let by = Actor::key("k2", None);
    s.create_subscription_by(&new, &by).await.unwrap();
    s.delete_subscription_by("sub_1", &by).await.unwrap();
    assert!(matches!(
        s.delete_subscription_by("sub_1", &by).await,
        Err(StoreError::NotFound { .. })
    ));
    let log = s
        .list_audit(&AuditFilter {
            action: Some("subscription.".into()),
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        audit_actions(&log),
        ["subscription.create", "subscription.delete"]
    );
    for e in &log {
        assert_eq!(e.key_id, "k2");
        for text in [&e.before, &e.after].into_iter().flatten() {
            assert!(!text.contains("whsec_"), "{text}");
            assert!(text.contains("threshold.crossed"), "{text}");
        }
    }
}

/// Retention: events and finished deliveries older than the horizon go; an event a pending
/// delivery still needs stays until it is delivered.
pub async fn event_retention_keeps_what_deliveries_need(s: &dyn Store) {
    s.create_customer(&customer("c1", &[])).await.unwrap();
    save(
        s,
        "c1",
        "p100",
        0,
        &[account("c1", "p100", "a", "EUR", "1", 0)],
    )
    .await;
    save(
        s,
        "c1",
        "p100",
        10,
        &[account("c1", "p100", "a", "EUR", "2", 10)],
    )
    .await;
    let new = NewSubscription {
        id: "sub_r".into(),
        url: "http://127.0.0.1:9/hook".into(),
        types: vec![],
        customer_id: None,
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
        created_at: t(0),
    };
    s.create_subscription(&new).await.unwrap();
    save(
        s,
        "c1",
        "p100",
        20,
        &[account("c1", "p100", "a", "EUR", "3", 20)],
    )
    .await;
    assert_eq!(s.fan_out(100).await.unwrap(), 1);
    assert_eq!(all_events(s).await.len(), 3);
    // Every event is older than now; the one a pending delivery needs stays.
    assert_eq!(s.prune_events(Utc::now()).await.unwrap(), (2, 0));
    let kept = all_events(s).await;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].data["after"], "3");
    let hour = Duration::from_secs(3600);
    let leased = s.lease_deliveries("w1", 10, hour).await.unwrap();
    assert_eq!(leased.len(), 1);
    let done = coffer_store::AttemptOutcome {
        delivered: true,
        status: Some(200),
        error: None,
        retry_at: Utc::now(),
        disable_after: hour,
    };
    assert!(
        s.finish_delivery(leased[0].delivery.id, "w1", &done)
            .await
            .unwrap()
    );
    // Delivered: its event goes by the event's age, the log row by when it finished.
    let earlier = Utc::now() - chrono::Duration::hours(1);
    assert_eq!(s.prune_events(earlier).await.unwrap(), (1, 0));
    assert_eq!(s.list_deliveries("sub_r", 0, 10).await.unwrap().len(), 1);
    let later = Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(s.prune_events(later).await.unwrap(), (0, 1));
    assert!(all_events(s).await.is_empty());
    assert!(s.list_deliveries("sub_r", 0, 10).await.unwrap().is_empty());
}

async fn all_events(s: &dyn Store) -> Vec<coffer_store::Event> {
    let f = EventFilter {
        scope: Scope::All,
        types: vec![],
        after: 0,
        limit: 100,
    };
    s.events(&f).await.unwrap()
}
