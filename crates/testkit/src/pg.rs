//! A fresh PostgreSQL database per test, dropped afterwards (also when the test panics), for
//! the PostgreSQL tests and the benchmark.
//!
//! The server: `DATABASE_URL` if set (any database on it serves as the maintenance database),
//! else `postgres://postgres@127.0.0.1:5432/postgres` if it answers. Otherwise the test is
//! skipped with the reason printed, unless `COFFER_REQUIRE_POSTGRES=1`, where it fails.
//! (Docker is not assumed: there is no testcontainers fallback.)

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::{Connection, Executor, PgConnection};

pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Test databases older than this are left-overs of killed runs and are dropped.
const STALE_AFTER_SECS: u64 = 3600;

pub struct TestDb {
    pub name: String,
    pub url: String,
    admin_url: String,
}

/// `url` with its database path replaced by `db` (query string kept).
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| after_scheme + i);
    let mut out = format!("{}/{db}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The maintenance URL, or `None` (test skipped) when no server answers.
pub async fn admin_url() -> Option<String> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
    let required = std::env::var("COFFER_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
    let attempt = tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(&url)).await;
    match attempt {
        Ok(Ok(c)) => {
            let _ = c.close().await;
            Some(url)
        }
        Ok(Err(e)) if required => {
            panic!("COFFER_REQUIRE_POSTGRES=1 but PostgreSQL is not usable: {e}")
        }
        Err(_) if required => {
            panic!("COFFER_REQUIRE_POSTGRES=1 but PostgreSQL did not answer in 5 s")
        }
        Ok(Err(e)) => {
            eprintln!(
                "SKIPPED: no usable PostgreSQL (set DATABASE_URL, or run one on 127.0.0.1:5432): {e}"
            );
            None
        }
        Err(_) => {
            eprintln!("SKIPPED: PostgreSQL did not answer within 5 s (set DATABASE_URL)");
            None
        }
    }
}

impl TestDb {
    /// Creates `coffer_test_<unix secs>_<random>`; `None` when skipped.
    pub async fn create() -> Option<TestDb> {
        let admin_url = admin_url().await?;
        let mut admin = PgConnection::connect(&admin_url).await.unwrap();
        drop_stale(&mut admin).await;
        let name = format!(
            "coffer_test_{}_{}",
            now_secs(),
            &uuid::Uuid::new_v4().simple().to_string()[..10]
        );
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .unwrap();
        let _ = admin.close().await;
        Some(TestDb {
            url: with_database(&admin_url, &name),
            name,
            admin_url,
        })
    }
}

async fn drop_stale(admin: &mut PgConnection) {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT datname FROM pg_database WHERE datname LIKE 'coffer\\_test\\_%'",
    )
    .fetch_all(&mut *admin)
    .await
    .unwrap_or_default();
    let cutoff = now_secs().saturating_sub(STALE_AFTER_SECS);
    for n in names {
        let secs: Option<u64> = n.split('_').nth(2).and_then(|s| s.parse().ok());
        if secs.is_some_and(|s| s < cutoff)
            && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            let _ = admin
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {n} WITH (FORCE)"
                )))
                .await;
        }
    }
}

impl Drop for TestDb {
    /// Drops the database on its own thread and runtime, so it also runs while a test unwinds.
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut admin = PgConnection::connect(&admin_url).await?;
                admin
                    .execute(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .await?;
                admin.close().await
            })
        })
        .join();
        if let Ok(Err(e)) = done {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}

#[test]
fn database_is_replaced_in_urls() {
    assert_eq!(
        with_database("postgres://u@h:5432/postgres", "x"),
        "postgres://u@h:5432/x"
    );
    assert_eq!(
        with_database("postgres://u:p@h/db?sslmode=disable", "x"),
        "postgres://u:p@h/x?sslmode=disable"
    );
    assert_eq!(with_database("postgresql://h", "x"), "postgresql://h/x");
}
