//! Reproducibility (DESIGN.md "Time"): an answer about a past instant is byte for byte the same
//! after later background syncs that change balances and provider rates, after a manual rate
//! change, and when another replica answers, on SQLite (a file two replicas share) and
//! PostgreSQL. (`tests/balance_at.rs` covers refreshes and a restart.)

use crate::cluster;
use crate::common;
use crate::timeline;

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use cluster::eventually;
use rust_decimal::Decimal;
use serde_json::json;
use timeline::{ext, micros, parse, text_as, text_on};

const DEADLINE: Duration = Duration::from_secs(30);

fn syncing(c: &mut coffer_server::config::Config) {
    c.sync.interval = Duration::from_secs(1);
    c.sync.idle_poll = Duration::from_millis(20);
    c.sync.lease = Duration::from_secs(2);
}

/// Whether the store holds, now, `balance` for account `id` (a sync wrote it).
async fn stored(app: &common::TestApp, id: &str, balance: &str) -> bool {
    let r = app
        .get(&format!("/v2/accounts/{id}?at={}", micros(Utc::now())))
        .await;
    r.status == 200 && r.body["balance"] == balance
}

async fn same_past_after_syncs_and_on_another_replica(backend: common::Backend) {
    let Some(app) = timeline::durable(
        backend,
        Box::new(|c| {
            syncing(c);
            c.sync.enabled = true;
        }),
    )
    .await
    else {
        return;
    };
    app.customer("c0", Some(&ext(0)), Some(&ext(0))).await;
    app.customer("c1", Some(&ext(1)), None).await;
    let r = app
        .put("/v2/rates", json!({"rates": {"USD": "0.92"}}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    eventually("every pair synced", DEADLINE, || async {
        let b = app
            .ok(&format!("/v2/accounts/balance?at={}", micros(Utc::now())))
            .await;
        b["partial"] == false && b["coverage"]["customers"] == 2
    })
    .await;
    let t = Utc::now();
    let at = micros(t);
    let list = app
        .ok(&format!(
            "/v2/accounts?customer_id=c0&search.provider=p100&at={at}"
        ))
        .await;
    let account = list["data"][0].clone();
    let id = account["id"].as_str().unwrap().to_owned();
    let p100 = account["provider_account_id"].as_str().unwrap().to_owned();
    let paths = [
        format!("/v2/accounts/balance?at={at}"),
        format!("/v2/accounts/balance?customer_id=c0&details=true&stack=currency&at={at}"),
        format!("/v2/accounts/balance?customer_id=c0&currency=USD&at={at}"),
        format!("/v2/accounts?at={at}&sort=-balance,id&limit=1000"),
        format!("/v2/accounts/{id}?currency=USD&at={at}"),
        format!("/v2/rates?at={at}"),
        format!(
            "/v2/accounts/balance/history?from={}&to={at}&interval=1h&stack=currency",
            micros(t - TimeDelta::hours(2))
        ),
        format!("/v2/accounts/{id}/history?to={at}"),
    ];
    let admin = app.admin_key.clone();
    let mut past = Vec::new();
    for p in &paths {
        past.push(text_as(&app, &admin, p).await);
    }

    // Later: the providers change a balance and its rate; the background sync stores it.
    let mut p = app.sim.p100_customer(&ext(0)).unwrap();
    for b in p.fiat_balances.iter_mut().chain(&mut p.crypto_balances) {
        if b.id == p100 {
            b.amount = "777.5".parse().unwrap();
            b.rate = "0.0000042".parse().unwrap();
        }
    }
    app.sim.put_p100_data(&ext(0), p);
    let bank = app
        .ok(&format!(
            "/v2/accounts?customer_id=c0&search.provider=bank&at={at}"
        ))
        .await["data"][0]["provider_account_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let wide: Decimal = "98765.4321".parse().unwrap();
    assert!(app.sim.set_corebanq_balance(&ext(0), &bank, wide));
    let r = app.put("/v2/rates", json!({"rates": {"USD": "1.3"}})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    eventually("the sync stored the change", DEADLINE, || async {
        stored(&app, &id, "777.5").await
            && stored(&app, &format!("{}:{bank}", common::BANK), "98765.4321").await
    })
    .await;
    for (p, before) in paths.iter().zip(&past) {
        assert_eq!(
            &text_as(&app, &admin, p).await,
            before,
            "{p} changed after syncs"
        );
    }

    // Another replica, on the same database, answers the same bytes.
    let other = cluster::Replica::start(&app.sim, &app.database_url, false, |_| {}).await;
    for (p, before) in paths.iter().zip(&past) {
        let body = text_on(&other.url, &admin, p).await;
        assert_eq!(&body, before, "{p} differs on another replica");
    }
    let now = parse(&text_on(&other.url, &admin, &format!("/v2/accounts/{id}")).await);
    assert_eq!(now["balance"], "777.5", "the present moved on: {now}");
    other.stop().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_past_after_syncs_and_on_another_replica_sqlite() {
    same_past_after_syncs_and_on_another_replica(common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_past_after_syncs_and_on_another_replica_postgres() {
    same_past_after_syncs_and_on_another_replica(common::Backend::Postgres).await;
}
