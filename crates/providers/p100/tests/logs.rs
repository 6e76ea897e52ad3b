//! Logs and errors never hold the API key. Alone in its own test binary: tracing caches
//! callsite interest process-wide, so a scoped subscriber only sees everything when no other
//! test thread runs the same callsites.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use coffer_core::{ProviderError, ProviderSnapshot};
use coffer_provider_kit::testing::{Canned, Capture, refused_url};
use coffer_provider_p100::{P100Config, P100Provider, build};

const SEED: &str = include_str!("fixtures/p100_balances.json");
const KEY: &str = "test-key-5f1c9a";

async fn fetch_from(canned: Canned) -> Result<ProviderSnapshot, ProviderError> {
    let (base, _) = canned.serve().await;
    build("p100", &base, KEY, Duration::from_secs(5))
        .unwrap()
        .fetch("u-1")
        .await
}

fn p100_error(status: u16, code: &str) -> Canned {
    Canned::json(
        status,
        format!(r#"{{"errorCode":"{code}","errorName":"N","errorMessage":"m"}}"#),
    )
}

#[tokio::test]
async fn logs_and_errors_never_hold_the_key() {
    let capture = Capture::default();
    let _guard = capture.install();

    let mut errors = Vec::new();
    for canned in [
        Canned::json(200, SEED),
        Canned::new(401, "Access Denied. xo2"),
        p100_error(400, "P403"),
        Canned::new(500, "boom"),
        Canned::json(
            200,
            r#"{"fiatBalances":[{"id":"x","amount":"bad","name":"eur"}]}"#,
        ),
    ] {
        if let Err(e) = fetch_from(canned).await {
            errors.push(format!("{e} {e:?}"));
        }
    }
    let p = build("p100", &refused_url().await, KEY, Duration::from_secs(1)).unwrap();
    errors.push(format!("{:?}", p.fetch("u-1").await.unwrap_err()));
    let config = P100Config::new("p100", "http://127.0.0.1:9", KEY).unwrap();
    errors.push(format!(
        "{config:?} {:?}",
        P100Provider::new(config.clone()).unwrap()
    ));

    let logs = capture.text();
    assert!(logs.contains("provider.fetch"), "spans are logged: {logs}");
    // The kit logs each outcome once, naming the provider, inside the span.
    assert!(logs.contains("P100 balances call failed"), "{logs}");
    assert!(logs.contains("P100 balance rejected"), "{logs}");
    assert!(logs.contains("latency_ms"), "{logs}");
    assert!(
        logs.contains("P100 says our balances request is invalid"),
        "P403 is logged loudly"
    );
    assert!(!logs.contains(KEY), "a log holds the key: {logs}");
    for e in errors {
        assert!(!e.contains(KEY), "an error holds the key: {e}");
    }
}
