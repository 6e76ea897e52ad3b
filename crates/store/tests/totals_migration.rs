//! The balance-type migrations of the totals (PostgreSQL 0017, SQLite 0014), applied to a
//! database migrated up to the version before with data in it: PostgreSQL's rollup is rebuilt
//! from the accounts with the new dimension (the totals by balance type are right at once, and
//! later writes keep them right), and the checkpoints, which lack the dimension, are dropped.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use coffer_core::query::Filter;
use coffer_core::{BalanceType, BalanceTypeCounts};
use coffer_store::{PgStore, Scope, Store};
use coffer_testkit::pg;
use sqlx::{Connection, Executor, PgConnection, SqliteConnection};

/// The migration files of `backend` in order, split at `version` (the ones before, that one,
/// the ones after).
fn migrations(backend: &str, version: &str) -> (Vec<String>, String, Vec<String>) {
    let dir = format!("{}/../../migrations/{backend}", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let (mut before, mut it, mut after) = (Vec::new(), None, Vec::new());
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let sql = std::fs::read_to_string(&f).unwrap();
        if name.starts_with(&format!("{version}_")) {
            it = Some(sql);
        } else if it.is_none() {
            before.push(sql);
        } else {
            after.push(sql);
        }
    }
    (before, it.unwrap(), after)
}

/// Two customers' accounts on two providers, both balance types, one closed account, summed
/// into the rollup as it was before 0017 (without the balance type).
const DATA: &str = "
INSERT INTO customers (id, name, created_at) VALUES ('c1', NULL, now()), ('c2', NULL, now());
INSERT INTO snapshots (customer_id, provider_id, fetched_at)
    VALUES ('c1', 'p100', now()), ('c1', 'bank', now()), ('c2', 'p100', now());
INSERT INTO accounts (id, customer_id, provider_id, provider_account_id, currency, is_crypto,
        status, active, balance, fetched_at, closed, rollup_shard, balance_type) VALUES
    ('p100:a', 'c1', 'p100', 'a', 'EUR', false, 'active', true, 10.00, now(), false, 3, 'available'),
    ('bank:b', 'c1', 'bank', 'b', 'EUR', false, 'active', true, 0.09872368, now(), false, 3, 'unspecified'),
    ('p100:c', 'c2', 'p100', 'c', 'EUR', false, 'active', true, 0.0000001, now(), false, 7, 'available'),
    ('p100:d', 'c2', 'p100', 'd', 'BTC', true, 'active', true, 1.5, now(), false, 7, 'unspecified'),
    ('p100:e', 'c2', 'p100', 'e', 'EUR', false, 'active', true, 99, now(), true, 7, 'available');
INSERT INTO totals_rollup (shard, currency, is_crypto, provider_id, status, active, balance,
        accounts)
    SELECT rollup_shard, currency, is_crypto, provider_id, status, active, sum(balance), count(*)
    FROM accounts WHERE NOT closed
    GROUP BY rollup_shard, currency, is_crypto, provider_id, status, active;
INSERT INTO totals_checkpoint_marks (at) VALUES ('2026-11-01T00:00:00Z');
INSERT INTO totals_checkpoints (at, currency, is_crypto, provider_id, status, active, balance,
        accounts) VALUES ('2026-11-01T00:00:00Z', 'EUR', false, 'p100', 'active', true, 10, 1);
";

/// Per currency: the exact sum and the counts by type.
fn by_currency(t: &coffer_store::Totals) -> BTreeMap<String, (String, BalanceTypeCounts)> {
    t.by_currency
        .iter()
        .map(|c| {
            (
                c.currency.code().to_owned(),
                (c.balance.to_string(), c.balance_types),
            )
        })
        .collect()
}

fn counts(available: u64, unspecified: u64) -> BalanceTypeCounts {
    BalanceTypeCounts {
        available,
        unspecified,
    }
}

#[tokio::test]
async fn postgres_rollup_is_rebuilt_by_balance_type() {
    let Some(db) = pg::TestDb::create().await else {
        return;
    };
    let mut c = PgConnection::connect(&db.url).await.unwrap();
    let (before, it, after) = migrations("postgres", "0017");
    for sql in before {
        c.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
    }
    c.execute(DATA).await.unwrap();
    c.execute(sqlx::AssertSqlSafe(it)).await.unwrap();
    let marks: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM totals_checkpoint_marks)
              + (SELECT count(*) FROM totals_checkpoints)",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert_eq!(marks, 0, "checkpoints without the dimension are dropped");
    let rollup_rows: i64 = sqlx::query_scalar("SELECT count(*) FROM totals_rollup")
        .fetch_one(&mut c)
        .await
        .unwrap();
    // (shard 3, EUR, p100, available), (3, EUR, bank, unspecified), (7, EUR, p100, available),
    // (7, BTC, p100, unspecified).
    assert_eq!(rollup_rows, 4);

    // The store of today writes what the later migrations added.
    for sql in after {
        c.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
    }
    let s = PgStore::connect(&db.url).await.unwrap();
    let all = s.totals(&Scope::All, &Filter::default()).await.unwrap();
    let want = BTreeMap::from([
        ("BTC".to_owned(), ("1.5".to_owned(), counts(0, 1))),
        ("EUR".to_owned(), ("10.09872378".to_owned(), counts(2, 1))),
    ]);
    assert_eq!(by_currency(&all), want);
    let available = Filter {
        balance_types: vec![BalanceType::Available],
        ..Filter::default()
    };
    let got = s.totals(&Scope::All, &available).await.unwrap();
    assert_eq!(
        by_currency(&got),
        BTreeMap::from([("EUR".to_owned(), ("10.0000001".to_owned(), counts(2, 0)))])
    );

    // A write after the migration moves the new rows: c1's P100 account becomes unspecified.
    let a = coffer_core::Account {
        id: "p100:a".into(),
        customer_id: "c1".into(),
        provider_id: "p100".into(),
        provider_account_id: "a".into(),
        provider_customer_ref: None,
        currency: coffer_core::Currency::new("EUR"),
        is_crypto: false,
        status: coffer_core::Status::Active,
        active: true,
        balance: "10.00".parse().unwrap(),
        balance_type: BalanceType::Unspecified,
        wallets: vec![],
        iban: None,
        provider_rate: None,
        fetched_at: chrono::Utc::now(),
    };
    let meta = coffer_store::SnapshotMeta {
        customer_id: "c1".into(),
        provider_id: "p100".into(),
        provider_customer_ref: None,
        fetched_at: a.fetched_at,
        rejected: vec![],
    };
    s.save_snapshot(&meta, std::slice::from_ref(&a))
        .await
        .unwrap();
    let after = s.totals(&Scope::All, &Filter::default()).await.unwrap();
    assert_eq!(
        by_currency(&after)["EUR"],
        ("10.09872378".to_owned(), counts(1, 2))
    );
    s.rebuild_totals_rollup().await.unwrap();
    // (The rebuild also counts the covered customers, which the raw data above left out.)
    let rebuilt = s.totals(&Scope::All, &Filter::default()).await.unwrap();
    assert_eq!(rebuilt.by_currency, after.by_currency);
    s.close().await;
    let _ = c.close().await;
    drop(db);
}

#[tokio::test]
async fn sqlite_checkpoints_are_dropped_for_the_new_dimension() {
    let mut c = SqliteConnection::connect("sqlite::memory:").await.unwrap();
    let (before, it, _) = migrations("sqlite", "0014");
    for sql in before {
        c.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
    }
    c.execute(
        "INSERT INTO totals_checkpoint_marks (at) VALUES ('2026-11-01T00:00:00.000000Z');
         INSERT INTO totals_checkpoints (at, currency, is_crypto, provider_id, status, active,
             balance, accounts) VALUES ('2026-11-01T00:00:00.000000Z', 'EUR', 0, 'p100',
             'active', 1, '10', 1);",
    )
    .await
    .unwrap();
    c.execute(sqlx::AssertSqlSafe(it)).await.unwrap();
    let left: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM totals_checkpoint_marks)
              + (SELECT count(*) FROM totals_checkpoints)",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert_eq!(left, 0);
    // The new dimension is required and checked.
    let bad = c
        .execute(
            "INSERT INTO totals_checkpoints (at, currency, is_crypto, provider_id, status,
                 active, balance_type, balance, accounts)
             VALUES ('t', 'EUR', 0, 'p', 'active', 1, 'booked', '1', 1)",
        )
        .await;
    assert!(bad.is_err());
}
