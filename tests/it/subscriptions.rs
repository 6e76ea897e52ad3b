//! Subscriptions end to end, on SQLite and PostgreSQL: events POSTed to a receiver, signed per
//! Standard Webhooks, retried after a failure, logged; a dead receiver's subscription disabled;
//! admin only; on PostgreSQL two delivering replicas never send the same event twice.

use crate::cluster;
use crate::common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use cluster::{Replica, eventually};
use coffer_server::config::Config;
use coffer_server::subscriptions::sign;
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(30);
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn ext(i: usize) -> String {
    coffer_sim::generate::customer_id(i)
}

/// One request the receiver got, and what it answered.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
    answered: u16,
}

/// A webhook receiver on loopback that fails its first `fail_first` requests with 500.
#[derive(Clone)]
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(fail_first: u32) -> Receiver {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let failures = Arc::new(AtomicU32::new(fail_first));
        let record = Arc::clone(&got);
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let record = Arc::clone(&record);
                let failures = Arc::clone(&failures);
                async move {
                    // Decided and recorded under one lock, so the record's order is the order
                    // of the answers: concurrent deliveries cannot list a later one first.
                    let mut record = record.lock().unwrap();
                    let fail = failures
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    let status = if fail {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    };
                    let h = |n: &str| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    record.push(Received {
                        id: h("webhook-id"),
                        timestamp: h("webhook-timestamp"),
                        signature: h("webhook-signature"),
                        body,
                        answered: status.as_u16(),
                    });
                    status
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, got }
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    fn delivered(&self) -> Vec<Received> {
        self.got()
            .into_iter()
            .filter(|r| r.answered == 200)
            .collect()
    }
}

fn fast(c: &mut Config) {
    c.subscriptions.poll_interval = Duration::from_millis(20);
    c.subscriptions.retry_base = Duration::from_millis(20);
}

fn opts(configure: fn(&mut Config)) -> common::Options {
    common::Options {
        configure: Box::new(configure),
        ..Default::default()
    }
}

async fn refresh(app: &common::TestApp, c: &str) {
    let r = app
        .post(&format!("/v2/customers/{c}/refresh"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// The signature a receiver checks, per the specification.
fn verify(r: &Received) {
    let key = sign::secret_key(SECRET).unwrap();
    let ts: i64 = r.timestamp.parse().unwrap();
    assert!((sqlx::types::chrono::Utc::now().timestamp() - ts).abs() < 300);
    assert_eq!(
        r.signature,
        sign::signature(&key, &r.id, ts, r.body.as_bytes()),
        "{r:?}"
    );
}

both!(
    events_are_delivered_signed_retried_and_logged,
    opts(fast),
    |app: common::TestApp| async move {
        let receiver = Receiver::start(1).await;
        // Admin only, and bad bodies named.
        let reader = app.reader_key(&["a"]).await;
        let r = app
            .request(
                reqwest::Method::POST,
                "/v2/subscriptions",
                Some(&reader),
                Some(json!({"url": receiver.url})),
            )
            .await;
        assert_eq!(r.status, 403, "{}", r.body);
        for (body, param) in [
            (json!({"url": "ftp://x/y"}), "url"),
            (json!({"url": "not a url"}), "url"),
            (json!({"url": receiver.url, "types": ["nope"]}), "types"),
            (
                json!({"url": receiver.url, "secret": "whsec_c2hvcnQ="}),
                "secret",
            ),
        ] {
            let r = app.post("/v2/subscriptions", body.clone()).await;
            assert_eq!(r.status, 400, "{body}: {}", r.body);
            assert_eq!(r.body["details"]["parameter"], param, "{}", r.body);
        }
        let r = app
            .post(
                "/v2/subscriptions",
                json!({"url": receiver.url, "customer_id": "a",
                       "types": ["account.opened", "balance.changed"], "secret": SECRET}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.body["secret"], SECRET);
        let id = r.body["id"].as_str().unwrap().to_owned();

        app.customer("a", Some(&ext(0)), None).await;
        app.customer("b", Some(&ext(1)), None).await;
        refresh(&app, "b").await;
        refresh(&app, "a").await;
        let events = app.ok("/v2/events?customer_id=a").await["data"]
            .as_array()
            .unwrap()
            .clone();
        assert!(!events.is_empty());
        eventually("every event of a delivered", DEADLINE, || async {
            receiver.delivered().len() >= events.len()
        })
        .await;
        let delivered = receiver.delivered();
        assert_eq!(delivered.len(), events.len(), "{delivered:?}");
        delivered.iter().for_each(verify);
        let mut bodies: Vec<Value> = delivered
            .iter()
            .map(|r| serde_json::from_str(&r.body).unwrap())
            .collect();
        bodies.sort_by_key(|b| b["id"].as_i64());
        assert_eq!(&bodies, &events, "a's events, b's none");
        for r in &delivered {
            let body: Value = serde_json::from_str(&r.body).unwrap();
            assert_eq!(r.id, format!("evt_{}", body["id"]));
        }
        // The failed first attempt was retried with the same message id.
        let all = receiver.got();
        assert_eq!(all.len(), events.len() + 1);
        assert_eq!(all[0].answered, 500);
        assert!(delivered.iter().any(|r| r.id == all[0].id));

        let log = app.ok(&format!("/v2/subscriptions/{id}/deliveries")).await;
        let log = log["data"].as_array().unwrap().clone();
        assert_eq!(log.len(), events.len(), "{log:?}");
        assert!(
            log.iter()
                .all(|d| d["state"] == "delivered" && d["last_status"] == 200)
        );
        let attempts: u64 = log.iter().map(|d| d["attempts"].as_u64().unwrap()).sum();
        assert_eq!(attempts, events.len() as u64 + 1);

        let list = app.ok("/v2/subscriptions").await;
        assert_eq!(list["data"][0]["id"], id.as_str());
        assert!(list["data"][0].get("secret").is_none(), "{list}");
        assert!(list["data"][0]["failing_since"].is_null());
        let r = app
            .request(
                reqwest::Method::DELETE,
                &format!("/v2/subscriptions/{id}"),
                Some(common::ADMIN_KEY),
                None,
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.body);
        assert_eq!(
            app.get(&format!("/v2/subscriptions/{id}/deliveries"))
                .await
                .status,
            404
        );
        app.stop().await;
    }
);

fn disable_soon(c: &mut Config) {
    fast(c);
    c.subscriptions.disable_after = Duration::from_millis(200);
    c.subscriptions.timeout = Duration::from_secs(1);
}

both!(
    a_dead_receiver_is_disabled_and_slows_nothing,
    opts(disable_soon),
    |app: common::TestApp| async move {
        // Nobody listens there.
        let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", dead.local_addr().unwrap());
        drop(dead);
        let r = app.post("/v2/subscriptions", json!({"url": url})).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let id = r.body["id"].as_str().unwrap().to_owned();
        assert!(r.body["secret"].as_str().unwrap().starts_with("whsec_"));
        app.customer("a", Some(&ext(0)), None).await;
        let started = std::time::Instant::now();
        refresh(&app, "a").await;
        assert!(started.elapsed() < Duration::from_secs(5));
        eventually("the subscription disabled", DEADLINE, || async {
            !app.ok("/v2/subscriptions").await["data"][0]["disabled_at"].is_null()
        })
        .await;
        let sub = app.ok("/v2/subscriptions").await["data"][0].clone();
        assert!(!sub["failing_since"].is_null(), "{sub}");
        let log = app.ok(&format!("/v2/subscriptions/{id}/deliveries")).await;
        let log = log["data"].as_array().unwrap().clone();
        assert!(!log.is_empty());
        assert!(log.iter().all(|d| d["state"] == "failed"), "{log:?}");
        assert!(
            log.iter()
                .all(|d| d["last_error"].is_string() && d["last_status"].is_null())
        );
        assert!(
            log.iter().any(|d| d["attempts"].as_u64().unwrap() >= 2),
            "{log:?}"
        );
        app.stop().await;
    }
);

/// Two delivering replicas on one PostgreSQL: each event reaches the receiver exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_never_deliver_the_same_event_twice() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some((url, _db)) = common::database(common::Backend::Postgres).await else {
        return;
    };
    let sim = coffer_sim::start(coffer_sim::SimConfig {
        customers: 6,
        ..Default::default()
    })
    .await
    .unwrap();
    let receiver = Receiver::start(0).await;
    let one = Replica::start(&sim, &url, false, fast).await;
    let two = Replica::start(&sim, &url, false, fast).await;
    let (status, body) = one
        .post(
            "/v2/subscriptions",
            json!({"url": receiver.url, "secret": SECRET}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    for i in 0..6 {
        let c = format!("c{i}");
        one.customer(&c, Some(&ext(i)), Some(&ext(i))).await;
        let r = if i % 2 == 0 { &one } else { &two };
        let (status, body) = r
            .post(&format!("/v2/customers/{c}/refresh"), json!({}))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let events = one.ok("/v2/events?limit=1000").await["data"]
        .as_array()
        .unwrap()
        .len();
    assert!(events >= 6);
    eventually("every event delivered", DEADLINE, || async {
        receiver.got().len() >= events
    })
    .await;
    let got = receiver.got();
    let mut ids: Vec<&str> = got.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    let before = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), before, "an event delivered twice");
    assert_eq!(ids.len(), events);
    got.iter().for_each(verify);
    one.stop().await;
    two.stop().await;
    sim.shutdown().await;
}
