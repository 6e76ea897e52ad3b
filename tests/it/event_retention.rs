//! `events.retention` and `webhooks.retention` end to end, on SQLite and PostgreSQL: the
//! retention task prunes events older than the horizon (what a pending delivery needs is kept:
//! the store conformance case `event_retention_keeps_what_deliveries_need`), and webhook
//! deliveries processed before theirs, keeping a failed one until it is processed (the
//! conformance case `webhook_retention_keeps_what_is_unfinished`).

use crate::cluster;
use crate::common;

use std::time::Duration;

use cluster::eventually;
use coffer_server::config::Config;
use coffer_sim::{Fault, P100Error, Provider, Target};
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(30);

fn prune_fast(c: &mut Config) {
    c.events.retention = Some(Duration::from_millis(1));
    c.history.prune_interval = Some(Duration::from_millis(50));
}

both!(
    old_events_are_pruned,
    common::Options {
        configure: Box::new(prune_fast),
        ..Default::default()
    },
    |app: common::TestApp| async move {
        app.customer("a", Some(&coffer_sim::generate::customer_id(0)), None)
            .await;
        let r = app.post("/v2/customers/a/refresh", json!({})).await;
        assert_eq!(r.status, 200, "{}", r.body);
        // Written at the refresh; the next round finds them past the 1 ms horizon.
        eventually("the events pruned", DEADLINE, || async {
            app.ok("/v2/events").await["data"]
                .as_array()
                .unwrap()
                .is_empty()
        })
        .await;
        // What the refresh wrote is still there: only the outbox was pruned.
        let b = app.ok("/v2/accounts/balance?customer_id=a").await;
        assert!(b["accounts_count"].as_u64().unwrap() > 0, "{b}");
        app.stop().await;
    }
);

fn prune_webhooks_fast(c: &mut Config) {
    c.webhooks.retention = Duration::from_millis(1);
    c.history.prune_interval = Some(Duration::from_millis(50));
}

async fn inbox(app: &common::TestApp) -> Vec<Value> {
    app.ok("/v2/webhooks/inbox").await["data"]
        .as_array()
        .unwrap()
        .clone()
}

async fn deliver(app: &common::TestApp, body: &Value) -> i64 {
    let r = app
        .client
        .post(format!("{}/v2/webhooks/{}", app.url, common::P100))
        .header("authorization", common::WEBHOOK_TOKEN)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

both!(
    processed_webhooks_are_pruned_failed_ones_kept,
    common::Options {
        configure: Box::new(prune_webhooks_fast),
        ..Default::default()
    },
    |app: common::TestApp| async move {
        let ext = coffer_sim::generate::customer_id(1);
        app.customer("w", Some(&ext), None).await;
        // The user's refresh fails: that delivery is `failed`; the other names no user.
        app.sim.set_fault(
            Provider::P100,
            Target::customer(&ext),
            Some(Fault::P100(P100Error::P459)),
        );
        let failed = deliver(
            &app,
            &json!({"event_type": "crypto_deposit.status_changed",
                    "data": {"externalUserId": ext, "amount": "1"}}),
        )
        .await;
        let ignored = deliver(&app, &json!({"event_type": "card.created"})).await;
        eventually("the ignored delivery pruned", DEADLINE, || async {
            let kept = inbox(&app).await;
            kept.len() == 1 && kept[0]["id"] == failed && kept[0]["state"] == "failed"
        })
        .await;
        assert!(inbox(&app).await.iter().all(|e| e["id"] != ignored));
        // Replayed and processed, it goes too.
        app.sim.clear_faults();
        let r = app
            .post(&format!("/v2/webhooks/inbox/{failed}/replay"), json!({}))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        eventually(
            "the replayed delivery processed and pruned",
            DEADLINE,
            || async { inbox(&app).await.is_empty() },
        )
        .await;
        // What it refreshed stays: only the inbox was pruned.
        let b = app.ok("/v2/accounts/balance?customer_id=w").await;
        assert!(b["accounts_count"].as_u64().unwrap() > 0, "{b}");
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
                .any(|l| l.starts_with("coffer_webhooks_pruned_total ") && !l.ends_with(" 0")),
            "{metrics}"
        );
        app.stop().await;
    }
);
