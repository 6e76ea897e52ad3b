//! Liveness, readiness and metrics: no auth, cheap.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use crate::provider::BreakerState;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    /// `ok` or the reason the store cannot be used.
    pub store: String,
    /// Per provider: `closed`, `half_open` or `open` (circuit breaker).
    pub providers: std::collections::BTreeMap<String, String>,
    /// The replica is shutting down (SIGTERM received): it finishes what it serves, but should
    /// get no new traffic.
    pub draining: bool,
}

/// Readiness: the store answers and the replica is not shutting down. Providers are reported but do not make the replica unready:
/// with a provider down Coffer still serves stale answers, which is its job.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let store = match state.store.ping().await {
        Ok(()) => "ok".to_owned(),
        Err(e) => e.to_string(),
    };
    let providers = state
        .providers
        .all()
        .map(|p| {
            let s = match p.breaker_state() {
                BreakerState::Closed => "closed",
                BreakerState::HalfOpen => "half_open",
                BreakerState::Open => "open",
            };
            (p.id().to_owned(), s.to_owned())
        })
        .collect();
    let draining = state.draining.load(std::sync::atomic::Ordering::Relaxed);
    let ok = store == "ok" && !draining;
    let body = Readiness {
        status: if ok { "ready" } else { "not_ready" },
        store,
        providers,
        draining,
    };
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    for p in state.providers.all() {
        crate::metrics::breaker_state(p.id(), p.breaker_state().as_gauge());
    }
    for (cache, held) in state.cache_bytes() {
        crate::metrics::cache_bytes(cache, held, state.config.cache.budget(cache));
    }
    for (kind, n) in state.store.events_written() {
        crate::metrics::events_written(kind.as_str(), n);
    }
    crate::metrics::db_pool(state.store.backend(), state.store.pool_stats());
    crate::metrics::build_info();
    crate::metrics::process();
    (
        [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
