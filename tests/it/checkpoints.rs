//! All-customer balances at a past instant from the checkpoints of the totals: byte for byte
//! the answer the per-account path gave before any checkpoint existed (totals, groups, rates,
//! counts, warnings, coverage), for every rollup filter, and each point of a series alike, on
//! SQLite and PostgreSQL.

use crate::common;

use std::time::Duration;

use serde_json::json;
use sqlx::types::chrono::{DateTime, Utc};

fn micros(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// An app on a database the test can open too (a SQLite file, or PostgreSQL).
async fn app(backend: common::Backend) -> Option<common::TestApp> {
    let (database_url, db) = match backend {
        common::Backend::Sqlite => {
            let dir = std::env::temp_dir().join(format!("coffer-cp-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir).unwrap();
            (format!("sqlite://{}", dir.join("cp.db").display()), None)
        }
        common::Backend::Postgres => common::database(backend).await?,
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = coffer_sim::start(coffer_sim::SimConfig {
        customers: 6,
        ..Default::default()
    })
    .await
    .unwrap();
    // The service's own checkpoint task builds up to now − settle; with a day to settle it
    // builds nothing here, so the test's build below is the only one (when the task ran after
    // the first writes it had built the hour already, and the test's build found nothing to do).
    let running = common::start_app(
        &sim,
        &database_url,
        false,
        Box::new(|c| c.history.settle = Some(Duration::from_secs(86_400))),
    )
    .await;
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

async fn text(app: &common::TestApp, path: &str) -> String {
    let r = app
        .client
        .get(format!("{}{path}", app.url))
        .header("x-api-key", &app.admin_key)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

async fn refresh(app: &common::TestApp, customer: &str) {
    let r = app
        .post(&format!("/v2/customers/{customer}/refresh"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

async fn answers_from_checkpoints_as_from_accounts(backend: common::Backend) {
    let Some(app) = app(backend).await else {
        return;
    };
    let rates = json!({"rates": {"USD": "0.92", "GBP": "1.17", "CHF": "1.05", "BTC": "61000.5",
        "ETH": "3000", "LTC": "80", "DOGE": "0.15", "POL": "0.4", "XRP": "0.5", "USDC": "0.93"}});
    let r = app.put("/v2/rates", rates).await;
    assert_eq!(r.status, 200, "{}", r.body);
    for i in 0..5 {
        let ext = coffer_sim::generate::customer_id(i);
        let bank = (i % 2 == 0).then_some(ext.as_str());
        app.customer(&format!("c{i}"), Some(&ext), bank).await;
    }
    // c5 is linked but never observed: no_data.
    let ext5 = coffer_sim::generate::customer_id(5);
    app.customer("c5", Some(&ext5), None).await;
    for i in 0..3 {
        refresh(&app, &format!("c{i}")).await;
    }
    let t1 = micros(Utc::now());
    tokio::time::sleep(Duration::from_millis(5)).await;
    for i in 3..5 {
        refresh(&app, &format!("c{i}")).await;
    }
    let t2 = micros(Utc::now());
    let queries = [
        "",
        "&stack=currency",
        "&currency=USD&stack=currency",
        "&search.is_crypto=true",
        "&search.currency.in=EUR,BTC",
        &format!("&search.provider={}", common::BANK),
        "&search.status=active",
        "&search.balance_type=available&stack=currency",
        "&balance_type=unspecified&currency=USD",
    ];
    let paths: Vec<String> = [&t1, &t2]
        .iter()
        .flat_map(|at| {
            queries
                .iter()
                .map(move |q| format!("/v2/accounts/balance?at={at}{q}"))
        })
        .chain([
            format!("/v2/accounts/balance/history?from={t1}&to={t2}&interval=1h&stack=currency"),
            format!("/v2/accounts/balance/history?from={t1}&to={t2}&interval=1h&currency=USD"),
            format!(
                "/v2/accounts/balance/history?from={t1}&to={t2}&interval=1h&stack=currency&search.balance_type=available"
            ),
        ])
        .collect();
    let mut from_accounts = Vec::new();
    for p in &paths {
        from_accounts.push(text(&app, p).await);
    }
    let first: serde_json::Value = serde_json::from_str(&from_accounts[0]).unwrap();
    assert_eq!(first["unconverted"], json!([]), "{first}");
    // Both balance types are held (P100's available, Corebanq's unspecified), so the rows the
    // checkpoints keep per type are exercised.
    let (available, unspecified) = (
        first["balance_types"]["available"].as_u64().unwrap(),
        first["balance_types"]["unspecified"].as_u64().unwrap(),
    );
    assert!(available > 0 && unspecified > 0, "{first}");
    assert_eq!(
        available + unspecified,
        first["accounts_count"].as_u64().unwrap()
    );
    assert!(
        first["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["code"] == "no_data"),
        "{first}"
    );

    let store = coffer_store::connect(&app.database_url).await.unwrap();
    let built = store
        .build_checkpoints(Utc::now(), coffer_server::checkpoints::STEP)
        .await
        .unwrap();
    assert!(built > 0);
    let at2 = DateTime::parse_from_rfc3339(&t2)
        .unwrap()
        .with_timezone(&Utc);
    let filter = coffer_core::query::Filter::default();
    assert!(store.totals_at(at2, &filter).await.unwrap().is_some());
    for (p, before) in paths.iter().zip(&from_accounts) {
        assert_eq!(&text(&app, p).await, before, "{p} from checkpoints");
    }
    store.close().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_from_checkpoints_as_from_accounts_sqlite() {
    answers_from_checkpoints_as_from_accounts(common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_from_checkpoints_as_from_accounts_postgres() {
    answers_from_checkpoints_as_from_accounts(common::Backend::Postgres).await;
}
