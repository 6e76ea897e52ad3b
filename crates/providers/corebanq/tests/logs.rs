//! Logs and errors never hold the token. Alone in its own test binary: tracing caches callsite
//! interest process-wide, so a scoped subscriber only sees everything when no other test thread
//! runs the same callsites.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use coffer_provider_corebanq::build;
use coffer_provider_kit::testing::{Canned, Capture, refused_url};

const SEED: &str = include_str!("fixtures/corebanq_balance.json");
const TOKEN: &str = "test-token-8d2e71";

#[tokio::test]
async fn logs_and_errors_never_hold_the_token() {
    let capture = Capture::default();
    let _guard = capture.install();

    let mut errors = Vec::new();
    for canned in [
        Canned::json(200, SEED),
        Canned::json(
            401,
            r#"{"error":"unauthorized","message":"bad token","details":{}}"#,
        ),
        Canned::json(
            400,
            r#"{"error":"bad_request","message":"customer_id","details":{}}"#,
        ),
        Canned::new(500, "boom"),
        Canned::json(
            200,
            r#"{"details":{"fiat_accounts":[{"id":"x","currency":"EUR","balance":"bad"}]}}"#,
        ),
    ] {
        let (base, _) = canned.serve().await;
        let p = build("bank", &base, TOKEN, Duration::from_secs(5), None).unwrap();
        if let Err(e) = p.fetch("c-1").await {
            errors.push(format!("{e} {e:?}"));
        }
    }
    let p = build(
        "bank",
        &refused_url().await,
        TOKEN,
        Duration::from_secs(1),
        None,
    )
    .unwrap();
    errors.push(format!("{:?}", p.fetch("c-1").await.unwrap_err()));

    let logs = capture.text();
    assert!(logs.contains("provider.fetch"), "spans are logged: {logs}");
    assert!(logs.contains("latency_ms"), "{logs}");
    // The kit logs each outcome once, naming the provider, inside the span.
    assert!(logs.contains("Corebanq balances call failed"), "{logs}");
    assert!(logs.contains("Corebanq balance rejected"), "{logs}");
    assert!(
        logs.contains("Corebanq says our balance request is invalid"),
        "400 is logged loudly"
    );
    assert!(!logs.contains(TOKEN), "a log holds the token: {logs}");
    for e in errors {
        assert!(!e.contains(TOKEN), "an error holds the token: {e}");
    }
}
