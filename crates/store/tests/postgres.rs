//! The conformance suite on PostgreSQL, plus what only PostgreSQL has: NUMERIC width checks,
//! the totals rollup, LISTEN/NOTIFY, recovering from killed connections, and room on account
//! pages for rewrites.
//! Each test runs in its own fresh database (see `pg/mod.rs` for how the server is found).
#![allow(clippy::unwrap_used)]

mod conformance;
use coffer_testkit::pg;

use std::time::Duration;

use coffer_core::query::Filter;
use coffer_store::{Change, PgStore, Scope, Store, StoreError};
use conformance::{account, customer, d, meta};
use pg::TestDb;

async fn store(db: &TestDb) -> PgStore {
    let s = PgStore::connect(&db.url).await.unwrap();
    s.migrate().await.unwrap();
    s
}

async fn run(case: conformance::Case) {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let s = store(&db).await;
    case(&s).await;
    s.close().await;
}

conformance_tests!(run);

/// (a) of the unchanged-accounts cases, with every account row's version (`xmin`) and place
/// (`ctid`) as its stamp: both change when the row is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_sync_writes_no_account_row() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let s = store(&db).await;
    let pool = s.pool().clone();
    conformance::unchanged_sync_writes_no_account_row(&s, || {
        let pool = pool.clone();
        async move {
            let rows: Vec<(String, String)> =
                sqlx::query_as("SELECT id, xmin::text || ' ' || ctid::text FROM accounts")
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            rows.into_iter().collect()
        }
    })
    .await;
    s.close().await;
}

#[tokio::test]
async fn connect_picks_postgres_by_scheme() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    for url in [
        db.url.clone(),
        db.url.replacen("postgres://", "postgresql://", 1),
    ] {
        let s = coffer_store::connect(&url).await.unwrap();
        assert_eq!(s.backend(), "postgres");
        s.migrate().await.unwrap();
        s.ping().await.unwrap();
        s.close().await;
    }
}

/// A NUMERIC too wide for `Decimal` cannot be written, and if one is there anyway (written by
/// hand, constraint dropped) reading it is an error, never a truncated value.
#[tokio::test]
async fn too_wide_numeric_is_refused_and_detected() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let s = store(&db).await;
    s.create_customer(&customer("c1", &[])).await.unwrap();
    s.save_snapshot(
        &meta("c1", "p100", 0),
        &[account("c1", "p100", "a", "EUR", "1", 0)],
    )
    .await
    .unwrap();
    for wide in [
        "123456789012345678901234567890",
        "0.00000000000000000000000000001",
        "79228162514264337593543950336",
    ] {
        let r = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE accounts SET balance = {wide}"
        )))
        .execute(s.pool())
        .await;
        assert!(r.is_err(), "{wide} was accepted");
    }
    // The widest values a Decimal holds are accepted.
    for widest in [
        "79228162514264337593543950335",
        "-7922816251426433759354395033.5",
        "0.0000000000000000000000000001",
        "7.9228162514264337593543950335",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE accounts SET balance = {widest}"
        )))
        .execute(s.pool())
        .await
        .unwrap_or_else(|e| panic!("{widest} was refused: {e}"));
        let got = s.get_account("p100:a").await.unwrap().balance.to_string();
        assert_eq!(got, widest);
    }
    sqlx::query("ALTER TABLE accounts DROP CONSTRAINT accounts_balance_check")
        .execute(s.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE accounts SET balance = 1234567890123456789012345678.95")
        .execute(s.pool())
        .await
        .unwrap();
    match s.get_account("p100:a").await {
        Err(StoreError::Corrupt(m)) => {
            assert!(m.contains("1234567890123456789012345678.95"), "{m}")
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    s.close().await;
}

/// Page of every account row (the block of its `ctid`), by id.
async fn account_pages(s: &PgStore) -> std::collections::BTreeMap<String, i64> {
    sqlx::query_as("SELECT id, (ctid::text::point)[0]::bigint FROM accounts")
        .fetch_all(s.pool())
        .await
        .unwrap()
        .into_iter()
        .collect()
}

/// The steady state of a sync: accounts fetched again with the same balance, status and
/// currency (what the indexes hold), a new `fetched_at`. Their new versions stay on their pages
/// (migration 0006 leaves room for them), which is what lets PostgreSQL write them without an
/// entry in any index; at the default fillfactor a full page has no room and its rows move.
#[tokio::test]
async fn accounts_fetched_again_unchanged_stay_on_their_pages() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let s = store(&db).await;
    s.create_customer(&customer("c1", &[])).await.unwrap();
    let at = |t: i64| -> Vec<_> {
        (0..200)
            .map(|i| {
                account(
                    "c1",
                    "p100",
                    &format!("acct-{i:04}"),
                    "EUR",
                    "0.09872368",
                    t,
                )
            })
            .collect()
    };
    s.save_snapshot(&meta("c1", "p100", 0), &at(0))
        .await
        .unwrap();
    let before = account_pages(&s).await;
    let pages: std::collections::BTreeSet<i64> = before.values().copied().collect();
    assert!(pages.len() >= 4, "the rows fill several pages: {pages:?}");
    s.save_snapshot(&meta("c1", "p100", 60), &at(60))
        .await
        .unwrap();
    assert_eq!(account_pages(&s).await, before, "rows moved to other pages");
    let stored = s.get_account("p100:acct-0000").await.unwrap();
    assert_eq!(stored.fetched_at, meta("c1", "p100", 60).fetched_at);
    assert_eq!(stored.balance.to_string(), "0.09872368");
    s.close().await;
}

/// The rollup-backed totals equal a rebuild from the accounts after concurrent writers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollup_stays_exact_under_concurrent_writers() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let s = store(&db).await;
    for i in 0..24 {
        s.create_customer(&customer(&format!("c{i}"), &[]))
            .await
            .unwrap();
    }
    let mut tasks = vec![];
    for i in 0..24 {
        // Two providers' first snapshots of one customer race: counted once.
        let (s2, c) = (s.clone(), format!("c{i}"));
        tasks.push(tokio::spawn(async move {
            let a = account(&c, "bank", &format!("{c}-gbp"), "GBP", "1.5", 0);
            s2.save_snapshot(&meta(&c, "bank", 0), &[a]).await.unwrap();
        }));
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let c = format!("c{i}");
            for round in 0..8i64 {
                let mut accts = vec![
                    account(
                        &c,
                        "p100",
                        &format!("{c}-eur"),
                        "EUR",
                        &format!("{round}.25"),
                        round,
                    ),
                    account(&c, "p100", &format!("{c}-btc"), "BTC", "0.00000001", round),
                ];
                if round % 3 == 0 {
                    accts.push(account(
                        &c,
                        "p100",
                        &format!("{c}-usdc"),
                        "USDC",
                        "5.000000",
                        round,
                    ));
                }
                s.save_snapshot(&meta(&c, "p100", round), &accts)
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let before = s.totals(&Scope::All, &Filter::default()).await.unwrap();
    let eur = before
        .by_currency
        .iter()
        .find(|t| t.currency.code() == "EUR")
        .unwrap();
    assert_eq!((eur.balance, eur.accounts), (d("174.00"), 24));
    assert!(
        !before
            .by_currency
            .iter()
            .any(|t| t.currency.code() == "USDC"),
        "closed in round 7"
    );
    assert_eq!(before.customers, 24);
    s.rebuild_totals_rollup().await.unwrap();
    assert_eq!(
        s.totals(&Scope::All, &Filter::default()).await.unwrap(),
        before
    );
    s.close().await;
}

async fn recv(rx: &mut tokio::sync::mpsc::Receiver<Change>) -> Change {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("no change within 10 s")
        .expect("listener ended")
}

async fn kill_other_connections(url: &str) {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .execute(&mut c)
    .await
    .unwrap();
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_reach_every_replica_and_survive_reconnects() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let a = store(&db).await;
    let b = PgStore::connect(&db.url).await.unwrap();
    let mut rx_b = b.subscribe_changes().await.unwrap().unwrap();
    let mut rx_a = a.subscribe_changes().await.unwrap().unwrap();

    a.notify_changed(Some("c1")).await.unwrap();
    assert_eq!(
        recv(&mut rx_b).await,
        Change {
            customer_id: Some("c1".into()),
            local: false
        }
    );
    assert_eq!(
        recv(&mut rx_a).await,
        Change {
            customer_id: Some("c1".into()),
            local: true
        }
    );
    b.notify_changed(None).await.unwrap();
    assert_eq!(
        recv(&mut rx_b).await,
        Change {
            customer_id: None,
            local: true
        }
    );
    assert_eq!(
        recv(&mut rx_a).await,
        Change {
            customer_id: None,
            local: false
        }
    );

    // Every connection killed: the listeners come back and say "anything may have changed".
    kill_other_connections(&db.url).await;
    assert_eq!(recv(&mut rx_b).await.customer_id, None);
    // And later notifications arrive again (the first send may meet a dead pool connection).
    let mut sent = false;
    for _ in 0..3 {
        if a.notify_changed(Some("c2")).await.is_ok() {
            sent = true;
            break;
        }
    }
    assert!(sent);
    loop {
        let c = recv(&mut rx_b).await;
        if c.customer_id.as_deref() == Some("c2") {
            assert!(!c.local);
            break;
        }
    }
    drop(rx_a);
    drop(rx_b);
    a.close().await;
    b.close().await;
}

/// Connections killed under the pool: the next operations succeed, at worst after one
/// `Unavailable` (retryable), without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_recovers_after_connections_are_killed() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let s = store(&db).await;
    s.create_customer(&customer("c1", &[])).await.unwrap();
    // Warm a few pooled connections.
    let (r1, r2, r3) = tokio::join!(s.ping(), s.get_customer("c1"), s.ping());
    r1.unwrap();
    r2.unwrap();
    r3.unwrap();
    for _ in 0..3 {
        kill_other_connections(&db.url).await;
        let mut unavailable = 0;
        let ok = loop {
            match s.get_customer("c1").await {
                Ok(c) => break c,
                Err(e) if e.is_retryable() && unavailable == 0 => unavailable += 1,
                Err(e) => panic!("not recovered: {e:?}"),
            }
        };
        assert_eq!(ok.id, "c1");
        s.save_snapshot(
            &meta("c1", "p100", 0),
            &[account("c1", "p100", "a", "EUR", "1", 0)],
        )
        .await
        .unwrap();
    }
    s.close().await;
    // A closed pool is Unavailable (retryable), like a lost database.
    assert!(matches!(s.ping().await, Err(StoreError::Unavailable(_))));
}

/// Replicas announce themselves; an expired one stops counting.
#[tokio::test]
async fn heartbeats_count_live_replicas() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let s = store(&db).await;
    assert_eq!(s.heartbeat("a", Duration::from_secs(60)).await.unwrap(), 1);
    assert_eq!(s.heartbeat("b", Duration::from_secs(60)).await.unwrap(), 2);
    // Renewing does not count twice.
    assert_eq!(s.heartbeat("a", Duration::from_secs(60)).await.unwrap(), 2);
    // A replica whose row has expired is gone.
    sqlx::query("UPDATE replicas SET expires_at = now() - interval '1 second' WHERE owner = 'b'")
        .execute(s.pool())
        .await
        .unwrap();
    assert_eq!(s.heartbeat("a", Duration::from_secs(60)).await.unwrap(), 1);
    assert_eq!(s.oldest_snapshot().await.unwrap(), None);
    s.close().await;
}

/// Sync batches racing with each other and with single snapshot writes (requests) of the same
/// customers: the rollup and the covered-customers count stay exact, and each batch announces
/// its customers to the other replicas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_batches_race_with_requests_and_stay_exact() {
    use coffer_store::SyncWrite;
    let Some(db) = TestDb::create().await else {
        return;
    };
    let s = store(&db).await;
    let other = PgStore::connect(&db.url).await.unwrap();
    let mut rx = other.subscribe_changes().await.unwrap().unwrap();
    let n = 40;
    for i in 0..n {
        let c = format!("c{i:02}");
        s.create_customer(&customer(&c, &[("p100", &c), ("bank", &c)]))
            .await
            .unwrap();
    }
    let leases = s
        .lease_due("w", 1000, Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(leases.len(), 2 * n);
    let writes: Vec<SyncWrite> = leases
        .iter()
        .map(|l| {
            let c = &l.customer_id;
            let accounts = vec![
                account(
                    c,
                    &l.provider_id,
                    &format!("{c}-eur"),
                    "EUR",
                    "0.09872368",
                    5,
                ),
                account(
                    c,
                    &l.provider_id,
                    &format!("{c}-btc"),
                    "BTC",
                    "0.0000001",
                    5,
                ),
            ];
            conformance::ok_write(l, 5, accounts)
        })
        .collect();
    let mut tasks = vec![];
    for chunk in writes.chunks(20) {
        let (s, chunk) = (s.clone(), chunk.to_vec());
        tasks.push(tokio::spawn(async move {
            let r = s.finish_syncs(&chunk).await;
            assert!(r.iter().all(Result::is_ok), "{r:?}");
        }));
    }
    // Requests refreshing the bank pairs meanwhile, with newer data.
    for i in (0..n).step_by(3) {
        let (s, c) = (s.clone(), format!("c{i:02}"));
        tasks.push(tokio::spawn(async move {
            let a = account(&c, "bank", &format!("{c}-eur"), "EUR", "1.5", 6);
            s.save_snapshot(&meta(&c, "bank", 6), &[a]).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let before = s.totals(&Scope::All, &Filter::default()).await.unwrap();
    assert_eq!(before.customers, 40);
    let listed = s
        .list_accounts(&Scope::All, &Filter::default())
        .await
        .unwrap();
    assert_eq!(
        listed.len(),
        4 * 40 - 14,
        "the 14 requests closed one bank account each"
    );
    s.rebuild_totals_rollup().await.unwrap();
    assert_eq!(
        s.totals(&Scope::All, &Filter::default()).await.unwrap(),
        before
    );
    // Every customer announced to the other replica.
    let mut heard = std::collections::BTreeSet::new();
    while heard.len() < n {
        let c = recv(&mut rx).await;
        assert!(!c.local);
        heard.insert(c.customer_id.expect("a customer"));
    }
    s.close().await;
    other.close().await;
}

/// A batch written pair by pair (one of its customers was deleted meanwhile) still tells the
/// other replicas which customers changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_written_pair_by_pair_is_announced_too() {
    use coffer_store::SyncWrite;
    let Some(db) = TestDb::create().await else {
        return;
    };
    let s = store(&db).await;
    let other = PgStore::connect(&db.url).await.unwrap();
    let mut rx = other.subscribe_changes().await.unwrap().unwrap();
    let leases = conformance::leased_customers(&s, &["c1", "gone"]).await;
    s.delete_customer("gone").await.unwrap();
    let writes: Vec<SyncWrite> = leases
        .iter()
        .map(|l| {
            let c = &l.customer_id;
            conformance::ok_write(l, 5, vec![account(c, "p100", c, "EUR", "1", 5)])
        })
        .collect();
    let results = s.finish_syncs(&writes).await;
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    let c = recv(&mut rx).await;
    assert_eq!((c.customer_id.as_deref(), c.local), (Some("c1"), false));
    s.close().await;
    other.close().await;
}

/// A balance range that keeps most accounts is summed as the rollup minus the accounts it
/// leaves out (chosen by the balance column's statistics), a narrow one over the accounts it
/// keeps: both are the sums of the matching accounts, exactly, down to an account at a bound.
/// The rollup is then skewed on purpose to show which form answered.
#[tokio::test]
async fn a_wide_balance_range_is_the_rollup_minus_the_rest() {
    use coffer_core::query::BalanceRange;
    let Some(db) = TestDb::create().await else {
        return;
    };
    let s = store(&db).await;
    let mut every = Vec::new();
    for c in 0..4 {
        let c = format!("c{c}");
        s.create_customer(&customer(&c, &[])).await.unwrap();
        let accounts: Vec<_> = (0..100)
            .map(|i| {
                let cur = ["EUR", "USD", "BTC"][i % 3];
                let balance = format!("{i}.0987236{}", i % 10);
                account(&c, "p100", &format!("{c}-{i}"), cur, &balance, 0)
            })
            .collect();
        s.save_snapshot(&meta(&c, "p100", 0), &accounts)
            .await
            .unwrap();
        every.extend(accounts);
    }
    sqlx::query("ANALYZE accounts")
        .execute(s.pool())
        .await
        .unwrap();
    let ranged = |gt: Option<&str>, lte: Option<&str>| Filter {
        balance: BalanceRange {
            gt: gt.map(d),
            lte: lte.map(d),
            ..BalanceRange::default()
        },
        ..Filter::default()
    };
    let wide = ranged(Some("9.09872369"), None);
    let wide_both = ranged(Some("3.09872363"), Some("97.09872367"));
    let narrow = ranged(Some("90"), None);
    let sums = |f: &Filter| {
        let mut by: std::collections::BTreeMap<String, (rust_decimal::Decimal, u64)> =
            Default::default();
        for a in every.iter().filter(|a| f.matches(a)) {
            let e = by.entry(a.currency.code().to_owned()).or_default();
            e.0 += a.balance;
            e.1 += 1;
        }
        by
    };
    let got = |t: coffer_store::Totals| {
        t.by_currency
            .into_iter()
            .map(|t| (t.currency.code().to_owned(), (t.balance, t.accounts)))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    for f in [&wide, &wide_both, &narrow] {
        let t = s.totals(&Scope::All, f).await.unwrap();
        assert_eq!(got(t), sums(f), "{f:?}");
    }
    // Skewed by 1,000 EUR: only the rollup's forms see it.
    sqlx::query(
        "UPDATE totals_rollup SET balance = balance + 1000 \
         WHERE ctid = (SELECT ctid FROM totals_rollup WHERE currency = 'EUR' AND accounts > 0 LIMIT 1)",
    )
    .execute(s.pool())
    .await
    .unwrap();
    for (f, skewed) in [(&wide, true), (&wide_both, true), (&narrow, false)] {
        let eur = got(s.totals(&Scope::All, f).await.unwrap())["EUR"].0;
        let want = sums(f)["EUR"].0 + if skewed { d("1000") } else { d("0") };
        assert_eq!(eur, want, "{f:?}: the rollup read: {skewed}");
    }
    s.close().await;
}

/// The marks of the observations answer what every pair's last observation says
/// (`summarize(observed_at)`), at instants on, between and before the marks: more pairs per
/// provider than a mark lists (so its list is refilled as listed pairs are observed again),
/// ties at one second, gaps, rejected balances, pairs observed late or never, a link added and
/// one removed after the marks were built, and a late observation that drops the marks after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observation_marks_answer_as_every_pair() {
    use chrono::{DateTime, TimeDelta, Utc};
    let Some(db) = TestDb::create().await else {
        return;
    };
    let s = store(&db).await;
    let pool = s.pool().clone();
    let t0: DateTime<Utc> = "2026-11-02T00:00:00Z".parse().unwrap();
    // 1,500 customers at p1 (more than a mark lists), every third at p2.
    sqlx::query(
        "INSERT INTO customers (id, name, created_at)
         SELECT 'c' || lpad(i::text, 4, '0'), NULL, $1 FROM generate_series(0, 1499) i;
         ",
    )
    .bind(t0)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO customer_links (customer_id, provider, external_id)
         SELECT 'c' || lpad(i::text, 4, '0'), 'p1', 'x' || i FROM generate_series(0, 1499) i
         UNION ALL
         SELECT 'c' || lpad(i::text, 4, '0'), 'p2', 'y' || i FROM generate_series(0, 1499) i
         WHERE i % 3 = 0",
    )
    .execute(&pool)
    .await
    .unwrap();
    // p1: on a cycle of six hours (as a sync observes pairs in turn; the oldest are observed
    // again first), some in between too, at one of 50 seconds of the hour (ties), some rejected;
    // p2: a seventh observed once at hour 0 only (gaps later), the rest from hour i % 10 on,
    // an eleventh never.
    sqlx::query(
        "INSERT INTO observations (customer_id, provider_id, fetched_at, rejected)
         SELECT 'c' || lpad(i::text, 4, '0'), 'p1',
                $1 + make_interval(hours => h, secs => (i % 50) * 60),
                CASE WHEN (i * h) % 13 = 0 THEN '[\"bad\"]' ELSE '[]' END
         FROM generate_series(0, 1499) i, generate_series(0, 15) h
         WHERE h % 6 = i % 6 OR (i + h) % 17 = 0
         UNION ALL
         SELECT 'c' || lpad(i::text, 4, '0'), 'p2', $1 + make_interval(hours => h, secs => i % 7),
                '[]'
         FROM generate_series(0, 1499, 3) i, generate_series(0, 15) h
         WHERE i % 11 <> 0 AND ((i % 7 = 0 AND h = 0) OR (i % 7 <> 0 AND h >= i % 10))",
    )
    .bind(t0)
    .execute(&pool)
    .await
    .unwrap();
    s.build_checkpoints(t0 + TimeDelta::hours(12), Duration::from_secs(3600))
        .await
        .unwrap();
    let marks: i64 = sqlx::query_scalar("SELECT count(*) FROM observation_marks")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(marks, 14, "hour -1 to hour 12");
    // p1's list is partial (not every pair listed) in the marks after the first cycle.
    let partial: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM observation_mark_providers p JOIN observation_mark_lists l
             ON l.at = p.at AND l.provider_id = p.provider_id AND l.kind = 'o'
         WHERE p.provider_id = 'p1' AND cardinality(l.customers) < p.pairs",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(partial >= 6, "{partial} marks list part of p1");
    // After the build: a new customer linked and never observed, a link removed.
    s.create_customer(&customer("late", &[("p1", "late-1")]))
        .await
        .unwrap();
    s.update_customer(&customer("c0011", &[("p1", "x11")]))
        .await
        .unwrap();
    let check = |at: DateTime<Utc>, gap: Duration| {
        let s = s.clone();
        async move {
            let got = s.observed_summary(at, gap).await.unwrap();
            let h = s.observed_at(&Scope::All, at).await.unwrap();
            let want = coffer_store::summarize(&h, at, TimeDelta::from_std(gap).unwrap());
            if let Some(got) = &got {
                assert_eq!(got, &want, "at {at}, gap {gap:?}");
            }
            got.is_some()
        }
    };
    // With a day's gap the marks answer every instant after the first; with 90 minutes most
    // of p1's pairs are gaps, more than a mark lists, and the answer reads every pair instead.
    let (mut asked, mut answered, mut short) = (0, 0, 0);
    let mut at = t0 - TimeDelta::minutes(90);
    while at <= t0 + TimeDelta::hours(16) {
        if at >= t0 - TimeDelta::hours(1) {
            asked += 1;
            answered += usize::from(check(at, Duration::from_secs(86_400)).await);
        }
        short += usize::from(check(at, Duration::from_secs(5400)).await);
        at += TimeDelta::seconds(7 * 60 + 13);
    }
    assert_eq!(answered, asked, "a day's gap: every instant from the marks");
    assert!(
        short > 0 && short < asked,
        "90 minutes: {short} of {asked} from the marks"
    );
    for at in [
        t0,
        t0 + TimeDelta::hours(3),
        t0 + TimeDelta::seconds(3 * 3600 + 49 * 60),
    ] {
        assert!(check(at, Duration::from_secs(86_400)).await, "at {at}");
    }
    // A late observation at hour 4 drops the marks from then on; the rest still answer.
    let a = account("c0002", "p1", "late-acct", "EUR", "0.09872368", 0);
    let mut m = meta("c0002", "p1", 0);
    m.fetched_at = t0 + TimeDelta::minutes(4 * 60 + 30);
    s.save_snapshot(&m, &[a]).await.unwrap();
    let marks: Vec<DateTime<Utc>> =
        sqlx::query_scalar("SELECT at FROM observation_marks ORDER BY at")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(marks.last(), Some(&(t0 + TimeDelta::hours(4))));
    for at in [
        t0 + TimeDelta::hours(4),
        t0 + TimeDelta::minutes(4 * 60 + 45),
    ] {
        check(at, Duration::from_secs(86_400)).await;
    }
    s.build_checkpoints(t0 + TimeDelta::hours(12), Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(
        check(
            t0 + TimeDelta::minutes(4 * 60 + 45),
            Duration::from_secs(86_400)
        )
        .await
    );
    s.close().await;
}
