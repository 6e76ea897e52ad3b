//! The Corebanq adapter over real HTTP against recorded bodies (seed 004) and every error path.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use coffer_core::{
    BalanceProvider, Currency, ProviderError, ProviderErrorKind as K, ProviderSnapshot, Status,
};
use coffer_provider_corebanq::{
    ApiKey, CorebanqAuth, CorebanqConfig, CorebanqProvider, Secret, build,
};
use coffer_provider_kit::testing::{Canned, raw_server, refused_url};

const SEED: &str = include_str!("fixtures/corebanq_balance.json");
const SEED_ERROR: &str = include_str!("fixtures/corebanq_error.json");
const TOKEN: &str = "test-token-8d2e71";
const SEED_CUSTOMER: &str = "497f6eca-6276-4993-bfeb-53cbbbba6f08";

fn provider(base: &str) -> Arc<dyn BalanceProvider> {
    build("bank", base, TOKEN, Duration::from_secs(5), None).unwrap()
}

async fn fetch_from(canned: Canned) -> Result<ProviderSnapshot, ProviderError> {
    let (base, _) = canned.serve().await;
    provider(&base).fetch("c-1").await
}

async fn error_from(canned: Canned) -> ProviderError {
    fetch_from(canned).await.expect_err("an error")
}

fn accounts_body(fiat: &str, crypto: &str) -> String {
    format!(
        r#"{{"total_balance":1,"currency":"EUR","fiat_balance":1,"crypto_balance":0,
            "details":{{"fiat_accounts":{fiat},"crypto_assets":{crypto}}}}}"#
    )
}

#[tokio::test]
async fn seed_body_maps_exactly() {
    let (base, seen) = Canned::json(200, SEED).serve().await;
    let p = provider(&base);
    assert_eq!((p.id(), p.kind()), ("bank", "corebanq"));
    let s = p.fetch(SEED_CUSTOMER).await.unwrap();

    let seen = seen.lock().unwrap();
    assert_eq!(
        seen[0].path_and_query,
        format!("/v2/accounts/balance?customer_id={SEED_CUSTOMER}&currency=EUR&details=true")
    );
    assert_eq!(
        seen[0].headers.get("authorization").unwrap(),
        &format!("Bearer {TOKEN}")
    );

    // Seed 004: the accounts' customer_id is Corebanq's own, not the one asked with.
    assert_eq!(
        s.provider_customer_ref.as_deref(),
        Some("8f43255d-f71e-48a0-a925-54f1dc35e89d")
    );
    assert!(s.rejected.is_empty(), "{:?}", s.rejected);
    assert_eq!(
        s.accounts.len(),
        3,
        "several accounts in one currency are all kept"
    );
    let ids: Vec<_> = s
        .accounts
        .iter()
        .map(|a| a.provider_account_id.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "f17066c7-dbf8-47d8-ada6-b828701964be",
            "c079ff7a-09d6-41af-8f19-26c322004849",
            "fc7cc3c6-6b71-495f-8ed2-358fa75133b0"
        ]
    );
    for a in &s.accounts {
        assert_eq!(a.currency.code(), "BTC");
        assert!(a.is_crypto);
        assert_eq!(a.balance.to_string(), "0");
        assert_eq!(a.status, Status::Active);
        assert_eq!(a.provider_rate, None, "balance 0: no rate");
        assert_eq!(a.iban, None);
    }
    // Seed 004: `active` and `status` disagree; both are kept.
    let active: Vec<_> = s.accounts.iter().map(|a| a.active).collect();
    assert_eq!(active, [true, false, false]);
    let w = &s.accounts[0].wallets;
    assert_eq!(w.len(), 1);
    assert_eq!(
        (
            w[0].network.as_str(),
            w[0].address.as_str(),
            w[0].tag.as_deref()
        ),
        ("main", "tb1qecx8j4kh7mfvh28hru0ckea8hzegd0984s0hdh", None)
    );
    assert!(s.accounts[1].wallets.is_empty());
}

#[tokio::test]
async fn awkward_numbers_arrive_exactly_and_rates_are_in_base_over_balance() {
    let fiat = r#"[{"id":"f1","customer_id":"cb-1","currency":"EUR","balance":12345678901234.12345678,
        "balance_in_base":12345678901234.12345678,"is_crypto":false,"active":true,"status":"active",
        "iban":"DE89370400440532013000"}]"#;
    let crypto = r#"[
        {"id":"c1","customer_id":"cb-1","currency":"doge","balance":9.872368e-2,"balance_in_base":null,"is_crypto":true,"active":true,"status":"active"},
        {"id":"c2","customer_id":"cb-1","currency":"USDC","balance":2.000000,"balance_in_base":1.717628,"active":false,"status":"suspended",
         "main_wallet_address":"rXYZ","main_wallet_address_tag":"12345"},
        {"id":"c3","customer_id":"cb-1","currency":"eure","balance":12345678901234567890,"status":"frozen"},
        {"id":"c4","customer_id":"cb-1","currency":"EURØP","balance":1e-7,"balance_in_base":0.0000001}]"#;
    let s = fetch_from(Canned::json(200, accounts_body(fiat, crypto)))
        .await
        .unwrap();
    assert!(s.rejected.is_empty(), "{:?}", s.rejected);
    assert_eq!(s.provider_customer_ref.as_deref(), Some("cb-1"));
    let got: Vec<_> = s
        .accounts
        .iter()
        .map(|a| {
            (
                a.currency.code(),
                a.balance.to_string(),
                a.provider_rate
                    .as_ref()
                    .map(|r| format!("{} {}", r.rate, r.quote)),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "EUR",
                "12345678901234.12345678".to_owned(),
                Some("1 EUR".to_owned())
            ),
            ("DOGE", "0.09872368".to_owned(), None),
            (
                "USDC",
                "2.000000".to_owned(),
                Some("0.858814 EUR".to_owned())
            ),
            ("EURe", "12345678901234567890".to_owned(), None),
            ("EURØP", "0.0000001".to_owned(), Some("1 EUR".to_owned())),
        ]
    );
    let f = &s.accounts[0];
    assert_eq!(
        (f.is_crypto, f.iban.as_deref()),
        (false, Some("DE89370400440532013000"))
    );
    let usdc = &s.accounts[2];
    assert_eq!((usdc.status, usdc.active), (Status::Suspended, false));
    assert_eq!(usdc.wallets[0].tag.as_deref(), Some("12345"));
    let eure = &s.accounts[3];
    assert_eq!(
        (eure.status, eure.active, eure.is_crypto),
        (Status::Pending, false, true)
    );
}

#[tokio::test]
async fn null_or_missing_lists_and_unknown_fields_are_fine() {
    for body in [
        accounts_body("null", "[]"),
        r#"{"total_balance":0,"currency":"EUR","details":{}}"#.to_owned(),
        r#"{"total_balance":0,"currency":"EUR"}"#.to_owned(),
        r#"{"total_balance":0,"currency":"EUR","details":{"crypto_assets":null,"new_list":[1]},"more":{}}"#.to_owned(),
    ] {
        let s = fetch_from(Canned::json(200, body.clone())).await.unwrap();
        assert!(s.accounts.is_empty() && s.rejected.is_empty(), "{body}");
    }
    let crypto =
        r#"[{"id":"x","currency":"BTC","balance":1,"metadata":{"icon_url":"u"},"whatever":[1,2]}]"#;
    let s = fetch_from(Canned::json(200, accounts_body("null", crypto)))
        .await
        .unwrap();
    let a = &s.accounts[0];
    assert_eq!(
        (a.is_crypto, a.status, a.active),
        (true, Status::Pending, false)
    );
    assert_eq!(a.provider_rate, None);
}

#[tokio::test]
async fn one_malformed_account_is_rejected_and_the_others_map() {
    let fiat = r#"[{"id":"ok1","currency":"EUR","balance":1.50},
        {"id":"bad-balance","currency":"EUR","balance":"1,50"},
        {"currency":"EUR","balance":1}]"#;
    let crypto = r#"[{"id":"bad-base","currency":"BTC","balance":1,"balance_in_base":"lots"},
        {"id":"str-balance","currency":"BTC","balance":{"v":1}},
        {"id":"no-currency","balance":1},
        {"id":"ok2","currency":"ETH","balance":0.5}]"#;
    let s = fetch_from(Canned::json(200, accounts_body(fiat, crypto)))
        .await
        .unwrap();
    let ids: Vec<_> = s
        .accounts
        .iter()
        .map(|a| a.provider_account_id.as_str())
        .collect();
    assert_eq!(ids, ["ok1", "ok2"]);
    assert_eq!(s.accounts[0].balance.to_string(), "1.50");
    let reasons: Vec<_> = s
        .rejected
        .iter()
        .map(|r| (r.provider_account_id.as_deref(), r.reason.as_str()))
        .collect();
    let expect: [(Option<&str>, &str); 5] = [
        (
            Some("bad-balance"),
            "fiat_accounts[1]: balance: `1,50` is not a decimal number",
        ),
        (None, "fiat_accounts[2]: missing field `id`"),
        (
            Some("bad-base"),
            "crypto_assets[0]: balance_in_base: `lots`",
        ),
        (
            Some("str-balance"),
            "crypto_assets[1]: balance: invalid type: map",
        ),
        (
            Some("no-currency"),
            "crypto_assets[2]: missing field `currency`",
        ),
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
async fn the_quote_currency_is_configurable_and_the_answer_says_which_it_is() {
    let (base, seen) = Canned::json(
        200,
        r#"{"total_balance":1,"currency":"USD","details":{"fiat_accounts":[{"id":"a","currency":"EUR","balance":2,"balance_in_base":2.16}]}}"#,
    )
    .serve()
    .await;
    let auth: Arc<dyn CorebanqAuth> = Arc::new(ApiKey::new("bank", Secret::new(TOKEN)).unwrap());
    let config = CorebanqConfig::new("bank", &format!("{base}/api/"), auth)
        .unwrap()
        .with_quote_currency(Currency::new("usd"));
    let s = CorebanqProvider::new(config)
        .unwrap()
        .fetch("a b&c")
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen[0].path_and_query,
        "/api/v2/accounts/balance?customer_id=a+b%26c&currency=USD&details=true"
    );
    assert_eq!(seen[0].headers.get("x-api-key").unwrap(), TOKEN);
    assert!(seen[0].headers.get("authorization").is_none());
    let rate = s.accounts[0].provider_rate.as_ref().unwrap();
    assert_eq!(
        (rate.rate.to_string().as_str(), rate.quote.code()),
        ("1.08", "USD")
    );
}

#[tokio::test]
async fn bodies_that_are_not_balances_are_malformed() {
    let e = error_from(Canned::json(200, "{not json")).await;
    assert_eq!(
        (e.kind, e.retryable, e.status),
        (K::MalformedResponse, false, Some(200))
    );
    let e = error_from(Canned::json(200, r#"{"total_balance":5,"currency":"EUR"}"#)).await;
    assert_eq!(
        e.kind,
        K::MalformedResponse,
        "details missing with a non-zero total"
    );
    let e = error_from(Canned::json(
        200,
        r#"{"details":{"crypto_assets":{"id":"x"}}}"#,
    ))
    .await;
    assert_eq!(e.kind, K::MalformedResponse);
    let e = error_from(Canned::json(200, &SEED[..SEED.len() / 2])).await;
    assert_eq!((e.kind, e.retryable), (K::MalformedResponse, true));
}

#[tokio::test]
async fn a_body_cut_by_the_connection_is_malformed_and_retryable() {
    let base = raw_server(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 5000\r\n\r\n{\"total_balance\":",
        Duration::ZERO,
    )
    .await;
    let e = provider(&base).fetch("c-1").await.expect_err("cut");
    assert_eq!((e.kind, e.retryable), (K::MalformedResponse, true), "{e}");
}

#[tokio::test]
async fn transport_failures_are_retryable() {
    let e = provider(&raw_server(b"", Duration::ZERO).await)
        .fetch("c-1")
        .await
        .unwrap_err();
    assert_eq!((e.kind, e.retryable), (K::Connection, true), "{e}");
    let e = provider(&refused_url().await)
        .fetch("c-1")
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind, e.retryable, e.status),
        (K::Connection, true, None),
        "{e}"
    );
    let (base, _) = Canned::json(200, SEED)
        .delay(Duration::from_secs(3))
        .serve()
        .await;
    let p = build("bank", &base, TOKEN, Duration::from_millis(200), None).unwrap();
    let e = p.fetch("c-1").await.unwrap_err();
    assert_eq!((e.kind, e.retryable), (K::Timeout, true), "{e}");
    let slow = raw_server(
        b"HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n{\"total_balance\":",
        Duration::from_secs(3),
    )
    .await;
    let p = build("bank", &slow, TOKEN, Duration::from_millis(300), None).unwrap();
    let e = p.fetch("c-1").await.unwrap_err();
    assert_eq!((e.kind, e.retryable), (K::Timeout, true), "{e}");
}

fn cb_error(status: u16, code: &str) -> Canned {
    Canned::json(
        status,
        format!(r#"{{"error":"{code}","message":"message of {code}","details":{{}}}}"#),
    )
}

#[tokio::test]
async fn errors_map_by_status_and_body() {
    let cases = [
        (cb_error(401, "unauthorized"), 401, K::Auth, false),
        (Canned::json(401, SEED_ERROR), 401, K::Auth, false),
        (cb_error(403, "forbidden"), 403, K::Auth, false),
        (cb_error(404, "not_found"), 404, K::UnknownCustomer, false),
        (Canned::new(404, "Not Found"), 404, K::Unexpected, false),
        (cb_error(400, "bad_request"), 400, K::InvalidRequest, false),
        (cb_error(500, "internal_error"), 500, K::Unavailable, true),
        (
            cb_error(503, "service_unavailable"),
            503,
            K::Unavailable,
            true,
        ),
        (
            Canned::new(502, "<html>bad gateway</html>"),
            502,
            K::Unavailable,
            true,
        ),
        (cb_error(409, "conflict"), 409, K::Unexpected, false),
    ];
    for (canned, status, kind, retryable) in cases {
        let e = error_from(canned).await;
        assert_eq!(
            (e.kind, e.retryable, e.status),
            (kind, retryable, Some(status)),
            "{e}"
        );
        assert!(!e.message.contains(TOKEN));
    }
    let e = error_from(cb_error(404, "not_found")).await;
    assert_eq!(e.code.as_deref(), Some("not_found"));
    assert!(e.message.contains("message of not_found"), "{}", e.message);
}

#[tokio::test]
async fn rate_limits_carry_retry_after_in_seconds_or_as_a_date() {
    let e = error_from(cb_error(429, "too_many_requests").header("retry-after", "12")).await;
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
}

#[tokio::test]
async fn anything_else_is_unexpected_with_status_and_the_start_of_the_body() {
    let long = format!("{}{}", "ü".repeat(300), "TAIL");
    let e = error_from(Canned::new(418, long)).await;
    assert_eq!((e.kind, e.status), (K::Unexpected, Some(418)));
    assert!(e.message.contains("418") && e.message.contains("üü") && !e.message.contains("TAIL"));
    let e = error_from(Canned::new(301, "").header("location", "http://127.0.0.1:9/")).await;
    assert_eq!((e.kind, e.status), (K::Unexpected, Some(301)));
}

/// A refreshing auth would look like this: it can fail, and it hears about rejections.
struct Flaky {
    fail: bool,
    rejected: AtomicUsize,
}

#[async_trait::async_trait]
impl CorebanqAuth for Flaky {
    async fn authorize(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, ProviderError> {
        if self.fail {
            return Err(ProviderError::new("", K::Auth, "token refresh failed"));
        }
        Ok(request.bearer_auth("stale"))
    }
    fn describe(&self) -> &'static str {
        "refreshing token"
    }
    async fn rejected(&self) {
        self.rejected.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn auth_is_pluggable() {
    let (base, seen) = cb_error(401, "unauthorized").serve().await;
    let flaky = Arc::new(Flaky {
        fail: false,
        rejected: AtomicUsize::new(0),
    });
    let config = CorebanqConfig::new("bank", &base, flaky.clone()).unwrap();
    let e = CorebanqProvider::new(config)
        .unwrap()
        .fetch("c-1")
        .await
        .unwrap_err();
    assert_eq!(e.kind, K::Auth);
    assert_eq!(flaky.rejected.load(Ordering::SeqCst), 1);
    assert_eq!(
        seen.lock().unwrap()[0]
            .headers
            .get("authorization")
            .unwrap(),
        "Bearer stale"
    );

    let failing = Arc::new(Flaky {
        fail: true,
        rejected: AtomicUsize::new(0),
    });
    let config = CorebanqConfig::new("bank", &base, failing).unwrap();
    let e = CorebanqProvider::new(config)
        .unwrap()
        .fetch("c-1")
        .await
        .unwrap_err();
    assert_eq!((e.kind, e.provider.as_str()), (K::Auth, "bank"));
    assert_eq!(seen.lock().unwrap().len(), 1, "no call without credentials");
}

#[tokio::test]
async fn extra_headers_hook_adds_trace_context_but_cannot_touch_credentials() {
    let (base, seen) = Canned::json(200, SEED).serve().await;
    let auth: Arc<dyn CorebanqAuth> =
        Arc::new(coffer_provider_corebanq::BearerToken::new("bank", TOKEN.into()).unwrap());
    let p = CorebanqProvider::new(CorebanqConfig::new("bank", &base, auth).unwrap())
        .unwrap()
        .with_header_hook(Arc::new(|| {
            let mut h = reqwest::header::HeaderMap::new();
            h.insert(
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
                    .parse()
                    .unwrap(),
            );
            h.insert("authorization", "Bearer other".parse().unwrap());
            h
        }));
    p.fetch("c-1").await.unwrap();
    let seen = seen.lock().unwrap();
    assert!(seen[0].headers.get("traceparent").is_some());
    assert_eq!(
        seen[0].headers.get("authorization").unwrap(),
        &format!("Bearer {TOKEN}")
    );
}
