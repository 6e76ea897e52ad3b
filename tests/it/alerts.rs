//! Alerts end to end, on SQLite and PostgreSQL: a query and an amount validated at creation
//! (400 naming what is wrong), admin only, evaluated at creation and on the events that follow;
//! `threshold.crossed` once per crossing with the total, the bound and the rates; creation and
//! deletion in the audit log. On PostgreSQL, two evaluating replicas write one crossing.

use crate::cluster;
use crate::common;

use std::time::Duration;

use cluster::{Replica, eventually};
use coffer_sim::{P100Balance, P100Customer, P100Status};
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(30);
const EXT: &str = "alert-user-1";

fn eur_user(amount: &str) -> P100Customer {
    P100Customer {
        user_id: "p100-internal-alert".into(),
        fiat_balances: vec![P100Balance {
            id: "bal-eur".into(),
            amount: amount.parse().unwrap(),
            name: "eur".into(),
            rate: 1.into(),
            status: Some(P100Status::Active),
            ..Default::default()
        }],
        crypto_balances: vec![],
    }
}

async fn refresh(app: &common::TestApp, c: &str) {
    let r = app
        .post(&format!("/v2/customers/{c}/refresh"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

async fn crossings(app: &common::TestApp) -> Vec<Value> {
    app.ok("/v2/events?types=threshold.crossed").await["data"]
        .as_array()
        .unwrap()
        .clone()
}

async fn alert(app: &common::TestApp, id: &str) -> Value {
    app.ok(&format!("/v2/alerts/{id}")).await
}

/// Sets the balance, refreshes, and waits until the alert was evaluated on it.
async fn move_to(app: &common::TestApp, id: &str, amount: &str) {
    assert!(
        app.sim
            .set_p100_balance(EXT, "bal-eur", amount.parse().unwrap())
    );
    refresh(app, "a").await;
    let want: rust_decimal::Decimal = amount.parse().unwrap();
    eventually(
        "the alert evaluated on the new balance",
        DEADLINE,
        || async {
            let total = alert(app, id).await["last_total"].clone();
            total.as_str().and_then(|t| t.parse().ok()) == Some(want)
        },
    )
    .await;
}

both!(
    alerts_validate_and_cross_once,
    common::Options::default(),
    |app: common::TestApp| async move {
        app.sim.put_p100_data(EXT, eur_user("500.00"));
        app.customer("a", Some(EXT), None).await;
        refresh(&app, "a").await;
        let reader = app.reader_key(&["a"]).await;
        let good = json!({"name": "low", "query": "customer_id=a&currency=EUR", "below": "100.00"});
        let r = app
            .request(
                reqwest::Method::POST,
                "/v2/alerts",
                Some(&reader),
                Some(good.clone()),
            )
            .await;
        assert_eq!(r.status, 403, "{}", r.body);
        for (body, param) in [
            (
                json!({"name": "x", "query": "currency=NOPE", "below": "1"}),
                "query",
            ),
            (
                json!({"name": "x", "query": "colour=red", "below": "1"}),
                "query",
            ),
            (
                json!({"name": "x", "query": "at=2026-01-01T00:00:00Z", "below": "1"}),
                "query",
            ),
            (
                json!({"name": "x", "query": "customer_id=nobody", "below": "1"}),
                "query",
            ),
            (json!({"name": "x", "query": "", "below": "1e3"}), "below"),
            (json!({"name": "x", "query": "", "above": "ten"}), "above"),
            (
                json!({"name": "x", "query": "", "below": "1", "above": "2"}),
                "below",
            ),
            (json!({"name": "x", "query": ""}), "below"),
            (json!({"name": " ", "query": "", "below": "1"}), "name"),
        ] {
            let r = app.post("/v2/alerts", body.clone()).await;
            assert_eq!(r.status, 400, "{body}: {}", r.body);
            assert_eq!(r.body["details"]["parameter"], param, "{body}: {}", r.body);
        }
        assert!(
            app.ok("/v2/alerts").await["data"]
                .as_array()
                .unwrap()
                .is_empty()
        );

        let r = app.post("/v2/alerts", good).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let id = r.body["id"].as_str().unwrap().to_owned();
        // Evaluated at creation: above the bound, not triggered, no event.
        assert_eq!(r.body["triggered"], false, "{}", r.body);
        assert_eq!(r.body["last_total"], "500.00");
        assert_eq!(r.body["bound"], "100.00");
        assert_eq!(r.body["direction"], "below");

        // Still above: evaluated, nothing crossed.
        move_to(&app, &id, "300.00").await;
        assert!(crossings(&app).await.is_empty());
        // Below: one crossing, with the total, the bound and the rates used.
        move_to(&app, &id, "99.99").await;
        let events = crossings(&app).await;
        assert_eq!(events.len(), 1, "{events:?}");
        let e = &events[0];
        assert_eq!(e["type"], "threshold.crossed");
        assert_eq!(e["customer_id"], "a");
        assert_eq!(e["data"]["alert_id"], id.as_str());
        assert_eq!(e["data"]["total"], "99.99");
        assert_eq!(e["data"]["before"], "300.00");
        assert_eq!(e["data"]["below"], "100.00");
        assert_eq!(e["data"]["currency"], "EUR");
        assert!(e["data"]["rates"].is_array(), "{e}");
        assert_eq!(alert(&app, &id).await["triggered"], true);
        // A reader of the customer sees it; the events' stream carries it like any other.
        let mine = app
            .get_as(&reader, "/v2/events?types=threshold.crossed")
            .await;
        assert_eq!(mine.body["data"].as_array().unwrap().len(), 1);
        // Lower still: no second crossing. Back above re-arms; below again crosses again.
        move_to(&app, &id, "10.00").await;
        assert_eq!(crossings(&app).await.len(), 1);
        move_to(&app, &id, "150.00").await;
        assert_eq!(crossings(&app).await.len(), 1);
        move_to(&app, &id, "50.00").await;
        assert_eq!(crossings(&app).await.len(), 2);

        let r = app
            .request(
                reqwest::Method::DELETE,
                &format!("/v2/alerts/{id}"),
                Some(common::ADMIN_KEY),
                None,
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.body);
        assert_eq!(app.get(&format!("/v2/alerts/{id}")).await.status, 404);
        let log = app.ok("/v2/audit?action=alert.").await;
        let actions: Vec<&str> = log["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(actions, ["alert.delete", "alert.create"], "{log}");
        app.stop().await;
    }
);

/// Two evaluating replicas on one PostgreSQL: one crossing, however they interleave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_write_one_crossing() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some((url, _db)) = common::database(common::Backend::Postgres).await else {
        return;
    };
    let sim = coffer_sim::start(coffer_sim::SimConfig::default())
        .await
        .unwrap();
    sim.put_p100_data(EXT, eur_user("500.00"));
    let one = Replica::start(&sim, &url, false, |_| {}).await;
    let two = Replica::start(&sim, &url, false, |_| {}).await;
    one.customer("a", Some(EXT), None).await;
    let (status, body) = one.post("/v2/customers/a/refresh", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = one
        .post(
            "/v2/alerts",
            json!({"name": "low", "query": "customer_id=a&currency=EUR", "below": "100"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["triggered"], false, "{body}");
    for (i, amount) in ["50", "500", "40", "30"].into_iter().enumerate() {
        assert!(sim.set_p100_balance(EXT, "bal-eur", amount.parse().unwrap()));
        let r = if i % 2 == 0 { &one } else { &two };
        let (status, body) = r.post("/v2/customers/a/refresh", json!({})).await;
        assert_eq!(status, 200, "{body}");
        let want: rust_decimal::Decimal = amount.parse().unwrap();
        eventually("both evaluated", DEADLINE, || async {
            let a = one.ok("/v2/alerts").await["data"][0]["last_total"].clone();
            a.as_str().and_then(|t| t.parse().ok()) == Some(want)
        })
        .await;
    }
    let events = one.ok("/v2/events?types=threshold.crossed").await["data"]
        .as_array()
        .unwrap()
        .clone();
    // 500 → 50 crosses, 50 → 500 re-arms, 500 → 40 crosses, 40 → 30 does not.
    assert_eq!(events.len(), 2, "{events:?}");
    one.stop().await;
    two.stop().await;
    sim.shutdown().await;
}
