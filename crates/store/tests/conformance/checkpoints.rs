//! All-customer totals at an instant from checkpoints (`totals_at`): every instant and every
//! rollup filter answers exactly what summing `held_at` answers, also after a late write, a
//! customer's deletion and pruning, each of which drops the checkpoints it makes wrong.
#![allow(unused_imports, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use coffer_core::query::Filter;
use coffer_core::{BalanceType, BalanceTypeCounts, Currency, Status};
use coffer_store::{Scope, Store};

use super::history::{GRID, history};
use super::*;

/// (currency, crypto, exact balance text, accounts, by balance type) per currency, as `totals`
/// orders them.
type Row = (String, bool, String, u64, BalanceTypeCounts);

fn filters() -> Vec<Filter> {
    let crypto = Filter {
        is_crypto: Some(true),
        ..Default::default()
    };
    let usd_gbp = Filter {
        currencies: vec![Currency::new("USD"), Currency::new("GBP")],
        ..Default::default()
    };
    let bank = Filter {
        providers: vec!["bank".into()],
        ..Default::default()
    };
    let active = Filter {
        statuses: vec![Status::Active],
        active: Some(true),
        ..Default::default()
    };
    let available = Filter {
        balance_types: vec![BalanceType::Available],
        ..Default::default()
    };
    let unspecified_p100 = Filter {
        balance_types: vec![BalanceType::Unspecified],
        providers: vec!["p100".into()],
        ..Default::default()
    };
    vec![
        Filter::default(),
        crypto,
        usd_gbp,
        bank,
        active,
        available,
        unspecified_p100,
    ]
}

/// What summing the per-account answer gives.
async fn summed(s: &dyn Store, at: i64, f: &Filter) -> Vec<Row> {
    let h = s.held_at(&Scope::All, t(at), None).await.unwrap();
    let mut by: BTreeMap<(String, bool), (Decimal, u64, BalanceTypeCounts)> = BTreeMap::new();
    for a in h.accounts.iter().filter(|a| f.matches(a)) {
        let e = by
            .entry((a.currency.code().to_owned(), a.is_crypto))
            .or_default();
        e.0 += a.balance;
        e.1 += 1;
        e.2.add(a.balance_type, 1);
    }
    by.into_iter()
        .map(|((c, k), (b, n, types))| (c, k, b.to_string(), n, types))
        .collect()
}

async fn from_checkpoints(s: &dyn Store, at: i64, f: &Filter) -> Option<Vec<Row>> {
    let totals = s.totals_at(t(at), f).await.unwrap()?;
    Some(
        totals
            .into_iter()
            .map(|c| {
                let code = c.currency.code().to_owned();
                let types = c.balance_types;
                (code, c.is_crypto, c.balance.to_string(), c.accounts, types)
            })
            .collect(),
    )
}

/// Every grid instant from `from` on answers as `held_at`; `None` only before the first
/// version (t(10)) or, with `gaps`, where no checkpoint is left.
async fn check(s: &dyn Store, from: i64, gaps: bool, what: &str) {
    for at in GRID.iter().copied().filter(|x| *x >= from) {
        for f in filters() {
            match from_checkpoints(s, at, &f).await {
                Some(got) => assert_eq!(got, summed(s, at, &f).await, "{what}: at {at} {f:?}"),
                None => assert!(gaps || at < 10, "{what}: no checkpoint at {at}"),
            }
        }
    }
}

const STEP: Duration = Duration::from_secs(7);

pub async fn checkpoint_totals_answer_as_held_at(s: &dyn Store) {
    history(s).await;
    assert_eq!(s.totals_at(t(40), &Filter::default()).await.unwrap(), None);
    let built = s.build_checkpoints(t(100), STEP).await.unwrap();
    assert!(built > 10, "{built}");
    assert_eq!(s.build_checkpoints(t(100), STEP).await.unwrap(), 0);
    check(s, 0, false, "built").await;
    // The balance types are a dimension: a's change at t(40) moves its count.
    let usd = |rows: Vec<Row>| rows.into_iter().find(|r| r.0 == "USD").map(|r| r.4);
    let types = |available, unspecified| BalanceTypeCounts {
        available,
        unspecified,
    };
    let all = Filter::default();
    assert_eq!(
        usd(from_checkpoints(s, 35, &all).await.unwrap()),
        Some(types(0, 1))
    );
    assert_eq!(
        usd(from_checkpoints(s, 40, &all).await.unwrap()),
        Some(types(1, 0))
    );
    // A balance range needs each account: not answered from checkpoints.
    let mut range = Filter::default();
    range.balance.gt = Some(d("1"));
    assert_eq!(s.totals_at(t(40), &range).await.unwrap(), None);

    // A late write at 35 (a fetch that took long): the checkpoints from 35 on go, the answers
    // stay those of held_at, and a rebuild brings them back.
    save(
        s,
        "c2",
        "bank",
        35,
        &[account("c2", "bank", "h", "EUR", "12.5", 35)],
    )
    .await;
    check(s, 0, false, "after a late write").await;
    assert!(s.build_checkpoints(t(100), STEP).await.unwrap() > 0);
    check(s, 0, false, "rebuilt").await;

    s.delete_customer("c2").await.unwrap();
    assert_eq!(s.totals_at(t(60), &Filter::default()).await.unwrap(), None);
    assert!(s.build_checkpoints(t(100), STEP).await.unwrap() > 0);
    check(s, 0, false, "after deleting c2").await;

    s.prune_history(t(45)).await.unwrap().unwrap();
    check(s, 45, true, "pruned").await;
    assert!(s.build_checkpoints(t(100), STEP).await.unwrap() == 0);
    // From scratch after pruning (a deletion drops every checkpoint): rebuilt over the
    // pruned past, every answer from the horizon on is still held_at's.
    s.create_customer(&customer("c3", &[("p100", "e3")]))
        .await
        .unwrap();
    s.delete_customer("c3").await.unwrap();
    assert_eq!(s.totals_at(t(60), &Filter::default()).await.unwrap(), None);
    assert!(s.build_checkpoints(t(100), STEP).await.unwrap() > 0);
    check(s, 45, false, "rebuilt after pruning").await;
}
