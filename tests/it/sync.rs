//! Background sync inside `coffer serve`, on SQLite and PostgreSQL: every linked pair is
//! fetched without any request, a pair the provider does not know is not asked again every
//! cycle and says why through `GET /v2/customers/{id}`, sync and requests share one loader
//! (their fetches of one pair coalesce), and the sync metrics are exported.

use crate::cluster;
use crate::common;

use std::sync::Arc;
use std::time::Duration;

use cluster::eventually;
use coffer_server::fresh::Need;
use coffer_sim::Provider;

const CUSTOMERS: usize = 4;
const INTERVAL: Duration = Duration::from_secs(1);
const DEADLINE: Duration = Duration::from_secs(30);

fn ext(i: usize) -> String {
    coffer_sim::generate::customer_id(i)
}

fn sync_opts() -> common::Options {
    common::Options {
        sim: coffer_sim::SimConfig {
            customers: CUSTOMERS,
            ..Default::default()
        },
        sync: true,
        configure: Box::new(|c| {
            c.sync.interval = INTERVAL;
            c.sync.idle_poll = Duration::from_millis(20);
            c.sync.lease = Duration::from_secs(2);
            // Asked again after an hour: never within this test.
            c.sync.unknown_customer_retry = Duration::from_secs(3600);
        }),
    }
}

fn calls(app: &common::TestApp, provider: Provider, ext: &str) -> u64 {
    app.sim.calls(provider, ext)
}

both!(
    every_pair_is_synced_without_requests,
    sync_opts(),
    |app: common::TestApp| async move {
        for i in 0..CUSTOMERS {
            app.customer(&format!("c{i}"), Some(&ext(i)), Some(&ext(i)))
                .await;
        }
        // Linked to an external id the simulator does not know: P412.
        app.customer("ghost", Some("nobody-at-p100"), None).await;

        // Every pair is fetched by the worker alone: no request for these customers is made.
        eventually(
            "every linked pair fetched by the sync worker",
            DEADLINE,
            || async {
                (0..CUSTOMERS).all(|i| {
                    calls(&app, Provider::P100, &ext(i)) >= 1
                        && calls(&app, Provider::Corebanq, &ext(i)) >= 1
                })
            },
        )
        .await;
        eventually("the unknown pair tried once", DEADLINE, || async {
            calls(&app, Provider::P100, "nobody-at-p100") >= 1
        })
        .await;

        // Several intervals pass (pairs refreshed 3 more times each), and the unknown customer is
        // still at one call: it is retried after `unknown_customer_retry`, not every cycle.
        let base = calls(&app, Provider::P100, &ext(0));
        eventually("three more cycles of c0's P100 pair", DEADLINE, || async {
            calls(&app, Provider::P100, &ext(0)) >= base + 3
        })
        .await;
        assert_eq!(
            calls(&app, Provider::P100, "nobody-at-p100"),
            1,
            "the unknown customer was asked again within a few intervals"
        );

        // Its sync state says why.
        let ghost = app.ok("/v2/customers/ghost").await;
        let sync = ghost["sync"]
            .as_array()
            .unwrap_or_else(|| panic!("no sync state: {ghost}"));
        assert_eq!(sync.len(), 1, "{ghost}");
        assert_eq!(sync[0]["provider"], common::P100, "{ghost}");
        assert_eq!(sync[0]["last_error_kind"], "unknown_customer", "{ghost}");
        assert!(sync[0]["last_success"].is_null(), "{ghost}");
        assert!(
            sync[0]["consecutive_failures"].as_u64().unwrap() >= 1,
            "{ghost}"
        );
        let next_due = cluster::ts(&sync[0]["next_due"]);
        assert!(
            next_due.timestamp() - sqlx::types::chrono::Utc::now().timestamp() > 1800,
            "retried too soon: {ghost}"
        );

        // A known customer: both providers synced successfully, no error.
        let c0 = app.ok("/v2/customers/c0").await;
        let sync = c0["sync"].as_array().unwrap();
        assert_eq!(sync.len(), 2, "{c0}");
        for s in sync {
            assert!(s["last_success"].is_string(), "{c0}");
            assert!(s["last_error_kind"].is_null(), "{c0}");
            assert_eq!(s["consecutive_failures"], 0, "{c0}");
        }

        // Metrics: sync runs by outcome and the lag gauge.
        let metrics = eventually_metrics(&app).await;
        assert!(metrics.contains("coffer_sync_runs_total{"), "{metrics}");
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("coffer_sync_runs_total{")
                    && l.contains("outcome=\"unknown_customer\"")),
            "no unknown_customer sync outcome in:\n{metrics}"
        );
        app.stop().await;
    }
);

/// `/metrics` once the sync-lag gauge is in it.
async fn eventually_metrics(app: &common::TestApp) -> String {
    let start = std::time::Instant::now();
    loop {
        let r = app
            .client
            .get(format!("{}/metrics", app.url))
            .send()
            .await
            .unwrap();
        let text = r.text().await.unwrap();
        if text
            .lines()
            .any(|l| l.starts_with("coffer_sync_lag_seconds"))
        {
            return text;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "no coffer_sync_lag_seconds in /metrics:\n{text}"
        );
        tokio::time::sleep(cluster::POLL).await;
    }
}

fn quiet_opts() -> common::Options {
    common::Options {
        sim: coffer_sim::SimConfig {
            customers: CUSTOMERS,
            ..Default::default()
        },
        sync: false,
        configure: Box::new(|_| {}),
    }
}

// The sync worker's fetch of a pair and a request's fetch of the same pair, in flight at the
// same time, make one provider call: they go through one loader.
both!(
    sync_and_request_coalesce,
    quiet_opts(),
    |app: common::TestApp| async move {
        app.customer("co", Some(&ext(2)), None).await;
        app.sim
            .set_latency(Provider::P100, Duration::from_millis(1500));
        let fresh = Arc::clone(&app.running.as_ref().unwrap().state.fresh);
        let before = calls(&app, Provider::P100, &ext(2));
        let sync = {
            let fresh = Arc::clone(&fresh);
            tokio::spawn(async move {
                fresh
                    .fetch_snapshot("co", common::P100, &ext(2), None)
                    .await
            })
        };
        // The request starts once the sync's call is at the simulator (in flight for 1.5 s).
        eventually(
            "the sync's call reached the simulator",
            DEADLINE,
            || async { calls(&app, Provider::P100, &ext(2)) > before },
        )
        .await;
        // An ordinary request (no `max_age`, no refresh): data from a call already in flight
        // is what it needs. (A refresh would not join it: `tests/coalescing.rs`.)
        let view = fresh.customer("co", Need::default()).await.unwrap();
        let (accounts, _) = sync.await.unwrap().expect("the sync's fetch failed");
        assert!(!accounts.is_empty());
        assert!(!view.has_failures());
        assert_eq!(
            calls(&app, Provider::P100, &ext(2)) - before,
            1,
            "a request and a sync of the same pair made separate provider calls"
        );
        app.sim.set_latency(Provider::P100, Duration::ZERO);
        app.stop().await;
    }
);
