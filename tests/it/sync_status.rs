//! `GET /v2/sync/status` against the real server with the sync worker running, on SQLite and
//! PostgreSQL: pairs per provider by state, their lag, the breaker and quota, the last webhook,
//! the failing pairs with their error kind; admins only; the answer matches the document.

use crate::cluster;
use crate::common;

use std::time::Duration;

use cluster::eventually;
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(30);

fn opts() -> common::Options {
    common::Options {
        sim: coffer_sim::SimConfig {
            customers: 3,
            ..Default::default()
        },
        sync: true,
        configure: Box::new(|c| {
            c.sync.interval = Duration::from_secs(3600);
            c.sync.idle_poll = Duration::from_millis(20);
            c.sync.unknown_customer_retry = Duration::from_secs(3600);
            // P100's quota is shared; Corebanq's is unlimited.
            c.providers[0].rate_limit = 50;
        }),
    }
}

fn provider<'a>(status: &'a Value, id: &str) -> &'a Value {
    status["providers"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["provider"] == id))
        .unwrap_or_else(|| panic!("no provider {id} in {status}"))
}

/// The document's schema for the 200 answer validates `body`, and rejects it without `field`.
async fn matches_document(app: &common::TestApp, body: &Value) {
    let doc = app
        .request(reqwest::Method::GET, "/openapi.json", None, None)
        .await
        .body;
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "allOf": [doc["paths"]["/v2/sync/status"]["get"]["responses"]["200"]["content"]
            ["application/json"]["schema"]],
        "components": doc["components"],
    });
    let v = jsonschema::draft202012::new(&schema).unwrap();
    let errors: Vec<String> = v
        .iter_errors(body)
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{errors:?}\n{body}");
    let mut broken = body.clone();
    broken["failing"][0]
        .as_object_mut()
        .unwrap()
        .remove("failures");
    assert!(!v.is_valid(&broken), "the schema checks the failing pairs");
}

both!(
    status_shows_pairs_lag_quota_webhooks_and_failing,
    opts(),
    |app: common::TestApp| async move {
        for i in 0..3 {
            let ext = coffer_sim::generate::customer_id(i);
            app.customer(&format!("c{i}"), Some(&ext), Some(&ext)).await;
        }
        // Linked to a user P100 does not know: its pair fails (P412) and keeps failing.
        app.customer("ghost", Some("nobody-at-p100"), None).await;
        let status = || async { app.ok("/v2/sync/status").await };
        eventually(
            "every pair synced once, the ghost failing",
            DEADLINE,
            || async {
                let s = status().await;
                let (p, b) = (provider(&s, "p100"), provider(&s, "bank"));
                p["pairs"]["failing"] == 1
                    && p["pairs"]["never_observed"] == 1
                    && b["pairs"]["never_observed"] == 0
                    && p["pairs"]["leased"] == 0
                    && b["pairs"]["leased"] == 0
            },
        )
        .await;
        let r = app
            .client
            .post(format!("{}/v2/webhooks/{}", app.url, common::P100))
            .header("authorization", common::WEBHOOK_TOKEN)
            .body(json!({"externalUserId": "gen-000001", "status": "ACTIVE"}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        // Processing the delivery makes c1's P100 pair due at once, and the worker syncs it
        // again: the counts below are read once that is over, not in between.
        eventually(
            "the webhook processed and its pair synced again",
            DEADLINE,
            || async {
                let inbox = app.ok("/v2/webhooks/inbox").await;
                let processed = inbox["data"]
                    .as_array()
                    .is_some_and(|d| !d.is_empty() && d.iter().all(|e| e["state"] == "processed"));
                let s = status().await;
                let p = provider(&s, "p100");
                processed && p["pairs"]["due"] == 0 && p["pairs"]["leased"] == 0
            },
        )
        .await;

        let s = status().await;
        let (p, b) = (provider(&s, "p100"), provider(&s, "bank"));
        assert_eq!(p["kind"], "p100");
        assert_eq!(p["breaker"], "closed");
        assert_eq!(p["pairs"]["total"], 4, "{s}");
        assert_eq!(p["pairs"]["due"], 0, "synced for an hour: {s}");
        assert_eq!(
            b["pairs"],
            json!({"total": 3, "due": 0, "leased": 0, "failing": 0, "never_observed": 0})
        );
        // One replica takes the whole quota; at most one call's worth waits in its bucket.
        assert_eq!(p["quota"]["rate_limit"], 50);
        assert_eq!(p["quota"]["share_per_second"], "50");
        assert!(p["quota"]["available"].is_string(), "{s}");
        assert_eq!(
            b["quota"],
            json!({"rate_limit": 0, "share_per_second": null, "available": null, "ready_in_ms": 0})
        );
        let lag = &p["lag"];
        assert!(lag["p50_seconds"].as_i64().unwrap() <= lag["max_seconds"].as_i64().unwrap());
        assert!(
            lag["max_seconds"].as_i64().unwrap() < 60,
            "just synced: {s}"
        );
        assert!(p["last_webhook_at"].is_string(), "{s}");
        assert_eq!(b["last_webhook_at"], Value::Null);

        let failing = s["failing"].as_array().unwrap();
        assert_eq!(failing.len(), 1, "{s}");
        assert_eq!(failing[0]["customer_id"], "ghost");
        assert_eq!(failing[0]["provider"], "p100");
        assert_eq!(failing[0]["last_error_kind"], "unknown_customer");
        assert_eq!(failing[0]["last_success"], Value::Null);
        matches_document(&app, &s).await;

        // Readers see their customers' data, not the operators' view.
        let reader = app.reader_key(&["c0"]).await;
        let r = app.get_as(&reader, "/v2/sync/status").await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert_eq!(r.body["error"], "forbidden", "{}", r.body);
        app.stop().await;
    }
);
