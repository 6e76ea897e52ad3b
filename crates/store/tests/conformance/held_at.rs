//! Balances at an instant (`held_at`): each pair's state in its last observation at or before
//! the instant, exact, written alike by `save_snapshot` and sync batches.
#![allow(unused_imports, clippy::unwrap_used)]

use coffer_core::Account;
use coffer_store::{HeldAt, Scope, SnapshotMeta, Store};

use super::batch::{leased_customers, ok_write};
use super::*;

/// (id, balance text, seconds of `fetched_at` = the observation) of every account held.
fn held(h: &HeldAt) -> Vec<(String, String, i64)> {
    h.accounts
        .iter()
        .map(|a| {
            (
                a.id.clone(),
                a.balance.to_string(),
                a.fetched_at.timestamp() - t(0).timestamp(),
            )
        })
        .collect()
}

fn row(p: &str, pid: &str, balance: &str, at: i64) -> (String, String, i64) {
    (Account::make_id(p, pid), balance.to_owned(), at)
}

async fn at(s: &dyn Store, scope: &Scope, secs: i64) -> HeldAt {
    s.held_at(scope, t(secs), None).await.unwrap()
}

/// Three observations of one pair (a change, an unchanged account, accounts closing) and one of
/// another customer: every instant answers from the observation in force then.
pub async fn held_at_serves_each_pair_from_its_last_observation(s: &dyn Store) {
    s.create_customer(&customer("c1", &[("p100", "e1"), ("bank", "b1")]))
        .await
        .unwrap();
    s.create_customer(&customer("c2", &[("p100", "e2")]))
        .await
        .unwrap();
    let a = |bal: &str, at| account("c1", "p100", "a", "USD", bal, at);
    let b = |bal: &str, at| account("c1", "p100", "b", "BTC", bal, at);
    let wide = "1234.567890123456789012345678";
    save(s, "c1", "p100", 10, &[a("100.50", 10), b("0.09872368", 10)]).await;
    let mut m = meta("c1", "p100", 20);
    m.rejected = vec!["a balance without an amount".into()];
    let c = account("c1", "p100", "c", "EUR", wide, 20);
    s.save_snapshot(&m, &[a("100.50", 20), b("0.0000001", 20), c])
        .await
        .unwrap();
    save(s, "c1", "p100", 30, &[a("100.50", 30)]).await;
    save(
        s,
        "c2",
        "p100",
        15,
        &[account("c2", "p100", "x", "EUR", "7", 15)],
    )
    .await;

    let before = at(s, &Scope::All, 5).await;
    assert!(before.accounts.is_empty() && before.observations.is_empty());
    assert_eq!(before.unobserved.len(), 3, "{:?}", before.unobserved);

    let first = at(s, &Scope::All, 10).await;
    let want = vec![
        row("p100", "a", "100.50", 10),
        row("p100", "b", "0.09872368", 10),
    ];
    assert_eq!(held(&first), want);
    let unobserved = vec![("c1".into(), "bank".into()), ("c2".into(), "p100".into())];
    assert_eq!(first.unobserved, unobserved);

    let second = at(s, &Scope::All, 25).await;
    let want = vec![
        row("p100", "a", "100.50", 20),
        row("p100", "b", "0.0000001", 20),
        row("p100", "c", wide, 20),
        row("p100", "x", "7", 15),
    ];
    assert_eq!(held(&second), want);
    let obs: Vec<_> = second
        .observations
        .iter()
        .map(|o| (o.customer_id.as_str(), o.observed_at, o.rejected.clone()))
        .collect();
    assert_eq!(
        obs,
        vec![
            ("c1", t(20), vec!["a balance without an amount".to_owned()]),
            ("c2", t(15), vec![]),
        ]
    );
    assert_eq!(second.accounts[0].currency.code(), "USD");

    // Closed in the third observation: not held from then on.
    let third = at(s, &Scope::All, 1000).await;
    let want = vec![row("p100", "a", "100.50", 30), row("p100", "x", "7", 15)];
    assert_eq!(held(&third), want);
    assert_eq!(third.unobserved, vec![("c1".into(), "bank".into())]);

    // Scope first; one account.
    let c2 = at(s, &Scope::Customers(vec!["c2".into()]), 25).await;
    assert_eq!(held(&c2), vec![row("p100", "x", "7", 15)]);
    assert!(c2.unobserved.is_empty());
    assert!(
        at(s, &Scope::Customers(vec![]), 25)
            .await
            .accounts
            .is_empty()
    );
    let b_id = Account::make_id("p100", "b");
    let one = s.held_at(&Scope::All, t(25), Some(&b_id)).await.unwrap();
    assert_eq!(held(&one), vec![row("p100", "b", "0.0000001", 20)]);
    let gone = s.held_at(&Scope::All, t(30), Some(&b_id)).await.unwrap();
    assert!(gone.accounts.is_empty());
    let hidden = s
        .held_at(&Scope::Customers(vec!["c2".into()]), t(25), Some(&b_id))
        .await
        .unwrap();
    assert!(hidden.accounts.is_empty(), "outside the scope");
    // A later write never changes the past.
    save(s, "c1", "p100", 40, &[a("1", 40), b("2", 40)]).await;
    assert_eq!(held(&at(s, &Scope::All, 25).await), held(&second));
}

/// A sync batch records observations and versions as `save_snapshot` does.
pub async fn sync_batch_keeps_observations(s: &dyn Store) {
    let leases = leased_customers(s, &["c1", "c2"]).await;
    let acc = |c: &str, bal: &str, at| account(c, "p100", &format!("{c}-a"), "EUR", bal, at);
    // Due again at once, so the second batch can lease the pairs.
    let due_now = |mut w: coffer_store::SyncWrite| {
        w.outcome = coffer_store::SyncOutcome::Success {
            next_due: chrono::Utc::now() - chrono::Duration::hours(1),
        };
        w
    };
    let writes: Vec<_> = leases
        .iter()
        .map(|l| due_now(ok_write(l, 10, vec![acc(&l.customer_id, "0.09872368", 10)])))
        .collect();
    for r in s.finish_syncs(&writes).await {
        r.unwrap();
    }
    let mut leases = s
        .lease_due("w", 10, std::time::Duration::from_secs(3600))
        .await
        .unwrap();
    leases.sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
    assert_eq!(leases.len(), 2);
    // The second batch: c1 changes, c2 does not (no version row needed, still held).
    let mut again = Vec::new();
    for (l, bal) in leases.iter().zip(["5.5", "0.09872368"]) {
        again.push(ok_write(l, 20, vec![acc(&l.customer_id, bal, 20)]));
    }
    for r in s.finish_syncs(&again).await {
        r.unwrap();
    }
    let first = at(s, &Scope::All, 15).await;
    assert_eq!(
        held(&first),
        vec![
            row("p100", "c1-a", "0.09872368", 10),
            row("p100", "c2-a", "0.09872368", 10)
        ]
    );
    let second = at(s, &Scope::All, 20).await;
    assert_eq!(
        held(&second),
        vec![
            row("p100", "c1-a", "5.5", 20),
            row("p100", "c2-a", "0.09872368", 20)
        ]
    );
    assert_eq!(second.observations.len(), 2);
}
