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
