//! A history of hours made in seconds, for the tests of series, one account's changes and
//! retention: the app writes each epoch through its real write path (a refresh), then every
//! history row is moved back an hour in the database (`age`), so three epochs lie an hour
//! apart. The app runs on a database that outlives it (a SQLite file or a PostgreSQL database).
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, TimeDelta, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::common;

pub fn ext(i: usize) -> String {
    coffer_sim::generate::customer_id(i)
}

pub fn micros(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// An app on a durable database; `None` when PostgreSQL is not available.
pub async fn durable(
    backend: common::Backend,
    configure: Box<dyn FnOnce(&mut coffer_server::config::Config) + Send>,
) -> Option<common::TestApp> {
    let (database_url, db) = match backend {
        common::Backend::Sqlite => {
            let dir = std::env::temp_dir().join(format!("coffer-tl-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir).unwrap();
            (format!("sqlite://{}", dir.join("tl.db").display()), None)
        }
        common::Backend::Postgres => common::database(backend).await?,
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = coffer_sim::start(coffer_sim::SimConfig {
        customers: 3,
        ..Default::default()
    })
    .await
    .unwrap();
    let running = common::start_app(&sim, &database_url, false, configure).await;
    let app = common::TestApp {
        url: running.url(),
        admin_key: common::ADMIN_KEY.to_owned(),
        sim,
        running: Some(running),
        client: reqwest::Client::new(),
        database_url,
        db,
    };
    app.wait_healthy().await;
    Some(app)
}

/// Moves every history row (observations, account versions, rate history and versions) an
/// hour back, as if it had been written an hour earlier. The checkpoints of the totals summed the
/// history as it was, so they go in the same transaction, as the store drops them when a write
/// changes the past (on PostgreSQL under the checkpoint lock a write of versions takes, so the
/// service's own builder cannot build from half-moved history).
pub async fn age(app: &common::TestApp) {
    let url = &app.database_url;
    let drop_checkpoints = [
        "DELETE FROM totals_checkpoint_marks",
        "DELETE FROM totals_checkpoints",
    ];
    if url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
        // Text instants `YYYY-MM-DDTHH:MM:SS.ffffffZ`: shift the seconds, keep the fraction.
        let back = |col: &str| {
            format!("strftime('%Y-%m-%dT%H:%M:%S', {col}, '-1 hour') || substr({col}, 20)")
        };
        let moves = COLUMNS
            .iter()
            .map(|(table, col)| format!("UPDATE {table} SET {col} = {}", back(col)));
        for sql in moves.chain(drop_checkpoints.map(String::from)) {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
            .bind(coffer_store::CHECKPOINT_LOCK_KEY)
            .execute(&mut *tx)
            .await
            .unwrap();
        // PostgreSQL's own derived data too: each customer's first observation moves with
        // it, and the marks of the observations go with the checkpoints.
        let moves = COLUMNS
            .iter()
            .chain(&[("customer_first_seen", "first_at")])
            .map(|(table, col)| format!("UPDATE {table} SET {col} = {col} - interval '1 hour'"));
        let drops = drop_checkpoints
            .iter()
            .chain(&["DELETE FROM observation_marks"]);
        for sql in moves.chain(drops.map(|s| (*s).to_owned())) {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        pool.close().await;
    }
}

const COLUMNS: [(&str, &str); 5] = [
    ("observations", "fetched_at"),
    ("account_versions", "valid_from"),
    ("provider_rate_history", "as_of"),
    ("manual_rate_versions", "as_of"),
    ("balance_history", "recorded_at"),
];

/// Fetches the customer's providers now: one observation per pair.
pub async fn refresh(app: &common::TestApp, customer: &str) {
    let r = app
        .post(&format!("/v2/customers/{customer}/refresh"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

async fn manual(app: &common::TestApp, usd: &str) {
    let r = app.put("/v2/rates", json!({"rates": {"USD": usd}})).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// What the epochs were made of.
pub struct Timeline {
    /// Just after the last epoch: the first epoch is about 2 h before it, the second 1 h.
    pub end: DateTime<Utc>,
    /// A P100 account of c0 whose balance changes in each later epoch (`p100:<id>`).
    pub changing: String,
    /// A P100 account of c0 that closes in the second epoch.
    pub closing: String,
}

/// Three epochs an hour apart, customers c0 (P100 and Corebanq) and c1 (P100): the first with
/// manual USD 0.92; the second with a P100 balance and its rate changed, a P100 account gone
/// and USD 1.1; the third with that balance changed again and a Corebanq balance changed.
pub async fn three_epochs(app: &common::TestApp) -> Timeline {
    app.customer("c0", Some(&ext(0)), Some(&ext(0))).await;
    app.customer("c1", Some(&ext(1)), None).await;
    manual(app, "0.92").await;
    refresh(app, "c0").await;
    refresh(app, "c1").await;
    age(app).await;

    let mut p = app.sim.p100_customer(&ext(0)).unwrap();
    let ids: Vec<String> = p
        .fiat_balances
        .iter()
        .chain(&p.crypto_balances)
        .map(|b| b.id.clone())
        .collect();
    let (changing, closing) = (ids[0].clone(), ids[ids.len() - 1].clone());
    set_p100(&mut p, &changing, "0.09872368", Some("0.0000001"));
    p.fiat_balances.retain(|b| b.id != closing);
    p.crypto_balances.retain(|b| b.id != closing);
    app.sim.put_p100_data(&ext(0), p.clone());
    refresh(app, "c0").await;
    manual(app, "1.1").await;
    age(app).await;

    set_p100(&mut p, &changing, "12.5", None);
    app.sim.put_p100_data(&ext(0), p);
    let bank = app
        .ok("/v2/accounts?customer_id=c0&search.provider=bank&limit=1")
        .await["data"][0]["provider_account_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let wide: Decimal = "1234567890.123456789012345678".parse().unwrap();
    assert!(app.sim.set_corebanq_balance(&ext(0), &bank, wide));
    refresh(app, "c0").await;
    refresh(app, "c1").await;
    Timeline {
        end: Utc::now(),
        changing: format!("{}:{changing}", common::P100),
        closing: format!("{}:{closing}", common::P100),
    }
}

fn set_p100(p: &mut coffer_sim::model::P100Customer, id: &str, amount: &str, rate: Option<&str>) {
    for b in p.fiat_balances.iter_mut().chain(&mut p.crypto_balances) {
        if b.id == id {
            b.amount = amount.parse().unwrap();
            if let Some(r) = rate {
                b.rate = r.parse().unwrap();
            }
        }
    }
}

/// `end - hours`.
pub fn before(t: &Timeline, hours: i64) -> DateTime<Utc> {
    t.end - TimeDelta::hours(hours)
}

/// The answer's exact bytes, as `key`.
pub async fn text_as(app: &common::TestApp, key: &str, path: &str) -> String {
    text_on(&app.url, key, path).await
}

/// The answer's exact bytes from the server at `url`, as `key`.
pub async fn text_on(url: &str, key: &str, path: &str) -> String {
    let r = reqwest::Client::new()
        .get(format!("{url}{path}"))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

pub fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap()
}
