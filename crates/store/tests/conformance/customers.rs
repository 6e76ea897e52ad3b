//! Customers, links, and all-or-nothing writes.
#![allow(unused_imports, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use coffer_core::query::{BalanceRange, FieldOp, FieldSearch, Filter, SearchField};
use coffer_core::{Account, Currency, ProviderErrorKind, ProviderRate, Status, Wallet};
use coffer_store::{NewApiKey, RateSource, Role, Scope, Store, StoreError, SyncOutcome};
use rust_decimal::Decimal;

use super::*;

pub async fn customers_crud_and_conflicts(s: &dyn Store) {
    let c = s
        .create_customer(&customer("c1", &[("p100", "ext-1"), ("bank", "b-1")]))
        .await
        .unwrap();
    assert_eq!(c.id, "c1");
    assert_eq!(c.links.len(), 2);
    assert_eq!(c.links[0].provider, "bank", "links are sorted by provider");
    let got = s.get_customer("c1").await.unwrap();
    assert_eq!(got, c);

    // Duplicate id.
    match s.create_customer(&customer("c1", &[])).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("c1"), "{m}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    // Two links for one provider.
    assert!(matches!(
        s.create_customer(&customer("c2", &[("p100", "a"), ("p100", "b")]))
            .await,
        Err(StoreError::Conflict(_))
    ));
    // Unknown customer.
    assert!(matches!(
        s.get_customer("nope").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.update_customer(&customer("nope", &[])).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.delete_customer("nope").await,
        Err(StoreError::NotFound { .. })
    ));

    // Update replaces name and links.
    let mut u = customer("c1", &[("p100", "ext-9")]);
    u.name = None;
    let u = s.update_customer(&u).await.unwrap();
    assert_eq!(u.name, None);
    assert_eq!(u.created_at, c.created_at);
    assert_eq!(s.get_customer("c1").await.unwrap(), u);
    // The old external id is free again.
    s.create_customer(&customer("c2", &[("p100", "ext-1")]))
        .await
        .unwrap();

    // Keyset listing.
    for id in ["c3", "c4", "c5"] {
        s.create_customer(&customer(id, &[])).await.unwrap();
    }
    let page = s.list_customers(None, 2).await.unwrap();
    assert_eq!(
        page.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["c1", "c2"]
    );
    assert_eq!(page[1].links.len(), 1);
    let page = s.list_customers(Some("c2"), 10).await.unwrap();
    assert_eq!(
        page.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["c3", "c4", "c5"]
    );

    s.delete_customer("c3").await.unwrap();
    assert!(matches!(
        s.get_customer("c3").await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn link_conflict_leaves_nothing_written(s: &dyn Store) {
    s.create_customer(&customer("owner", &[("p100", "taken")]))
        .await
        .unwrap();
    // Create: the customer row is written before the link fails; nothing may remain.
    match s
        .create_customer(&customer("newbie", &[("bank", "free"), ("p100", "taken")]))
        .await
    {
        Err(StoreError::Conflict(m)) => {
            assert!(m.contains("p100/taken") && m.contains("owner"), "{m}")
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(matches!(
        s.get_customer("newbie").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(s.sync_states("newbie").await.unwrap().is_empty());

    // Update: name and first link change before the conflicting link; all rolled back.
    let before = s
        .create_customer(&customer("other", &[("bank", "b-1")]))
        .await
        .unwrap();
    let mut u = customer("other", &[("bank", "b-2"), ("p100", "taken")]);
    u.name = Some("renamed".into());
    assert!(matches!(
        s.update_customer(&u).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.get_customer("other").await.unwrap(), before);
    let states = s.sync_states("other").await.unwrap();
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].provider_id, "bank");
    // The owner keeps its link.
    assert_eq!(s.get_customer("owner").await.unwrap().links.len(), 1);
}
