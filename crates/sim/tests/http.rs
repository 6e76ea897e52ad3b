//! The simulators over real HTTP: seeds verbatim, auth, generated data, every fault, counters
//! and the admin API.
#![allow(clippy::unwrap_used)]

use std::str::FromStr;
use std::time::{Duration, Instant};

use coffer_sim::fixtures::{
    COREBANQ_SEED_BODY, COREBANQ_SEED_CUSTOMER, P100_SEED_BODY, P100_SEED_USER,
};
use coffer_sim::generate;
use coffer_sim::model::{balance_in_base, corebanq_body};
use coffer_sim::{
    CorebanqError, DenyReason, Fault, P100Error, Provider, RetryAfter, SimConfig, SimHandle, Target,
};
use reqwest::{Client, Response, StatusCode};
use rust_decimal::Decimal;
use serde_json::{Value, json};

const KEY: &str = "sim-p100-key";
const TOKEN: &str = "sim-corebanq-token";

fn client() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::new()
}

async fn sim(customers: usize) -> SimHandle {
    coffer_sim::start(SimConfig {
        customers,
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

async fn p100(c: &Client, sim: &SimHandle, user: &str) -> reqwest::Result<Response> {
    c.get(format!("{}/v1/user/{user}/balances", sim.p100_url()))
        .header("x-api-key", KEY)
        .send()
        .await
}

async fn corebanq(c: &Client, sim: &SimHandle, customer: &str, currency: &str) -> Response {
    let url = format!(
        "{}/v2/accounts/balance?customer_id={customer}&currency={currency}&details=true",
        sim.corebanq_url()
    );
    c.get(url).bearer_auth(TOKEN).send().await.unwrap()
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

#[tokio::test]
async fn seed_bodies_come_out_byte_identical() {
    let (c, sim) = (client(), sim(0).await);
    let r = p100(&c, &sim, P100_SEED_USER).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.bytes().await.unwrap(), P100_SEED_BODY.as_bytes());

    for currency in ["EUR", "USD"] {
        let r = corebanq(&c, &sim, COREBANQ_SEED_CUSTOMER, currency).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.bytes().await.unwrap(), COREBANQ_SEED_BODY.as_bytes());
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn p100_auth_and_unknown_user() {
    let (c, sim) = (client(), sim(3).await);
    let url = format!("{}/v1/user/gen-000001/balances", sim.p100_url());

    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.text().await.unwrap(), "Access Denied. xo1");

    let r = c
        .get(&url)
        .header("x-api-key", "nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.text().await.unwrap(), "Access Denied. xo2");

    for unknown in ["gen-000003", "someone-else", "gen-1"] {
        let r = p100(&c, &sim, unknown).await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{unknown}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["errorCode"], "P412");
        assert!(v["errorName"].is_string() && v["errorMessage"].is_string());
    }
    assert_eq!(sim.calls(Provider::P100, "gen-000001"), 2);
    assert_eq!(sim.calls(Provider::P100, "gen-000003"), 1);
    assert_eq!(sim.total_calls(Provider::P100), 5);
    assert_eq!(sim.total_calls(Provider::Corebanq), 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn corebanq_auth_and_errors() {
    let (c, sim) = (client(), sim(3).await);
    let url = format!("{}/v2/accounts/balance", sim.corebanq_url());
    let with_id = format!("{url}?customer_id=gen-000002");

    let r = c.get(&with_id).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "unauthorized");
    assert!(v["message"].is_string() && v["details"].is_object());

    let r = c
        .get(&with_id)
        .bearer_auth("old-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let r = corebanq(&c, &sim, "gen-000003", "EUR").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "not_found");

    let r = c.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = corebanq(&c, &sim, "gen-000002", "XYZ").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    assert_eq!(sim.calls(Provider::Corebanq, "gen-000002"), 3);
    assert_eq!(sim.total_calls(Provider::Corebanq), 5);
    sim.shutdown().await;
}

#[tokio::test]
async fn generated_p100_round_trips_exactly() {
    let (c, sim) = (client(), sim(20).await);
    for i in [0, 7, 19] {
        let id = generate::customer_id(i);
        let body: Value = p100(&c, &sim, &id).await.unwrap().json().await.unwrap();
        // arbitrary_precision: numbers compare by their text, so scale counts too.
        assert_eq!(body, generate::p100_body(42, i, 10));
        let expected = sim.p100_customer(&id).unwrap();
        assert_ne!(body["userId"], id.as_str());
        for b in expected.balances() {
            let list = if b.networks.is_empty() {
                "fiatBalances"
            } else {
                "cryptoBalances"
            };
            let got = body[list]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["id"] == b.id.as_str())
                .unwrap();
            assert_eq!(got["amount"].as_str().unwrap(), b.amount.to_string());
            assert!(got["rate"].is_number());
            let rate: Decimal = serde_json::from_value(got["rate"].clone()).unwrap();
            assert_eq!(rate, b.rate);
        }
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn generated_corebanq_round_trips_exactly() {
    let (c, sim) = (client(), sim(20).await);
    for i in [0, 5, 19] {
        let id = generate::customer_id(i);
        let accounts = generate::corebanq_accounts(42, i, 10);
        assert_eq!(sim.corebanq_accounts(&id).unwrap(), accounts);
        let r = corebanq(&c, &sim, &id, "EUR").await;
        assert_eq!(
            r.bytes().await.unwrap(),
            corebanq_body(&id, &accounts, "EUR", true)
        );

        let v: Value = corebanq(&c, &sim, &id, "USD").await.json().await.unwrap();
        assert_eq!(v["currency"], "USD");
        let listed: Vec<&Value> = ["fiat_accounts", "crypto_assets"]
            .iter()
            .filter_map(|k| v["details"][k].as_array())
            .flatten()
            .collect();
        assert_eq!(listed.len(), accounts.len());
        for a in &accounts {
            let got = listed.iter().find(|x| x["id"] == a.id.as_str()).unwrap();
            assert!(got["balance"].is_number());
            let balance: Decimal = serde_json::from_value(got["balance"].clone()).unwrap();
            assert_eq!(balance, a.balance);
            let in_base: Option<Decimal> =
                serde_json::from_value(got["balance_in_base"].clone()).unwrap();
            assert_eq!(in_base, balance_in_base(a.balance, &a.currency, "USD"));
            assert_eq!(got["customer_id"], id.as_str());
        }
    }
    // details off: no `details`.
    let r = c
        .get(format!(
            "{}/v2/accounts/balance?customer_id=gen-000001",
            sim.corebanq_url()
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert!(v.get("details").is_none() && v["total_balance"].is_number());
    sim.shutdown().await;
}

#[tokio::test]
async fn provider_error_faults() {
    let (c, sim) = (client(), sim(2).await);
    let id = "gen-000000";
    let errors = [
        P100Error::Unauthorized(DenyReason::Xo1),
        P100Error::Unauthorized(DenyReason::Xo2),
        P100Error::Unauthorized(DenyReason::Xo3),
        P100Error::P412,
        P100Error::P459,
        P100Error::P403,
        P100Error::P500,
        P100Error::P501,
    ];
    for e in errors {
        sim.set_fault(Provider::P100, Target::customer(id), Some(Fault::P100(e)));
        let r = p100(&c, &sim, id).await.unwrap();
        assert_eq!(r.status().as_u16(), e.http_status(), "{e:?}");
        let text = r.text().await.unwrap();
        if e.http_status() == 401 {
            assert_eq!(text, format!("Access Denied. {}", e.code()));
        } else {
            let v: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v["errorCode"], e.code());
        }
    }
    assert_eq!(P100Error::P501.http_status(), 400);

    for e in [
        CorebanqError::Unauthorized,
        CorebanqError::NotFound,
        CorebanqError::Internal,
        CorebanqError::Unavailable,
    ] {
        sim.set_fault(Provider::Corebanq, Target::Global, Some(Fault::Corebanq(e)));
        let r = corebanq(&c, &sim, id, "EUR").await;
        assert_eq!(r.status().as_u16(), e.http_status());
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], e.code());
        assert!(v["message"].is_string() && v["details"].is_object());
    }

    sim.set_fault(
        Provider::Corebanq,
        Target::Global,
        Some(Fault::Status(502, "bad gateway".into())),
    );
    let r = corebanq(&c, &sim, id, "EUR").await;
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(r.text().await.unwrap(), "bad gateway");

    assert_eq!(sim.calls(Provider::P100, id), 8);
    assert_eq!(sim.calls(Provider::Corebanq, id), 5);
    sim.shutdown().await;
}

#[tokio::test]
async fn rate_limited_carries_retry_after() {
    let (c, sim) = (client(), sim(1).await);
    let date = chrono::DateTime::parse_from_rfc3339("2026-10-21T07:28:00Z")
        .unwrap()
        .to_utc();
    let cases = [
        (RetryAfter::Seconds(7), Some("7")),
        (
            RetryAfter::HttpDate(date),
            Some("Wed, 21 Oct 2026 07:28:00 GMT"),
        ),
        (RetryAfter::Absent, None),
    ];
    for (retry_after, header) in cases {
        let fault = Fault::RateLimited { retry_after };
        sim.set_fault(Provider::P100, Target::Global, Some(fault.clone()));
        sim.set_fault(Provider::Corebanq, Target::Global, Some(fault));
        let r = p100(&c, &sim, "gen-000000").await.unwrap();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            r.headers().get("retry-after").map(|v| v.to_str().unwrap()),
            header
        );
        let r = corebanq(&c, &sim, "gen-000000", "EUR").await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            r.headers().get("retry-after").map(|v| v.to_str().unwrap()),
            header
        );
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "rate_limited");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn malformed_and_truncated_bodies() {
    let (c, sim) = (client(), sim(0).await);
    let seed = P100_SEED_BODY.as_bytes();

    sim.set_fault(Provider::P100, Target::Global, Some(Fault::MalformedJson));
    let r = p100(&c, &sim, P100_SEED_USER).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.bytes().await.unwrap();
    assert_eq!(body.len(), seed.len());
    assert!(serde_json::from_slice::<Value>(&body).is_err());

    sim.set_fault(Provider::P100, Target::Global, Some(Fault::TruncatedBody));
    let r = p100(&c, &sim, P100_SEED_USER).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let declared: usize = r.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = r.bytes().await.unwrap();
    assert_eq!(declared, body.len());
    assert_eq!(body.len(), seed.len() / 2);
    assert_eq!(&body[..], &seed[..body.len()]);
    assert!(serde_json::from_slice::<Value>(&body).is_err());
    sim.shutdown().await;
}

#[tokio::test]
async fn closed_mid_body_cuts_the_connection() {
    let (c, sim) = (client(), sim(0).await);
    sim.set_fault(
        Provider::Corebanq,
        Target::Global,
        Some(Fault::ClosedMidBody),
    );
    let r = corebanq(&c, &sim, COREBANQ_SEED_CUSTOMER, "EUR").await;
    assert_eq!(r.status(), StatusCode::OK);
    let declared: usize = r.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(declared, COREBANQ_SEED_BODY.len());
    assert!(r.bytes().await.is_err(), "the body must end early");
    assert_eq!(sim.calls(Provider::Corebanq, COREBANQ_SEED_CUSTOMER), 1);

    // The simulator keeps serving on new connections.
    sim.set_fault(Provider::Corebanq, Target::Global, None);
    let r = corebanq(&c, &sim, COREBANQ_SEED_CUSTOMER, "EUR").await;
    assert_eq!(r.bytes().await.unwrap(), COREBANQ_SEED_BODY.as_bytes());
    sim.shutdown().await;
}

#[tokio::test]
async fn drop_connection_sends_nothing() {
    let (c, sim) = (client(), sim(1).await);
    sim.set_fault(
        Provider::P100,
        Target::customer("gen-000000"),
        Some(Fault::DropConnection),
    );
    let err = p100(&c, &sim, "gen-000000").await.unwrap_err();
    assert!(!err.is_status() && !err.is_timeout(), "{err:?}");
    assert_eq!(
        sim.calls(Provider::P100, "gen-000000"),
        1,
        "no hidden retry"
    );

    // Raw TCP: the server closes without a single byte.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(sim.p100_addr())
        .await
        .unwrap();
    let req =
        "GET /v1/user/gen-000000/balances HTTP/1.1\r\nhost: x\r\nx-api-key: sim-p100-key\r\n\r\n";
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let read = tcp.read_to_end(&mut buf).await;
    assert!(
        read.is_err() || buf.is_empty(),
        "got {:?}",
        String::from_utf8_lossy(&buf)
    );

    let r = p100(&c, &sim, P100_SEED_USER).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "other customers are unaffected");
    sim.shutdown().await;
}

#[tokio::test]
async fn slow_body_sends_headers_first() {
    let (c, sim) = (client(), sim(0).await);
    let total = Duration::from_secs(2);
    sim.set_fault(Provider::P100, Target::Global, Some(Fault::SlowBody(total)));
    let start = Instant::now();
    let r = p100(&c, &sim, P100_SEED_USER).await.unwrap();
    let headers_after = start.elapsed();
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.bytes().await.unwrap();
    let body_after = start.elapsed();
    assert_eq!(body, P100_SEED_BODY.as_bytes());
    assert!(headers_after < total / 2, "headers took {headers_after:?}");
    assert!(
        body_after >= total * 9 / 10,
        "body took only {body_after:?}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn latency_fault_and_configured_latency() {
    let (c, sim) = (client(), sim(1).await);
    let delay = Duration::from_millis(300);
    sim.set_fault(Provider::P100, Target::Global, Some(Fault::Latency(delay)));
    let start = Instant::now();
    let r = p100(&c, &sim, "gen-000000").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(start.elapsed() >= delay);

    sim.set_fault(Provider::P100, Target::Global, None);
    sim.set_latency(Provider::Corebanq, delay);
    let start = Instant::now();
    let r = corebanq(&c, &sim, "gen-000000", "EUR").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(start.elapsed() >= delay);
    sim.shutdown().await;
}

#[tokio::test]
async fn customer_fault_wins_and_times_run_out() {
    let (c, sim) = (client(), sim(3).await);
    sim.set_fault(
        Provider::P100,
        Target::Global,
        Some(Fault::Status(503, "down".into())),
    );
    sim.set_fault(
        Provider::P100,
        Target::customer("gen-000001"),
        Some(Fault::P100(P100Error::P459)),
    );
    let status = |r: Response| r.status().as_u16();
    assert_eq!(status(p100(&c, &sim, "gen-000000").await.unwrap()), 503);
    assert_eq!(status(p100(&c, &sim, "gen-000001").await.unwrap()), 400);
    sim.set_fault(Provider::P100, Target::customer("gen-000001"), None);
    assert_eq!(status(p100(&c, &sim, "gen-000001").await.unwrap()), 503);
    sim.set_fault(Provider::P100, Target::Global, None);
    assert_eq!(status(p100(&c, &sim, "gen-000001").await.unwrap()), 200);

    sim.set_fault_times(
        Provider::P100,
        Target::customer("gen-000002"),
        Fault::P100(P100Error::P501),
        2,
    );
    let got: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(status(p100(&c, &sim, "gen-000002").await.unwrap()));
        }
        v
    };
    assert_eq!(got, [400, 400, 200, 200]);
    sim.shutdown().await;
}

#[tokio::test]
async fn counters_count_concurrent_calls() {
    let (c, sim) = (client(), sim(10).await);
    let calls = (0..100).map(|i| {
        let c = c.clone();
        let url = format!(
            "{}/v1/user/{}/balances",
            sim.p100_url(),
            generate::customer_id(i % 4)
        );
        async move {
            c.get(url)
                .header("x-api-key", KEY)
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    let statuses = futures::future::join_all(calls).await;
    assert!(statuses.iter().all(|s| *s == StatusCode::OK));
    for i in 0..4 {
        assert_eq!(sim.calls(Provider::P100, &generate::customer_id(i)), 25);
    }
    assert_eq!(sim.calls(Provider::P100, "gen-000004"), 0);
    assert_eq!(sim.total_calls(Provider::P100), 100);
    sim.reset_calls();
    assert_eq!(sim.calls(Provider::P100, "gen-000000"), 0);
    assert_eq!(sim.total_calls(Provider::P100), 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn balances_change_between_fetches() {
    let (c, sim) = (client(), sim(2).await);
    let customer = sim.p100_customer("gen-000001").unwrap();
    let b = customer.balances().next().unwrap();
    assert!(sim.set_p100_balance("gen-000001", &b.id, dec("12345678901234.12345678")));
    let v: Value = p100(&c, &sim, "gen-000001")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let all: Vec<&Value> = ["fiatBalances", "cryptoBalances"]
        .iter()
        .flat_map(|k| v[k].as_array().unwrap())
        .collect();
    let got = all.iter().find(|x| x["id"] == b.id.as_str()).unwrap();
    assert_eq!(got["amount"], "12345678901234.12345678");
    assert!(!sim.set_p100_balance("gen-000001", "no-such-balance", Decimal::ONE));

    // The seed's raw body can change too.
    assert!(sim.set_p100_balance(
        P100_SEED_USER,
        "840770da-996d-4f20-826f-5bc46bfdffd9",
        dec("4.500000")
    ));
    let v: Value = p100(&c, &sim, P100_SEED_USER)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["cryptoBalances"][2]["amount"], "4.500000");
    assert_eq!(v["cryptoBalances"][2]["rate"].to_string(), "0.858814");

    let account = sim.corebanq_accounts("gen-000000").unwrap()[0].clone();
    assert!(sim.set_corebanq_balance("gen-000000", &account.id, dec("0.09872368")));
    let v: Value = corebanq(&c, &sim, "gen-000000", "EUR")
        .await
        .json()
        .await
        .unwrap();
    let found = ["fiat_accounts", "crypto_assets"]
        .iter()
        .filter_map(|k| v["details"][k].as_array())
        .flatten()
        .find(|x| x["id"] == account.id.as_str())
        .unwrap();
    let balance: Decimal = serde_json::from_value(found["balance"].clone()).unwrap();
    assert_eq!(balance, dec("0.09872368"));
    assert!(sim.set_corebanq_balance(
        COREBANQ_SEED_CUSTOMER,
        "f17066c7-dbf8-47d8-ada6-b828701964be",
        dec("1.5")
    ));
    let v: Value = corebanq(&c, &sim, COREBANQ_SEED_CUSTOMER, "EUR")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["details"]["crypto_assets"][0]["balance"].to_string(),
        "1.5"
    );

    sim.remove_customer(Provider::P100, "gen-000000");
    assert_eq!(
        p100(&c, &sim, "gen-000000").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    sim.reset();
    assert_eq!(
        p100(&c, &sim, "gen-000000").await.unwrap().status(),
        StatusCode::OK
    );
    let r = p100(&c, &sim, P100_SEED_USER).await.unwrap();
    assert_eq!(r.bytes().await.unwrap(), P100_SEED_BODY.as_bytes());
    sim.shutdown().await;
}

#[tokio::test]
async fn admin_api_shares_state_with_the_handle() {
    let (c, sim) = (client(), sim(5).await);
    let admin = |p: &str| format!("{}/_sim{p}", sim.corebanq_url());

    let r = c
        .put(admin("/faults"))
        .json(&json!({"customer": "gen-000004", "fault": {"kind": "corebanq", "error": "service_unavailable"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        corebanq(&c, &sim, "gen-000004", "EUR")
            .await
            .status()
            .as_u16(),
        503
    );
    let v: Value = c
        .get(admin("/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["customers"]["gen-000004"]["fault"]["kind"], "corebanq");
    assert!(v["global"].is_null());

    let v: Value = c
        .get(admin("/calls?customer=gen-000004"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["calls"], 1);
    assert_eq!(sim.calls(Provider::Corebanq, "gen-000004"), 1);

    let r = c
        .put(admin("/faults"))
        .json(&json!({"customer": "gen-000004", "fault": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        corebanq(&c, &sim, "gen-000004", "EUR").await.status(),
        StatusCode::OK
    );

    let r = c
        .put(admin("/faults"))
        .json(&json!({"fault": {"kind": "nonsense"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let r = c
        .put(admin("/latency"))
        .json(&json!({"latency": "50ms"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let v: Value = c
        .get(admin("/latency"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["latency"], "50ms");

    let v: Value = c
        .get(admin("/customers"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["generated"], 5);
    assert_eq!(v["generated_ids"]["last"], "gen-000004");
    assert_eq!(v["stored"][0], COREBANQ_SEED_CUSTOMER);

    // A structured customer through the admin API, then a balance change.
    let accounts = json!([{
        "id": "acc-1", "currency": "EURØP", "balance": 9.872368e-2, "is_crypto": true,
        "active": false, "status": "active", "main_wallet_address": "0xabc",
        "main_wallet_address_tag": ""
    }]);
    let r = c
        .put(admin("/customers/cust-9"))
        .json(&accounts)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let v: Value = corebanq(&c, &sim, "cust-9", "EUR")
        .await
        .json()
        .await
        .unwrap();
    assert!(v["details"]["fiat_accounts"].is_null());
    assert_eq!(v["details"]["crypto_assets"][0]["currency"], "EURØP");
    let r = c
        .put(admin("/customers/cust-9/balances/acc-1"))
        .json(&json!({"amount": "20.000000"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let v: Value = c
        .get(admin("/customers/cust-9"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["details"]["crypto_assets"][0]["balance"].to_string(),
        "20.000000"
    );

    // P100: a raw body is served verbatim.
    let raw = r#"{"userId":"u","fiatBalances":[],"cryptoBalances":[]}"#;
    let r = c
        .put(format!("{}/_sim/customers/ext-1", sim.p100_url()))
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        p100(&c, &sim, "ext-1").await.unwrap().text().await.unwrap(),
        raw
    );
    let r = c
        .delete(format!("{}/_sim/customers/ext-1", sim.p100_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        p100(&c, &sim, "ext-1").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );

    let r = c.post(admin("/reset")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(sim.total_calls(Provider::Corebanq), 0);
    assert_eq!(
        corebanq(&c, &sim, "cust-9", "EUR").await.status(),
        StatusCode::NOT_FOUND
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn shutdown_stops_both_servers() {
    let (c, sim) = (client(), sim(0).await);
    let (p, b) = (sim.p100_url(), sim.corebanq_url());
    sim.shutdown().await;
    assert!(c.get(format!("{p}/_sim/calls")).send().await.is_err());
    assert!(c.get(format!("{b}/_sim/calls")).send().await.is_err());
}
