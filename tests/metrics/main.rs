//! `/metrics` speaks Prometheus and counts what operators need: requests per route and status,
//! provider calls and errors per provider and kind, cache hits/misses, stale answers, breaker
//! state.

use coffer_testkit as common;

mod answers;

/// The metrics recorder is process-wide: every app in this binary counts into it. These tests
/// assert exact changes of its counters, so they run one at a time (each takes this first).
pub static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

use coffer_sim::{Fault, P100Error, Provider, Target};

fn has_sample(text: &str, name: &str, labels: &[&str]) -> bool {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .any(|l| l.starts_with(name) && labels.iter().all(|lab| l.contains(lab)))
}

/// A counter's value (0 when it has no sample yet).
fn counter(text: &str, name: &str, label: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// The counters are process-wide: tests that read their deltas take turns.
static COUNTERS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn metrics_text(app: &common::TestApp) -> String {
    let r = app
        .client
        .get(format!("{}/metrics", app.url))
        .send()
        .await
        .unwrap();
    r.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_providers_cache_and_staleness() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let _turn = COUNTERS.lock().await;
    let Some(app) = common::spawn(common::Backend::Sqlite, common::Options::default()).await else {
        return;
    };
    app.customer("m1", Some("gen-000000"), Some("gen-000000"))
        .await;
    app.ok("/v2/accounts/balance?customer_id=m1").await; // miss, provider calls
    app.ok("/v2/accounts/balance?customer_id=m1").await; // hit
    app.sim.set_fault(
        Provider::P100,
        Target::customer("gen-000000"),
        Some(Fault::P100(P100Error::P500)),
    );
    let stale = app
        .ok("/v2/accounts/balance?customer_id=m1&max_age=0")
        .await;
    assert_eq!(stale["stale"], true, "{stale}");
    assert_eq!(
        app.get("/v2/accounts/balance?customer_id=m1&bogus=1")
            .await
            .status,
        400
    );

    let r = app
        .client
        .get(format!("{}/metrics", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = r.text().await.unwrap();
    for (name, labels) in [
        (
            "coffer_http_requests_total",
            &["route=\"/v2/accounts/balance\"", "status=\"200\""][..],
        ),
        (
            "coffer_http_requests_total",
            &["route=\"/v2/accounts/balance\"", "status=\"400\""][..],
        ),
        (
            "coffer_http_request_duration_seconds_bucket",
            &["route=\"/v2/accounts/balance\""][..],
        ),
        (
            "coffer_provider_calls_total",
            &["provider=\"p100\"", "outcome=\"ok\""][..],
        ),
        (
            "coffer_provider_calls_total",
            &["provider=\"p100\"", "outcome=\"unavailable\""][..],
        ),
        (
            "coffer_provider_errors_total",
            &["provider=\"p100\"", "kind=\"unavailable\""][..],
        ),
        (
            "coffer_provider_call_duration_seconds_bucket",
            &["provider=\"bank\""][..],
        ),
        ("coffer_cache_requests_total", &["outcome=\"hit\""][..]),
        ("coffer_cache_requests_total", &["outcome=\"miss\""][..]),
        ("coffer_stale_answers_total", &[][..]),
        ("coffer_circuit_breaker_state", &["provider=\"p100\""][..]),
    ] {
        assert!(
            has_sample(&text, name, labels),
            "no {name} {labels:?} in:\n{text}"
        );
    }

    // The outcomes partition the lookups: ten concurrent lookups of one cold customer are one
    // miss and the rest coalesced (or hits). A coalesced lookup was once counted as a miss too.
    let outcomes = |text: &str| {
        ["hit", "miss", "coalesced"].map(|o| {
            counter(
                text,
                "coffer_cache_requests_total",
                &format!("outcome=\"{o}\""),
            )
        })
    };
    app.customer("m2", Some("gen-000001"), None).await;
    app.sim
        .set_latency(Provider::P100, std::time::Duration::from_millis(300));
    let before = outcomes(&metrics_text(&app).await);
    let answers =
        futures::future::join_all((0..10).map(|_| app.get("/v2/accounts/balance?customer_id=m2")))
            .await;
    assert!(answers.iter().all(|r| r.status == 200));
    let after = outcomes(&metrics_text(&app).await);
    let delta: Vec<u64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    assert_eq!(
        delta.iter().sum::<u64>(),
        10,
        "hit, miss, coalesced: {delta:?}"
    );
    assert_eq!(delta[1], 1, "one load: {delta:?}");
    app.sim
        .set_latency(Provider::P100, std::time::Duration::ZERO);
    app.stop().await;
}

/// Issue 20: the caches are bounded in bytes, not entries. With a budget that holds a few
/// customers, forty customers asked one after the other leave every cache within its share,
/// count the size evictions, report the bytes on `/metrics`, and every answer stays right (an
/// evicted customer is loaded again, never an error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caches_hold_their_byte_budget_and_evict_without_error() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let _turn = COUNTERS.lock().await;
    let opts = common::Options {
        sim: coffer_sim::SimConfig {
            customers: 40,
            ..Default::default()
        },
        configure: Box::new(|c| c.cache.max_bytes = bytesize::ByteSize::kib(64)),
        ..Default::default()
    };
    let Some(app) = common::spawn(common::Backend::Sqlite, opts).await else {
        return;
    };
    let state = app.running.as_ref().unwrap().state.clone();
    for i in 0..40 {
        let ext = coffer_sim::generate::customer_id(i);
        app.customer(&format!("b{i}"), Some(&ext), Some(&ext)).await;
    }
    // Round two asks again after the budget evicted most of round one: the same accounts.
    let mut first = Vec::new();
    for round in 0..2 {
        for i in 0..40 {
            let body = app
                .ok(&format!("/v2/accounts?customer_id=b{i}&limit=500"))
                .await;
            assert_eq!(body["partial"], false, "round {round}, b{i}: {body}");
            let data = body["data"].clone();
            assert!(
                data.as_array().is_some_and(|d| !d.is_empty()),
                "b{i}: {body}"
            );
            if round == 0 {
                first.push(data);
            } else {
                assert_eq!(data, first[i], "b{i} answered differently after eviction");
            }
        }
    }
    state.settle_caches().await;
    for (cache, held) in state.cache_bytes() {
        let budget = state.config.cache.budget(cache);
        assert!(
            held <= budget,
            "{cache} holds {held} bytes over its {budget}"
        );
    }
    let views = state.cache_bytes()[0].1;
    assert!(views > 0, "the views cache holds something");
    let text = metrics_text(&app).await;
    assert!(
        counter(&text, "coffer_cache_evictions_total", "cache=\"views\"") > 0,
        "forty customers do not fit 64 KiB: {text}"
    );
    assert!(
        has_sample(&text, "coffer_cache_bytes", &["cache=\"views\""]),
        "{text}"
    );
    assert!(
        has_sample(&text, "coffer_cache_budget_bytes", &["cache=\"answers\""]),
        "{text}"
    );
}
