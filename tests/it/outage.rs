//! PostgreSQL "restarted" during sync and during requests (issue 6, Faults). The shared server
//! is never touched: the app talks to it through a TCP proxy that drops every connection and
//! refuses new ones, then accepts again.
//! - While it is down, a customer seen before answers 200 from memory, `stale: true` with a
//!   `store_unavailable` warning (never 500, never hanging), and `/readyz` is 503.
//! - When it is back, `/readyz` is 200 again, requests are fresh again and the sync worker
//!   resumes by itself (new snapshots land in the store).
//! - No snapshot is half-written: every open account of a (customer, provider) carries the
//!   `fetched_at` of that pair's snapshot.

use crate::cluster;
use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cluster::{PgProxy, Replica, eventually};
use coffer_sim::{Provider, SimConfig};
use serde_json::Value;
use sqlx::types::chrono::{DateTime, Utc};
use sqlx::{Connection, PgConnection};

const CUSTOMERS: usize = 6;
const DEADLINE: Duration = Duration::from_secs(60);
/// Longest a request may take while the database is down (it fails fast, then answers from
/// memory).
const FAIL_FAST: Duration = Duration::from_secs(10);

fn ext(i: usize) -> String {
    coffer_sim::generate::customer_id(i)
}

fn has_warning(b: &Value, code: &str) -> bool {
    b["warnings"]
        .as_array()
        .is_some_and(|w| w.iter().any(|w| w["code"] == code))
}

/// (customer, provider, account's `fetched_at`, its snapshot's `fetched_at`).
type AccountVsSnapshot = (String, String, DateTime<Utc>, Option<DateTime<Utc>>);

/// What one request of the background load saw.
#[derive(Debug)]
struct Seen {
    status: u16,
    stale: bool,
    store_unavailable: bool,
    took: Duration,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_during_sync_and_requests() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some((direct_url, _db)) = common::database(common::Backend::Postgres).await else {
        return;
    };
    let (proxy, proxied_url) = PgProxy::start(&direct_url).await;
    let sim = coffer_sim::start(SimConfig {
        customers: CUSTOMERS,
        ..Default::default()
    })
    .await
    .unwrap();
    // Provider calls take a moment, so fetches and snapshot writes are in flight at the cut.
    sim.set_latency(Provider::P100, Duration::from_millis(100));
    sim.set_latency(Provider::Corebanq, Duration::from_millis(100));
    let app = Arc::new(
        Replica::start(&sim, &proxied_url, true, |c| {
            c.sync.interval = Duration::from_secs(1);
            c.sync.idle_poll = Duration::from_millis(20);
            c.sync.lease = Duration::from_secs(2);
            c.cache.ttl = Duration::from_millis(300);
        })
        .await,
    );
    for i in 0..CUSTOMERS {
        app.customer(&format!("c{i}"), Some(&ext(i)), Some(&ext(i)))
            .await;
    }
    let store = Arc::clone(&app.running.as_ref().unwrap().state.store);
    eventually("every pair synced once", DEADLINE, || async {
        for i in 0..CUSTOMERS {
            let s = store.sync_states(&format!("c{i}")).await.unwrap();
            if s.len() != 2 || s.iter().any(|s| s.last_success.is_none()) {
                return false;
            }
        }
        true
    })
    .await;
    // Every customer is in memory.
    for i in 0..CUSTOMERS {
        let b = app
            .ok(&format!("/v2/accounts/balance?customer_id=c{i}"))
            .await;
        assert_eq!(b["stale"], false, "{b}");
    }

    // Requests all along: each asks for data no older than now (max_age=0), so each goes to
    // the store and the providers, and writes snapshots while the cut happens.
    let stop = Arc::new(AtomicBool::new(false));
    let flagged = Arc::new(AtomicUsize::new(0));
    let load = {
        let app = Arc::clone(&app);
        let stop = Arc::clone(&stop);
        let flagged = Arc::clone(&flagged);
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let (status, b) = app
                    .get(&format!(
                        "/v2/accounts/balance?customer_id=c{}&max_age=0",
                        i % CUSTOMERS
                    ))
                    .await;
                let store_unavailable = has_warning(&b, "store_unavailable");
                if store_unavailable {
                    flagged.fetch_add(1, Ordering::Relaxed);
                }
                seen.push(Seen {
                    status,
                    stale: b["stale"] == true,
                    store_unavailable,
                    took: t.elapsed(),
                });
                i += 1;
            }
            seen
        })
    };

    // PostgreSQL goes away.
    proxy.down().await;
    let down_at = Instant::now();

    // A customer seen before: answered from memory, flagged, quickly.
    for i in 0..CUSTOMERS {
        let t = Instant::now();
        let (status, b) = app
            .get(&format!("/v2/accounts/balance?customer_id=c{i}&max_age=0"))
            .await;
        assert_eq!(status, 200, "c{i} while the store is down: {b}");
        assert_eq!(b["stale"], true, "{b}");
        assert!(has_warning(&b, "store_unavailable"), "{b}");
        assert!(t.elapsed() < FAIL_FAST, "took {:?}", t.elapsed());
        let (status, b) = app.get(&format!("/v2/accounts?customer_id=c{i}")).await;
        assert_eq!(status, 200, "list of c{i} while the store is down: {b}");
        assert_eq!(b["stale"], true, "{b}");
    }
    let t = Instant::now();
    let (status, b) = app.get("/readyz").await;
    assert_eq!(status, 503, "{b}");
    assert!(t.elapsed() < FAIL_FAST, "/readyz took {:?}", t.elapsed());
    // The outage lasts while the sync worker runs a few cycles against the dead store and the
    // background requests are answered from memory a few times.
    eventually(
        "background requests answered from memory",
        DEADLINE,
        || async {
            flagged.load(Ordering::Relaxed) >= 3 && down_at.elapsed() >= Duration::from_secs(3)
        },
    )
    .await;

    // PostgreSQL is back.
    proxy.up().await;
    let up_at = Utc::now();
    eventually("/readyz is 200 again", DEADLINE, || async {
        app.get("/readyz").await.0 == 200
    })
    .await;
    eventually("requests are fresh again", DEADLINE, || async {
        let (status, b) = app
            .get("/v2/accounts/balance?customer_id=c0&max_age=0")
            .await;
        status == 200 && b["stale"] == false && !has_warning(&b, "store_unavailable")
    })
    .await;
    // The sync worker resumed by itself: every pair succeeded again since the store is back.
    eventually(
        "every pair synced again after the outage",
        DEADLINE,
        || async {
            for i in 0..CUSTOMERS {
                let Ok(s) = store.sync_states(&format!("c{i}")).await else {
                    return false;
                };
                if s.len() != 2 || s.iter().any(|s| s.last_success.is_none_or(|t| t <= up_at)) {
                    return false;
                }
            }
            true
        },
    )
    .await;

    stop.store(true, Ordering::Relaxed);
    let seen = load.await.unwrap();
    let during: Vec<&Seen> = seen.iter().filter(|s| s.store_unavailable).collect();
    assert!(
        !during.is_empty(),
        "the background requests never saw the outage: {seen:?}"
    );
    for s in &seen {
        assert_eq!(s.status, 200, "a request during the restart: {s:?}");
        assert!(s.took < FAIL_FAST, "a request hung: {s:?}");
        if s.store_unavailable {
            assert!(s.stale, "{s:?}");
        }
    }

    // Nothing half-written: straight from the database, every pair with open accounts has a
    // snapshot and the observation of that snapshot (written in its transaction), and every
    // open account row was written by that fetch or an earlier one of its pair (an unchanged
    // account's row is not rewritten: it was last seen at the snapshot), at an observation.
    let mut db = PgConnection::connect(&direct_url).await.unwrap();
    let rows: Vec<AccountVsSnapshot> = sqlx::query_as(
        "SELECT a.customer_id, a.provider_id, a.fetched_at, s.fetched_at
         FROM accounts a LEFT JOIN snapshots s
           ON s.customer_id = a.customer_id AND s.provider_id = a.provider_id
         WHERE NOT a.closed",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert!(!rows.is_empty());
    for (customer, provider, account_at, snapshot_at) in &rows {
        assert!(
            snapshot_at.is_some_and(|s| *account_at <= s),
            "{customer}/{provider}: an account from another fetch than the snapshot \
             ({account_at}, snapshot {snapshot_at:?})"
        );
    }
    let unobserved: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM accounts a
         WHERE NOT a.closed AND (NOT EXISTS (
             SELECT 1 FROM observations o JOIN snapshots s
               ON s.customer_id = o.customer_id AND s.provider_id = o.provider_id
             WHERE o.customer_id = a.customer_id AND o.provider_id = a.provider_id
               AND o.fetched_at = a.fetched_at)
            OR NOT EXISTS (
             SELECT 1 FROM observations o JOIN snapshots s
               ON s.customer_id = o.customer_id AND s.provider_id = o.provider_id
                  AND s.fetched_at = o.fetched_at
             WHERE o.customer_id = a.customer_id AND o.provider_id = a.provider_id))",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(
        unobserved, 0,
        "an account or snapshot without its observation"
    );
    let _ = db.close().await;
    // The same through the API: each account's as_of is its provider's as_of.
    for i in 0..CUSTOMERS {
        let b = app
            .ok(&format!("/v2/accounts?customer_id=c{i}&limit=1000"))
            .await;
        for a in b["data"].as_array().unwrap() {
            let provider = a["provider"].as_str().unwrap();
            assert_eq!(
                cluster::ts(&a["as_of"]),
                cluster::ts(&b["as_of"][provider]),
                "c{i}: {a} vs {}",
                b["as_of"]
            );
        }
    }

    match Arc::try_unwrap(app) {
        Ok(app) => app.stop().await,
        Err(_) => panic!("the app is still shared"),
    }
    sim.shutdown().await;
}
