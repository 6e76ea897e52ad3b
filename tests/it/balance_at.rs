//! `at=` on the account endpoints: answers at a past instant from the store only, over HTTP on
//! SQLite and PostgreSQL. A past answer is byte for byte the same after later refreshes that
//! change balances and provider rates, after a manual rate change and after a restart on the
//! same database; pairs never observed by then are `no_data`, pairs observed too long before
//! are `gap`; bad input is 400 naming `at`; scope, filters, sort and cursor apply as today.

use crate::cluster;
use crate::common;

use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::{Value, json};
use sqlx::types::chrono::{DateTime, Utc};

fn ext(i: usize) -> String {
    coffer_sim::generate::customer_id(i)
}

fn micros(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The answer's exact bytes (as admin).
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

/// Fetches the customer's providers now: one observation per pair.
async fn refresh(app: &common::TestApp, customer: &str) {
    let r = app
        .post(&format!("/v2/customers/{customer}/refresh"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["partial"], false, "{}", r.body);
}

fn accounts(list: &Value) -> &Vec<Value> {
    list["data"].as_array().unwrap()
}

fn ids(list: &Value) -> Vec<String> {
    accounts(list)
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The first account of `provider` in a list.
fn first_of<'a>(list: &'a Value, provider: &str) -> &'a Value {
    accounts(list)
        .iter()
        .find(|a| a["provider"] == provider)
        .unwrap_or_else(|| panic!("no {provider} account in {list}"))
}

/// An app on a database that outlives it (a SQLite file, or a PostgreSQL database), so it can
/// be restarted; `None` when PostgreSQL is not available.
async fn restartable(backend: common::Backend) -> Option<common::TestApp> {
    let (database_url, db) = match backend {
        common::Backend::Sqlite => {
            let dir = std::env::temp_dir().join(format!("coffer-at-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir).unwrap();
            (format!("sqlite://{}", dir.join("at.db").display()), None)
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
    let running = common::start_app(&sim, &database_url, false, Box::new(|_| {})).await;
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

async fn restart(app: &mut common::TestApp) {
    app.running.take().unwrap().stop().await;
    let url = app.database_url.clone();
    let running = common::start_app(&app.sim, &url, false, Box::new(|_| {})).await;
    app.url = running.url();
    app.running = Some(running);
    app.wait_healthy().await;
}

/// Changes what the providers answer for customer 0: a P100 balance and its rate, a Corebanq
/// balance (28 significant digits), and drops the last P100 balance (that account closes).
fn change_providers(app: &common::TestApp, p100_account: &str, bank_account: &str) -> String {
    let mut p = app.sim.p100_customer(&ext(0)).unwrap();
    let mut all: Vec<_> = p
        .fiat_balances
        .iter_mut()
        .chain(&mut p.crypto_balances)
        .collect();
    let dropped = all
        .iter()
        .rev()
        .find(|b| b.id != p100_account)
        .unwrap()
        .id
        .clone();
    for b in all.iter_mut() {
        if b.id == p100_account {
            b.amount = "0.09872368".parse().unwrap();
            b.rate = "0.0000001".parse().unwrap();
        }
    }
    p.fiat_balances.retain(|b| b.id != dropped);
    p.crypto_balances.retain(|b| b.id != dropped);
    app.sim.put_p100_data(&ext(0), p);
    let wide: Decimal = "1234567890.123456789012345678".parse().unwrap();
    assert!(app.sim.set_corebanq_balance(&ext(0), bank_account, wide));
    dropped
}

async fn past_answers_never_change(backend: common::Backend) {
    let Some(mut app) = restartable(backend).await else {
        return;
    };
    app.customer("c0", Some(&ext(0)), Some(&ext(0))).await;
    app.customer("c1", Some(&ext(1)), None).await;
    let r = app
        .put("/v2/rates", json!({"rates": {"USD": "0.92"}}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    refresh(&app, "c0").await;
    refresh(&app, "c1").await;
    let t1 = Utc::now();
    let at = micros(t1);
    let list = app
        .ok(&format!("/v2/accounts?customer_id=c0&at={at}"))
        .await;
    let p100 = first_of(&list, common::P100)["provider_account_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bank = first_of(&list, common::BANK)["provider_account_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let p100_id = format!("{}:{p100}", common::P100);
    let paths = [
        format!("/v2/accounts/balance?customer_id=c0&details=true&stack=currency&at={at}"),
        format!("/v2/accounts/balance?customer_id=c0&currency=USD&at={at}"),
        format!("/v2/accounts/balance?at={at}"),
        format!("/v2/accounts?at={at}&sort=-balance,id&limit=3"),
        format!("/v2/accounts?customer_id=c0&stack=currency&at={at}"),
        format!("/v2/accounts/{p100_id}?currency=USD&at={at}"),
    ];
    let mut past = Vec::new();
    for p in &paths {
        let body = text(&app, p).await;
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["at"], at, "{p}: {body}");
        past.push(body);
    }
    let detail: Value = serde_json::from_str(&past[5]).unwrap();
    let observed = cluster::ts(&detail["observed_at"]);
    assert!(observed <= t1, "{detail}");
    assert_eq!(detail["observed_at"], detail["as_of"]);
    let all: Value = serde_json::from_str(&past[2]).unwrap();
    assert_eq!(all["coverage"]["customers"], 2, "{all}");
    let usd: Value = serde_json::from_str(&past[1]).unwrap();
    assert!(
        usd["rates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["currency"] == "USD" && r["rate"] == "0.92" && r["source"] == "manual"),
        "{usd}"
    );

    // Later: the providers change, a refresh stores it, an admin changes a manual rate.
    let dropped = change_providers(&app, &p100, &bank);
    refresh(&app, "c0").await;
    let r = app.put("/v2/rates", json!({"rates": {"USD": "1.1"}})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let now = app.ok(&format!("/v2/accounts/{p100_id}")).await;
    assert_eq!(now["balance"], "0.09872368", "the present changed: {now}");
    let later = micros(Utc::now());
    let then = app.ok(&format!("/v2/accounts/{p100_id}?at={later}")).await;
    assert_eq!(then["balance"], "0.09872368", "{then}");
    assert!(cluster::ts(&then["observed_at"]) > t1, "{then}");
    let bank_now = app
        .ok(&format!("/v2/accounts/{}:{bank}?at={later}", common::BANK))
        .await;
    assert_eq!(bank_now["balance"], "1234567890.123456789012345678");
    let dropped_id = format!("{}:{dropped}", common::P100);
    assert_eq!(
        app.get(&format!("/v2/accounts/{dropped_id}?at={later}"))
            .await
            .status,
        404
    );
    let held_then = app.ok(&format!("/v2/accounts/{dropped_id}?at={at}")).await;
    assert_eq!(
        held_then["id"],
        dropped_id.as_str(),
        "held at t1: {held_then}"
    );

    for (p, before) in paths.iter().zip(&past) {
        assert_eq!(
            &text(&app, p).await,
            before,
            "{p} changed after later writes"
        );
    }
    restart(&mut app).await;
    for (p, before) in paths.iter().zip(&past) {
        assert_eq!(&text(&app, p).await, before, "{p} changed after a restart");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_answers_never_change_sqlite() {
    past_answers_never_change(common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_answers_never_change_postgres() {
    past_answers_never_change(common::Backend::Postgres).await;
}

fn gap_opts() -> common::Options {
    common::Options {
        configure: Box::new(|c| c.history.max_gap = Some(Duration::ZERO)),
        ..Default::default()
    }
}

fn codes(body: &Value, provider: &str) -> Vec<String> {
    body["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["provider"] == provider)
        .map(|w| w["code"].as_str().unwrap().to_owned())
        .collect()
}

both!(
    no_data_and_gap,
    gap_opts(),
    |app: common::TestApp| async move {
        app.customer("c0", Some(&ext(0)), Some(&ext(0))).await;
        let before = micros(Utc::now());
        let none = app
            .ok(&format!("/v2/accounts/balance?customer_id=c0&at={before}"))
            .await;
        assert_eq!(none["partial"], true, "{none}");
        assert_eq!(none["accounts_count"], 0, "{none}");
        assert_eq!(codes(&none, common::P100), ["no_data"], "{none}");
        assert_eq!(codes(&none, common::BANK), ["no_data"], "{none}");
        assert_eq!(none["as_of"][common::P100], Value::Null, "{none}");
        refresh(&app, "c0").await;
        let now = micros(Utc::now());
        let list = app
            .ok(&format!("/v2/accounts?customer_id=c0&at={now}"))
            .await;
        assert!(!accounts(&list).is_empty());
        assert_eq!(list["partial"], false, "{list}");
        // max_gap 0: any age is a gap, named with its age, the accounts still served.
        assert_eq!(codes(&list, common::P100), ["gap"], "{list}");
        assert_eq!(codes(&list, common::BANK), ["gap"], "{list}");
        let gap = list["warnings"].as_array().unwrap()[0].clone();
        assert!(gap["age_seconds"].as_i64().unwrap() >= 0, "{gap}");
        assert!(
            gap["message"].as_str().unwrap().contains("max_gap"),
            "{gap}"
        );
        // At the observation's own instant: that observation, no gap.
        let observed = first_of(&list, common::P100)["observed_at"].clone();
        let exact = micros(cluster::ts(&observed));
        let there = app
            .ok(&format!(
                "/v2/accounts?customer_id=c0&search.provider=p100&at={exact}"
            ))
            .await;
        assert!(codes(&there, common::P100).is_empty(), "{there}");
        assert!(
            accounts(&there)
                .iter()
                .all(|a| a["observed_at"] == observed)
        );
        // Still before it: not observed yet.
        let none_again = app
            .ok(&format!("/v2/accounts/balance?customer_id=c0&at={before}"))
            .await;
        assert_eq!(none_again, none);
        app.stop().await;
    }
);

both!(
    bad_input_is_400_naming_at,
    common::Options::default(),
    |app: common::TestApp| async move {
        app.customer("c0", Some(&ext(0)), None).await;
        let past = micros(Utc::now());
        let future = micros(Utc::now() + Duration::from_secs(3600));
        let id = "p100:x";
        for endpoint in [
            "/v2/accounts/balance?customer_id=c0&",
            "/v2/accounts?",
            &format!("/v2/accounts/{id}?"),
        ] {
            for bad in [
                format!("at={future}"),
                format!("at={past}&max_age=60"),
                format!("at={past}&strict=true"),
                "at=yesterday".to_owned(),
                "at=2026-11-30".to_owned(),
            ] {
                let r = app.get(&format!("{endpoint}{bad}")).await;
                assert_eq!(r.status, 400, "{endpoint}{bad}: {}", r.body);
                assert_eq!(
                    r.body["details"]["parameter"], "at",
                    "{endpoint}{bad}: {}",
                    r.body
                );
            }
        }
        let r = app.get(&format!("/v2/accounts/{id}?at={past}")).await;
        assert_eq!(r.status, 404, "never held: {}", r.body);
        app.stop().await;
    }
);

both!(
    scope_filters_sort_and_cursor_at_an_instant,
    common::Options::default(),
    |app: common::TestApp| async move {
        app.customer("c0", Some(&ext(0)), Some(&ext(0))).await;
        app.customer("c1", Some(&ext(1)), Some(&ext(1))).await;
        refresh(&app, "c0").await;
        refresh(&app, "c1").await;
        let at = micros(Utc::now());
        let reader = app.reader_key(&["c0"]).await;
        let mine = app
            .get_as(&reader, &format!("/v2/accounts?at={at}&limit=1000"))
            .await;
        assert_eq!(mine.status, 200, "{}", mine.body);
        assert!(!accounts(&mine.body).is_empty());
        assert!(
            accounts(&mine.body)
                .iter()
                .all(|a| a["customer_id"] == "c0"),
            "{}",
            mine.body
        );
        let c0 = app
            .ok(&format!("/v2/accounts?customer_id=c0&at={at}&limit=1000"))
            .await;
        assert_eq!(ids(&mine.body), ids(&c0));
        let other = app
            .ok(&format!("/v2/accounts?customer_id=c1&at={at}&limit=1000"))
            .await;
        let theirs = accounts(&other)[0]["id"].as_str().unwrap().to_owned();
        for path in [
            format!("/v2/accounts?customer_id=c1&at={at}"),
            format!("/v2/accounts/balance?customer_id=c1&at={at}"),
            format!("/v2/accounts/{theirs}?at={at}"),
        ] {
            assert_eq!(app.get_as(&reader, &path).await.status, 404, "{path}");
        }
        let total = app
            .get_as(&reader, &format!("/v2/accounts/balance?at={at}"))
            .await;
        assert_eq!(
            total.body["accounts_count"],
            accounts(&c0).len(),
            "{}",
            total.body
        );
        assert!(total.body.get("coverage").is_none(), "{}", total.body);
        let all = app.ok(&format!("/v2/accounts/balance?at={at}")).await;
        let both = accounts(&c0).len() + accounts(&other).len();
        assert_eq!(all["accounts_count"], both, "{all}");

        // One filter, a sort and the cursor, at the instant.
        let q = format!("at={at}&search.provider=p100&sort=-balance,id");
        let whole = app.ok(&format!("/v2/accounts?{q}&limit=1000")).await;
        assert!(accounts(&whole).len() >= 3, "{whole}");
        assert!(accounts(&whole).iter().all(|a| a["provider"] == "p100"));
        let balances: Vec<Decimal> = accounts(&whole)
            .iter()
            .map(|a| a["balance"].as_str().unwrap().parse().unwrap())
            .collect();
        assert!(balances.windows(2).all(|w| w[0] >= w[1]), "{balances:?}");
        let mut paged = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/v2/accounts?{q}&limit=2");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let page = app.ok(&path).await;
            paged.extend(ids(&page));
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(paged, ids(&whole));
        app.stop().await;
    }
);
