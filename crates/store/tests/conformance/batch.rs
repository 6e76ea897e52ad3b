//! Sync batches (`finish_syncs`): the same rows as saving and releasing pair by pair.
#![allow(unused_imports, clippy::unwrap_used)]

use std::time::Duration;

use chrono::Utc;
use coffer_core::{Account, Currency, ProviderErrorKind, ProviderRate};
use coffer_store::{Lease, RateSource, Scope, Store, StoreError, SyncOutcome, SyncWrite};

use super::*;

fn lease_of<'a>(leases: &'a [Lease], c: &str, p: &str) -> &'a Lease {
    leases
        .iter()
        .find(|l| l.customer_id == c && l.provider_id == p)
        .unwrap_or_else(|| panic!("no lease for {c}/{p}"))
}

/// Customers linked to `p100` (external id = customer id), their pairs leased to `w`.
pub async fn leased_customers(s: &dyn Store, ids: &[&str]) -> Vec<Lease> {
    for c in ids {
        s.create_customer(&customer(c, &[("p100", c)]))
            .await
            .unwrap();
    }
    s.lease_due("w", 1000, Duration::from_secs(3600))
        .await
        .unwrap()
}

/// A successful sync of `l`: its snapshot fetched at `at`, due again in an hour.
pub fn ok_write(l: &Lease, at: i64, accounts: Vec<coffer_core::Account>) -> SyncWrite {
    SyncWrite {
        lease: l.clone(),
        snapshot: Some((meta(&l.customer_id, &l.provider_id, at), accounts)),
        outcome: SyncOutcome::Success {
            next_due: Utc::now() + chrono::Duration::hours(1),
        },
    }
}

pub async fn sync_batch_writes_like_pair_by_pair(s: &dyn Store) {
    for (c, links) in [
        ("c1", vec![("p100", "e1"), ("bank", "b1")]),
        ("c2", vec![("p100", "e2"), ("bank", "b2")]),
        ("c3", vec![("p100", "e3")]),
    ] {
        s.create_customer(&customer(c, &links)).await.unwrap();
    }
    // Stored before: c1 at P100 (one account will change, one disappear), c3 newer than the
    // batch will be.
    let x0 = account("c1", "p100", "x", "USD", "100.50", 0);
    let y0 = account("c1", "p100", "y", "BTC", "0.09872368", 0);
    save(s, "c1", "p100", 0, &[x0.clone(), y0.clone()]).await;
    let c3 = account("c3", "p100", "k", "EUR", "7", 50);
    save(s, "c3", "p100", 50, std::slice::from_ref(&c3)).await;

    let leases = s
        .lease_due("w", 100, Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(leases.len(), 5);

    let x1 = account("c1", "p100", "x", "USD", "0.0000001", 10);
    let mut w1 = account(
        "c1",
        "p100",
        "w",
        "USDC",
        "1234567890123456789.012345678",
        10,
    );
    w1.provider_rate = Some(ProviderRate {
        rate: d("0.9991"),
        quote: Currency::new("USD"),
    });
    let mut bank1 = account("c1", "bank", "iban-1", "EUR", "0", 10);
    bank1.balance = rust_decimal::Decimal::from_scientific("1e-7").unwrap();
    let c2a = account("c2", "p100", "a", "ETH", "2.000000000000000001", 10);
    let batch = vec![
        ok_write(
            lease_of(&leases, "c1", "p100"),
            10,
            vec![x1.clone(), w1.clone()],
        ),
        ok_write(lease_of(&leases, "c1", "bank"), 10, vec![bank1.clone()]),
        ok_write(lease_of(&leases, "c2", "p100"), 10, vec![c2a.clone()]),
        SyncWrite {
            lease: lease_of(&leases, "c2", "bank").clone(),
            snapshot: None,
            outcome: SyncOutcome::Failure {
                kind: ProviderErrorKind::UnknownCustomer,
                message: "P412 user not found".into(),
                next_due: Utc::now() + chrono::Duration::hours(6),
            },
        },
        // Older than what is stored: ignored, and the pair is still released.
        ok_write(
            lease_of(&leases, "c3", "p100"),
            20,
            vec![account("c3", "p100", "k", "EUR", "1", 20)],
        ),
    ];
    let results = s.finish_syncs(&batch).await;
    assert_eq!(results.len(), 5);
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    // Accounts: x updated exactly, w new, y closed, bank and c2 new, c3 unchanged.
    let mut got = s.customer_accounts("c1").await.unwrap();
    got.accounts.sort_by(|a, b| a.id.cmp(&b.id));
    let mut want = vec![x1.clone(), w1.clone(), bank1.clone()];
    want.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(got.accounts, want);
    assert_eq!(
        got.accounts
            .iter()
            .find(|a| a.id == w1.id)
            .unwrap()
            .balance
            .to_string(),
        "1234567890123456789.012345678"
    );
    assert_eq!(s.customer_accounts("c2").await.unwrap().accounts, vec![c2a]);
    assert_eq!(
        s.customer_accounts("c3").await.unwrap().accounts,
        vec![c3.clone()]
    );

    // History: x changed, w and the bank account opened, y closed, all at t(10).
    let h = s.customer_history("c1", t(5), t(15)).await.unwrap();
    let mut seen: Vec<(String, String, bool)> = h
        .iter()
        .map(|e| (e.account_id.clone(), e.balance.to_string(), e.closed))
        .collect();
    seen.sort();
    let mut expect = vec![
        (x1.id.clone(), "0.0000001".to_owned(), false),
        (
            w1.id.clone(),
            "1234567890123456789.012345678".to_owned(),
            false,
        ),
        (bank1.id.clone(), "0.0000001".to_owned(), false),
        (y0.id.clone(), "0.09872368".to_owned(), true),
    ];
    expect.sort();
    assert_eq!(seen, expect);

    // The provider rate of the batch is stored.
    let rate = s
        .rates()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.source == RateSource::Provider && r.currency.code() == "USDC")
        .unwrap();
    assert_eq!(
        (rate.rate.to_string(), rate.provider, rate.as_of),
        ("0.9991".to_owned(), Some("p100".to_owned()), t(10))
    );

    // Totals agree with the accounts, and count the covered customers once each.
    let totals = s.totals(&Scope::All, &all()).await.unwrap();
    assert_eq!(totals.customers, 3);
    let listed = s.list_accounts(&Scope::All, &all()).await.unwrap();
    assert_eq!(listed.len(), 5);
    for ct in &totals.by_currency {
        let sum: rust_decimal::Decimal = listed
            .iter()
            .filter(|a| a.currency == ct.currency)
            .map(|a| a.balance)
            .sum();
        assert_eq!(ct.balance, sum, "{}", ct.currency);
    }

    // Every lease released with its outcome.
    let c1 = s.sync_states("c1").await.unwrap();
    assert!(
        c1.iter()
            .all(|st| st.lease_owner.is_none() && st.last_success.is_some() && st.failures == 0)
    );
    let c2 = s.sync_states("c2").await.unwrap();
    let bank = c2.iter().find(|st| st.provider_id == "bank").unwrap();
    assert_eq!(
        (
            bank.failures,
            bank.last_error_kind.as_deref(),
            bank.last_error.as_deref()
        ),
        (1, Some("unknown_customer"), Some("P412 user not found"))
    );
    assert!(bank.lease_owner.is_none() && bank.last_success.is_none());
    let c3s = s.sync_states("c3").await.unwrap();
    assert!(c3s[0].lease_owner.is_none() && c3s[0].last_success.is_some());
    assert!(
        s.lease_due("w", 100, Duration::from_secs(3600))
            .await
            .unwrap()
            .is_empty(),
        "nothing due: every pair was released for later"
    );
}

pub async fn sync_batch_with_a_pair_twice_keeps_the_newest(s: &dyn Store) {
    s.create_customer(&customer("c1", &[("p100", "e1")]))
        .await
        .unwrap();
    let leases = s
        .lease_due("w", 10, Duration::from_secs(3600))
        .await
        .unwrap();
    let l = &leases[0];
    let newer = account("c1", "p100", "a", "USD", "2", 31);
    let results = s
        .finish_syncs(&[
            ok_write(l, 31, vec![newer.clone()]),
            ok_write(l, 30, vec![account("c1", "p100", "a", "USD", "1", 30)]),
        ])
        .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let got = s.customer_accounts("c1").await.unwrap();
    assert_eq!(got.accounts, vec![newer]);
    assert_eq!(got.snapshots[0].fetched_at, t(31));
    assert_eq!(s.totals(&Scope::All, &all()).await.unwrap().customers, 1);
}

pub async fn sync_batch_with_a_deleted_customer_writes_the_others(s: &dyn Store) {
    let leases = leased_customers(s, &["c1", "gone", "c2"]).await;
    s.delete_customer("gone").await.unwrap();
    let batch: Vec<SyncWrite> = ["c1", "gone", "c2"]
        .iter()
        .map(|c| {
            ok_write(
                lease_of(&leases, c, "p100"),
                10,
                vec![account(c, "p100", c, "USD", "1.5", 10)],
            )
        })
        .collect();
    let results = s.finish_syncs(&batch).await;
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(
        matches!(results[1], Err(StoreError::NotFound { .. })),
        "{:?}",
        results[1]
    );
    for c in ["c1", "c2"] {
        assert_eq!(s.customer_accounts(c).await.unwrap().accounts.len(), 1);
        assert!(s.sync_states(c).await.unwrap()[0].lease_owner.is_none());
    }
    let totals = s.totals(&Scope::All, &all()).await.unwrap();
    assert_eq!(totals.customers, 2);
    assert_eq!(totals.by_currency[0].balance.to_string(), "3.0");
}

/// An account listed by two pairs of one batch: refused as a whole by the set-based writer, so
/// written pair by pair; the later pair holds it.
pub async fn sync_batch_with_an_account_in_two_pairs(s: &dyn Store) {
    let leases = leased_customers(s, &["c1", "c2"]).await;
    let mut moved = account("c2", "p100", "same", "USD", "4", 10);
    let results = s
        .finish_syncs(&[
            ok_write(
                lease_of(&leases, "c1", "p100"),
                10,
                vec![account("c1", "p100", "same", "USD", "4", 10)],
            ),
            ok_write(lease_of(&leases, "c2", "p100"), 10, vec![moved.clone()]),
        ])
        .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(s.customer_accounts("c1").await.unwrap().accounts.is_empty());
    moved.fetched_at = t(10);
    assert_eq!(
        s.customer_accounts("c2").await.unwrap().accounts,
        vec![moved]
    );
    assert_eq!(
        s.totals(&Scope::All, &all()).await.unwrap().by_currency[0].accounts,
        1
    );
}

/// An account stored under one customer arrives in a batch under another (the provider moved
/// it): the batch still ends as pair-by-pair writes would, counts and history included.
pub async fn sync_batch_moves_an_account_stored_elsewhere(s: &dyn Store) {
    for c in ["c1", "c2", "c3"] {
        s.create_customer(&customer(c, &[("p100", c)]))
            .await
            .unwrap();
    }
    save(
        s,
        "c1",
        "p100",
        0,
        &[account("c1", "p100", "m", "USD", "0.09872368", 0)],
    )
    .await;
    let leases = s
        .lease_due("w", 10, Duration::from_secs(3600))
        .await
        .unwrap();
    let moved = account("c2", "p100", "m", "USD", "0.09872368", 10);
    let other = account("c3", "p100", "o", "USD", "1", 10);
    let results = s
        .finish_syncs(&[
            ok_write(lease_of(&leases, "c2", "p100"), 10, vec![moved.clone()]),
            ok_write(lease_of(&leases, "c3", "p100"), 10, vec![other.clone()]),
        ])
        .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(s.customer_accounts("c1").await.unwrap().accounts.is_empty());
    assert_eq!(
        s.customer_accounts("c2").await.unwrap().accounts,
        vec![moved]
    );
    assert_eq!(
        s.customer_accounts("c3").await.unwrap().accounts,
        vec![other]
    );
    let totals = s.totals(&Scope::All, &all()).await.unwrap();
    assert_eq!(
        (
            totals.by_currency[0].balance.to_string(),
            totals.by_currency[0].accounts
        ),
        ("1.09872368".to_owned(), 2)
    );
    assert_eq!(totals.customers, 3);
    let h = s
        .account_history(&Account::make_id("p100", "m"), t(5), t(15))
        .await
        .unwrap();
    // As for one snapshot: a move with the same balance and status is no balance change.
    assert!(h.is_empty(), "{h:?}");
    for c in ["c2", "c3"] {
        assert!(s.sync_states(c).await.unwrap()[0].lease_owner.is_none());
    }
}
