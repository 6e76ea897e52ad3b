//! Sync pairs and leases.
#![allow(unused_imports, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use coffer_core::query::{BalanceRange, FieldOp, FieldSearch, Filter, SearchField};
use coffer_core::{Account, Currency, ProviderErrorKind, ProviderRate, Status, Wallet};
use coffer_store::{NewApiKey, RateSource, Role, Scope, Store, StoreError, SyncOutcome};
use rust_decimal::Decimal;

use super::*;

pub async fn leases_are_exclusive_and_expire(s: &dyn Store) {
    for i in 0..20 {
        let (e, b) = (format!("e{i}"), format!("b{i}"));
        s.create_customer(&customer(
            &format!("c{i:02}"),
            &[("p100", e.as_str()), ("bank", b.as_str())],
        ))
        .await
        .unwrap();
    }
    // Two owners at once: disjoint, and together everything.
    let hour = Duration::from_secs(3600);
    let (a, b) = tokio::join!(s.lease_due("a", 25, hour), s.lease_due("b", 25, hour));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.len() + b.len(), 40, "a {} b {}", a.len(), b.len());
    let mut keys: Vec<_> = a
        .iter()
        .chain(&b)
        .map(|l| (l.customer_id.clone(), l.provider_id.clone()))
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 40, "no pair leased twice");
    let l = a
        .iter()
        .chain(&b)
        .find(|l| l.customer_id == "c03" && l.provider_id == "bank")
        .unwrap();
    assert_eq!(l.external_id, "b3");
    assert_eq!(l.failures, 0);
    assert!(l.expires_at > Utc::now() + chrono::Duration::minutes(59));
    // Nothing left while the leases live.
    assert!(s.lease_due("c", 100, hour).await.unwrap().is_empty());

    // A short lease of a dead owner is taken over once it expires.
    s.create_customer(&customer("late", &[("p100", "late")]))
        .await
        .unwrap();
    let short = s
        .lease_due("dead", 10, Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(short.len(), 1);
    assert!(s.lease_due("alive", 10, hour).await.unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let taken = s.lease_due("alive", 10, hour).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].owner, "alive");
    // The dead owner's late release changes nothing.
    s.release(
        &short[0],
        &SyncOutcome::Success {
            next_due: Utc::now(),
        },
    )
    .await
    .unwrap();
    let st = s.sync_states("late").await.unwrap();
    assert_eq!(st[0].lease_owner.as_deref(), Some("alive"));
    assert_eq!(st[0].last_success, None);
}

pub async fn release_records_outcome(s: &dyn Store) {
    s.create_customer(&customer("c1", &[("p100", "e1")]))
        .await
        .unwrap();
    let hour = Duration::from_secs(3600);
    let l = s.lease_due("w", 10, hour).await.unwrap().remove(0);
    let st = &s.sync_states("c1").await.unwrap()[0];
    assert_eq!(st.lease_owner.as_deref(), Some("w"));

    let soon = Utc::now() - chrono::Duration::seconds(1);
    let fail = SyncOutcome::Failure {
        kind: ProviderErrorKind::UnknownCustomer,
        message: "P412 user not found".into(),
        next_due: soon,
    };
    s.release(&l, &fail).await.unwrap();
    let st = s.sync_states("c1").await.unwrap().remove(0);
    assert_eq!(st.failures, 1);
    assert_eq!(st.last_error_kind.as_deref(), Some("unknown_customer"));
    assert_eq!(st.last_error.as_deref(), Some("P412 user not found"));
    assert!(st.last_error_at.is_some());
    assert_eq!(st.lease_owner, None);
    assert_eq!(st.lease_expires, None);
    assert_eq!(st.next_due.timestamp_micros(), soon.timestamp_micros());

    // Due again at once; the lease says how many failures came before.
    let l = s.lease_due("w", 10, hour).await.unwrap().remove(0);
    assert_eq!(l.failures, 1);
    let later = Utc::now() + chrono::Duration::minutes(5);
    s.release(&l, &SyncOutcome::Success { next_due: later })
        .await
        .unwrap();
    let st = s.sync_states("c1").await.unwrap().remove(0);
    assert_eq!(st.failures, 0);
    assert!(st.last_success.is_some());
    assert_eq!(
        st.last_error_kind.as_deref(),
        Some("unknown_customer"),
        "last error is kept"
    );
    assert_eq!(st.next_due.timestamp_micros(), later.timestamp_micros());
    // Not due: nothing to lease.
    assert!(s.lease_due("w", 10, hour).await.unwrap().is_empty());
}

pub async fn links_drive_sync_pairs(s: &dyn Store) {
    s.create_customer(&customer("c1", &[("p100", "e1"), ("bank", "b1")]))
        .await
        .unwrap();
    let st = s.sync_states("c1").await.unwrap();
    assert_eq!(
        st.iter()
            .map(|x| x.provider_id.as_str())
            .collect::<Vec<_>>(),
        ["bank", "p100"]
    );
    assert!(
        st.iter()
            .all(|x| x.next_due <= Utc::now() && x.lease_owner.is_none())
    );
    let l = s.lease_due("w", 10, Duration::from_secs(60)).await.unwrap();
    for l in &l {
        let next_due = Utc::now() + chrono::Duration::hours(1);
        s.release(l, &SyncOutcome::Success { next_due })
            .await
            .unwrap();
    }
    // Keep p100 (its state stays), drop bank, change nothing else.
    s.update_customer(&customer("c1", &[("p100", "e1"), ("other", "o1")]))
        .await
        .unwrap();
    let st = s.sync_states("c1").await.unwrap();
    assert_eq!(
        st.iter()
            .map(|x| x.provider_id.as_str())
            .collect::<Vec<_>>(),
        ["other", "p100"]
    );
    assert!(
        st[1].last_success.is_some(),
        "an unchanged link keeps its sync state"
    );
    let due = s.lease_due("w", 10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].provider_id.as_str(), due[0].external_id.as_str()),
        ("other", "o1")
    );
    // A changed external id is a new pair, due now.
    s.update_customer(&customer("c1", &[("p100", "e2")]))
        .await
        .unwrap();
    let st = s.sync_states("c1").await.unwrap();
    assert_eq!(st.len(), 1);
    assert!(st[0].last_success.is_none());
    let due = s.lease_due("w", 10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(due[0].external_id, "e2");
}
