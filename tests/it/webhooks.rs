//! The webhook inbox end to end, on SQLite and PostgreSQL: P100's token (bare or `Bearer`) or
//! 401 with nothing kept, 413 past 1 MB, a retried delivery kept once, an `ACTIVE` user-status
//! making a pending link synced, an event for a linked user refreshing its pair, anything else
//! kept and marked, replay, and a delivery received before a stop processed after the restart.

use crate::cluster;
use crate::common;
use crate::support;

use std::time::Duration;

use cluster::eventually;
use coffer_sim::{Fault, P100Balance, P100Customer, P100Error, P100Status, Provider, Target};
use serde_json::{Value, json};
use support::{dec, detail_accounts};

const DEADLINE: Duration = Duration::from_secs(30);
const EXT: &str = "gen-000001";

/// Delivers `body` to `/v2/webhooks/{provider}` with `authorization` as sent.
async fn deliver(
    app: &common::TestApp,
    provider: &str,
    authorization: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> common::Resp {
    let mut req = app
        .client
        .post(format!("{}/v2/webhooks/{provider}", app.url))
        .header("content-type", "application/json")
        .body(body);
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.json::<Value>().await.unwrap_or(Value::Null);
    common::Resp {
        status,
        headers,
        body,
    }
}

async fn p100(app: &common::TestApp, body: &Value) -> i64 {
    let r = deliver(
        app,
        common::P100,
        Some(common::WEBHOOK_TOKEN),
        body.to_string(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["id"].as_i64().unwrap()
}

async fn inbox(app: &common::TestApp, query: &str) -> Vec<Value> {
    let b = app.ok(&format!("/v2/webhooks/inbox{query}")).await;
    b["data"].as_array().unwrap().clone()
}

async fn entry(app: &common::TestApp, id: i64) -> Value {
    inbox(app, &format!("?after={}&limit=1", id - 1))
        .await
        .into_iter()
        .find(|e| e["id"] == id)
        .unwrap_or_else(|| panic!("delivery {id} not in the inbox"))
}

/// Polls until delivery `id` is no longer pending; returns it.
async fn settled(app: &common::TestApp, id: i64) -> Value {
    eventually("the delivery processed", DEADLINE, || async {
        entry(app, id).await["state"] != "pending"
    })
    .await;
    entry(app, id).await
}

/// A P100 user with one EUR balance of `amount`.
fn eur_user(amount: &str) -> P100Customer {
    P100Customer {
        user_id: "p100-internal-1".into(),
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

async fn eur_balance(app: &common::TestApp, customer: &str) -> rust_decimal::Decimal {
    let b = app
        .ok(&format!(
            "/v2/accounts/balance?customer_id={customer}&details=true"
        ))
        .await;
    let accounts = detail_accounts(&b);
    assert_eq!(accounts.len(), 1, "{b}");
    dec(&accounts[0]["balance"])
}

both!(
    without_the_token_nothing_is_kept,
    common::Options::default(),
    |app: common::TestApp| async move {
        let body = json!({"externalUserId": EXT, "status": "ACTIVE"}).to_string();
        for auth in [None, Some("wrong"), Some("Bearer wrong"), Some("Bearer ")] {
            let r = deliver(&app, common::P100, auth, body.clone()).await;
            assert_eq!(r.status, 401, "{auth:?}: {}", r.body);
            assert_eq!(r.body["error"], "unauthorized");
        }
        // No inbox for a provider without a webhook token, nor for an unknown id.
        for provider in [common::BANK, "nope"] {
            let r = deliver(&app, provider, Some(common::WEBHOOK_TOKEN), body.clone()).await;
            assert_eq!(r.status, 401, "{provider}: {}", r.body);
        }
        // A Coffer admin key is not a provider's token.
        let r = deliver(
            &app,
            common::P100,
            Some(&format!("Bearer {}", app.admin_key)),
            body.clone(),
        )
        .await;
        assert_eq!(r.status, 401);
        let big = format!(r#"{{"pad": "{}"}}"#, "x".repeat(1 << 20));
        let r = deliver(&app, common::P100, Some(common::WEBHOOK_TOKEN), big).await;
        assert_eq!(r.status, 413, "{}", r.body);
        assert_eq!(r.body["error"], "payload_too_large");
        assert!(inbox(&app, "").await.is_empty(), "nothing kept");
        // The inbox is the admin's.
        let reader = app.reader_key(&[]).await;
        assert_eq!(app.get_as(&reader, "/v2/webhooks/inbox").await.status, 403);
        assert_eq!(
            app.request(reqwest::Method::GET, "/v2/webhooks/inbox", None, None)
                .await
                .status,
            401
        );
        let metrics = app
            .get("/metrics")
            .await
            .body
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("coffer_webhooks_total")
                    && l.contains("outcome=\"unauthorized\"")),
            "{metrics}"
        );
        app.stop().await;
    }
);

both!(
    a_retried_delivery_is_kept_once,
    common::Options::default(),
    |app: common::TestApp| async move {
        let body = json!({"event_type": "card.created", "data": {"cardId": "k1"}}).to_string();
        let first = deliver(
            &app,
            common::P100,
            Some(common::WEBHOOK_TOKEN),
            body.clone(),
        )
        .await;
        assert_eq!(first.status, 200, "{}", first.body);
        assert_eq!(first.body["new"], true);
        let bearer = format!("Bearer {}", common::WEBHOOK_TOKEN);
        let again = deliver(&app, common::P100, Some(&bearer), body.clone()).await;
        assert_eq!(again.status, 200, "{}", again.body);
        assert_eq!(again.body["new"], false);
        assert_eq!(again.body["id"], first.body["id"]);
        let kept = inbox(&app, "").await;
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert_eq!(kept[0]["body"], body.as_str());
        // An event that names no user is kept, marked and counted.
        let e = settled(&app, first.body["id"].as_i64().unwrap()).await;
        assert_eq!(e["state"], "ignored", "{e}");
        assert!(
            e["reason"].as_str().unwrap().contains("names no user"),
            "{e}"
        );
        assert!(e["pair"].is_null());
        app.stop().await;
    }
);

both!(
    unknown_and_malformed_deliveries_are_kept_and_marked,
    common::Options::default(),
    |app: common::TestApp| async move {
        let bad = deliver(&app, common::P100, Some(common::WEBHOOK_TOKEN), "{not json").await;
        assert_eq!(bad.status, 200, "{}", bad.body);
        let unknown = p100(&app, &json!({"hello": "world"})).await;
        let nobody = p100(
            &app,
            &json!({"externalUserId": "nobody", "status": "ACTIVE"}),
        )
        .await;
        let bad = settled(&app, bad.body["id"].as_i64().unwrap()).await;
        assert_eq!(
            (bad["state"].as_str(), bad["reason"].as_str()),
            (Some("ignored"), Some("malformed JSON"))
        );
        assert_eq!(bad["body"], "{not json");
        let unknown = settled(&app, unknown).await;
        assert_eq!(unknown["reason"], "unknown event", "{unknown}");
        let nobody = settled(&app, nobody).await;
        assert_eq!(nobody["state"], "ignored");
        assert_eq!(nobody["reason"], "no link to this user", "{nobody}");
        assert_eq!(nobody["external_id"], "nobody");
        let ignored = inbox(&app, "?state=ignored&provider=p100").await;
        assert_eq!(ignored.len(), 3);
        assert!(inbox(&app, "?provider=bank").await.is_empty());
        assert_eq!(app.get("/v2/webhooks/inbox?state=nope").await.status, 400);
        // Paged by a cursor.
        let page = app.ok("/v2/webhooks/inbox?limit=2").await;
        assert_eq!(page["data"].as_array().unwrap().len(), 2);
        let after = page["next_after"].as_i64().unwrap();
        let rest = inbox(&app, &format!("?after={after}")).await;
        assert_eq!(rest.len(), 1);
        let metrics = app
            .get("/metrics")
            .await
            .body
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("coffer_webhooks_total")
                    && l.contains("provider=\"p100\"")
                    && l.contains("outcome=\"ignored\"")),
            "{metrics}"
        );
        app.stop().await;
    }
);

fn pending_link_opts() -> common::Options {
    common::Options {
        sync: true,
        configure: Box::new(|c| {
            c.sync.idle_poll = Duration::from_millis(20);
            c.sync.interval = Duration::from_secs(3600);
        }),
        ..Default::default()
    }
}

both!(
    an_active_user_status_makes_a_pending_link_synced,
    pending_link_opts(),
    |app: common::TestApp| async move {
        app.sim.set_fault(
            Provider::P100,
            Target::customer(EXT),
            Some(Fault::P100(P100Error::P459)),
        );
        app.customer("w1", Some(EXT), None).await;
        // The sync worker meets an unverified user and leaves it for hours.
        eventually("the unverified user's sync failed", DEADLINE, || async {
            let c = app.ok("/v2/customers/w1").await;
            c["sync"][0]["consecutive_failures"].as_u64() == Some(1)
        })
        .await;
        let c = app.ok("/v2/customers/w1").await;
        assert!(c["sync"][0]["last_success"].is_null(), "{c}");
        app.sim.clear_faults();
        app.sim.put_p100_data(EXT, eur_user("12.50"));
        let id = p100(&app, &json!({"externalUserId": EXT, "status": "ACTIVE"})).await;
        let e = settled(&app, id).await;
        assert_eq!(e["state"], "processed", "{e}");
        assert_eq!(
            e["pair"],
            json!({"customer_id": "w1", "provider": "p100", "external_id": EXT})
        );
        // Syncable at once: the worker syncs it without waiting out its retry.
        eventually("the pair synced", DEADLINE, || async {
            !app.ok("/v2/customers/w1").await["sync"][0]["last_success"].is_null()
        })
        .await;
        let calls = app.sim.calls(Provider::P100, EXT);
        assert_eq!(eur_balance(&app, "w1").await, "12.50".parse().unwrap());
        assert_eq!(
            app.sim.calls(Provider::P100, EXT),
            calls,
            "served from the snapshot"
        );
        app.stop().await;
    }
);

both!(
    an_event_for_a_linked_user_refreshes_its_pair_and_replay_does_it_again,
    common::Options::default(),
    |app: common::TestApp| async move {
        app.sim.put_p100_data(EXT, eur_user("1.00"));
        app.customer("w2", Some(EXT), None).await;
        assert_eq!(eur_balance(&app, "w2").await, "1.00".parse().unwrap());
        // The balance changes at P100; a deposit event names the user.
        app.sim.put_p100_data(EXT, eur_user("2.00"));
        assert_eq!(
            eur_balance(&app, "w2").await,
            "1.00".parse().unwrap(),
            "cached until told"
        );
        let event = json!({"event_type": "crypto_deposit.status_changed",
            "data": {"externalUserId": EXT, "cryptoDepositId": "d1", "status": "DONE",
                     "amount": "999", "currency": "btc"}});
        let id = p100(&app, &event).await;
        let e = settled(&app, id).await;
        assert_eq!(e["state"], "processed", "{e}");
        assert_eq!(e["pair"]["customer_id"], "w2");
        // Without max_age: the refreshed snapshot, not the payload's amount.
        assert_eq!(eur_balance(&app, "w2").await, "2.00".parse().unwrap());

        app.sim.put_p100_data(EXT, eur_user("3.00"));
        let calls = app.sim.calls(Provider::P100, EXT);
        let r = app
            .post(&format!("/v2/webhooks/inbox/{id}/replay"), json!({}))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        eventually("the replay processed", DEADLINE, || async {
            let e = entry(&app, id).await;
            e["state"] == "processed" && e["attempts"] == 2
        })
        .await;
        assert_eq!(app.sim.calls(Provider::P100, EXT), calls + 1);
        assert_eq!(eur_balance(&app, "w2").await, "3.00".parse().unwrap());
        assert_eq!(
            app.post("/v2/webhooks/inbox/999999/replay", json!({}))
                .await
                .status,
            404
        );
        app.stop().await;
    }
);

both!(
    a_failed_refresh_is_marked_and_left_to_polling_at_once,
    pending_link_opts(),
    |app: common::TestApp| async move {
        app.sim.put_p100_data(EXT, eur_user("1.00"));
        app.customer("w4", Some(EXT), None).await;
        eventually("the first sync", DEADLINE, || async {
            !app.ok("/v2/customers/w4").await["sync"][0]["last_success"].is_null()
        })
        .await;
        let first = app.ok("/v2/customers/w4").await["sync"][0]["last_success"].clone();
        // The refresh meets one error; the next call answers the new balance.
        app.sim.put_p100_data(EXT, eur_user("0.09872368"));
        app.sim.set_fault_times(
            Provider::P100,
            Target::customer(EXT),
            Fault::P100(P100Error::P412),
            1,
        );
        let event = json!({"event_type": "crypto_withdrawal.status_changed",
            "data": {"externalUserId": EXT, "cryptoWithdrawalId": "w1", "status": "DONE"}});
        let id = p100(&app, &event).await;
        let e = settled(&app, id).await;
        assert_eq!(e["state"], "failed", "{e}");
        assert!(
            e["reason"]
                .as_str()
                .unwrap()
                .starts_with("refresh failed: "),
            "{e}"
        );
        // Not due for an hour after its sync, yet polled at once.
        eventually("the pair synced again", DEADLINE, || async {
            app.ok("/v2/customers/w4").await["sync"][0]["last_success"] != first
        })
        .await;
        assert_eq!(eur_balance(&app, "w4").await, "0.09872368".parse().unwrap());
        app.stop().await;
    }
);

mod restart {
    use super::*;

    /// A delivery kept by a replica that does not process, stopped; the next start processes it.
    async fn survives(backend: common::Backend) {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (url, _db) = match backend {
            common::Backend::Sqlite => {
                let file = std::env::temp_dir().join(format!(
                    "coffer-webhooks-{}.db",
                    uuid::Uuid::new_v4().simple()
                ));
                (format!("sqlite://{}", file.display()), None)
            }
            common::Backend::Postgres => match common::database(backend).await {
                Some((url, db)) => (url, db),
                None => return,
            },
        };
        let sim = coffer_sim::start(coffer_sim::SimConfig {
            customers: 5,
            ..Default::default()
        })
        .await
        .unwrap();
        sim.put_p100_data(EXT, eur_user("5.00"));
        let first =
            common::start_app(&sim, &url, false, Box::new(|c| c.webhooks.process = false)).await;
        let mut app = common::TestApp {
            url: first.url(),
            admin_key: common::ADMIN_KEY.to_owned(),
            sim,
            running: Some(first),
            client: reqwest::Client::new(),
            database_url: url.clone(),
            db: None,
        };
        app.wait_healthy().await;
        app.customer("w3", Some(EXT), None).await;
        let id = p100(&app, &json!({"externalUserId": EXT, "status": "ACTIVE"})).await;
        assert_eq!(entry(&app, id).await["state"], "pending");
        assert_eq!(app.sim.calls(Provider::P100, EXT), 0);
        app.running.take().unwrap().stop().await;

        let second = common::start_app(&app.sim, &url, false, Box::new(|_| {})).await;
        app.url = second.url();
        app.running = Some(second);
        app.wait_healthy().await;
        let e = settled(&app, id).await;
        assert_eq!(e["state"], "processed", "{e}");
        assert_eq!(app.sim.calls(Provider::P100, EXT), 1);
        assert_eq!(eur_balance(&app, "w3").await, "5.00".parse().unwrap());
        app.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        survives(common::Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        survives(common::Backend::Postgres).await;
    }
}
