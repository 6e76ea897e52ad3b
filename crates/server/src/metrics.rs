//! Prometheus metrics. Names follow Prometheus conventions (`coffer_…_total`, `_seconds`).
//! The recorder is process-wide (one per process, shared by every app in a test binary).

use std::sync::OnceLock;
use std::time::Duration;

use coffer_core::ProviderErrorKind;
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the recorder once and returns the handle that renders `/metrics`.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            match builder.install_recorder() {
                Ok(h) => h,
                // Another recorder is installed (a test harness): render an empty registry.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}

/// `coffer_build_info`: always 1, labelled with the version, so dashboards can tell which
/// release each replica runs.
pub fn build_info() {
    gauge!("coffer_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

/// The process's own series (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
/// `process_open_fds`, `process_threads`, …), read from `/proc` at each scrape.
pub fn process() {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR
        .get_or_init(|| {
            let c = metrics_process::Collector::default();
            c.describe();
            c
        })
        .collect();
}

/// The store's connection pool, at each scrape.
pub fn db_pool(backend: &'static str, s: coffer_store::PoolStats) {
    let in_use = s.size.saturating_sub(s.idle);
    gauge!("coffer_db_pool_connections", "backend" => backend, "state" => "idle")
        .set(f64::from(s.idle));
    gauge!("coffer_db_pool_connections", "backend" => backend, "state" => "in_use")
        .set(f64::from(in_use));
    gauge!("coffer_db_pool_max_connections", "backend" => backend).set(f64::from(s.max));
}

pub fn http_request(route: &str, method: &str, status: u16, elapsed: Duration) {
    let labels = [
        ("route", route.to_owned()),
        ("method", method.to_owned()),
        ("status", status.to_string()),
    ];
    counter!("coffer_http_requests_total", &labels).increment(1);
    histogram!("coffer_http_request_duration_seconds", &labels).record(elapsed.as_secs_f64());
}

pub fn provider_call(provider: &str, error: Option<ProviderErrorKind>, elapsed: Duration) {
    let outcome = error.map_or("ok", ProviderErrorKind::as_str);
    counter!("coffer_provider_calls_total", "provider" => provider.to_owned(), "outcome" => outcome)
        .increment(1);
    histogram!("coffer_provider_call_duration_seconds", "provider" => provider.to_owned())
        .record(elapsed.as_secs_f64());
    if let Some(kind) = error {
        counter!("coffer_provider_errors_total", "provider" => provider.to_owned(), "kind" => kind.as_str())
            .increment(1);
    }
}

/// A call the open breaker refused (no call reached the provider): counted as an
/// `unavailable` error, and on its own.
pub fn breaker_refusal(provider: &str) {
    counter!("coffer_provider_errors_total", "provider" => provider.to_owned(), "kind" => ProviderErrorKind::Unavailable.as_str())
        .increment(1);
    counter!("coffer_breaker_refusals_total", "provider" => provider.to_owned()).increment(1);
}

pub fn cache(outcome: &'static str) {
    counter!("coffer_cache_requests_total", "outcome" => outcome).increment(1);
}

/// An entry a cache dropped before it was replaced or invalidated: `size` (the byte budget
/// was full) or `expired` (its time to live passed). Replacements and invalidations are not
/// evictions and are not counted.
pub fn cache_eviction(cache: &'static str, cause: moka::notification::RemovalCause) {
    use moka::notification::RemovalCause;
    let cause = match cause {
        RemovalCause::Size => "size",
        RemovalCause::Expired => "expired",
        RemovalCause::Explicit | RemovalCause::Replaced => return,
    };
    counter!("coffer_cache_evictions_total", "cache" => cache, "cause" => cause).increment(1);
}

/// The bytes a cache holds (by the weights it is bounded by) and its share of `max_bytes`.
pub fn cache_bytes(cache: &'static str, held: u64, budget: u64) {
    gauge!("coffer_cache_bytes", "cache" => cache).set(held as f64);
    gauge!("coffer_cache_budget_bytes", "cache" => cache).set(budget as f64);
}

pub fn answer_cache(hit: bool) {
    let outcome = if hit { "hit" } else { "miss" };
    counter!("coffer_answer_cache_requests_total", "outcome" => outcome).increment(1);
}

pub fn answer_flags(stale: bool, partial: bool) {
    if stale {
        counter!("coffer_stale_answers_total").increment(1);
    }
    if partial {
        counter!("coffer_partial_answers_total").increment(1);
    }
}

pub fn breaker_state(provider: &str, state: f64) {
    gauge!("coffer_circuit_breaker_state", "provider" => provider.to_owned()).set(state);
}

pub fn sync_run(provider: &str, error: Option<ProviderErrorKind>) {
    let outcome = error.map_or("ok", ProviderErrorKind::as_str);
    counter!("coffer_sync_runs_total", "provider" => provider.to_owned(), "outcome" => outcome)
        .increment(1);
    if error.is_some() {
        counter!("coffer_sync_errors_total", "provider" => provider.to_owned()).increment(1);
    }
}

pub fn sync_lag(seconds: f64) {
    gauge!("coffer_sync_lag_seconds").set(seconds);
}

/// A webhook delivery: `received`, `duplicate`, `unauthorized`, `too_large` when it arrives;
/// `processed`, `ignored`, `failed` when the inbox's processor is done with it. `provider` is
/// `unknown` for an id that is not configured, so callers cannot grow the label set.
pub fn webhook(provider: &str, outcome: &'static str) {
    counter!("coffer_webhooks_total", "provider" => provider.to_owned(), "outcome" => outcome)
        .increment(1);
}

/// Webhook deliveries the retention task deleted (`webhooks.retention`).
pub fn webhooks_pruned(n: u64) {
    counter!("coffer_webhooks_pruned_total").increment(n);
}

/// Outbox events this replica wrote, per type (the store counts them; set when `/metrics` is
/// rendered).
pub fn events_written(kind: &'static str, total: u64) {
    counter!("coffer_events_written_total", "type" => kind).absolute(total);
}

/// An event sent on a live stream (`GET /v2/events` as SSE).
pub fn event_streamed(kind: &'static str) {
    counter!("coffer_events_streamed_total", "type" => kind).increment(1);
}

/// Live event streams opened (`1.0`) or closed (`-1.0`).
pub fn event_streams(delta: f64) {
    gauge!("coffer_event_streams").increment(delta);
}

/// A subscription delivery attempt: `delivered` or `failed` (to be retried, or given up).
pub fn delivery(outcome: &'static str) {
    counter!("coffer_subscription_deliveries_total", "outcome" => outcome).increment(1);
}

/// One `threshold.crossed` written by this replica (an alert evaluated and compare-and-set).
pub fn alert_crossed() {
    counter!("coffer_alert_crossings_total").increment(1);
}
