//! The per-key rate limit: a key past its bucket gets 429 with Retry-After; another key is not
//! affected.

use crate::common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_past_its_bucket_gets_429_with_retry_after() {
    let opts = common::Options {
        configure: Box::new(|c| {
            c.server.rate_limit_per_key = 1;
            c.server.rate_limit_burst = 3;
        }),
        ..Default::default()
    };
    let Some(app) = common::spawn(common::Backend::Sqlite, opts).await else {
        return;
    };
    app.customer("r1", Some("gen-000000"), None).await; // the admin's first token
    let reader = app.reader_key(&["r1"]).await;
    let path = "/v2/accounts/balance?customer_id=r1";
    // Burst 3: the admin has two tokens left.
    assert_eq!(app.get(path).await.status, 200);
    assert_eq!(app.get(path).await.status, 200);
    let limited = app.get(path).await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert_eq!(limited.body["error"], "rate_limited");
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    // Another key has its own bucket.
    assert_eq!(app.get_as(&reader, path).await.status, 200);
    // Unauthenticated operations endpoints are not limited.
    for _ in 0..5 {
        let r = app
            .client
            .get(format!("{}/healthz", app.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    app.stop().await;
}

// A provider's `rate_limit` is the whole deployment's quota, requests included: cold requests
// once bypassed it (only the sync worker took tokens), so a burst of them called the provider
// as fast as they came.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_requests_spend_the_providers_quota() {
    let opts = common::Options {
        configure: Box::new(|c| {
            for p in &mut c.providers {
                p.rate_limit = 1;
            }
            c.server.request_timeout = std::time::Duration::from_millis(1000);
        }),
        ..Default::default()
    };
    let Some(app) = common::spawn(common::Backend::Sqlite, opts).await else {
        return;
    };
    let customers: Vec<String> = (1..=4).map(|i| format!("q{i}")).collect();
    for (i, c) in customers.iter().enumerate() {
        app.customer(c, Some(&format!("gen-00000{}", i + 1)), None)
            .await;
    }
    let started = std::time::Instant::now();
    let answers = futures::future::join_all(customers.iter().map(|c| {
        let path = format!("/v2/accounts/balance?customer_id={c}");
        let app = &app;
        async move { app.get(&path).await }
    }))
    .await;
    // One call per second for the deployment: within the requests' 0.9 s deadline, one call
    // (two if a second boundary passed); the others answered without calling, and say so.
    let calls = app.sim.total_calls(coffer_sim::Provider::P100);
    // Read after the count: by any instant t, at most 1 + ⌊t⌋ calls.
    let elapsed = started.elapsed();
    let allowed = 1 + elapsed.as_secs();
    assert!(calls <= allowed, "{calls} calls in {elapsed:?} at 1 call/s");
    let mut waited = 0u64;
    for r in &answers {
        assert_eq!(r.status, 200, "{}", r.body);
        if r.body["partial"] == true {
            waited += 1;
            let w = &r.body["warnings"][0];
            assert_eq!(w["provider"], "p100", "{}", r.body);
        }
    }
    assert!(
        waited >= 4u64.saturating_sub(allowed),
        "{waited} answers without p100 data: {answers:?}",
        answers = answers.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    app.stop().await;
}
