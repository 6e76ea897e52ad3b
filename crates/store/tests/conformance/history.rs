//! History over a window and retention: `held_window` / `rates_window` answer every instant
//! exactly as `held_at` / `rates_at`, and `prune_history` changes no answer at or after its
//! horizon while removing what is older.
#![allow(unused_imports, clippy::unwrap_used)]

use std::collections::BTreeMap;

use coffer_core::{Account, Currency, ProviderRate};
use coffer_store::{HeldAt, Scope, Store, StoredRate};

use super::*;

fn with_rate(mut a: Account, rate: &str) -> Account {
    a.provider_rate = Some(ProviderRate {
        rate: d(rate),
        quote: Currency::new("EUR"),
    });
    a
}

/// A history with every kind of change: balances and rates changing, an account closing and
/// reopening, an account moving to another customer, a pair never observed, manual rates set,
/// changed and removed, and observations that change nothing.
pub(super) async fn history(s: &dyn Store) {
    s.create_customer(&customer("c1", &[("p100", "e1"), ("bank", "b1")]))
        .await
        .unwrap();
    s.create_customer(&customer("c2", &[("p100", "e2"), ("bank", "b2")]))
        .await
        .unwrap();
    let eur = Currency::new("EUR");
    let set = |cur: &str, v: &str| BTreeMap::from([(Currency::new(cur), d(v))]);
    // `b` is declared available; `a` unspecified until t(40), then available (its adapter
    // learnt what the provider means), so totals by balance type change over time too.
    let a = |c: &str, bal: &str, at| {
        let mut x = with_rate(account(c, "p100", "a", "USD", bal, at), "0.9");
        if at >= 40 {
            x.balance_type = coffer_core::BalanceType::Available;
        }
        x
    };
    let b = |bal: &str, rate: &str, at| {
        let mut x = with_rate(account("c1", "p100", "b", "BTC", bal, at), rate);
        x.balance_type = coffer_core::BalanceType::Available;
        x
    };
    s.set_manual_rates(
        &eur,
        &set("GBP", "1.15"),
        t(5),
        &coffer_store::Actor::key("k1", None),
    )
    .await
    .unwrap();
    save(
        s,
        "c1",
        "p100",
        10,
        &[a("c1", "100.50", 10), b("0.5", "60000", 10)],
    )
    .await;
    save(
        s,
        "c1",
        "bank",
        12,
        &[account("c1", "bank", "g", "GBP", "7", 12)],
    )
    .await;
    save(
        s,
        "c1",
        "p100",
        20,
        &[a("c1", "100.50", 20), b("0.75", "61000.5", 20)],
    )
    .await;
    s.set_manual_rates(
        &eur,
        &set("GBP", "1.2"),
        t(25),
        &coffer_store::Actor::key("k2", None),
    )
    .await
    .unwrap();
    save(s, "c1", "p100", 30, &[a("c1", "100.50", 30)]).await;
    save(
        s,
        "c1",
        "p100",
        40,
        &[a("c1", "99", 40), b("0.75", "61000.5", 40)],
    )
    .await;
    s.delete_manual_rate(
        &Currency::new("GBP"),
        t(45),
        &coffer_store::Actor::key("k3", None),
    )
    .await
    .unwrap();
    // Account a moves to c2.
    save(s, "c1", "p100", 50, &[b("1", "59000", 50)]).await;
    save(s, "c2", "p100", 50, &[a("c2", "99", 50)]).await;
    save(
        s,
        "c1",
        "bank",
        60,
        &[account("c1", "bank", "g", "GBP", "8.25", 60)],
    )
    .await;
}

pub(super) const GRID: [i64; 22] = [
    0, 5, 9, 10, 11, 12, 15, 20, 24, 25, 29, 30, 35, 40, 45, 49, 50, 55, 59, 60, 61, 100,
];

fn scopes() -> [Scope; 3] {
    [
        Scope::All,
        Scope::Customers(vec!["c1".into()]),
        Scope::Customers(vec!["c2".into(), "nobody".into()]),
    ]
}

pub async fn held_window_answers_as_held_at(s: &dyn Store) {
    history(s).await;
    for scope in scopes() {
        for (i, from) in GRID.iter().enumerate() {
            let to = GRID[(i + 7).min(GRID.len() - 1)];
            let w = s.held_window(&scope, t(*from), t(to)).await.unwrap();
            for at in GRID.iter().filter(|x| (*from..=to).contains(x)) {
                let want = s.held_at(&scope, t(*at), None).await.unwrap();
                assert_eq!(w.at(t(*at)), want, "{scope:?} window {from}..{to} at {at}");
            }
        }
    }
    for (i, from) in GRID.iter().enumerate() {
        let to = GRID[(i + 5).min(GRID.len() - 1)];
        let w = s.rates_window(t(*from), t(to)).await.unwrap();
        for at in GRID.iter().filter(|x| (*from..=to).contains(x)) {
            let want = s.rates_at(t(*at)).await.unwrap();
            assert_eq!(w.at(t(*at)), want, "rates window {from}..{to} at {at}");
        }
    }
}

async fn answers_from(s: &dyn Store, horizon: i64) -> Vec<(HeldAt, Vec<StoredRate>)> {
    let mut out = Vec::new();
    for at in GRID.iter().filter(|x| **x >= horizon) {
        for scope in scopes() {
            let rates = s.rates_at(t(*at)).await.unwrap();
            out.push((s.held_at(&scope, t(*at), None).await.unwrap(), rates));
        }
        let one = s
            .held_at(&Scope::All, t(*at), Some("p100:a"))
            .await
            .unwrap();
        out.push((one, Vec::new()));
    }
    out
}

pub async fn pruning_keeps_every_answer_from_the_horizon(s: &dyn Store) {
    history(s).await;
    for horizon in [35, 45, 55] {
        let before = answers_from(s, horizon).await;
        let pruned = s.prune_history(t(horizon)).await.unwrap().unwrap();
        assert_eq!(answers_from(s, horizon).await, before, "horizon {horizon}");
        if horizon == 35 {
            // c1/p100 observed at 10, 20, 30 (the last kept); versions of a and b before the
            // one in force at 30; BTC's rate of 10 and GBP's first version.
            assert_eq!(pruned.observations, 2, "{pruned:?}");
            assert!(pruned.account_versions >= 2, "{pruned:?}");
            assert!(pruned.rate_versions >= 2, "{pruned:?}");
        }
        let again = s.prune_history(t(horizon)).await.unwrap().unwrap();
        assert_eq!(again, coffer_store::Pruned::default(), "horizon {horizon}");
    }
    // An account's changes keep the version in force at the horizon.
    let q = coffer_store::ChangesQuery {
        limit: 100,
        ..Default::default()
    };
    let a = s
        .account_changes(&Scope::All, "p100:a", &q)
        .await
        .unwrap()
        .unwrap();
    assert!(!a.is_empty());
    assert!(
        s.account_changes(&Scope::Customers(vec!["nobody".into()]), "p100:a", &q)
            .await
            .unwrap()
            .is_none()
    );
}
