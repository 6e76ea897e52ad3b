//! API keys, rates, history ranges, deletes and moves.
#![allow(unused_imports, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use coffer_core::query::{BalanceRange, FieldOp, FieldSearch, Filter, SearchField};
use coffer_core::{Account, Currency, ProviderErrorKind, ProviderRate, Status, Wallet};
use coffer_store::{Actor, NewApiKey, RateSource, Role, Scope, Store, StoreError, SyncOutcome};
use rust_decimal::Decimal;

use super::*;

pub async fn api_keys_by_hash(s: &dyn Store) {
    let hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let k = s
        .insert_api_key(&NewApiKey {
            hash: hash.into(),
            role: Role::Reader,
            customers: vec!["c1".into(), "c2".into()],
            expires_at: None,
        })
        .await
        .unwrap();
    assert_eq!(k.role, Role::Reader);
    assert_eq!(k.customers, ["c1", "c2"]);
    assert_eq!(k.revoked_at, None);
    assert_eq!(s.api_key_by_hash(hash).await.unwrap(), Some(k.clone()));
    assert_eq!(s.api_key_by_hash("other").await.unwrap(), None);
    assert!(matches!(
        s.insert_api_key(&NewApiKey {
            hash: hash.into(),
            role: Role::Admin,
            customers: vec![],
            expires_at: None,
        })
        .await,
        Err(StoreError::Conflict(_))
    ));
    let admin = s
        .insert_api_key(&NewApiKey {
            hash: "h2".into(),
            role: Role::Admin,
            customers: vec![],
            expires_at: None,
        })
        .await
        .unwrap();
    assert_ne!(admin.id, k.id);
    s.revoke_api_key(&k.id).await.unwrap();
    let revoked = s.api_key_by_hash(hash).await.unwrap().unwrap();
    assert!(revoked.revoked_at.is_some());
    s.revoke_api_key(&k.id).await.unwrap();
    assert_eq!(
        s.api_key_by_hash(hash).await.unwrap(),
        Some(revoked),
        "revoking twice keeps the first time"
    );
    assert!(matches!(
        s.revoke_api_key("nope").await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn rates_keep_both_sources(s: &dyn Store) {
    let eur = Currency::new("EUR");
    let mut manual = BTreeMap::new();
    manual.insert(Currency::new("USD"), d("0.92"));
    manual.insert(Currency::new("BTC"), d("69258.93415658"));
    s.set_manual_rates(&eur, &manual, t(0), &Actor::system())
        .await
        .unwrap();

    s.create_customer(&customer("c1", &[])).await.unwrap();
    let mut a = account("c1", "p100", "a", "BTC", "1", 10);
    a.provider_rate = Some(ProviderRate {
        rate: d("60000.12345678"),
        quote: eur.clone(),
    });
    let mut b = account("c1", "p100", "b", "USDC", "1", 10);
    b.provider_rate = Some(ProviderRate {
        rate: d("0.9100"),
        quote: eur.clone(),
    });
    save(s, "c1", "p100", 10, &[a.clone(), b]).await;

    let rates = s.rates().await.unwrap();
    let find = |cur: &str, src: RateSource| {
        rates
            .iter()
            .find(|r| r.currency.code() == cur && r.source == src)
            .cloned()
    };
    let m = find("BTC", RateSource::Manual).unwrap();
    assert_eq!(
        (
            m.rate.to_string().as_str(),
            m.quote.code(),
            m.provider.clone(),
            m.as_of
        ),
        ("69258.93415658", "EUR", None, t(0))
    );
    let p = find("BTC", RateSource::Provider).unwrap();
    assert_eq!(
        (p.rate.to_string().as_str(), p.provider.as_deref(), p.as_of),
        ("60000.12345678", Some("p100"), t(10))
    );
    assert_eq!(
        find("USDC", RateSource::Provider).unwrap().rate.to_string(),
        "0.9100"
    );
    assert_eq!(rates.len(), 4);

    // A newer manual set replaces only what it names; an older provider rate does not win.
    let mut more = BTreeMap::new();
    more.insert(Currency::new("USD"), d("0.93"));
    s.set_manual_rates(&eur, &more, t(20), &Actor::system())
        .await
        .unwrap();
    s.create_customer(&customer("c2", &[])).await.unwrap();
    let mut old = account("c2", "p100", "z", "BTC", "1", 5);
    old.provider_rate = Some(ProviderRate {
        rate: d("1"),
        quote: eur.clone(),
    });
    save(s, "c2", "p100", 5, &[old]).await;
    let rates = s.rates().await.unwrap();
    let find = |cur: &str, src: RateSource| {
        rates
            .iter()
            .find(|r| r.currency.code() == cur && r.source == src)
            .cloned()
    };
    assert_eq!(find("USD", RateSource::Manual).unwrap().rate, d("0.93"));
    assert_eq!(
        find("BTC", RateSource::Manual).unwrap().rate,
        d("69258.93415658")
    );
    assert_eq!(
        find("BTC", RateSource::Provider).unwrap().rate,
        d("60000.12345678")
    );

    s.delete_manual_rate(&Currency::new("usd"), t(30), &Actor::system())
        .await
        .unwrap();
    let rates = s.rates().await.unwrap();
    assert!(!rates.iter().any(|r| r.currency.code() == "USD"));
    assert_eq!(rates.len(), 3);
}

pub async fn history_between_times(s: &dyn Store) {
    s.create_customer(&customer("c1", &[])).await.unwrap();
    for (i, bal) in ["1", "2", "2", "3", "3.0", "4"].iter().enumerate() {
        let at = i64::try_from(i).unwrap() * 60;
        save(
            s,
            "c1",
            "p100",
            at,
            &[account("c1", "p100", "a", "EUR", bal, at)],
        )
        .await;
    }
    let h = s.account_history("p100:a", t(0), t(1000)).await.unwrap();
    // "3" -> "3.0" is the same balance: no history row.
    assert_eq!(
        h.iter().map(|e| e.balance.to_string()).collect::<Vec<_>>(),
        ["1", "2", "3", "4"]
    );
    let h = s.account_history("p100:a", t(60), t(180)).await.unwrap();
    assert_eq!(
        h.iter().map(|e| e.recorded_at).collect::<Vec<_>>(),
        [t(60), t(180)]
    );
    let h = s.customer_history("c1", t(61), t(299)).await.unwrap();
    assert_eq!(h.len(), 1);
    assert!(
        s.customer_history("c2", t(0), t(1000))
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn delete_customer_removes_everything(s: &dyn Store) {
    s.create_customer(&customer("c1", &[("p100", "e1")]))
        .await
        .unwrap();
    save(
        s,
        "c1",
        "p100",
        0,
        &[account("c1", "p100", "a", "EUR", "1", 0)],
    )
    .await;
    s.delete_customer("c1").await.unwrap();
    assert!(matches!(
        s.get_account("p100:a").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(
        s.account_history("p100:a", t(-10), t(10))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.sync_states("c1").await.unwrap().is_empty());
    let totals = s.totals(&Scope::All, &all()).await.unwrap();
    assert!(totals.by_currency.is_empty(), "{totals:?}");
    assert_eq!(totals.customers, 0);
    // The id and the link can be used again.
    s.create_customer(&customer("c1", &[("p100", "e1")]))
        .await
        .unwrap();
    assert!(s.customer_accounts("c1").await.unwrap().accounts.is_empty());
    // Its past went with it: nothing observed, nothing held.
    let h = s.held_at(&Scope::All, t(10), None).await.unwrap();
    assert!(h.accounts.is_empty() && h.observations.is_empty(), "{h:?}");
}

pub async fn account_reopens_and_moves(s: &dyn Store) {
    s.create_customer(&customer("c1", &[])).await.unwrap();
    s.create_customer(&customer("c2", &[])).await.unwrap();
    let a = account("c1", "p100", "a", "EUR", "7", 0);
    save(s, "c1", "p100", 0, std::slice::from_ref(&a)).await;
    save(s, "c1", "p100", 10, &[]).await;
    let o = s
        .save_snapshot(
            &meta("c1", "p100", 20),
            &[Account {
                fetched_at: t(20),
                ..a.clone()
            }],
        )
        .await
        .unwrap();
    assert_eq!(
        (o.inserted, o.updated, o.history_rows),
        (0, 1, 1),
        "reopened"
    );
    // The provider now reports the same account for c2: it moves.
    let moved = Account {
        customer_id: "c2".into(),
        fetched_at: t(30),
        ..a.clone()
    };
    save(s, "c2", "p100", 30, std::slice::from_ref(&moved)).await;
    assert_eq!(s.get_account("p100:a").await.unwrap(), moved);
    assert!(s.customer_accounts("c1").await.unwrap().accounts.is_empty());
    let totals = s.totals(&Scope::All, &all()).await.unwrap();
    assert_eq!(totals.by_currency.len(), 1);
    assert_eq!(
        (
            totals.by_currency[0].balance,
            totals.by_currency[0].accounts
        ),
        (d("7"), 1)
    );
}

/// Parses a decimal for callers outside this module (bench-free helpers).
pub fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// Of one snapshot's accounts in one currency, the largest balance gives the stored provider
/// rate, whichever comes last: where a provider's rate is a quotient of rounded amounts
/// (Corebanq), that is the most precise one.
pub async fn provider_rate_comes_from_the_largest_balance(s: &dyn Store) {
    let eur = Currency::new("EUR");
    s.create_customer(&customer("c1", &[])).await.unwrap();
    let with_rate = |id: &str, balance: &str, rate: &str| {
        let mut a = account("c1", "bank", id, "USDC", balance, 10);
        a.provider_rate = Some(ProviderRate {
            rate: d(rate),
            quote: eur.clone(),
        });
        a
    };
    let small = with_rate("s", "0.12", "0.9166666666666666666666666667");
    let large = with_rate("l", "-12000", "0.8588141666666666666666666667");
    for (at, accounts) in [(10, [small.clone(), large.clone()]), (20, [large, small])] {
        let accounts: Vec<Account> = accounts
            .into_iter()
            .map(|mut a| {
                a.fetched_at = t(at);
                a
            })
            .collect();
        save(s, "c1", "bank", at, &accounts).await;
        let rates = s.rates().await.unwrap();
        let usdc: Vec<_> = rates
            .iter()
            .filter(|r| r.currency.code() == "USDC")
            .collect();
        assert_eq!(usdc.len(), 1, "{usdc:?}");
        assert_eq!(
            (usdc[0].rate.to_string().as_str(), usdc[0].as_of),
            ("0.8588141666666666666666666667", t(at))
        );
    }
}

/// `rate_givers` over a scope names the accounts core's `rate_givers` picks from every open
/// account of that scope in id order: another customer's newer rate, a closed account's rate
/// and an unchanged account's stale row time never decide.
pub async fn rate_givers_are_cores_choice_over_the_scope(s: &dyn Store) {
    for c in ["c1", "c2", "c3"] {
        s.create_customer(&customer(c, &[])).await.unwrap();
    }
    let rated = |c: &str, p: &str, id: &str, cur: &str, balance: &str, quote: &str, rate: &str| {
        let mut a = account(c, p, id, cur, balance, 0);
        a.provider_rate = Some(ProviderRate {
            rate: d(rate),
            quote: Currency::new(quote),
        });
        a
    };
    let at = |mut accounts: Vec<Account>, when: i64| {
        for a in &mut accounts {
            a.fetched_at = t(when);
        }
        accounts
    };
    // c1 at 10, its bank again at 40 with nothing changed (a row written at 10 is not
    // rewritten: when it was seen is its snapshot's 40).
    let c1 = [
        rated("c1", "bank", "c1-usdc", "USDC", "5", "EUR", "0.91"),
        rated("c1", "p100", "c1-btc", "BTC", "1", "USD", "60000"),
    ];
    save(s, "c1", "bank", 10, &at(c1[..1].to_vec(), 10)).await;
    save(s, "c1", "p100", 10, &at(c1[1..].to_vec(), 10)).await;
    // c2 at 20: a larger USDC (by size: negative) and two equal BTC (the larger id wins), and
    // an account that a later snapshot closes.
    let c2 = [
        rated("c2", "bank", "c2-usdc", "USDC", "-700", "EUR", "0.92"),
        rated("c2", "p100", "c2-btc-a", "BTC", "2", "USD", "61000"),
        rated("c2", "p100", "c2-btc-b", "BTC", "-2", "USD", "61001"),
        rated("c2", "p100", "c2-eth", "ETH", "3", "USD", "3000"),
    ];
    save(s, "c2", "bank", 20, &at(c2[..1].to_vec(), 20)).await;
    save(s, "c2", "p100", 20, &at(c2[1..].to_vec(), 20)).await;
    save(s, "c2", "p100", 30, &at(c2[1..3].to_vec(), 30)).await;
    // c3, outside the scope, has the newest rates of all.
    let c3 = vec![rated("c3", "p100", "c3-btc", "BTC", "9", "USD", "99999")];
    save(s, "c3", "p100", 50, &at(c3.clone(), 50)).await;
    save(s, "c1", "bank", 40, &at(c1[..1].to_vec(), 40)).await;

    let scope = Scope::Customers(vec!["c1".into(), "c2".into()]);
    let ids = |accounts: Vec<Account>| {
        let mut ids: Vec<String> = accounts.into_iter().map(|a| a.id).collect();
        ids.sort();
        ids
    };
    let givers = ids(s.rate_givers(&scope).await.unwrap());
    let every = s.list_accounts(&scope, &all()).await.unwrap();
    let core = ids(coffer_core::rates::rate_givers(&every)
        .into_iter()
        .cloned()
        .collect());
    assert_eq!(givers, core);
    // USDC: c1's (seen at 40) over c2's larger one (20); BTC: c2's two at 30, equal by size,
    // the larger id; ETH closed at 30: no giver.
    let want = ids(vec![c1[0].clone(), c2[2].clone()]);
    assert_eq!(givers, want);
    let everyone = ids(s.rate_givers(&Scope::All).await.unwrap());
    assert_eq!(everyone, ids(vec![c1[0].clone(), c3[0].clone()]));
}
