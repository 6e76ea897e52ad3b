//! What adapters' integration tests share (feature `testing`, enabled in their
//! `[dev-dependencies]`): a tiny in-test HTTP server, so an adapter's real HTTP path runs
//! against recorded bodies; raw and refused servers for the answers no well-behaved server
//! sends; a log capture to prove what logs do (not) hold; property checks of every adapter's
//! parse paths over arbitrary answers (`parse`).
//! Test support: a failure to bind or serve panics, failing the test that asked.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the server saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Path and query exactly as sent (still percent-encoded).
    pub path_and_query: String,
    pub headers: HeaderMap,
}

/// A server answering every request with `status`, `headers` and `body`, after `delay`.
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Canned {
    pub fn new(status: u16, body: impl Into<String>) -> Self {
        Canned {
            status,
            headers: Vec::new(),
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Canned::new(status, body).header("content-type", "application/json")
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Serves on 127.0.0.1:0; returns the base URL and the log of requests.
    pub async fn serve(self) -> (String, Arc<Mutex<Vec<Seen>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let canned = Arc::new(self);
        let router = Router::new().fallback(move |req: Request| {
            let canned = canned.clone();
            let log = log.clone();
            async move {
                let path_and_query = req
                    .uri()
                    .path_and_query()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default();
                log.lock().expect("request log").push(Seen {
                    path_and_query,
                    headers: req.headers().clone(),
                });
                tokio::time::sleep(canned.delay).await;
                let mut response = Response::builder()
                    .status(StatusCode::from_u16(canned.status).expect("a valid HTTP status"));
                for (name, value) in &canned.headers {
                    response = response.header(*name, value.as_str());
                }
                response
                    .body(Body::from(canned.body.clone()))
                    .expect("a valid response")
            }
        });
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
        (format!("http://{addr}"), seen)
    }
}

/// A raw TCP server that reads the request head, writes `raw` as is, waits `then_wait` and
/// closes: for answers no well-behaved HTTP server would send.
pub async fn raw_server(raw: &'static [u8], then_wait: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = socket.write_all(raw).await;
                let _ = socket.flush().await;
                tokio::time::sleep(then_wait).await;
            });
        }
    });
    format!("http://{addr}")
}

/// A loopback port nobody listens on.
pub async fn refused_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    drop(listener);
    format!("http://{addr}")
}

/// A `MakeWriter` collecting every log line, to prove what logs do (not) hold.
#[derive(Clone, Default)]
pub struct Capture(pub Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log capture").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    /// Makes this capture the current thread's subscriber, at every level, without colours,
    /// until the guard drops.
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log capture")).into_owned()
    }
}

pub mod parse;

/// Conformance checks every adapter runs against its simulator in `coffer-sim`, written once
/// (after object_store's `integration.rs`): what they assert is the same for every provider.
pub mod sim {
    use std::time::Duration;

    use coffer_core::{BalanceProvider, ProviderErrorKind as K};
    use coffer_sim::{Fault, Provider, RetryAfter, SimHandle, Target};
    use proptest::prelude::*;
    use rust_decimal::Decimal;

    /// Decimals of every scale a provider could send, including awkward ones: up to 20
    /// significant digits and scale 20, 22 digits with 8 decimals, `0.09872368`, zeros with and
    /// without a scale.
    pub fn decimals() -> impl Strategy<Value = Decimal> {
        prop_oneof![
            (any::<i64>(), 0u32..=18).prop_map(|(m, s)| Decimal::new(m, s)),
            (0i128..100_000_000_000_000_000_000, 0u32..=20)
                .prop_map(|(m, s)| Decimal::from_i128_with_scale(m, s)),
            Just(Decimal::from_i128_with_scale(
                1_234_567_890_123_412_345_678,
                8
            )),
            Just(Decimal::new(9_872_368, 8)),
            Just(Decimal::new(0, 8)),
            Just(Decimal::ZERO),
        ]
    }

    /// A proptest runner for `cases` cases that writes no regression files.
    pub fn runner(cases: u32) -> proptest::test_runner::TestRunner {
        proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
            cases,
            failure_persistence: None,
            ..proptest::test_runner::Config::default()
        })
    }

    /// 429 with `Retry-After` in seconds and as an HTTP date; the fault gone, the customer is
    /// served again; removed, it is unknown.
    pub async fn rate_limits_recovery_and_removal(
        sim: &SimHandle,
        which: Provider,
        provider: &dyn BalanceProvider,
        customer: &str,
    ) {
        let rate_limited = |retry_after| Some(Fault::RateLimited { retry_after });
        sim.set_fault(
            which,
            Target::customer(customer),
            rate_limited(RetryAfter::Seconds(5)),
        );
        let e = provider.fetch(customer).await.expect_err("rate limited");
        assert_eq!(e.retry_after, Some(Duration::from_secs(5)));
        let at = chrono::Utc::now() + chrono::Duration::seconds(60);
        sim.set_fault(
            which,
            Target::customer(customer),
            rate_limited(RetryAfter::HttpDate(at)),
        );
        let e = provider.fetch(customer).await.expect_err("rate limited");
        let wait = e.retry_after.expect("a Retry-After date");
        assert!(
            wait > Duration::from_secs(50) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );

        sim.set_fault(which, Target::customer(customer), None);
        assert!(provider.fetch(customer).await.is_ok(), "the fault is gone");
        sim.remove_customer(which, customer);
        let e = provider.fetch(customer).await.expect_err("removed");
        assert_eq!(e.kind, K::UnknownCustomer);
    }

    /// A body slower than the provider's timeout, and headers later than it, are timeouts.
    /// `provider` must have a timeout well under 2 s.
    pub async fn slow_answers_time_out(
        sim: &SimHandle,
        which: Provider,
        provider: &dyn BalanceProvider,
        customer: &str,
    ) {
        for fault in [
            Fault::SlowBody(Duration::from_secs(2)),
            Fault::Latency(Duration::from_secs(2)),
        ] {
            sim.set_fault(which, Target::customer(customer), Some(fault.clone()));
            let e = provider.fetch(customer).await.expect_err("too slow");
            assert_eq!(e.kind, K::Timeout, "{fault:?}");
        }
    }
}
