//! The outbox: events written with the snapshot (or outcome) that shows them, only for real
//! changes, one per changed account; sync transitions only; pages scoped and filtered.
#![allow(unused_imports, clippy::unwrap_used)]

use std::time::Duration;

use chrono::Utc;
use coffer_core::ProviderErrorKind;
use coffer_store::{Event, EventFilter, EventType, Lease, Scope, Store, SyncOutcome, SyncWrite};
use serde_json::json;

use super::*;

pub fn every(after: i64) -> EventFilter {
    EventFilter {
        scope: Scope::All,
        types: vec![],
        after,
        limit: 1000,
    }
}

pub async fn events_after(s: &dyn Store, after: i64) -> Vec<Event> {
    s.events(&every(after)).await.unwrap()
}

fn newest(events: &[Event]) -> i64 {
    events.last().map_or(0, |e| e.id)
}

fn kinds(events: &[Event]) -> Vec<(EventType, Option<String>)> {
    events
        .iter()
        .map(|e| (e.kind, e.account_id.clone()))
        .collect()
}

pub async fn snapshots_emit_one_event_per_changed_account(s: &dyn Store) {
    s.create_customer(&customer("c1", &[])).await.unwrap();
    let x0 = account("c1", "p100", "x", "USD", "100.50", 0);
    let y0 = account("c1", "p100", "y", "BTC", "0.09872368", 0);
    save(s, "c1", "p100", 0, &[x0.clone(), y0.clone()]).await;
    let first = events_after(s, 0).await;
    assert_eq!(
        kinds(&first),
        vec![
            (EventType::AccountOpened, Some(x0.id.clone())),
            (EventType::AccountOpened, Some(y0.id.clone()))
        ]
    );
    assert!(first[0].id < first[1].id);
    assert_eq!(first[0].customer_id, "c1");
    assert_eq!(first[0].provider_id, "p100");
    assert_eq!(first[0].occurred_at, t(0));
    assert_eq!(first[0].data["balance"], "100.50");
    assert_eq!(first[0].data["currency"], "USD");

    // Nothing changed (only fetched_at, and a scale the history does not count): no event.
    let mut x_scale = account("c1", "p100", "x", "USD", "100.5", 10);
    x_scale.fetched_at = t(10);
    save(
        s,
        "c1",
        "p100",
        10,
        &[x_scale, account("c1", "p100", "y", "BTC", "0.09872368", 10)],
    )
    .await;
    // A stale write changes nothing either.
    save(
        s,
        "c1",
        "p100",
        5,
        &[account("c1", "p100", "x", "USD", "7", 5)],
    )
    .await;
    assert_eq!(events_after(s, newest(&first)).await, vec![]);

    // x changes, y disappears, z appears: exactly three events, at the snapshot's instant.
    let x1 = account("c1", "p100", "x", "USD", "0.0000001", 20);
    let z1 = account(
        "c1",
        "p100",
        "z",
        "EUR",
        "1234567890123456789.012345678",
        20,
    );
    save(s, "c1", "p100", 20, &[x1.clone(), z1.clone()]).await;
    let second = events_after(s, newest(&first)).await;
    let mut got = kinds(&second);
    got.sort();
    let mut want = vec![
        (EventType::BalanceChanged, Some(x1.id.clone())),
        (EventType::AccountOpened, Some(z1.id.clone())),
        (EventType::AccountClosed, Some(y0.id.clone())),
    ];
    want.sort();
    assert_eq!(got, want);
    let changed = second
        .iter()
        .find(|e| e.kind == EventType::BalanceChanged)
        .unwrap();
    assert_eq!(
        changed.data,
        json!({"currency": "USD", "before": "100.5", "after": "0.0000001",
               "observed_at": t(20)})
    );
    let opened = second
        .iter()
        .find(|e| e.kind == EventType::AccountOpened)
        .unwrap();
    assert_eq!(opened.data["balance"], "1234567890123456789.012345678");
    assert!(second.iter().all(|e| e.occurred_at == t(20)));

    // Reopened: opened again.
    save(
        s,
        "c1",
        "p100",
        30,
        &[
            x1.clone(),
            z1.clone(),
            account("c1", "p100", "y", "BTC", "1", 30),
        ],
    )
    .await;
    let third = events_after(s, newest(&second)).await;
    assert_eq!(
        kinds(&third),
        vec![(EventType::AccountOpened, Some(y0.id.clone()))]
    );
}

pub async fn sync_batches_emit_only_changes(s: &dyn Store) {
    let leases = leased_customers(s, &["c1", "c2"]).await;
    let batch = |leases: &[Lease], at: i64, eur: &str| -> Vec<SyncWrite> {
        leases
            .iter()
            .map(|l| {
                ok_write(
                    l,
                    at,
                    vec![account(
                        &l.customer_id,
                        "p100",
                        &l.customer_id,
                        "EUR",
                        eur,
                        at,
                    )],
                )
            })
            .collect()
    };
    let soon = |mut w: Vec<SyncWrite>| {
        for x in &mut w {
            x.outcome = SyncOutcome::Success {
                next_due: Utc::now() - chrono::Duration::seconds(1),
            };
        }
        w
    };
    let r = s.finish_syncs(&soon(batch(&leases, 0, "1.00"))).await;
    assert!(r.iter().all(Result::is_ok), "{r:?}");
    let first = events_after(s, 0).await;
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(first.iter().all(|e| e.kind == EventType::AccountOpened));

    // The same balances again: a sync that changed nothing emits nothing.
    let leases = s.lease_due("w", 10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(leases.len(), 2);
    let r = s.finish_syncs(&soon(batch(&leases, 10, "1.00"))).await;
    assert!(r.iter().all(Result::is_ok), "{r:?}");
    assert_eq!(events_after(s, newest(&first)).await, vec![]);

    // Only c2 changes: one event.
    let leases = s.lease_due("w", 10, Duration::from_secs(60)).await.unwrap();
    let mut w = batch(&leases, 20, "1.00");
    for x in &mut w {
        if x.lease.customer_id == "c2" {
            x.snapshot.as_mut().unwrap().1[0].balance = d("0.99");
        }
    }
    let r = s.finish_syncs(&w).await;
    assert!(r.iter().all(Result::is_ok), "{r:?}");
    let got = events_after(s, newest(&first)).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].kind, EventType::BalanceChanged);
    assert_eq!(got[0].customer_id, "c2");
    assert_eq!(
        (
            got[0].data["before"].as_str(),
            got[0].data["after"].as_str()
        ),
        (Some("1.00"), Some("0.99"))
    );
}

fn failure() -> SyncOutcome {
    SyncOutcome::Failure {
        kind: ProviderErrorKind::Unavailable,
        message: "P501 service temporarily unavailable".into(),
        next_due: Utc::now() - chrono::Duration::seconds(1),
    }
}

fn success() -> SyncOutcome {
    SyncOutcome::Success {
        next_due: Utc::now() - chrono::Duration::seconds(1),
    }
}

/// Releases the pair's next lease with `outcome`, through `release` or a one-write batch.
async fn outcome(s: &dyn Store, outcome: SyncOutcome, batch: bool) {
    let l = s
        .lease_due("w", 10, Duration::from_secs(60))
        .await
        .unwrap()
        .remove(0);
    if batch {
        let r = s
            .finish_syncs(&[SyncWrite {
                lease: l,
                snapshot: None,
                outcome,
            }])
            .await;
        assert!(r.iter().all(Result::is_ok), "{r:?}");
    } else {
        s.release(&l, &outcome).await.unwrap();
    }
}

pub async fn sync_failures_emit_on_transitions_only(s: &dyn Store) {
    s.create_customer(&customer("c1", &[("p100", "e1")]))
        .await
        .unwrap();
    for batch in [false, true] {
        let start = newest(&events_after(s, 0).await);
        // A pair that never succeeded has nothing to fail from.
        if !batch {
            outcome(s, failure(), batch).await;
            outcome(s, success(), batch).await;
            assert_eq!(events_after(s, start).await, vec![], "first success");
        }
        outcome(s, success(), batch).await;
        outcome(s, failure(), batch).await;
        outcome(s, failure(), batch).await;
        outcome(s, failure(), batch).await;
        outcome(s, success(), batch).await;
        outcome(s, success(), batch).await;
        let got = events_after(s, start).await;
        let types: Vec<EventType> = got.iter().map(|e| e.kind).collect();
        assert_eq!(
            types,
            [EventType::SyncFailed, EventType::SyncRecovered],
            "batch {batch}"
        );
        assert_eq!(got[0].data["error_kind"], "unavailable");
        assert_eq!(got[0].data["error"], "P501 service temporarily unavailable");
        assert!(got[0].data["last_success"].is_string());
        assert_eq!(got[1].data["failures"], 3);
        assert!(
            got.iter()
                .all(|e| e.customer_id == "c1" && e.provider_id == "p100")
        );
        assert!(got.iter().all(|e| e.account_id.is_none()));
    }
}

pub async fn event_pages_are_scoped_filtered_and_ordered(s: &dyn Store) {
    for c in ["c1", "c2", "c3"] {
        s.create_customer(&customer(c, &[])).await.unwrap();
        save(s, c, "p100", 0, &[account(c, "p100", "a", "EUR", "1", 0)]).await;
        save(s, c, "p100", 10, &[account(c, "p100", "a", "EUR", "2", 10)]).await;
    }
    let all = events_after(s, 0).await;
    assert_eq!(all.len(), 6);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    let page = |scope: Scope, types: Vec<EventType>, after: i64, limit: u32| {
        let f = EventFilter {
            scope,
            types,
            after,
            limit,
        };
        async move { s.events(&f).await.unwrap() }
    };
    let mine = page(
        Scope::Customers(vec!["c1".into(), "c3".into()]),
        vec![],
        0,
        100,
    )
    .await;
    assert_eq!(mine.len(), 4);
    assert!(mine.iter().all(|e| e.customer_id != "c2"));
    assert_eq!(page(Scope::Customers(vec![]), vec![], 0, 100).await, vec![]);
    let changed = page(Scope::All, vec![EventType::BalanceChanged], 0, 100).await;
    assert_eq!(changed.len(), 3);
    assert!(changed.iter().all(|e| e.kind == EventType::BalanceChanged));
    let two = page(Scope::All, vec![], 0, 2).await;
    assert_eq!(two, all[..2].to_vec());
    let rest = page(Scope::All, vec![], two[1].id, 100).await;
    assert_eq!(rest, all[2..].to_vec());
    assert_eq!(page(Scope::All, vec![], newest(&all), 100).await, vec![]);
}

pub async fn event_wake_changes_on_commit(s: &dyn Store) {
    s.create_customer(&customer("c1", &[])).await.unwrap();
    let mut wake = s.event_wake();
    wake.borrow_and_update();
    save(
        s,
        "c1",
        "p100",
        0,
        &[account("c1", "p100", "a", "EUR", "1", 0)],
    )
    .await;
    assert!(
        wake.has_changed().unwrap(),
        "no wake after a commit with events"
    );
    let last = newest(&events_after(s, 0).await);
    assert_eq!(*wake.borrow_and_update(), last);
    save(
        s,
        "c1",
        "p100",
        10,
        &[account("c1", "p100", "a", "EUR", "1", 10)],
    )
    .await;
    assert!(!wake.has_changed().unwrap(), "a wake without events");
}
