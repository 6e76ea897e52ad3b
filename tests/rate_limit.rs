//! The per-key rate limit: a key past its bucket gets 429 with Retry-After; another key is not
//! affected.

mod common;

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
