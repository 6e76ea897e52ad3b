//! Reused answers: the same question about the same fresh data is answered from the answer
//! cache, byte for byte; a rate change or a refresh is never hidden by it.

use crate::common;

use coffer_sim::Provider;

async fn answer_hits(app: &common::TestApp) -> u64 {
    let text = app
        .client
        .get(format!("{}/metrics", app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| {
            l.starts_with("coffer_answer_cache_requests_total") && l.contains("outcome=\"hit\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_reused_until_rates_or_data_change() {
    let _alone = crate::ONE_AT_A_TIME.lock().await;
    let Some(app) = common::spawn(common::Backend::Sqlite, common::Options::default()).await else {
        return;
    };
    app.customer("a1", Some("gen-000002"), Some("gen-000002"))
        .await;
    let path = "/v2/accounts/balance?customer_id=a1&currency=USD&stack=currency&details=true";
    // USD needs a rate: set one first.
    assert_eq!(
        app.put("/v2/rates", serde_json::json!({"rates": {"USD": "0.92"}}))
            .await
            .status,
        200
    );
    let first = app.get(path).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let hits = answer_hits(&app).await;
    let second = app.get(path).await;
    assert_eq!(second.body, first.body);
    assert_eq!(
        answer_hits(&app).await,
        hits + 1,
        "the second answer came from the cache"
    );

    // A new manual rate changes the answer at once.
    assert_eq!(
        app.put("/v2/rates", serde_json::json!({"rates": {"USD": "0.5"}}))
            .await
            .status,
        200
    );
    let after_rate = app.get(path).await;
    assert_ne!(
        after_rate.body["total_balance"],
        first.body["total_balance"]
    );
    let usd_rate = after_rate.body["rates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["currency"] == "USD")
        .unwrap()
        .clone();
    assert_eq!(usd_rate["rate"], "0.5");

    // New data after a refresh is never hidden by an older answer.
    let acc = app.sim.p100_customer("gen-000002").unwrap();
    let balance_id = acc.balances().next().unwrap().id.clone();
    assert!(
        app.sim
            .set_p100_balance("gen-000002", &balance_id, "1234.5".parse().unwrap())
    );
    assert_eq!(
        app.post("/v2/customers/a1/refresh", serde_json::json!({}))
            .await
            .status,
        200
    );
    let refreshed = app.get(path).await;
    let accounts: Vec<_> = refreshed.body["details"]["fiat_accounts"]
        .as_array()
        .unwrap()
        .iter()
        .chain(
            refreshed.body["details"]["crypto_assets"]
                .as_array()
                .unwrap(),
        )
        .cloned()
        .collect();
    let changed = accounts
        .iter()
        .find(|a| a["id"] == format!("p100:{balance_id}"))
        .unwrap();
    assert_eq!(changed["balance"], "1234.5");
    assert!(app.sim.calls(Provider::P100, "gen-000002") >= 2);
    app.stop().await;
}
