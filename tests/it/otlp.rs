//! Traces leave `coffer serve` over OTLP/HTTP: a collector stand-in on loopback receives the
//! protobuf export, and the request's span is there, in the caller's trace, under the
//! configured service name, flushed when SIGTERM stops the process.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::HeaderMap;
use coffer_sim::SimConfig;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;

use crate::process::{ADMIN_KEY, serve};

const TRACE: &str = "5bf92f3577b34da6a3ce929d0e0e4737";

/// Each export the collector stand-in receives: its content type and decoded body.
type Received = Arc<Mutex<Vec<(String, ExportTraceServiceRequest)>>>;

async fn collector(received: Received) -> String {
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let received = Arc::clone(&received);
            async move {
                let kind = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let req = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf body");
                received.lock().unwrap().push((kind, req));
                [("content-type", "application/x-protobuf")]
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn service_name(req: &ExportTraceServiceRequest) -> Vec<String> {
    req.resource_spans
        .iter()
        .flat_map(|rs| rs.resource.iter().flat_map(|r| r.attributes.iter()))
        .filter(|kv| kv.key == "service.name")
        .filter_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_span_is_exported_over_otlp_http_in_the_callers_trace() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let received: Received = Arc::default();
    let collector_url = collector(Arc::clone(&received)).await;
    let sim = coffer_sim::start(SimConfig::default()).await.unwrap();
    let mut server = serve(
        &sim.p100_url(),
        &sim.config().p100_api_key,
        // A trailing slash on the base URL is allowed: the path is its `/v1/traces`.
        &format!(
            "[telemetry]\notlp_endpoint = \"{collector_url}/\"\nservice_name = \"coffer-otlp-test\""
        ),
    );
    let r = reqwest::Client::new()
        .get(format!("http://{}/v2/customers?limit=5", server.addr))
        .header("x-api-key", ADMIN_KEY)
        .header("traceparent", format!("00-{TRACE}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // The batch exporter flushes at shutdown: stop the process as a platform does.
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let exit = tokio::task::spawn_blocking(move || server.child.wait().unwrap())
        .await
        .unwrap();
    assert!(exit.success(), "{exit:?}");

    sim.shutdown().await;
    let received = received.lock().unwrap().clone();
    assert!(!received.is_empty(), "no export reached the collector");
    for (kind, _) in received.iter() {
        assert_eq!(kind, "application/x-protobuf");
    }
    let trace = hex(TRACE);
    let in_trace: Vec<(&str, Vec<String>)> = received
        .iter()
        .flat_map(|(_, req)| {
            let names = service_name(req);
            req.resource_spans
                .iter()
                .flat_map(|rs| rs.scope_spans.iter().flat_map(|ss| ss.spans.iter()))
                .filter(|s| s.trace_id == trace)
                .map(move |s| (s.name.as_str(), names.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        in_trace.iter().any(|(name, _)| *name == "request"),
        "spans in the caller's trace: {in_trace:?}"
    );
    for (_, names) in &in_trace {
        assert_eq!(names, &["coffer-otlp-test".to_owned()]);
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
