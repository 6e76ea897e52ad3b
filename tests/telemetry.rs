//! Traces: one request yields one trace (continuing the caller's `traceparent`) whose spans
//! include the provider calls, and the trace context goes out on the provider call itself.

use coffer_testkit as common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Path;
use axum::http::HeaderMap;
use coffer_server::config::Config;
use coffer_server::providers::Providers;
use coffer_server::run::{StartOptions, start};
use opentelemetry::trace::TraceId;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tracing_subscriber::prelude::*;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// A P100 stand-in that records the `traceparent` it receives.
async fn recording_p100(seen: Arc<Mutex<Vec<String>>>) -> String {
    let app = axum::Router::new().route(
        "/v1/user/{id}/balances",
        axum::routing::get(move |Path(_id): Path<String>, headers: HeaderMap| {
            let seen = Arc::clone(&seen);
            async move {
                if let Some(tp) = headers.get("traceparent").and_then(|v| v.to_str().ok()) {
                    seen.lock().unwrap().push(tp.to_owned());
                }
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    coffer_sim::fixtures::P100_SEED_BODY,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_is_one_trace_including_provider_calls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("info"))
        .with(coffer_server::telemetry::otel_layer(&provider))
        .init();

    let seen = Arc::new(Mutex::new(Vec::new()));
    let p100_url = recording_p100(Arc::clone(&seen)).await;
    let mut providers = Providers::default();
    providers.insert(
        coffer_provider_p100::build_with_headers(
            "p100",
            &p100_url,
            "k",
            Duration::from_secs(2),
            Some(coffer_server::providers::trace_headers()),
        )
        .unwrap(),
        Duration::from_secs(2),
        0,
    );
    let mut config = Config::default();
    config.database.url = "sqlite::memory:".into();
    config.sync.enabled = false;
    let store = coffer_store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let running = start(
        config,
        StartOptions {
            bootstrap_admin_key: Some(common::ADMIN_KEY.into()),
            providers: Some(providers),
            store: Some(store),
            listener: Some(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()),
            instance_id: None,
            extra_routes: None,
        },
        false,
    )
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let url = running.url();
    let r = client
        .post(format!("{url}/v2/customers"))
        .header("x-api-key", common::ADMIN_KEY)
        .json(
            &serde_json::json!({"id": "c1", "links": [{"provider": "p100", "external_id": "u1"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let r = client
        .get(format!("{url}/v2/accounts/balance?customer_id=c1"))
        .header("x-api-key", common::ADMIN_KEY)
        .header("traceparent", format!("00-{TRACE_ID}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-request-id"));
    running.stop().await;
    provider.force_flush().unwrap();

    let trace_id = TraceId::from_hex(TRACE_ID).unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let in_trace: Vec<_> = spans
        .iter()
        .filter(|s| s.span_context.trace_id() == trace_id)
        .collect();
    let names: Vec<&str> = in_trace.iter().map(|s| s.name.as_ref()).collect();
    assert!(names.contains(&"request"), "spans in the trace: {names:?}");
    assert!(
        names.contains(&"provider.fetch"),
        "spans in the trace: {names:?}"
    );
    // The whole request is one trace: no span of this request in another trace.
    let request_spans = spans.iter().filter(|s| s.name == "provider.fetch").count();
    assert_eq!(
        request_spans,
        in_trace
            .iter()
            .filter(|s| s.name == "provider.fetch")
            .count()
    );

    // The provider saw the same trace.
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0].starts_with(&format!("00-{TRACE_ID}-")),
        "{}",
        seen[0]
    );
}
