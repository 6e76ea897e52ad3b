//! The conformance suite on SQLite (in memory), plus what only a file database shows.
#![allow(clippy::unwrap_used)]

mod conformance;

use std::time::Duration;

use coffer_store::{Scope, SqliteStore, Store};
use conformance::{account, customer, meta};

async fn run(case: conformance::Case) {
    let s = SqliteStore::connect("sqlite::memory:").await.unwrap();
    s.migrate().await.unwrap();
    case(&s).await;
    s.close().await;
}

conformance_tests!(run);

/// (a) of the unchanged-accounts cases, with a count of the writes of each account row (kept by
/// triggers this test adds) as its stamp. (`INSERT OR IGNORE` would not do: in a trigger the
/// outer statement's conflict rule wins.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_sync_writes_no_account_row() {
    let s = SqliteStore::connect("sqlite::memory:").await.unwrap();
    s.migrate().await.unwrap();
    for sql in [
        "CREATE TABLE account_writes (id TEXT PRIMARY KEY, n INTEGER NOT NULL)",
        "CREATE TRIGGER account_inserted AFTER INSERT ON accounts BEGIN
             INSERT INTO account_writes SELECT new.id, 0
                 WHERE NOT EXISTS (SELECT 1 FROM account_writes WHERE id = new.id);
             UPDATE account_writes SET n = n + 1 WHERE id = new.id;
         END",
        "CREATE TRIGGER account_updated AFTER UPDATE ON accounts BEGIN
             INSERT INTO account_writes SELECT new.id, 0
                 WHERE NOT EXISTS (SELECT 1 FROM account_writes WHERE id = new.id);
             UPDATE account_writes SET n = n + 1 WHERE id = new.id;
         END",
    ] {
        sqlx::query(sql).execute(s.pool()).await.unwrap();
    }
    let pool = s.pool().clone();
    conformance::unchanged_sync_writes_no_account_row(&s, || {
        let pool = pool.clone();
        async move {
            let rows: Vec<(String, i64)> = sqlx::query_as("SELECT id, n FROM account_writes")
                .fetch_all(&pool)
                .await
                .unwrap();
            rows.into_iter()
                .map(|(id, n)| (id, n.to_string()))
                .collect()
        }
    })
    .await;
    s.close().await;
}

fn temp_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "coffer-store-test-{}",
        uuid::Uuid::new_v4().simple()
    ))
}

#[tokio::test]
async fn connect_picks_the_backend_and_creates_the_file() {
    let dir = temp_dir();
    let file = dir.join("nested").join("coffer.db");
    let url = format!("sqlite://{}", file.display());
    let s = coffer_store::connect(&url).await.unwrap();
    assert_eq!(s.backend(), "sqlite");
    s.migrate().await.unwrap();
    s.migrate().await.unwrap(); // idempotent
    s.create_customer(&customer("c1", &[])).await.unwrap();
    s.close().await;
    assert!(file.exists());
    // Reopened, the data is there.
    let s = coffer_store::connect(&url).await.unwrap();
    s.migrate().await.unwrap();
    assert_eq!(s.get_customer("c1").await.unwrap().id, "c1");
    assert!(
        s.subscribe_changes().await.unwrap().is_none(),
        "one replica: nothing to listen to"
    );
    s.notify_changed(Some("c1")).await.unwrap();
    s.close().await;
    std::fs::remove_dir_all(dir).unwrap();

    assert!(coffer_store::connect("mysql://x").await.is_err());
}

/// Many writers and leasers at once on a WAL file: no "database is locked", no lost write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_on_a_file() {
    let dir = temp_dir();
    let url = format!("sqlite://{}", dir.join("c.db").display());
    let s = SqliteStore::connect(&url).await.unwrap();
    s.migrate().await.unwrap();
    for i in 0..16 {
        let e = format!("e{i}");
        s.create_customer(&customer(&format!("c{i}"), &[("p100", e.as_str())]))
            .await
            .unwrap();
    }
    let mut tasks = vec![];
    for i in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let c = format!("c{i}");
            for round in 0..10 {
                let a = account(
                    &c,
                    "p100",
                    &format!("{c}-a"),
                    "EUR",
                    &format!("{round}.5"),
                    round,
                );
                s.save_snapshot(&meta(&c, "p100", round), &[a])
                    .await
                    .unwrap();
            }
            s.lease_due(&c, 1, Duration::from_secs(60))
                .await
                .unwrap()
                .len()
        }));
    }
    let mut leased = 0;
    for t in tasks {
        leased += t.await.unwrap();
    }
    assert_eq!(leased, 16);
    let totals = s.totals(&Scope::All, &Default::default()).await.unwrap();
    assert_eq!(totals.by_currency[0].accounts, 16);
    assert_eq!(totals.by_currency[0].balance, conformance::d("152.0"));
    s.close().await;
    std::fs::remove_dir_all(dir).unwrap();
}
