//! The audit log: every change appended in its transaction, by whom, before and after; a
//! failed change appends nothing; concurrent appends keep one chain; keys keep expiry and
//! last use.

use std::collections::BTreeMap;

use coffer_core::Currency;
use coffer_store::{Actor, AuditFilter, NewApiKey, NewAudit, Role, Store, StoreError};

use super::*;

fn all() -> AuditFilter {
    AuditFilter {
        limit: 1000,
        ..AuditFilter::default()
    }
}

fn json(t: &Option<String>) -> serde_json::Value {
    t.as_deref().map_or(serde_json::Value::Null, |t| {
        serde_json::from_str(t).unwrap()
    })
}

pub async fn audit_log_chains_every_change(s: &dyn Store) {
    let by = Actor::key("k1", Some("req-1"));
    let c = customer("c1", &[("p100", "u1")]);
    s.create_customer_by(&c, &by).await.unwrap();
    let renamed = NewCustomer {
        name: Some("Renamed".into()),
        ..customer("c1", &[("bank", "b1")])
    };
    s.update_customer_by(&renamed, &by).await.unwrap();
    let eur = Currency::new("EUR");
    let rates = BTreeMap::from([(Currency::new("USD"), d("0.09872368"))]);
    s.set_manual_rates(&eur, &rates, t(0), &by).await.unwrap();
    s.delete_manual_rate(&Currency::new("USD"), t(1), &by)
        .await
        .unwrap();
    let new_key = NewApiKey {
        hash: "h1".into(),
        role: Role::Reader,
        customers: vec!["c1".into()],
        expires_at: Some(t(3600)),
    };
    let key = s.insert_api_key_by(&new_key, &Actor::cli()).await.unwrap();
    s.revoke_api_key_by(&key.id, &Actor::cli()).await.unwrap();
    s.append_audit(&by, NewAudit::new("read", "/v2/accounts?currency=EUR"))
        .await
        .unwrap();
    s.delete_customer_by("c1", &by).await.unwrap();

    let log = s.list_audit(&all()).await.unwrap();
    let actions: Vec<&str> = log.iter().rev().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "customer.create",
            "customer.update",
            "rate.set",
            "rate.remove",
            "key.create",
            "key.revoke",
            "read",
            "customer.delete"
        ]
    );
    let seqs: Vec<i64> = log.iter().rev().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=8).collect::<Vec<_>>());
    let update = &log[6];
    assert_eq!(
        (update.key_id.as_str(), update.request_id.as_deref()),
        ("k1", Some("req-1"))
    );
    assert_eq!(update.target, "c1");
    assert_eq!(json(&update.before)["links"][0]["provider"], "p100");
    assert_eq!(json(&update.before)["name"], "Customer c1");
    assert_eq!(json(&update.after)["links"][0]["external_id"], "b1");
    assert_eq!(json(&update.after)["name"], "Renamed");
    let set = &log[5];
    assert_eq!(json(&set.before), serde_json::json!({}));
    assert_eq!(
        json(&set.after)["USD"]["rate"],
        "0.09872368",
        "exact, as text"
    );
    assert_eq!(json(&log[4].before)["USD"]["quote"], "EUR");
    let created = &log[3];
    assert_eq!(created.key_id, "cli");
    let after = created.after.as_deref().unwrap();
    assert!(
        !after.contains("h1"),
        "a key's hash is never in the log: {after}"
    );
    assert!(json(&log[2].after)["revoked_at"].is_string());
    assert_eq!(json(&log[0].before)["id"], "c1");
    assert!(log[0].after.is_none());

    assert_eq!(s.verify_audit().await.unwrap(), Ok(8));
    assert_eq!(s.audit_head().await.unwrap(), (8, log[0].hash.clone()));

    // Filters and pages.
    let only = |f: AuditFilter| async move { s.list_audit(&f).await.unwrap() };
    let customers = only(AuditFilter {
        action: Some("customer.".into()),
        ..all()
    })
    .await;
    assert_eq!(customers.len(), 3);
    let by_cli = only(AuditFilter {
        key_id: Some("cli".into()),
        ..all()
    })
    .await;
    assert_eq!(by_cli.len(), 2);
    let page = only(AuditFilter {
        before_seq: Some(4),
        limit: 2,
        ..all()
    })
    .await;
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 2]);
    let window = only(AuditFilter {
        target: Some("c1".into()),
        from: Some(log[7].at),
        to: Some(log[0].at),
        ..all()
    })
    .await;
    assert_eq!(window.len(), 3, "create, update, delete of c1");
}

pub async fn a_failed_change_appends_nothing(s: &dyn Store) {
    let by = Actor::key("k1", None);
    s.create_customer_by(&customer("c1", &[("p100", "u1")]), &by)
        .await
        .unwrap();
    let again = s.create_customer_by(&customer("c1", &[]), &by).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))));
    let taken = s
        .create_customer_by(&customer("c2", &[("p100", "u1")]), &by)
        .await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))));
    let missing = s.update_customer_by(&customer("nobody", &[]), &by).await;
    assert!(matches!(missing, Err(StoreError::NotFound { .. })));
    assert!(s.delete_customer_by("nobody", &by).await.is_err());
    assert!(s.revoke_api_key_by("no-key", &by).await.is_err());
    // Removing a rate that is not there changes nothing, so it is no entry either.
    s.delete_manual_rate(&Currency::new("USD"), t(0), &by)
        .await
        .unwrap();
    let log = s.list_audit(&all()).await.unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(s.verify_audit().await.unwrap(), Ok(1));
}

pub async fn concurrent_appends_keep_one_chain(s: &dyn Store) {
    let appends = (0..24).map(|i| async move {
        let by = Actor::key(&format!("k{i}"), None);
        s.append_audit(&by, NewAudit::new("read", &format!("/v2/accounts?n={i}")))
            .await
    });
    for r in futures::future::join_all(appends).await {
        r.unwrap();
    }
    assert_eq!(s.verify_audit().await.unwrap(), Ok(24));
}

pub async fn api_keys_keep_expiry_and_last_use(s: &dyn Store) {
    let key = s
        .insert_api_key(&NewApiKey {
            hash: "h-exp".into(),
            role: Role::Admin,
            customers: vec![],
            expires_at: Some(t(90)),
        })
        .await
        .unwrap();
    assert_eq!(key.expires_at, Some(t(90)));
    assert_eq!(key.last_used_at, None);
    s.touch_api_key(&key.id, t(10)).await.unwrap();
    // An older touch (another replica's, late) never moves it back.
    s.touch_api_key(&key.id, t(5)).await.unwrap();
    let listed = s.list_api_keys().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].last_used_at, Some(t(10)));
    let found = s.api_key_by_hash("h-exp").await.unwrap().unwrap();
    assert_eq!(found.expires_at, Some(t(90)));
}
