//! The P100 adapter over real HTTP against recorded bodies (seed 000) and every error path.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use coffer_core::{
    BalanceProvider, ProviderError, ProviderErrorKind as K, ProviderSnapshot, Status,
};
use coffer_provider_kit::testing::{Canned, raw_server, refused_url};
use coffer_provider_p100::{P100Config, P100Provider, build};

const SEED: &str = include_str!("fixtures/p100_balances.json");
const KEY: &str = "test-key-5f1c9a";
const SEED_USER: &str = "660a95b2-a486-4406-a90b-e3bcf7c74ecc";

fn provider(base: &str) -> Arc<dyn BalanceProvider> {
    build("p100", base, KEY, Duration::from_secs(5)).unwrap()
}

async fn fetch_from(canned: Canned) -> Result<ProviderSnapshot, ProviderError> {
    let (base, _) = canned.serve().await;
    provider(&base).fetch("u-1").await
}

async fn error_from(canned: Canned) -> ProviderError {
    fetch_from(canned).await.expect_err("an error")
}

#[tokio::test]
async fn seed_body_maps_exactly() {
    let (base, seen) = Canned::json(200, SEED).serve().await;
    let p = provider(&base);
    assert_eq!((p.id(), p.kind()), ("p100", "p100"));
    let s = p.fetch(SEED_USER).await.unwrap();

    let seen = seen.lock().unwrap();
    assert_eq!(
        seen[0].path_and_query,
        format!("/v1/user/{SEED_USER}/balances")
    );
    assert_eq!(seen[0].headers.get("x-api-key").unwrap(), KEY);

    // Seed 000: userId is not the externalUserId we called with.
    assert_eq!(
        s.provider_customer_ref.as_deref(),
        Some("5f8d1243-105f-43a2-bf9e-bfc7e97bac41")
    );
    assert!(s.rejected.is_empty(), "{:?}", s.rejected);
    let codes: Vec<_> = s.accounts.iter().map(|a| a.currency.code()).collect();
    assert_eq!(
        codes,
        ["EUR", "DOGE", "LTC", "USDC", "BTC", "ETH", "POL", "EURC"]
    );

    let eur = &s.accounts[0];
    assert_eq!(
        eur.provider_account_id,
        "997d954c-529c-453d-b8b4-d35cb8710538"
    );
    assert!(!eur.is_crypto);
    assert_eq!((eur.status, eur.active), (Status::Active, true));
    assert_eq!(eur.balance.to_string(), "0.00");
    let rate = eur.provider_rate.as_ref().unwrap();
    assert_eq!(
        (rate.rate.to_string().as_str(), rate.quote.code()),
        ("1", "EUR")
    );
    assert!(eur.wallets.is_empty());

    let by = |code: &str| {
        s.accounts
            .iter()
            .find(|a| a.currency.code() == code)
            .unwrap()
    };
    let usdc = by("USDC");
    assert!(usdc.is_crypto);
    assert_eq!(usdc.balance.to_string(), "3.000000");
    assert_eq!(
        usdc.provider_rate.as_ref().unwrap().rate.to_string(),
        "0.858814"
    );
    // The seed's crypto balances carry no status: unclear is pending, never active.
    assert_eq!((usdc.status, usdc.active), (Status::Pending, false));
    let nets: Vec<_> = usdc.wallets.iter().map(|w| w.network.as_str()).collect();
    assert_eq!(nets, ["ethereum", "polygon"]);
    let eth = &usdc.wallets[0];
    assert_eq!(eth.address, "0x9d278eedb0d7af715658638473de7a1bb8cc7eff");
    assert_eq!(
        (eth.mainnet, eth.network_name.as_deref()),
        (Some(false), Some("sepolia"))
    );
    let money = |d: Option<rust_decimal::Decimal>| d.map(|d| d.to_string());
    assert_eq!(money(eth.withdrawal_fee).as_deref(), Some("10"));
    assert_eq!(money(eth.withdrawal_min).as_deref(), Some("1"));
    assert_eq!(money(eth.deposit_min).as_deref(), Some("5"));
    let poly = &usdc.wallets[1];
    assert_eq!(poly.network_name.as_deref(), Some("amoy"));
    assert_eq!(money(poly.withdrawal_fee).as_deref(), Some("0.5"));
    assert_eq!(money(poly.deposit_min).as_deref(), Some("0"));

    assert_eq!(
        by("DOGE").provider_rate.as_ref().unwrap().rate.to_string(),
        "0.09872368"
    );
    assert_eq!(
        by("BTC").provider_rate.as_ref().unwrap().rate.to_string(),
        "69258.93415658"
    );
    assert_eq!(by("BTC").balance.to_string(), "0.00000000");
    assert_eq!(
        money(by("BTC").wallets[0].withdrawal_min).as_deref(),
        Some("0.000001")
    );
    assert_eq!(
        money(by("POL").wallets[0].withdrawal_min).as_deref(),
        Some("0.00005")
    );
    assert_eq!(
        by("ETH").provider_rate.as_ref().unwrap().rate.to_string(),
        "1940.36699474"
    );
}

#[tokio::test]
async fn external_id_is_one_percent_encoded_segment_under_the_base_path() {
    let (base, seen) = Canned::json(200, SEED).serve().await;
    provider(&format!("{base}/partner/"))
        .fetch("a b/c?d#e")
        .await
        .unwrap();
    assert_eq!(
        seen.lock().unwrap()[0].path_and_query,
        "/partner/v1/user/a%20b%2Fc%3Fd%23e/balances"
    );
}

#[tokio::test]
async fn ids_that_would_change_the_path_are_refused_before_sending() {
    let (base, seen) = Canned::json(200, SEED).serve().await;
    for id in ["", ".", ".."] {
        let e = provider(&base).fetch(id).await.expect_err(id);
        assert_eq!(e.kind, K::InvalidRequest);
    }
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn awkward_numbers_arrive_exactly() {
    let body = r#"{"userId":"u","cryptoBalances":[
        {"id":"a","amount":"12345678901234.12345678","name":"btc","rate":9.872368e-2},
        {"id":"b","amount":"12345678901234567890","name":"eure","rate":1.0000000000000000001},
        {"id":"c","amount":12345678901234.12345678,"name":"eurøp","rate":1e-7,"status":"ACTIVE"}]}"#;
    let s = fetch_from(Canned::json(200, body)).await.unwrap();
    assert!(s.rejected.is_empty(), "{:?}", s.rejected);
    let got: Vec<_> = s
        .accounts
        .iter()
        .map(|a| {
            (
                a.currency.code(),
                a.balance.to_string(),
                a.provider_rate.as_ref().unwrap().rate.to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("BTC", "12345678901234.12345678".into(), "0.09872368".into()),
            (
                "EURe",
                "12345678901234567890".into(),
                "1.0000000000000000001".into()
            ),
            (
                "EURØP",
                "12345678901234.12345678".into(),
                "0.0000001".into()
            ),
        ]
    );
}

#[tokio::test]
async fn unknown_fields_and_missing_optional_fields_are_fine() {
    let body = r#"{"userId":"u","extra":{"x":[1,2]},"fiatBalances":[
        {"id":"f","amount":"10.50","name":"usd","status":"SUSPENDED","iban":"DE00","new":true}],
      "cryptoBalances":[
        {"id":"c1","amount":"1.5","name":"sol"},
        {"id":"c2","amount":"2","name":"xyz","rate":null,"status":"WAITING_TO_BE_ACTIVATED","networkConfig":null},
        {"id":"c3","amount":"3","name":"usdt","networkConfig":{"tron":{"wallet":"T1","memo":"m"},"eth":{"name":"nowallet"}}}]}"#;
    let s = fetch_from(Canned::json(200, body)).await.unwrap();
    assert!(s.rejected.is_empty(), "{:?}", s.rejected);
    let f = &s.accounts[0];
    assert_eq!(
        (f.balance.to_string().as_str(), f.status, f.active),
        ("10.50", Status::Suspended, false)
    );
    assert!(f.provider_rate.is_none());
    let c2 = &s.accounts[2];
    assert_eq!(c2.currency.code(), "XYZ");
    assert!(!c2.currency.is_known());
    assert_eq!(c2.status, Status::Pending);
    let c3 = &s.accounts[3];
    assert_eq!(
        c3.wallets.len(),
        1,
        "a network without a wallet address is no wallet"
    );
    assert_eq!(
        (
            c3.wallets[0].network.as_str(),
            c3.wallets[0].address.as_str()
        ),
        ("tron", "T1")
    );
    assert_eq!(c3.wallets[0].withdrawal_fee, None);
}

#[tokio::test]
async fn one_malformed_balance_is_rejected_and_the_others_map() {
    let body = r#"{"userId":"u","fiatBalances":[
        {"id":"ok1","amount":"1.00","name":"eur","rate":1,"status":"ACTIVE"},
        {"id":"bad-amount","amount":"12,50","name":"eur"},
        {"amount":"1.00","name":"eur"},
        {"id":"bool-amount","amount":true,"name":"eur"}],
      "cryptoBalances":[
        {"id":"bad-rate","amount":"1","name":"btc","rate":"fast"},
        {"id":"bad-fee","amount":"1","name":"btc","networkConfig":{"btc":{"wallet":"w","withdrawal":{"feeWithdrawal":"x"}}}},
        {"id":"no-name","amount":"1"},
        "not an object",
        {"id":"ok2","amount":"0.5","name":"eth"}]}"#;
    let s = fetch_from(Canned::json(200, body)).await.unwrap();
    let ids: Vec<_> = s
        .accounts
        .iter()
        .map(|a| a.provider_account_id.as_str())
        .collect();
    assert_eq!(ids, ["ok1", "ok2"]);
    let reasons: Vec<_> = s
        .rejected
        .iter()
        .map(|r| (r.provider_account_id.as_deref(), r.reason.as_str()))
        .collect();
    let expect: [(Option<&str>, &str); 7] = [
        (
            Some("bad-amount"),
            "fiatBalances[1]: amount: `12,50` is not a decimal number",
        ),
        (None, "fiatBalances[2]: missing field `id`"),
        (
            Some("bool-amount"),
            "fiatBalances[3]: amount: invalid type: boolean `true`",
        ),
        (Some("bad-rate"), "cryptoBalances[0]: rate: `fast`"),
        (
            Some("bad-fee"),
            "cryptoBalances[1]: networkConfig.btc.withdrawal.feeWithdrawal: `x`",
        ),
        (Some("no-name"), "cryptoBalances[2]: missing field `name`"),
        (None, "cryptoBalances[3]: invalid type: string"),
    ];
    assert_eq!(reasons.len(), expect.len(), "{reasons:#?}");
    for ((id, reason), (want_id, want)) in reasons.iter().zip(expect) {
        assert_eq!(*id, want_id);
        assert!(
            reason.starts_with(want),
            "{reason} should start with {want}"
        );
    }
}

#[tokio::test]
async fn bodies_that_are_not_balances_are_malformed() {
    let e = error_from(Canned::json(200, "{not json")).await;
    assert_eq!(
        (e.kind, e.retryable, e.status),
        (K::MalformedResponse, false, Some(200))
    );
    let e = error_from(Canned::json(200, r#"{"fiatBalances":{"id":"x"}}"#)).await;
    assert_eq!(e.kind, K::MalformedResponse);
    let e = error_from(Canned::json(200, "")).await;
    assert_eq!(e.kind, K::MalformedResponse);
    // Cut mid-way with a matching Content-Length: the JSON ends early.
    let e = error_from(Canned::json(200, &SEED[..SEED.len() / 2])).await;
    assert_eq!((e.kind, e.retryable), (K::MalformedResponse, true));
}

#[tokio::test]
async fn a_body_cut_by_the_connection_is_malformed_and_retryable() {
    let base = raw_server(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 5000\r\n\r\n{\"userId\":\"u\",\"fiat",
        Duration::ZERO,
    )
    .await;
    let e = provider(&base).fetch("u-1").await.expect_err("cut");
    assert_eq!(
        (e.kind, e.retryable, e.status),
        (K::MalformedResponse, true, Some(200)),
        "{e}"
    );
}

#[tokio::test]
async fn a_dropped_connection_is_a_retryable_connection_error() {
    let base = raw_server(b"", Duration::ZERO).await;
    let e = provider(&base).fetch("u-1").await.expect_err("dropped");
    assert_eq!((e.kind, e.retryable), (K::Connection, true), "{e}");
}

#[tokio::test]
async fn refused_connection_is_a_retryable_connection_error() {
    let e = provider(&refused_url().await)
        .fetch("u-1")
        .await
        .expect_err("refused");
    assert_eq!(
        (e.kind, e.retryable, e.status),
        (K::Connection, true, None),
        "{e}"
    );
}

#[tokio::test]
async fn slow_answers_time_out() {
    let (base, _) = Canned::json(200, SEED)
        .delay(Duration::from_secs(3))
        .serve()
        .await;
    let p = build("p100", &base, KEY, Duration::from_millis(200)).unwrap();
    let started = std::time::Instant::now();
    let e = p.fetch("u-1").await.expect_err("timeout");
    assert_eq!((e.kind, e.retryable), (K::Timeout, true), "{e}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_slow_body_times_out() {
    let base = raw_server(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 5000\r\n\r\n{\"userId\":",
        Duration::from_secs(3),
    )
    .await;
    let p = build("p100", &base, KEY, Duration::from_millis(300)).unwrap();
    let e = p.fetch("u-1").await.expect_err("timeout");
    assert_eq!((e.kind, e.retryable), (K::Timeout, true), "{e}");
}

#[tokio::test]
async fn access_denied_tells_the_three_causes_apart() {
    for (xo, words) in [
        ("xo1", "no API key"),
        ("xo2", "rejected the API key"),
        ("xo3", "IP address"),
    ] {
        let e = error_from(Canned::new(401, format!("Access Denied. {xo}"))).await;
        assert_eq!((e.kind, e.retryable, e.status), (K::Auth, false, Some(401)));
        assert_eq!(e.code.as_deref(), Some(xo));
        assert!(e.message.contains(words), "{}", e.message);
        assert!(!e.message.contains(KEY));
    }
    let e = error_from(Canned::new(401, "")).await;
    assert_eq!((e.kind, e.code), (K::Auth, None));
}

fn p100_error(status: u16, code: &str) -> Canned {
    Canned::json(
        status,
        format!(
            r#"{{"errorCode":"{code}","errorName":"NAME_{code}","errorMessage":"message of {code}"}}"#
        ),
    )
}

#[tokio::test]
async fn business_codes_map_by_code_not_by_status() {
    let cases = [
        (404, "P412", K::UnknownCustomer, false),
        (400, "P459", K::CustomerNotVerified, false),
        (400, "P403", K::InvalidRequest, false),
        (400, "P500", K::Unavailable, true),
        (400, "P501", K::Unavailable, true),
        (500, "P777", K::Unavailable, true),
        (400, "P777", K::Unexpected, false),
    ];
    for (status, code, kind, retryable) in cases {
        let e = error_from(p100_error(status, code)).await;
        assert_eq!(
            (e.kind, e.retryable, e.status),
            (kind, retryable, Some(status)),
            "{code}"
        );
        assert_eq!(e.code.as_deref(), Some(code));
        assert!(
            e.message.contains(&format!("message of {code}")),
            "{}",
            e.message
        );
    }
}

#[tokio::test]
async fn p501_backs_off_with_or_without_retry_after() {
    let e = error_from(p100_error(400, "P501")).await;
    assert_eq!(
        e.retry_after,
        Some(coffer_provider_p100::client::P501_BACKOFF)
    );
    let e = error_from(p100_error(400, "P501").header("retry-after", "30")).await;
    assert_eq!(e.retry_after, Some(Duration::from_secs(30)));
}

#[tokio::test]
async fn rate_limits_carry_retry_after_in_seconds_or_as_a_date() {
    let e = error_from(Canned::new(429, "slow down").header("retry-after", "12")).await;
    assert_eq!(
        (e.kind, e.retryable, e.retry_after),
        (K::RateLimited, true, Some(Duration::from_secs(12)))
    );
    let at = (chrono::Utc::now() + chrono::Duration::seconds(90))
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let e = error_from(Canned::new(429, "").header("retry-after", at)).await;
    let wait = e.retry_after.unwrap();
    assert!(
        wait > Duration::from_secs(80) && wait <= Duration::from_secs(90),
        "{wait:?}"
    );
    let e = error_from(Canned::new(429, "")).await;
    assert_eq!((e.kind, e.retry_after), (K::RateLimited, None));
}

#[tokio::test]
async fn server_errors_are_unavailable_and_retryable() {
    for status in [500, 502, 503, 504] {
        let e =
            error_from(Canned::new(status, "<html>bad gateway</html>").header("retry-after", "3"))
                .await;
        assert_eq!(
            (e.kind, e.retryable, e.status),
            (K::Unavailable, true, Some(status))
        );
        assert_eq!(e.retry_after, Some(Duration::from_secs(3)));
    }
}

#[tokio::test]
async fn anything_else_is_unexpected_with_status_and_the_start_of_the_body() {
    let long = format!("{}{}", "ü".repeat(300), "TAIL");
    let e = error_from(Canned::new(418, long)).await;
    assert_eq!(
        (e.kind, e.retryable, e.status),
        (K::Unexpected, false, Some(418))
    );
    assert!(e.message.contains("418"));
    assert!(e.message.contains("üü"));
    assert!(!e.message.contains("TAIL"));
    assert!(e.message.len() < 600);
    // A 404 without P412 is not an unknown customer (most likely a wrong base_url).
    let e = error_from(Canned::new(404, "Not Found")).await;
    assert_eq!(e.kind, K::Unexpected);
    // Redirects are not followed: the key must not travel elsewhere.
    let e = error_from(Canned::new(302, "").header("location", "http://127.0.0.1:9/")).await;
    assert_eq!((e.kind, e.status), (K::Unexpected, Some(302)));
}

#[tokio::test]
async fn extra_headers_hook_adds_trace_context() {
    let (base, seen) = Canned::json(200, SEED).serve().await;
    let config = P100Config::new("p100", &base, KEY).unwrap();
    let p = P100Provider::new(config)
        .unwrap()
        .with_header_hook(Arc::new(|| {
            let mut h = reqwest::header::HeaderMap::new();
            h.insert(
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
                    .parse()
                    .unwrap(),
            );
            // The hook cannot replace the key.
            h.insert("x-api-key", "other".parse().unwrap());
            h
        }));
    p.fetch("u-1").await.unwrap();
    let seen = seen.lock().unwrap();
    assert!(seen[0].headers.get("traceparent").is_some());
    assert_eq!(seen[0].headers.get_all("x-api-key").iter().count(), 1);
    assert_eq!(seen[0].headers.get("x-api-key").unwrap(), KEY);
}
