//! The simulator delivers P100 webhooks to the real server, on SQLite and PostgreSQL: with the
//! token they are kept (a duplicate or a burst of one delivery kept once) and act; with a wrong
//! token each attempt is refused and retried on the schedule, and nothing is kept.

use crate::cluster;
use crate::common;

use std::time::Duration;

use cluster::eventually;
use coffer_sim::webhook::{self, WebhookFault, WebhookTarget};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(30);
const EXT: &str = "gen-000002";

fn target(app: &common::TestApp) -> WebhookTarget {
    WebhookTarget {
        url: format!("{}/v2/webhooks/{}", app.url, common::P100),
        token: common::WEBHOOK_TOKEN.to_owned(),
        // P100 waits 8, 16, 32, 64 s; the same shape, in milliseconds.
        retries: vec![
            Duration::from_millis(5),
            Duration::from_millis(10),
            Duration::from_millis(20),
        ],
    }
}

async fn inbox(app: &common::TestApp) -> Vec<Value> {
    app.ok("/v2/webhooks/inbox").await["data"]
        .as_array()
        .unwrap()
        .clone()
}

both!(
    the_simulator_delivers_p100_webhooks,
    common::Options::default(),
    |app: common::TestApp| async move {
        let t = target(&app);
        let refused = webhook::send(
            &t,
            &webhook::user_status(EXT, "ACTIVE"),
            WebhookFault::WrongToken,
        )
        .await;
        assert_eq!(refused.len(), 1);
        assert_eq!(
            refused[0].attempts,
            vec![Some(401); 4],
            "the first attempt and 3 retries"
        );
        assert!(inbox(&app).await.is_empty());

        app.customer("s1", Some(EXT), None).await;
        let twice = webhook::send(
            &t,
            &webhook::crypto_deposit(EXT, "0.05"),
            WebhookFault::Duplicate,
        )
        .await;
        assert_eq!(twice.len(), 2);
        assert!(
            twice.iter().all(|d| d.attempts == vec![Some(200)]),
            "{twice:?}"
        );
        let burst = webhook::send(
            &t,
            &webhook::user_status(EXT, "ACTIVE"),
            WebhookFault::Burst(8),
        )
        .await;
        assert!(burst.iter().all(webhook::Delivery::delivered), "{burst:?}");
        let kept = inbox(&app).await;
        assert_eq!(kept.len(), 2, "one row per distinct delivery: {kept:?}");
        eventually("both deliveries processed", DEADLINE, || async {
            inbox(&app).await.iter().all(|e| e["state"] == "processed")
        })
        .await;
        assert!(
            inbox(&app)
                .await
                .iter()
                .all(|e| e["pair"]["customer_id"] == "s1")
        );
        app.stop().await;
    }
);
