//! `events.retention` end to end, on SQLite and PostgreSQL: the retention task prunes events
//! older than the horizon (what a pending delivery needs is kept: the store conformance case
//! `event_retention_keeps_what_deliveries_need`).

use crate::cluster;
use crate::common;

use std::time::Duration;

use cluster::eventually;
use coffer_server::config::Config;
use serde_json::json;

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
