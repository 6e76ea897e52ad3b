//! `GET /v2/rates?at=`: the rate table in force at a past instant, over HTTP on SQLite and
//! PostgreSQL. The answer for a past instant is byte for byte the same after the background
//! sync stored a new provider rate and after an admin changed a manual rate; bad instants are
//! 400 naming `at`; without `at` the answer is the present table, as before.

use crate::cluster;
use crate::common;

use std::time::Duration;

use cluster::eventually;
use serde_json::{Value, json};
use sqlx::types::chrono::{DateTime, Utc};

const DEADLINE: Duration = Duration::from_secs(30);

fn ext(i: usize) -> String {
    coffer_sim::generate::customer_id(i)
}

fn sync_opts() -> common::Options {
    common::Options {
        sim: coffer_sim::SimConfig {
            customers: 3,
            ..Default::default()
        },
        sync: true,
        configure: Box::new(|c| {
            c.sync.interval = Duration::from_secs(1);
            c.sync.idle_poll = Duration::from_millis(20);
            c.sync.lease = Duration::from_secs(2);
            c.history.settle = Some(SETTLE);
        }),
    }
}

/// `history.settle` here: a past instant is final once this has passed (a sync fetch that began
/// before it is written by then).
const SETTLE: Duration = Duration::from_secs(3);

/// Waits until answers at `t` are final (`t + history.settle` has passed).
async fn settled(t: DateTime<Utc>) {
    let at = t + chrono::TimeDelta::from_std(SETTLE).unwrap();
    eventually("the instant settles", DEADLINE, || async move {
        Utc::now() > at
    })
    .await;
}

/// The answer's exact bytes.
async fn text(app: &common::TestApp, path: &str) -> String {
    let r = app
        .client
        .get(format!("{}{path}", app.url))
        .header("x-api-key", &app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "GET {path}");
    r.text().await.unwrap()
}

/// The P100 rate of `currency` in a table, if any.
fn p100_rate(table: &Value, currency: &str) -> Option<String> {
    table["rates"].as_array().unwrap().iter().find_map(|r| {
        (r["currency"] == currency && r["source"] == "provider" && r["provider"] == common::P100)
            .then(|| r["rate"].as_str().unwrap().to_owned())
    })
}

fn manual_rate(table: &Value, currency: &str) -> Option<String> {
    table["rates"].as_array().unwrap().iter().find_map(|r| {
        (r["currency"] == currency && r["source"] == "manual")
            .then(|| r["rate"].as_str().unwrap().to_owned())
    })
}

/// An instant as the answer repeats it: UTC, to the microsecond.
fn micros(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn at_query(t: DateTime<Utc>) -> String {
    format!("/v2/rates?at={}", micros(t))
}

both!(
    a_past_table_never_changes,
    sync_opts(),
    |app: common::TestApp| async move {
        let before_all = Utc::now();
        app.customer("c0", Some(&ext(0)), Some(&ext(0))).await;
        // A P100 currency other than the base, and the rate P100 gives it now.
        let p100 = app.sim.p100_customer(&ext(0)).unwrap();
        let name = p100
            .balances()
            .map(|b| b.name.clone())
            .find(|n| n != "eur")
            .unwrap();
        let currency = name.to_ascii_uppercase();
        eventually("the sync stored P100's rate", DEADLINE, || async {
            p100_rate(&app.ok("/v2/rates").await, &currency).is_some()
        })
        .await;
        let r = app
            .put("/v2/rates", json!({"rates": {"GBP": "0.09872368"}}))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);

        // A sync fetch in flight at `t` may be written after it (with the instant the provider
        // answered): the past at `t` is final once `history.settle` has passed.
        let t = Utc::now();
        settled(t).await;
        let past = text(&app, &at_query(t)).await;
        let table: Value = serde_json::from_str(&past).unwrap();
        let old_rate = p100_rate(&table, &currency).unwrap();
        assert_eq!(manual_rate(&table, "GBP").as_deref(), Some("0.09872368"));
        // The instant repeated exactly (to the microsecond), whatever digits it is written with.
        assert_eq!(
            cluster::ts(&table["at"]),
            cluster::ts(&json!(micros(t))),
            "{past}"
        );
        // Before anything was observed or set: nothing but what the config says (nothing).
        let empty = app.ok(&at_query(before_all)).await;
        assert_eq!(empty["rates"], json!([]), "{empty}");

        // The provider changes the rate; the sync stores it (the present table shows it).
        let mut changed = p100.clone();
        for b in changed
            .fiat_balances
            .iter_mut()
            .chain(&mut changed.crypto_balances)
        {
            if b.name == name {
                b.rate = "0.0000001".parse().unwrap();
            }
        }
        app.sim.put_p100_data(&ext(0), changed);
        eventually("the sync stored the new rate", DEADLINE, || async {
            p100_rate(&app.ok("/v2/rates").await, &currency).as_deref() == Some("0.0000001")
        })
        .await;
        assert_ne!(old_rate, "0.0000001");
        // An admin changes the manual rate.
        let r = app
            .put("/v2/rates", json!({"rates": {"GBP": "1.17"}}))
            .await;
        assert_eq!(manual_rate(&r.body, "GBP").as_deref(), Some("1.17"));

        assert_eq!(
            text(&app, &at_query(t)).await,
            past,
            "the past is unchanged"
        );
        let now = app.ok(&at_query(Utc::now())).await;
        assert_eq!(p100_rate(&now, &currency).as_deref(), Some("0.0000001"));
        assert_eq!(manual_rate(&now, "GBP").as_deref(), Some("1.17"));
        // Without `at`, the present table, which has no `at`.
        assert!(app.ok("/v2/rates").await.get("at").is_none());
        app.stop().await;
    }
);

both!(
    bad_instants_are_rejected,
    common::Options::default(),
    |app: common::TestApp| async move {
        let future = (Utc::now() + Duration::from_secs(3600)).to_rfc3339();
        for bad in ["yesterday", "2026-11-30", "2026-11-30T25:00:00Z", &future] {
            let q = format!("/v2/rates?at={}", urlencode(bad));
            let r = app.get(&q).await;
            assert_eq!(r.status, 400, "{bad}: {}", r.body);
            assert_eq!(r.body["error"], "invalid_parameter");
            assert_eq!(r.body["details"]["parameter"], "at", "{}", r.body);
        }
        app.stop().await;
    }
);

/// `+` in an offset must not become a space.
fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

fn config_opts() -> common::Options {
    common::Options {
        configure: Box::new(|c| {
            c.rates.manual.insert("USD".into(), "0.9".into());
        }),
        ..Default::default()
    }
}

// The config's manual rates are not versioned: an `at` answer has them, dated at `at` (so a
// restart changes nothing), for the currencies no admin version covers then.
both!(
    config_rates_are_in_force_where_no_admin_rate_is,
    config_opts(),
    |app: common::TestApp| async move {
        let t = Utc::now();
        let past = app.ok(&at_query(t)).await;
        assert_eq!(manual_rate(&past, "USD").as_deref(), Some("0.9"));
        let usd = past["rates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["currency"] == "USD")
            .unwrap();
        assert_eq!(
            cluster::ts(&usd["as_of"]),
            cluster::ts(&json!(micros(t))),
            "{past}"
        );
        let r = app
            .put("/v2/rates", json!({"rates": {"USD": "0.92"}}))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let now = app.ok(&at_query(Utc::now())).await;
        assert_eq!(manual_rate(&now, "USD").as_deref(), Some("0.92"), "{now}");
        assert_eq!(app.ok(&at_query(t)).await, past, "the past is unchanged");
        app.stop().await;
    }
);
