//! Change events end to end, on SQLite and PostgreSQL: a refresh that changes an account emits
//! exactly its event and one that changes nothing emits nothing; pages never show a reader
//! another customer's event, whatever the parameters; the live stream (SSE) delivers events as
//! they are written and resumes with `Last-Event-ID` without a gap or a duplicate; on
//! PostgreSQL a stream on one replica receives what another replica wrote; the sync worker
//! emits `sync.failed` and `sync.recovered` once per transition, not per attempt.

use crate::cluster;
use crate::common;

use std::time::{Duration, Instant};

use cluster::Replica;
use rust_decimal::Decimal;
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(30);

fn ext(i: usize) -> String {
    coffer_sim::generate::customer_id(i)
}

/// One SSE message.
#[derive(Debug, Clone, PartialEq)]
struct Msg {
    id: String,
    event: String,
    data: Value,
}

/// A live `GET /v2/events` stream, read message by message.
struct Stream {
    resp: reqwest::Response,
    buf: String,
}

impl Stream {
    async fn open(url: &str, key: &str, query: &str, last_event_id: Option<&str>) -> Stream {
        let mut req = reqwest::Client::new()
            .get(format!("{url}/v2/events{query}"))
            .header("x-api-key", key)
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        Stream {
            resp,
            buf: String::new(),
        }
    }

    /// The next message with data (keep-alive comments skipped), within the deadline.
    async fn next(&mut self) -> Msg {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(&format!("{name}:")))
                        .map(|v| v.trim_start().to_owned())
                };
                if let Some(data) = field("data") {
                    return Msg {
                        id: field("id").unwrap_or_default(),
                        event: field("event").unwrap_or_default(),
                        data: serde_json::from_str(&data).unwrap(),
                    };
                }
                continue;
            }
            let chunk = tokio::time::timeout(DEADLINE, self.resp.chunk())
                .await
                .expect("no event on the stream in time")
                .unwrap()
                .expect("the stream ended");
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

async fn page(app: &common::TestApp, key: &str, query: &str) -> Value {
    let r = app.get_as(key, &format!("/v2/events{query}")).await;
    assert_eq!(r.status, 200, "{query}: {}", r.body);
    r.body
}

fn data(page: &Value) -> Vec<Value> {
    page["data"].as_array().unwrap().clone()
}

/// Every event after `after` the admin sees, through the pages.
async fn all_after(app: &common::TestApp, after: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = after.to_owned();
    loop {
        let p = page(app, &app.admin_key, &format!("?after={cursor}&limit=2")).await;
        let d = data(&p);
        if d.is_empty() {
            return out;
        }
        cursor = p["next_cursor"].as_str().unwrap().to_owned();
        out.extend(d);
    }
}

async fn refresh(app: &common::TestApp, customer: &str) {
    let r = app
        .post(&format!("/v2/customers/{customer}/refresh"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Adds `delta` to the first P100 balance of simulated user `i`; returns the account id, the
/// old and the new amount.
fn change(sim: &coffer_sim::SimHandle, i: usize, delta: Decimal) -> (String, Decimal, Decimal) {
    let user = sim.p100_customer(&ext(i)).unwrap();
    let b = user
        .fiat_balances
        .iter()
        .chain(&user.crypto_balances)
        .next()
        .unwrap()
        .clone();
    let new = b.amount + delta;
    assert!(sim.set_p100_balance(&ext(i), &b.id, new));
    (format!("{}:{}", common::P100, b.id), b.amount, new)
}

fn last_id(events: &[Value]) -> String {
    events.last().map_or("0".into(), |e| e["id"].to_string())
}

both!(
    changes_emit_exactly_their_events_and_readers_see_their_own,
    common::Options::default(),
    |app: common::TestApp| async move {
        app.customer("a", Some(&ext(0)), None).await;
        app.customer("b", Some(&ext(1)), None).await;
        refresh(&app, "a").await;
        refresh(&app, "b").await;
        let opened = all_after(&app, "0").await;
        assert!(!opened.is_empty());
        assert!(
            opened.iter().all(|e| e["type"] == "account.opened"),
            "{opened:?}"
        );
        for c in ["a", "b"] {
            assert!(
                opened.iter().any(|e| e["customer_id"] == c),
                "{c}: {opened:?}"
            );
        }
        let ids: Vec<i64> = opened.iter().map(|e| e["id"].as_i64().unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

        // Nothing changed: nothing emitted; an empty page keeps the cursor.
        refresh(&app, "a").await;
        let cursor = last_id(&opened);
        let p = page(&app, &app.admin_key, &format!("?after={cursor}")).await;
        assert_eq!(data(&p), Vec::<Value>::new());
        assert_eq!(p["next_cursor"], cursor.as_str());

        // One balance changes: exactly one event, the amounts exact.
        let (account, before, after) = change(&app.sim, 0, Decimal::new(1234, 2));
        refresh(&app, "a").await;
        let changed = all_after(&app, &cursor).await;
        assert_eq!(changed.len(), 1, "{changed:?}");
        let e = &changed[0];
        assert_eq!(e["type"], "balance.changed");
        assert_eq!(e["customer_id"], "a");
        assert_eq!(e["provider"], common::P100);
        assert_eq!(e["account_id"], account.as_str());
        assert_eq!(
            e["data"]["before"]
                .as_str()
                .unwrap()
                .parse::<Decimal>()
                .unwrap(),
            before
        );
        assert_eq!(
            e["data"]["after"]
                .as_str()
                .unwrap()
                .parse::<Decimal>()
                .unwrap(),
            after
        );
        assert!(e["data"]["observed_at"].is_string() && e["occurred_at"].is_string());
        assert!(!e["data"]["currency"].as_str().unwrap().is_empty());

        // A reader of `a` never sees `b`'s events, whatever it asks.
        let every = all_after(&app, "0").await;
        let b_first = every.iter().find(|e| e["customer_id"] == "b").unwrap()["id"].clone();
        let before_b = (b_first.as_i64().unwrap() - 1).to_string();
        let reader = app.reader_key(&["a"]).await;
        let mut seen = 0;
        for q in [
            String::new(),
            "?customer_id=a".into(),
            "?customer_id=b".into(),
            "?customer_id=b&types=account.opened".into(),
            "?types=account.opened".into(),
            "?types=balance.changed,account.opened,account.closed,sync.failed,sync.recovered"
                .into(),
            format!("?after={before_b}"),
            format!("?after={before_b}&customer_id=b&limit=1"),
            "?after=0&limit=1".into(),
        ] {
            let got = data(&page(&app, &reader, &q).await);
            assert!(got.iter().all(|e| e["customer_id"] == "a"), "{q}: {got:?}");
            if q.contains("customer_id=b") {
                assert!(got.is_empty(), "{q}: {got:?}");
            }
            seen += got.len();
        }
        assert!(seen > 0);
        let mine: Vec<Value> = every
            .iter()
            .filter(|e| e["customer_id"] == "a")
            .cloned()
            .collect();
        assert_eq!(data(&page(&app, &reader, "").await), mine);

        // Bad parameters name themselves.
        for (q, param) in [
            ("?limit=0", "limit"),
            ("?limit=1001", "limit"),
            ("?after=x", "after"),
            ("?after=-1", "after"),
            ("?types=balance.changed,nope", "types"),
            ("?customer=a", "customer"),
        ] {
            let r = app.get(&format!("/v2/events{q}")).await;
            assert_eq!(r.status, 400, "{q}: {}", r.body);
            assert_eq!(r.body["details"]["parameter"], param, "{q}: {}", r.body);
        }
        app.stop().await;
    }
);

both!(
    the_stream_delivers_live_and_resumes_without_gap_or_duplicate,
    common::Options::default(),
    |app: common::TestApp| async move {
        app.customer("a", Some(&ext(0)), None).await;
        app.customer("b", Some(&ext(1)), None).await;
        let reader = app.reader_key(&["a"]).await;
        let mut stream = Stream::open(&app.url, &reader, "", None).await;
        // Another customer's events first, then a's: the stream shows a's only, in order.
        refresh(&app, "b").await;
        refresh(&app, "a").await;
        let mine = |all: Vec<Value>| -> Vec<Value> {
            all.into_iter()
                .filter(|e| e["customer_id"] == "a")
                .collect()
        };
        let want = mine(all_after(&app, "0").await);
        assert!(!want.is_empty());
        for w in &want {
            let m = stream.next().await;
            assert_eq!(m.data, *w);
            assert_eq!(m.id, w["id"].to_string());
            assert_eq!(m.event, w["type"].as_str().unwrap());
        }
        let seen = want.last().unwrap()["id"].to_string();
        drop(stream);

        // Written while no stream is open: a resumed stream starts right after what was seen.
        change(&app.sim, 1, Decimal::ONE);
        refresh(&app, "b").await;
        change(&app.sim, 0, Decimal::ONE);
        refresh(&app, "a").await;
        let missed = mine(all_after(&app, &seen).await);
        assert_eq!(missed.len(), 1, "{missed:?}");
        // `after` is ignored when Last-Event-ID is given (a browser resends its first URL).
        let mut stream = Stream::open(&app.url, &reader, "?after=0", Some(&seen)).await;
        assert_eq!(stream.next().await.data, missed[0]);
        // And live again after the resume.
        change(&app.sim, 0, Decimal::ONE);
        refresh(&app, "a").await;
        let next = mine(all_after(&app, &missed[0]["id"].to_string()).await);
        assert_eq!(next.len(), 1, "{next:?}");
        assert_eq!(stream.next().await.data, next[0]);

        // Filters apply to streams too; a customer out of scope streams nothing, and shutting
        // down ends the open streams (draining does not wait for them).
        let mut typed = Stream::open(&app.url, &app.admin_key, "?types=account.opened", None).await;
        assert_eq!(typed.next().await.event, "account.opened");
        let r = app
            .client
            .get(format!("{}/v2/events?limit=0", app.url))
            .header("x-api-key", &reader)
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let metrics = app
            .request(reqwest::Method::GET, "/metrics", None, None)
            .await
            .body;
        let metrics = metrics.as_str().unwrap();
        for line in [
            "coffer_events_written_total{type=\"account.opened\"}",
            "coffer_events_written_total{type=\"balance.changed\"}",
            "coffer_events_streamed_total{type=\"account.opened\"}",
            "coffer_event_streams",
        ] {
            assert!(metrics.contains(line), "{line} not in /metrics");
        }
        app.stop().await;
    }
);

/// Two replicas on one PostgreSQL: a stream on one receives what the other wrote, woken by
/// the notification (well before the stream's fallback poll).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_receives_events_written_by_another_replica() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some((url, _db)) = common::database(common::Backend::Postgres).await else {
        return;
    };
    let sim = coffer_sim::start(coffer_sim::SimConfig {
        customers: 2,
        ..Default::default()
    })
    .await
    .unwrap();
    let one = Replica::start(&sim, &url, false, |_| {}).await;
    let two = Replica::start(&sim, &url, false, |_| {}).await;
    one.customer("a", Some(&ext(0)), None).await;
    let (status, body) = two.post("/v2/customers/a/refresh", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let mut stream = Stream::open(&one.url, common::ADMIN_KEY, "", None).await;
    let first = stream.next().await;
    assert_eq!(first.event, "account.opened");
    // Caught up: now a live change written by the other replica.
    let opened = one.ok("/v2/events?limit=1000").await["data"]
        .as_array()
        .unwrap()
        .len();
    for _ in 1..opened {
        stream.next().await;
    }
    let (account, _, after) = change(&sim, 0, Decimal::new(5, 1));
    let (status, body) = two.post("/v2/customers/a/refresh", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let written = Instant::now();
    let m = stream.next().await;
    let took = written.elapsed();
    assert_eq!(m.event, "balance.changed");
    assert_eq!(m.data["account_id"], account.as_str());
    assert_eq!(
        m.data["data"]["after"]
            .as_str()
            .unwrap()
            .parse::<Decimal>()
            .unwrap(),
        after
    );
    assert!(took < Duration::from_secs(2), "woken only after {took:?}");
    drop(stream);
    one.stop().await;
    two.stop().await;
    sim.shutdown().await;
}

fn syncing() -> common::Options {
    common::Options {
        sync: true,
        configure: Box::new(|c| {
            c.sync.interval = Duration::from_millis(100);
            c.sync.idle_poll = Duration::from_millis(20);
            c.sync.unknown_customer_retry = Duration::from_millis(50);
            c.sync.max_backoff = Duration::from_millis(50);
        }),
        ..Default::default()
    }
}

async fn of_type(app: &common::TestApp, t: &str) -> Vec<Value> {
    data(&page(app, &app.admin_key, &format!("?types={t}&customer_id=a")).await)
}

both!(
    the_sync_worker_emits_failures_and_recoveries_once,
    syncing(),
    |app: common::TestApp| async move {
        use coffer_sim::{Fault, P100Error, Provider, Target};
        app.customer("a", Some(&ext(0)), None).await;
        cluster::eventually("a first sync", DEADLINE, || async {
            !of_type(&app, "account.opened").await.is_empty()
        })
        .await;
        app.sim.set_fault(
            Provider::P100,
            Target::customer(ext(0)),
            Some(Fault::P100(P100Error::P459)),
        );
        cluster::eventually("three failures in a row", DEADLINE, || async {
            let c = app.ok("/v2/customers/a").await;
            c["sync"][0]["consecutive_failures"].as_u64() >= Some(3)
        })
        .await;
        let failed = of_type(&app, "sync.failed").await;
        assert_eq!(failed.len(), 1, "one event for three failures: {failed:?}");
        assert_eq!(failed[0]["provider"], common::P100);
        assert!(failed[0].get("account_id").is_none());
        assert!(failed[0]["data"]["error_kind"].is_string());
        app.sim.clear_faults();
        cluster::eventually("recovered", DEADLINE, || async {
            !of_type(&app, "sync.recovered").await.is_empty()
        })
        .await;
        // Syncs go on, unchanged: no more transitions, and no account event.
        let after = last_id(&all_after(&app, "0").await);
        let at_recovery = app.ok("/v2/customers/a").await["sync"][0]["last_success"].clone();
        cluster::eventually("another sync after the recovery", DEADLINE, || async {
            app.ok("/v2/customers/a").await["sync"][0]["last_success"] != at_recovery
        })
        .await;
        assert_eq!(of_type(&app, "sync.failed").await.len(), 1);
        let recovered = of_type(&app, "sync.recovered").await;
        assert_eq!(recovered.len(), 1, "{recovered:?}");
        assert!(recovered[0]["data"]["failures"].as_u64().unwrap() >= 3);
        let later = all_after(&app, &after).await;
        assert!(
            later.iter().all(|e| e["type"] != "account.opened"),
            "{later:?}"
        );
        app.stop().await;
    }
);
