//! Snapshots: upsert, close, history, staleness, exact money.
#![allow(unused_imports, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use coffer_core::query::{BalanceRange, FieldOp, FieldSearch, Filter, SearchField};
use coffer_core::{Account, Currency, ProviderErrorKind, ProviderRate, Status, Wallet};
use coffer_store::{NewApiKey, RateSource, Role, Scope, Store, StoreError, SyncOutcome};
use rust_decimal::Decimal;

use super::*;

pub async fn snapshot_upsert_close_and_history(s: &dyn Store) {
    s.create_customer(&customer("c1", &[("p100", "e1")]))
        .await
        .unwrap();
    let a = account("c1", "p100", "a", "EUR", "10.00", 0);
    let b = account("c1", "p100", "b", "BTC", "0.5", 0);
    let mut m = meta("c1", "p100", 0);
    m.rejected = vec!["XYZ: balance `abc` is not a number".into()];
    let o = s.save_snapshot(&m, &[a.clone(), b.clone()]).await.unwrap();
    assert_eq!(
        (o.inserted, o.updated, o.unchanged, o.closed, o.history_rows),
        (2, 0, 0, 0, 2)
    );
    assert!(!o.stale);

    let got = s.customer_accounts("c1").await.unwrap();
    assert_eq!(got.accounts, vec![a.clone(), b.clone()]);
    assert_eq!(got.snapshots, vec![m.clone()]);
    assert_eq!(s.get_account("p100:a").await.unwrap(), a);

    // Same balances again: unchanged, no history; fetched_at moves.
    let a2 = Account {
        fetched_at: t(60),
        ..a.clone()
    };
    let b2 = Account {
        fetched_at: t(60),
        ..b.clone()
    };
    let o = s
        .save_snapshot(&meta("c1", "p100", 60), &[a2.clone(), b2.clone()])
        .await
        .unwrap();
    assert_eq!(
        (o.inserted, o.updated, o.unchanged, o.history_rows),
        (0, 0, 2, 0)
    );
    assert_eq!(s.get_account("p100:a").await.unwrap().fetched_at, t(60));

    // A wallet change is an update without history; a status change writes history.
    let a3 = Account {
        fetched_at: t(120),
        wallets: vec![Wallet {
            network: "sepa".into(),
            address: "x".into(),
            ..Wallet::default()
        }],
        ..a.clone()
    };
    let b3 = Account {
        fetched_at: t(120),
        status: Status::Suspended,
        active: false,
        ..b.clone()
    };
    let o = s
        .save_snapshot(&meta("c1", "p100", 120), &[a3.clone(), b3.clone()])
        .await
        .unwrap();
    assert_eq!((o.updated, o.unchanged, o.history_rows), (2, 0, 1));

    // b disappears: closed, not deleted, history says so; a's balance changes.
    let a4 = Account {
        fetched_at: t(180),
        balance: d("12.50"),
        ..a.clone()
    };
    let o = s
        .save_snapshot(&meta("c1", "p100", 180), std::slice::from_ref(&a4))
        .await
        .unwrap();
    assert_eq!((o.updated, o.closed, o.history_rows), (1, 1, 2));
    let got = s.customer_accounts("c1").await.unwrap();
    assert_eq!(got.accounts, vec![a4.clone()]);
    assert!(matches!(
        s.get_account("p100:b").await,
        Err(StoreError::NotFound { .. })
    ));

    let h = s.account_history("p100:b", t(0), t(1000)).await.unwrap();
    let seen: Vec<_> = h
        .iter()
        .map(|e| (e.status, e.closed, e.recorded_at))
        .collect();
    assert_eq!(
        seen,
        [
            (Status::Active, false, t(0)),
            (Status::Suspended, false, t(120)),
            (Status::Suspended, true, t(180))
        ]
    );
    let h = s.account_history("p100:a", t(0), t(1000)).await.unwrap();
    assert_eq!(
        h.iter().map(|e| e.balance).collect::<Vec<_>>(),
        [d("10.00"), d("12.50")]
    );

    // Another provider's snapshot does not close p100's accounts.
    s.save_snapshot(
        &meta("c1", "bank", 200),
        &[account("c1", "bank", "x", "EUR", "1", 200)],
    )
    .await
    .unwrap();
    assert_eq!(s.customer_accounts("c1").await.unwrap().accounts.len(), 2);
    assert_eq!(s.customer_accounts("c1").await.unwrap().snapshots.len(), 2);

    // An empty snapshot closes everything of that provider.
    let o = s
        .save_snapshot(&meta("c1", "p100", 240), &[])
        .await
        .unwrap();
    assert_eq!(o.closed, 1);
    let left = s.customer_accounts("c1").await.unwrap().accounts;
    assert_eq!(
        left.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
        ["bank:x"]
    );
    // A customer with no data yet is known and empty.
    s.create_customer(&customer("c2", &[])).await.unwrap();
    assert_eq!(s.customer_accounts("c2").await.unwrap(), Default::default());
    assert!(matches!(
        s.customer_accounts("zz").await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn stale_snapshot_is_ignored(s: &dyn Store) {
    s.create_customer(&customer("c1", &[])).await.unwrap();
    save(
        s,
        "c1",
        "p100",
        100,
        &[account("c1", "p100", "a", "EUR", "5", 100)],
    )
    .await;
    let o = s
        .save_snapshot(
            &meta("c1", "p100", 50),
            &[account("c1", "p100", "a", "EUR", "999", 50)],
        )
        .await
        .unwrap();
    assert!(o.stale);
    assert_eq!(o.history_rows, 0);
    assert_eq!(s.get_account("p100:a").await.unwrap().balance, d("5"));
    assert_eq!(
        s.customer_accounts("c1").await.unwrap().snapshots[0].fetched_at,
        t(100)
    );
    // The same fetched_at again is applied.
    let o = s
        .save_snapshot(
            &meta("c1", "p100", 100),
            &[account("c1", "p100", "a", "EUR", "6", 100)],
        )
        .await
        .unwrap();
    assert!(!o.stale);
    assert_eq!(s.get_account("p100:a").await.unwrap().balance, d("6"));
}

pub async fn snapshot_of_unknown_customer_is_not_found(s: &dyn Store) {
    let r = s
        .save_snapshot(
            &meta("ghost", "p100", 0),
            &[account("ghost", "p100", "a", "EUR", "1", 0)],
        )
        .await;
    assert!(matches!(r, Err(StoreError::NotFound { .. })), "{r:?}");
    // An account of another customer in the snapshot is refused, nothing written.
    s.create_customer(&customer("c1", &[])).await.unwrap();
    let r = s
        .save_snapshot(
            &meta("c1", "p100", 0),
            &[account("c2", "p100", "a", "EUR", "1", 0)],
        )
        .await;
    assert!(r.is_err());
    assert!(
        s.customer_accounts("c1")
            .await
            .unwrap()
            .snapshots
            .is_empty()
    );
}

pub async fn money_round_trips_exactly(s: &dyn Store) {
    s.create_customer(&customer("c1", &[])).await.unwrap();
    let values = [
        "1500.000000",
        "0.09872368",
        "69258.93415658",
        "3.000000",
        "1234567890.123456789012345678",  // 28 significant digits
        "0.0000000000000000000000000001", // scale 28
        "-9999999999999999999999999999",  // 28 nines
        "79228162514264337593543950335",  // the largest Decimal
        "0.0000001",
        "12345678901234.12345678",
        "0",
        "0.00",
    ];
    let mut accounts = vec![];
    for (i, v) in values.iter().enumerate() {
        let mut a = account("c1", "p100", &format!("a{i:02}"), "BTC", v, 0);
        a.provider_rate = Some(ProviderRate {
            rate: d(v),
            quote: Currency::new("EUR"),
        });
        a.wallets = vec![Wallet {
            network: "btc".into(),
            address: format!("bc1q{i}"),
            tag: Some("memo".into()),
            mainnet: Some(false),
            network_name: Some("testnet".into()),
            withdrawal_fee: Some(d("0.00010000")),
            withdrawal_min: Some(d(v)),
            deposit_min: None,
        }];
        accounts.push(a);
    }
    save(s, "c1", "p100", 0, &accounts).await;
    let got = s.customer_accounts("c1").await.unwrap().accounts;
    assert_eq!(got.len(), values.len());
    for (a, v) in got.iter().zip(values) {
        assert_eq!(a.balance.to_string(), v, "balance of {}", a.id);
        assert_eq!(a.provider_rate.as_ref().unwrap().rate.to_string(), v);
        assert_eq!(a.wallets[0].withdrawal_min.unwrap().to_string(), v);
        assert_eq!(
            a.wallets[0].withdrawal_fee.unwrap().to_string(),
            "0.00010000"
        );
    }
    assert_eq!(got, accounts);
    let h = s.customer_history("c1", t(0), t(0)).await.unwrap();
    let mut hist: Vec<String> = h.iter().map(|e| e.balance.to_string()).collect();
    hist.sort();
    let mut want: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
    want.sort();
    assert_eq!(hist, want);
    // Filters compare exactly at the 28th digit.
    let f = Filter {
        balance: BalanceRange {
            gt: Some(d("1234567890.123456789012345677")),
            lt: Some(d("1234567890.123456789012345679")),
            ..Default::default()
        },
        ..all()
    };
    let hit = s.list_accounts(&Scope::All, &f).await.unwrap();
    assert_eq!(hit.len(), 1);
    assert_eq!(hit[0].balance.to_string(), "1234567890.123456789012345678");
}

/// What a balance means is kept as it was declared, read back by every read (the accounts,
/// the list's pages, the state at an instant), and a change of it is a change of the account.
pub async fn balance_types_are_kept(s: &dyn Store) {
    use coffer_core::BalanceType;
    s.create_customer(&customer("c1", &[])).await.unwrap();
    let mut a = account("c1", "p100", "a", "EUR", "10.00", 0);
    a.balance_type = BalanceType::Available;
    let b = account("c1", "p100", "b", "EUR", "5.00", 0);
    save(s, "c1", "p100", 0, &[a.clone(), b.clone()]).await;
    let types = |accounts: &[Account]| -> Vec<(String, BalanceType)> {
        accounts
            .iter()
            .map(|x| (x.id.clone(), x.balance_type))
            .collect()
    };
    let want = vec![
        ("p100:a".to_owned(), BalanceType::Available),
        ("p100:b".to_owned(), BalanceType::Unspecified),
    ];
    let got = s.customer_accounts("c1").await.unwrap().accounts;
    assert_eq!(types(&got), want);
    let page = s
        .list_page(&Scope::All, &all(), &Default::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(types(&page), want);
    // The type changes (an adapter that learnt what its provider means): an update, and the
    // past keeps what was said then.
    let a2 = Account {
        balance_type: BalanceType::Unspecified,
        fetched_at: t(60),
        ..a.clone()
    };
    let b2 = Account {
        fetched_at: t(60),
        ..b.clone()
    };
    let o = s
        .save_snapshot(&meta("c1", "p100", 60), &[a2, b2])
        .await
        .unwrap();
    assert_eq!((o.updated, o.unchanged), (1, 1), "{o:?}");
    let then = s.held_at(&Scope::All, t(30), None).await.unwrap();
    assert_eq!(types(&then.accounts), want, "as declared then");
    let now = s.held_at(&Scope::All, t(90), None).await.unwrap();
    assert_eq!(
        types(&now.accounts),
        vec![
            ("p100:a".to_owned(), BalanceType::Unspecified),
            ("p100:b".to_owned(), BalanceType::Unspecified),
        ]
    );
}

/// A customer's accounts and its snapshots are read as of one moment: with a sync committing
/// all the while, every account read carries its pair's snapshot time, never the accounts of
/// one fetch next to the snapshot time of the next.
pub async fn customer_accounts_come_from_one_fetch(s: &dyn Store) {
    use std::sync::atomic::{AtomicBool, Ordering};
    s.create_customer(&customer("c1", &[("p100", "e1")]))
        .await
        .unwrap();
    let fetch = |i: i64| {
        vec![
            account("c1", "p100", "a", "EUR", &format!("{i}.09872368"), i),
            account("c1", "p100", "b", "BTC", "0.0000001", i),
        ]
    };
    save(s, "c1", "p100", 0, &fetch(0)).await;
    let done = AtomicBool::new(false);
    let writer = async {
        for i in 1..=150 {
            save(s, "c1", "p100", i, &fetch(i)).await;
        }
        done.store(true, Ordering::Relaxed);
    };
    let reader = async {
        let mut reads = 0;
        while !done.load(Ordering::Relaxed) {
            let got = s.customer_accounts("c1").await.unwrap();
            let [snapshot] = got.snapshots.as_slice() else {
                panic!("one snapshot: {:?}", got.snapshots);
            };
            assert_eq!(got.accounts.len(), 2, "{:?}", got.accounts);
            for a in &got.accounts {
                assert_eq!(
                    a.fetched_at, snapshot.fetched_at,
                    "read {reads}: {} from another fetch than its snapshot",
                    a.id
                );
            }
            reads += 1;
        }
        reads
    };
    let ((), reads) = tokio::join!(writer, reader);
    assert!(reads > 0, "the reader never ran while the writer wrote");
}
