//! Subscriptions: fan-out of matching events once, exclusive attempts, retries and disabling.
#![allow(unused_imports, clippy::unwrap_used)]

use std::time::Duration;

use chrono::Utc;
use coffer_store::{AttemptOutcome, DeliveryState, EventType, NewSubscription, Store, StoreError};

use super::*;

fn sub(id: &str, types: Vec<EventType>, customer: Option<&str>) -> NewSubscription {
    NewSubscription {
        id: id.into(),
        url: "http://127.0.0.1:9/hook".into(),
        types,
        customer_id: customer.map(str::to_owned),
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
        created_at: t(0),
    }
}

fn outcome(delivered: bool, disable_after: Duration) -> AttemptOutcome {
    AttemptOutcome {
        delivered,
        status: Some(if delivered { 200 } else { 503 }),
        error: (!delivered).then(|| "HTTP 503".into()),
        retry_at: Utc::now() - chrono::Duration::seconds(1),
        disable_after,
    }
}

pub async fn subscriptions_fan_out_once_and_lease_exclusively(s: &dyn Store) {
    for c in ["c1", "c2"] {
        s.create_customer(&customer(c, &[])).await.unwrap();
    }
    // Written before the subscriptions: not delivered.
    save(
        s,
        "c1",
        "p100",
        0,
        &[account("c1", "p100", "a", "EUR", "1", 0)],
    )
    .await;
    let all = s
        .create_subscription(&sub("s-all", vec![], None))
        .await
        .unwrap();
    assert!(all.cursor > 0);
    s.create_subscription(&sub("s-c2", vec![EventType::BalanceChanged], Some("c2")))
        .await
        .unwrap();
    save(
        s,
        "c1",
        "p100",
        10,
        &[account("c1", "p100", "a", "EUR", "2", 10)],
    )
    .await;
    save(
        s,
        "c2",
        "p100",
        10,
        &[account("c2", "p100", "b", "EUR", "1", 10)],
    )
    .await;
    save(
        s,
        "c2",
        "p100",
        20,
        &[account("c2", "p100", "b", "EUR", "3", 20)],
    )
    .await;
    assert_eq!(s.fan_out(100).await.unwrap(), 3 + 1);
    assert_eq!(
        s.fan_out(100).await.unwrap(),
        0,
        "once per (subscription, event)"
    );
    let log = s.list_deliveries("s-c2", 0, 100).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].state, DeliveryState::Pending);

    let hour = Duration::from_secs(3600);
    let first = s.lease_deliveries("w1", 10, hour).await.unwrap();
    assert_eq!(first.len(), 4);
    assert!(s.lease_deliveries("w2", 10, hour).await.unwrap().is_empty());
    assert!(first.iter().all(|d| d.delivery.attempts == 1));
    let c2 = first
        .iter()
        .find(|d| d.delivery.subscription_id == "s-c2")
        .unwrap();
    assert_eq!(c2.event.kind, EventType::BalanceChanged);
    assert_eq!(c2.event.data["after"], "3");
    assert!(
        !s.finish_delivery(c2.delivery.id, "w2", &outcome(true, hour))
            .await
            .unwrap()
    );
    for d in &first {
        let ok = d.delivery.subscription_id == "s-c2";
        assert!(
            s.finish_delivery(d.delivery.id, "w1", &outcome(ok, hour))
                .await
                .unwrap()
        );
    }
    let log = s.list_deliveries("s-c2", 0, 100).await.unwrap();
    assert_eq!(log[0].state, DeliveryState::Delivered);
    assert_eq!(log[0].last_status, Some(200));
    assert!(
        s.get_subscription("s-c2")
            .await
            .unwrap()
            .failing_since
            .is_none()
    );
    // The failed ones are due again; failing long enough disables the subscription.
    assert!(
        s.get_subscription("s-all")
            .await
            .unwrap()
            .failing_since
            .is_some()
    );
    let again = s.lease_deliveries("w2", 10, hour).await.unwrap();
    assert_eq!(again.len(), 3);
    assert!(again.iter().all(|d| d.delivery.attempts == 2));
    for d in &again {
        s.finish_delivery(d.delivery.id, "w2", &outcome(false, Duration::ZERO))
            .await
            .unwrap();
    }
    assert!(
        s.get_subscription("s-all")
            .await
            .unwrap()
            .disabled_at
            .is_some()
    );
    let log = s.list_deliveries("s-all", 0, 100).await.unwrap();
    assert!(
        log.iter().all(|d| d.state == DeliveryState::Failed),
        "{log:?}"
    );
    assert!(s.lease_deliveries("w2", 10, hour).await.unwrap().is_empty());

    assert_eq!(s.list_subscriptions().await.unwrap().len(), 2);
    s.delete_subscription("s-all").await.unwrap();
    assert!(matches!(
        s.get_subscription("s-all").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.delete_subscription("s-all").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(s.list_deliveries("s-all", 0, 100).await.unwrap().is_empty());
}
