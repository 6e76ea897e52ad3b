//! Logs and traces.
//!
//! Logs: readable text by default, JSON with `log.format = "json"`; `RUST_LOG` overrides the
//! configured level. Every request runs in a span carrying its request id, so every line logged
//! while serving it names it. Secrets never reach a log line: API keys are only hashed, provider
//! keys live in `Secret` types that print `***`, and database URLs are logged through
//! [`redact_url`].
//!
//! Traces: OpenTelemetry over OTLP/HTTP (protobuf, sent by reqwest) when
//! `telemetry.otlp_endpoint` (or the standard `OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set. The W3C `traceparent` of an incoming request becomes
//! the parent of its span, and provider calls carry the current trace context out.

use std::sync::OnceLock;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt;
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

use crate::config::{LogConfig, TelemetryConfig};

/// The request id header: set (or kept) by the app's layers, echoed in answers, written in the
/// access log and the audit log.
pub const REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

static PROPAGATOR: OnceLock<TraceContextPropagator> = OnceLock::new();

fn propagator() -> &'static TraceContextPropagator {
    PROPAGATOR.get_or_init(TraceContextPropagator::new)
}

/// Keeps the trace exporter alive; flushes it when dropped (at shutdown).
#[derive(Default)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

/// Installs the global subscriber (logs, and traces when an OTLP endpoint is configured).
/// Later calls (tests) are ignored.
pub fn init(log: &LogConfig, telemetry: &TelemetryConfig) -> TelemetryGuard {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let provider =
        trace_endpoint(telemetry).and_then(|ep| match otlp_provider(ep.as_deref(), telemetry) {
            Ok(p) => Some(p),
            Err(e) => {
                let at = ep.as_deref().unwrap_or("the OTEL_EXPORTER_OTLP_* endpoint");
                eprintln!("warning: OpenTelemetry export to {at} is off: {e}");
                None
            }
        });
    let otel = provider.as_ref().map(otel_layer);
    let fmt_layer = if log.format == "json" {
        fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .boxed()
    } else {
        fmt::layer().with_target(false).boxed()
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer)
        .with(otel)
        .try_init();
    TelemetryGuard { provider }
}

/// Where traces go: `Some(Some(url))` for the configured base URL (its `/v1/traces`),
/// `Some(None)` when only the standard environment names one (the exporter reads it as the
/// OpenTelemetry specification says), `None` for no export.
fn trace_endpoint(cfg: &TelemetryConfig) -> Option<Option<String>> {
    let set = |v: Option<String>| v.filter(|e| !e.trim().is_empty());
    if let Some(base) = set(cfg.otlp_endpoint.clone()) {
        return Some(Some(format!("{}/v1/traces", base.trim_end_matches('/'))));
    }
    [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .iter()
    .any(|k| set(std::env::var(k).ok()).is_some())
    .then_some(None)
}

fn otlp_provider(
    endpoint: Option<&str>,
    cfg: &TelemetryConfig,
) -> Result<SdkTracerProvider, String> {
    // reqwest is built without a TLS crypto provider of its own: the process's must exist
    // before the exporter's client is built (an https collector).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary);
    if let Some(ep) = endpoint {
        builder = builder.with_endpoint(ep);
    }
    let exporter = builder.build().map_err(|e| e.to_string())?;
    let name = cfg
        .service_name
        .clone()
        .unwrap_or_else(|| "coffer".to_owned());
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(name)
                .build(),
        )
        .build())
}

/// A `tracing` layer that turns spans into OpenTelemetry spans of `provider`.
pub fn otel_layer<S>(
    provider: &SdkTracerProvider,
) -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("coffer"))
        .boxed()
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::try_from(key),
            http::HeaderValue::try_from(value),
        ) {
            self.0.insert(k, v);
        }
    }
}

/// Makes the W3C trace context in `headers` (if any) the parent of `span`.
pub fn set_parent_from(span: &tracing::Span, headers: &http::HeaderMap) {
    if headers.contains_key("traceparent") {
        let cx = propagator().extract(&HeaderExtractor(headers));
        let _ = span.set_parent(cx);
    }
}

/// The current span's W3C trace context as headers (`traceparent`, `tracestate`); empty when
/// tracing is off.
pub fn trace_context_headers() -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    let cx = tracing::Span::current().context();
    propagator().inject_context(&cx, &mut HeaderInjector(&mut headers));
    headers
}

/// [`trace_context_headers`] as name/value pairs (the form adapters take).
pub fn trace_context_pairs() -> Vec<(String, String)> {
    trace_context_headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect()
}

/// Records the request's W3C trace and span ids on its span, so every JSON log line written
/// while serving it carries them: this replica's own span's when traces are exported, else the
/// caller's `traceparent`, so logs still join the caller's trace.
pub fn record_trace_ids(span: &tracing::Span, headers: &http::HeaderMap) {
    use opentelemetry::trace::TraceContextExt as _;
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    if sc.is_valid() {
        span.record("trace_id", sc.trace_id().to_string());
        span.record("span_id", sc.span_id().to_string());
        return;
    }
    let parent = headers.get("traceparent").and_then(|v| v.to_str().ok());
    let mut parts = parent.unwrap_or_default().split('-');
    if let (Some(_), Some(trace), Some(parent_span)) = (parts.next(), parts.next(), parts.next())
        && trace.len() == 32
        && parent_span.len() == 16
        && trace
            .chars()
            .chain(parent_span.chars())
            .all(|c| c.is_ascii_hexdigit())
    {
        span.record("trace_id", trace);
    }
}

/// Query parameters whose values are secrets (libpq's `password`, `sslpassword`, tokens, keys).
fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["pass", "secret", "token", "key", "auth"]
        .iter()
        .any(|s| k.contains(s))
}

/// A database (or any) URL for logs: parsed, with the password of its user info and every secret
/// query parameter replaced by `***`. What cannot be parsed is not shown at all, since a
/// password could hide anywhere in it.
pub fn redact_url(raw: &str) -> String {
    let Ok(mut url) = url::Url::parse(raw) else {
        return "<a URL that cannot be parsed; not shown>".to_owned();
    };
    if url.password().is_some() && url.set_password(Some("***")).is_err() {
        return "<a URL that cannot be shown without its password>".to_owned();
    }
    if url.query_pairs().any(|(k, _)| is_secret(&k)) {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_secret(&k) {
                    "***".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact_url("postgres://u:s3cret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://coffer.db"), "sqlite://coffer.db");
        assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
    }

    // The old splitting printed these verbatim, or kept part of the password.
    #[test]
    fn no_password_survives_in_any_form() {
        let cases = [
            ("postgres://h/db?user=u&password=secret", "password=***"),
            (
                "postgres://h/db?sslmode=require&PASSWORD=secret",
                "PASSWORD=***",
            ),
            (
                "postgres://h/db?sslpassword=secret&user=u",
                "sslpassword=***",
            ),
            ("postgres://u:sec%40ret@h/db", "u:***@h"),
            ("postgres://u:s:e@c:ret@h/db", "@h/db"),
            (
                "postgresql://u:secret@h1:5432/db?application_name=x",
                "u:***@h1",
            ),
            ("postgres://u:secret@[::1]:5432/db", "u:***@[::1]"),
            ("postgres ://u:secret@h/db", "not shown"),
        ];
        for (url, expect) in cases {
            let shown = redact_url(url);
            assert!(
                !shown.contains("secret") && !shown.contains("sec%40"),
                "{url} → {shown}"
            );
            assert!(!shown.contains(":e@c:ret"), "{url} → {shown}");
            assert!(shown.contains(expect), "{url} → {shown}");
        }
    }
}
