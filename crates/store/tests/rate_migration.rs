//! The rate-history migrations (PostgreSQL 0007, SQLite 0004) start the history from what an
//! existing database holds: its provider rates as history rows, its manual rates as versions
//! set by no key. Applied to a database migrated up to the version before, with rates in it.
#![allow(clippy::unwrap_used)]

use coffer_testkit::pg;

use sqlx::{Connection, Executor, PgConnection, SqliteConnection};

/// The migration files of `backend` in order, split at the rate-history one.
fn migrations(backend: &str) -> (Vec<String>, String) {
    let dir = format!("{}/../../migrations/{backend}", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let (mut before, mut history) = (Vec::new(), None);
    for f in files {
        let sql = std::fs::read_to_string(&f).unwrap();
        if f.to_string_lossy().ends_with("_rate_history.sql") {
            history = Some(sql);
        } else if history.is_none() {
            before.push(sql);
        }
    }
    (before, history.unwrap())
}

const RATES: &str = "INSERT INTO rates (source, provider, currency, quote, rate, as_of) VALUES
    ('manual', '', 'USD', 'EUR', '0.09872368', '2026-11-01T00:00:00.000000Z'),
    ('provider', 'p100', 'BTC', 'EUR', '0.0000001', '2026-11-02T00:00:00.000000Z')";

type Row = (String, Option<String>, Option<String>, String);

#[tokio::test]
async fn sqlite_history_starts_from_the_stored_rates() {
    let mut c = SqliteConnection::connect("sqlite::memory:").await.unwrap();
    let (before, history) = migrations("sqlite");
    for sql in before {
        c.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
    }
    c.execute(RATES).await.unwrap();
    c.execute(sqlx::AssertSqlSafe(history)).await.unwrap();
    let versions: Vec<Row> = sqlx::query_as(
        "SELECT currency, quote || ' ' || rate, key_id, as_of FROM manual_rate_versions",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    assert_eq!(
        versions,
        [(
            "USD".into(),
            Some("EUR 0.09872368".into()),
            None,
            "2026-11-01T00:00:00.000000Z".into()
        )]
    );
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT provider || ' ' || currency, rate, as_of FROM provider_rate_history",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    assert_eq!(
        rows,
        [(
            "p100 BTC".into(),
            "0.0000001".into(),
            "2026-11-02T00:00:00.000000Z".into()
        )]
    );
}

#[tokio::test]
async fn postgres_history_starts_from_the_stored_rates() {
    let Some(db) = pg::TestDb::create().await else {
        return;
    };
    let mut c = PgConnection::connect(&db.url).await.unwrap();
    let (before, history) = migrations("postgres");
    for sql in before {
        c.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
    }
    c.execute(RATES).await.unwrap();
    c.execute(sqlx::AssertSqlSafe(history)).await.unwrap();
    let versions: Vec<Row> = sqlx::query_as(
        "SELECT currency, quote || ' ' || rate::text, key_id,
                to_char(as_of AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') FROM manual_rate_versions",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    assert_eq!(
        versions,
        [(
            "USD".into(),
            Some("EUR 0.09872368".into()),
            None,
            "2026-11-01T00:00:00".into()
        )]
    );
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT provider || ' ' || currency, rate::text,
                to_char(as_of AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') FROM provider_rate_history",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    assert_eq!(
        rows,
        [(
            "p100 BTC".into(),
            "0.0000001".into(),
            "2026-11-02T00:00:00".into()
        )]
    );
    let _ = c.close().await;
    drop(db);
}
