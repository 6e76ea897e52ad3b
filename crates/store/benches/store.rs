//! Store benchmark on PostgreSQL (not a timed test):
//!
//!     cargo bench -p coffer-store --bench store -- --customers 100000
//!
//! Fills its own database (`coffer_bench`, on the server of `DATABASE_URL` or
//! postgres://postgres@127.0.0.1:5432/postgres) with N customers × 10 accounts (two providers,
//! 12 currencies, mixed statuses), generated server-side in a few set-based INSERTs, then
//! measures the all-customer per-currency totals (unfiltered, with filters the rollup answers,
//! with balance ranges that scan), the single-customer read, and snapshot writes. Prints p50,
//! p99 and mean over many runs. `--keep` leaves the database for inspection.
#![allow(clippy::unwrap_used, clippy::float_arithmetic, dead_code)]

use coffer_testkit::pg;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use coffer_core::query::{BalanceRange, Filter};
use coffer_core::{Account, Currency, Status};
use coffer_store::{PgStore, Scope, SnapshotMeta, Store};
use rust_decimal::Decimal;
use sqlx::{Connection, Executor, PgConnection};

const DB: &str = "coffer_bench";

struct Args {
    customers: u32,
    runs: usize,
    keep: bool,
}

fn args() -> Args {
    let mut a = Args {
        customers: 100_000,
        runs: 200,
        keep: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        match x.as_str() {
            "--customers" => {
                a.customers = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--customers N")
            }
            "--runs" => a.runs = it.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            "--keep" => a.keep = true,
            _ => {} // `cargo bench` passes `--bench`
        }
    }
    a
}

async fn fill(s: &PgStore, customers: u32) {
    let started = Instant::now();
    let steps: [&'static str; 5] = [
        "INSERT INTO customers (id, name, created_at)
         SELECT 'cust-' || lpad(i::text, 7, '0'), 'Customer ' || i, now()
         FROM generate_series(1, $1) AS i",
        "INSERT INTO customer_links (customer_id, provider, external_id)
         SELECT c.id, p, p || '-' || c.id FROM customers c, unnest(ARRAY['p100', 'bank']) AS p",
        "INSERT INTO sync_state (customer_id, provider_id, next_due)
         SELECT customer_id, provider, now() + interval '1 hour' FROM customer_links",
        "INSERT INTO snapshots (customer_id, provider_id, provider_customer_ref, fetched_at)
         SELECT customer_id, provider, 'ref-' || customer_id,
                now() - (hashtext(customer_id || provider) & 255) * interval '1 second'
         FROM customer_links",
        // 10 accounts per customer: 5 at each provider; log-uniform balances (1 to 10^6).
        "INSERT INTO accounts (id, customer_id, provider_id, provider_account_id,
             provider_customer_ref, currency, is_crypto, status, active, balance, wallets,
             fetched_at, rollup_shard)
         SELECT p || ':' || c.id || '-' || j, c.id, p, c.id || '-' || j, 'ref-' || c.id,
                cur.code, cur.crypto, st.status, st.status = 'active',
                round((10 ^ (6 * random()))::numeric, cur.scale), '[]', now(),
                (abs(hashtext(c.id)) % 16)::int2
         FROM customers c
         CROSS JOIN generate_series(0, 9) AS j
         CROSS JOIN LATERAL (SELECT CASE WHEN j < 5 THEN 'p100' ELSE 'bank' END AS p) AS pp
         CROSS JOIN LATERAL (
             SELECT (ARRAY['EUR','USD','GBP','CHF','BTC','ETH','USDC','USDT','EURC','EURe','SOL','PLN'])[k] AS code,
                    (ARRAY[false,false,false,false,true,true,true,true,true,true,true,false])[k] AS crypto,
                    (ARRAY[2,2,2,2,8,8,6,6,6,6,8,2])[k] AS scale
             FROM (SELECT 1 + (abs(hashtext(c.id)) + j * 7) % 12 AS k) AS kk) AS cur
         CROSS JOIN LATERAL (
             SELECT (ARRAY['active','active','active','active','inactive','suspended','pending'])
                        [1 + abs(hashtext(c.id || j)) % 7] AS status) AS st",
    ];
    for (i, q) in steps.into_iter().enumerate() {
        let t = Instant::now();
        let q = sqlx::query(q);
        let q = if i == 0 {
            q.bind(i64::from(customers))
        } else {
            q
        };
        q.execute(s.pool()).await.unwrap();
        eprintln!("  fill step {}: {:.1} s", i + 1, t.elapsed().as_secs_f64());
    }
    s.rebuild_totals_rollup().await.unwrap();
    sqlx::query("VACUUM (ANALYZE)")
        .execute(s.pool())
        .await
        .unwrap();
    eprintln!("filled in {:.1} s", started.elapsed().as_secs_f64());
}

struct Stats {
    p50: Duration,
    p99: Duration,
    mean: Duration,
    n: usize,
}

fn stats(mut d: Vec<Duration>) -> Stats {
    d.sort();
    let n = d.len();
    let total: Duration = d.iter().sum();
    Stats {
        p50: d[n / 2],
        p99: d[(n * 99 / 100).min(n - 1)],
        mean: total / u32::try_from(n).unwrap(),
        n,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

fn row(name: &str, s: &Stats) {
    println!(
        "| {name} | {} | {} | {} | {} |",
        ms(s.p50),
        ms(s.p99),
        ms(s.mean),
        s.n
    );
}

async fn time<F, Fut>(runs: usize, mut f: F) -> Stats
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for i in 0..(runs / 10).max(3) {
        f(i).await; // warm-up
    }
    let mut d = Vec::with_capacity(runs);
    for i in 0..runs {
        let t = Instant::now();
        f(i).await;
        d.push(t.elapsed());
    }
    stats(d)
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap()
}

#[tokio::main]
async fn main() {
    let a = args();
    let Some(admin_url) = pg::admin_url().await else {
        return;
    };
    let mut admin = PgConnection::connect(&admin_url).await.unwrap();
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {DB} WITH (FORCE)"
        )))
        .await
        .unwrap();
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {DB}")))
        .await
        .unwrap();
    let url = pg::with_database(&admin_url, DB);
    let s = PgStore::connect(&url).await.unwrap();
    s.migrate().await.unwrap();
    eprintln!("filling {} customers × 10 accounts …", a.customers);
    fill(&s, a.customers).await;
    let accounts: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts")
        .fetch_one(s.pool())
        .await
        .unwrap();

    println!("\n{} customers, {accounts} accounts\n", a.customers);
    println!("| operation | p50 ms | p99 ms | mean ms | runs |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    let filters: Vec<(&str, Filter)> = vec![
        (
            "totals, all customers, no filter (rollup)",
            Filter::default(),
        ),
        (
            "totals, filter `is_crypto=true&status=active` (rollup)",
            Filter {
                is_crypto: Some(true),
                statuses: vec![Status::Active],
                ..Filter::default()
            },
        ),
        (
            "totals, filter `currency=USDC,EURC&provider=p100` (rollup)",
            Filter {
                currencies: vec![Currency::new("USDC"), Currency::new("EURC")],
                providers: vec!["p100".into()],
                ..Filter::default()
            },
        ),
        (
            "totals, filter `status=suspended&balance_gt=500000` (scan, ~2% of rows)",
            Filter {
                statuses: vec![Status::Suspended],
                balance: BalanceRange {
                    gt: Some(dec("500000")),
                    ..BalanceRange::default()
                },
                ..Filter::default()
            },
        ),
        (
            "totals, filter `balance_gt=1000` (scan, ~50% of rows)",
            Filter {
                balance: BalanceRange {
                    gt: Some(dec("1000")),
                    ..BalanceRange::default()
                },
                ..Filter::default()
            },
        ),
    ];
    let mut check = None;
    for (name, f) in &filters {
        let runs = if f.balance.is_empty() {
            a.runs
        } else {
            (a.runs / 4).max(10)
        };
        let st = time(runs, |_| async {
            let t = s.totals(&Scope::All, f).await.unwrap();
            assert!(t.customers > 0);
        })
        .await;
        row(name, &st);
        if check.is_none() {
            check = Some(s.totals(&Scope::All, f).await.unwrap());
        }
    }
    let n = a.customers as usize;
    let st = time(a.runs * 10, |i| {
        let s = &s;
        async move {
            let id = format!("cust-{:07}", 1 + (i * 7919) % n);
            let got = s.customer_accounts(&id).await.unwrap();
            assert_eq!(got.accounts.len(), 10);
        }
    })
    .await;
    row(
        "single-customer read (`customer_accounts`: 10 accounts + 2 snapshot metas)",
        &st,
    );
    let st = time(a.runs * 10, |i| {
        let s = &s;
        async move {
            let id = format!("cust-{:07}", 1 + (i * 7919) % n);
            s.get_customer(&id).await.unwrap();
        }
    })
    .await;
    row("customer with links (`get_customer`)", &st);

    // Snapshot writes: 5 accounts, one balance changed, on 8 concurrent tasks.
    let store = Arc::new(s.clone());
    let writes = 4000usize;
    let t = Instant::now();
    let mut tasks = vec![];
    for w in 0..8usize {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut d = vec![];
            for k in 0..writes / 8 {
                let c = format!("cust-{:07}", 1 + (w * 10_007 + k * 13) % n);
                let cur = store.customer_accounts(&c).await.unwrap();
                let now = Utc::now();
                let mut accts: Vec<Account> = cur
                    .accounts
                    .into_iter()
                    .filter(|a| a.provider_id == "p100")
                    .map(|a| Account {
                        fetched_at: now,
                        ..a
                    })
                    .collect();
                accts[0].balance += Decimal::ONE;
                let meta = SnapshotMeta {
                    customer_id: c.clone(),
                    provider_id: "p100".into(),
                    provider_customer_ref: Some(format!("ref-{c}")),
                    fetched_at: now,
                    rejected: vec![],
                };
                let t = Instant::now();
                store.save_snapshot(&meta, &accts).await.unwrap();
                d.push(t.elapsed());
            }
            d
        }));
    }
    let mut d = vec![];
    for t in tasks {
        d.extend(t.await.unwrap());
    }
    let wall = t.elapsed();
    row(
        "save_snapshot (5 accounts, 1 changed; 8 concurrent writers)",
        &stats(d),
    );
    println!(
        "\nsnapshot writes: {writes} in {:.2} s = {:.0} per second (8 writers, each also reading the customer first)",
        wall.as_secs_f64(),
        writes as f64 / wall.as_secs_f64()
    );
    // The rollup still agrees with the accounts after the writes.
    let before = s.totals(&Scope::All, &Filter::default()).await.unwrap();
    s.rebuild_totals_rollup().await.unwrap();
    assert_eq!(
        before,
        s.totals(&Scope::All, &Filter::default()).await.unwrap()
    );
    drop(check);
    s.close().await;
    if !a.keep {
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {DB} WITH (FORCE)"
            )))
            .await
            .unwrap();
    }
}
