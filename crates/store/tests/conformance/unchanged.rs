//! Unchanged accounts cost no row (issue 14, deliverable 6): a sync whose accounts did not change
//! writes the pair's observation, not a row per account; each account's `fetched_at` is still
//! the fetch that last reported it, and every answer at an instant stays the same.
#![allow(unused_imports, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use coffer_core::query::SortSpec;
use coffer_core::{Account, Currency, ProviderRate};
use coffer_store::{HeldAt, Lease, Scope, Store, SyncWrite};

use super::batch::ok_write;
use super::*;

/// c1 at P100 and Bank, c2 at P100: their pairs leased to `w`.
async fn setup(s: &dyn Store) -> Vec<Lease> {
    s.create_customer(&customer("c1", &[("p100", "e1"), ("bank", "b1")]))
        .await
        .unwrap();
    s.create_customer(&customer("c2", &[("p100", "e2")]))
        .await
        .unwrap();
    let mut leases = s
        .lease_due("w", 100, Duration::from_secs(3600))
        .await
        .unwrap();
    leases.sort_by(|a, b| (&a.customer_id, &a.provider_id).cmp(&(&b.customer_id, &b.provider_id)));
    assert_eq!(leases.len(), 3);
    leases
}

/// What each pair reports at `at`; `x` of c1 at P100 has `x_balance`.
fn reported(at: i64, x_balance: &str) -> Vec<(String, String, Vec<Account>)> {
    let mut usdc = account("c1", "p100", "w", "USDC", "1234.5600", at);
    usdc.provider_rate = Some(ProviderRate {
        rate: d("0.9991"),
        quote: Currency::new("USD"),
    });
    vec![
        (
            "c1".into(),
            "bank".into(),
            vec![account("c1", "bank", "iban-1", "EUR", "10.00", at)],
        ),
        (
            "c1".into(),
            "p100".into(),
            vec![
                usdc,
                account("c1", "p100", "x", "USD", x_balance, at),
                account("c1", "p100", "y", "BTC", "0.09872368", at),
            ],
        ),
        (
            "c2".into(),
            "p100".into(),
            vec![account(
                "c2",
                "p100",
                "a",
                "ETH",
                "2.000000000000000001",
                at,
            )],
        ),
    ]
}

/// Every pair synced at `at`, as one batch (`finish_syncs`).
async fn sync_all(s: &dyn Store, leases: &[Lease], at: i64, x_balance: &str) {
    let batch: Vec<SyncWrite> = reported(at, x_balance)
        .into_iter()
        .map(|(c, p, accounts)| {
            let l = leases
                .iter()
                .find(|l| l.customer_id == c && l.provider_id == p)
                .unwrap();
            ok_write(l, at, accounts)
        })
        .collect();
    for r in s.finish_syncs(&batch).await {
        r.unwrap();
    }
}

/// Every pair saved at `at` one snapshot at a time (`save_snapshot`, as a request does).
async fn save_all(s: &dyn Store, at: i64, x_balance: &str) {
    for (c, p, accounts) in reported(at, x_balance) {
        s.save_snapshot(&meta(&c, &p, at), &accounts).await.unwrap();
    }
}

/// (a) A sync with nothing changed, in a batch or one snapshot at a time, writes no account row;
/// one with a changed account writes that row only. `stamps` reads, by account id, something
/// that changes whenever the backend writes the row (PostgreSQL: `xmin` and `ctid`; SQLite: a
/// count kept by a trigger), so the check is on the database, not on what the store says.
pub async fn unchanged_sync_writes_no_account_row<F, Fut>(s: &dyn Store, stamps: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = BTreeMap<String, String>>,
{
    let leases = setup(s).await;
    sync_all(s, &leases, 0, "100.50").await;
    let first = stamps().await;
    assert_eq!(first.len(), 5, "{first:?}");

    sync_all(s, &leases, 60, "100.50").await;
    assert_eq!(
        stamps().await,
        first,
        "an unchanged batch wrote account rows"
    );
    save_all(s, 120, "100.50").await;
    assert_eq!(
        stamps().await,
        first,
        "an unchanged snapshot wrote account rows"
    );
    let o = s
        .save_snapshot(&meta("c2", "p100", 130), &reported(130, "100.50")[2].2)
        .await
        .unwrap();
    assert_eq!((o.inserted, o.updated, o.unchanged, o.closed), (0, 0, 1, 0));
    assert_eq!(stamps().await, first);

    // One balance changes: its row, and only its, is written.
    sync_all(s, &leases, 180, "100.51").await;
    let after = stamps().await;
    let written: Vec<&String> = after
        .iter()
        .filter(|(id, v)| first.get(*id) != Some(*v))
        .map(|(id, _)| id)
        .collect();
    assert_eq!(written, vec!["p100:x"]);
    sync_all(s, &leases, 240, "100.51").await;
    save_all(s, 300, "100.51").await;
    assert_eq!(stamps().await, after, "unchanged again, rows written");

    // Every pair was still observed each time, and the accounts are as reported.
    let held = s.held_at(&Scope::All, t(300), None).await.unwrap();
    assert_eq!(held.observations.len(), 3);
    assert!(held.accounts.iter().all(|a| a.fetched_at == t(300)));
    let x = s.get_account("p100:x").await.unwrap();
    assert_eq!(
        (x.balance.to_string(), x.fetched_at),
        ("100.51".into(), t(300))
    );
}

/// Every way the store answers with accounts, each account as (id, fetched_at).
async fn seen(s: &dyn Store) -> Vec<(String, chrono::DateTime<chrono::Utc>)> {
    let mut out = Vec::new();
    let listed = s.list_accounts(&Scope::All, &all()).await.unwrap();
    let paged = s
        .list_page(&Scope::All, &all(), &SortSpec::default(), None, 100)
        .await
        .unwrap();
    assert_eq!(listed, paged);
    let mut by_customer = Vec::new();
    for c in ["c1", "c2"] {
        by_customer.extend(s.customer_accounts(c).await.unwrap().accounts);
    }
    by_customer.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(listed, by_customer);
    for a in &listed {
        assert_eq!(&s.get_account(&a.id).await.unwrap(), a);
        out.push((a.id.clone(), a.fetched_at));
    }
    out
}

/// Every answer at an instant in `[0, to]` (every 30 s), through `held_at` and `held_window`.
async fn answers(s: &dyn Store, to: i64) -> Vec<HeldAt> {
    let window = s.held_window(&Scope::All, t(0), t(to)).await.unwrap();
    let mut out = Vec::new();
    for i in (0..=to).step_by(30) {
        let at = s.held_at(&Scope::All, t(i), None).await.unwrap();
        assert_eq!(window.at(t(i)), at, "window at {i}");
        for c in ["c1", "c2"] {
            let one = Scope::Customers(vec![c.to_owned()]);
            let scoped = s.held_at(&one, t(i), None).await.unwrap();
            assert!(scoped.accounts.iter().all(|a| a.customer_id == c));
        }
        out.push(at);
    }
    out
}

/// (b) and (c): after syncs that change nothing, each account's `fetched_at` is the fetch that
/// last reported it (its pair's snapshot) in every read, closed and reopened accounts and
/// accounts moving between pairs included, and every answer at an instant is what it was.
pub async fn unchanged_syncs_keep_last_seen_and_answers(s: &dyn Store) {
    let leases = setup(s).await;
    sync_all(s, &leases, 0, "100.50").await;
    let before = answers(s, 0).await;
    sync_all(s, &leases, 60, "100.50").await;
    save_all(s, 90, "100.50").await;
    let seen_now = seen(s).await;
    assert_eq!(seen_now.len(), 5);
    assert!(seen_now.iter().all(|(_, at)| *at == t(90)), "{seen_now:?}");
    // The past is what it was; the instants since see the same accounts, observed later.
    let later = answers(s, 90).await;
    assert_eq!(later[0], before[0]);
    for (i, at) in later.iter().enumerate().skip(1) {
        let observed = t(if i < 2 {
            0
        } else if i < 3 {
            60
        } else {
            90
        });
        assert!(
            at.observations.iter().all(|o| o.observed_at == observed),
            "{i}"
        );
        let restamped: Vec<Account> = before[0]
            .accounts
            .iter()
            .map(|a| Account {
                fetched_at: observed,
                ..a.clone()
            })
            .collect();
        assert_eq!(at.accounts, restamped, "{i}");
    }

    // One pair changes, the others not: each account says its own pair's last fetch.
    let mut bank = reported(120, "100.50").remove(0);
    bank.2[0].balance = d("11.00");
    s.save_snapshot(&meta("c1", "bank", 120), &bank.2)
        .await
        .unwrap();
    let seen_now = seen(s).await;
    for (id, at) in &seen_now {
        let want = if id.starts_with("bank:") { 120 } else { 90 };
        assert_eq!(*at, t(want), "{id}");
    }

    // x disappears (closed), comes back unchanged (reopened): seen at its reporting fetch.
    let mut p100 = reported(150, "100.50").remove(1);
    p100.2.remove(1);
    s.save_snapshot(&meta("c1", "p100", 150), &p100.2)
        .await
        .unwrap();
    assert!(s.get_account("p100:x").await.is_err());
    let back = s
        .save_snapshot(
            &meta("c1", "p100", 180),
            &reported(180, "100.50").remove(1).2,
        )
        .await
        .unwrap();
    assert_eq!((back.updated, back.unchanged), (1, 2), "reopened");
    assert_eq!(s.get_account("p100:x").await.unwrap().fetched_at, t(180));

    // a moves from c2 to c1 (c1's P100 reports it), then c2's P100 reports it again exactly as
    // it last did: it moves back, though c2's own report did not change.
    let mut c1 = reported(210, "100.50").remove(1).2;
    c1.push(Account {
        customer_id: "c1".into(),
        ..account("c2", "p100", "a", "ETH", "2.000000000000000001", 210)
    });
    s.save_snapshot(&meta("c1", "p100", 210), &c1)
        .await
        .unwrap();
    assert_eq!(s.get_account("p100:a").await.unwrap().customer_id, "c1");
    assert!(s.customer_accounts("c2").await.unwrap().accounts.is_empty());
    sync_all(s, &leases, 240, "100.50").await;
    let a = s.get_account("p100:a").await.unwrap();
    assert_eq!((a.customer_id.as_str(), a.fetched_at), ("c2", t(240)));
    let c1_now = s.customer_accounts("c1").await.unwrap().accounts;
    assert_eq!(c1_now.len(), 4, "{c1_now:?}");
    let totals = s.totals(&Scope::All, &all()).await.unwrap();
    let eth: Vec<_> = totals
        .by_currency
        .iter()
        .filter(|t| t.currency.code() == "ETH")
        .map(|t| (t.balance, t.accounts))
        .collect();
    assert_eq!(eth, vec![(d("2.000000000000000001"), 1)]);

    // Every answer up to now, once more after further unchanged syncs: the same.
    let settled = answers(s, 240).await;
    sync_all(s, &leases, 270, "100.50").await;
    save_all(s, 300, "100.50").await;
    assert_eq!(answers(s, 240).await, settled);
    let last: Vec<_> = seen(s).await;
    assert!(last.iter().all(|(_, at)| *at == t(300)), "{last:?}");
}
