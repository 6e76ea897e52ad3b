//! Building the HTTP app: routes, middleware, and serving with graceful shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use coffer_store::Store;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::KeyResolver;
use crate::config::Config;
use crate::fresh::Freshness;
use crate::limiter::KeyLimiter;
use crate::providers::Providers;
use crate::rates::RateBook;
use crate::routes;
use crate::state::{AppState, Inner};
use crate::telemetry::REQUEST_ID;

#[derive(OpenApi)]
#[openapi(
    info(title = "Coffer", description = "Account balances from every provider, in one exact account model."),
    components(schemas(crate::error::ErrorBody)),
    modifiers(&SecurityAddon),
    security(("api_key" = []), ("bearer" = [])),
    tags(
        (name = "accounts", description = "Balances and the unified account list"),
        (name = "customers", description = "Customers and their provider links (admin)"),
        (name = "rates", description = "The rate table"),
        (name = "ops", description = "Health, readiness, metrics"),
        (name = "webhooks", description = "Providers' webhooks in, and their inbox (admin)"),
        (name = "audit", description = "Every admin change and all-customer read, hash-chained (admin)"),
        (name = "events", description = "Change events out: pages, a live stream, and signed deliveries to subscriptions (admin)"),
    )
)]
struct ApiDoc;

struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))),
        );
        components.add_security_scheme(
            "webhook_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "authorization",
                "The provider's own webhook token (`webhook_secret_env`), bare or as `Bearer`",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Everything the app needs, built once at start-up.
pub struct AppParts {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub providers: Providers,
    /// `COFFER_ADMIN_KEY`, if set.
    pub bootstrap_admin_key: Option<String>,
    pub instance_id: String,
}

/// Builds the state shared by the API and the sync worker.
pub fn state(parts: AppParts) -> AppState {
    let AppParts {
        config,
        store,
        providers,
        bootstrap_admin_key,
        instance_id,
    } = parts;
    // Providers added by hand (tests, the demo) take their quotas from the config too.
    providers.apply_quotas(&config.providers);
    let providers = Arc::new(providers);
    // After a snapshot is written, other replicas drop that customer from their L1.
    let announcer = Arc::clone(&store);
    let fresh = Arc::new(
        Freshness::new(
            Arc::clone(&store),
            Arc::clone(&providers),
            config.cache.clone(),
        )
        .with_on_saved(Arc::new(move |customer: &str| {
            let store = Arc::clone(&announcer);
            let customer = customer.to_owned();
            tokio::spawn(async move {
                if let Err(e) = store.notify_changed(Some(&customer)).await {
                    tracing::debug!(error = %e, "refresh not announced to other replicas");
                }
            });
        })),
    );
    let manual = config
        .rates
        .manual
        .iter()
        .filter_map(|(c, v)| Some((coffer_core::Currency::known(c)?, v.parse().ok()?)))
        .collect();
    let base = config.base_currency();
    let derived = providers
        .all()
        .filter(|p| p.rates_are_derived())
        .map(|p| p.id().to_owned())
        .collect();
    AppState(Arc::new(Inner {
        keys: KeyResolver::new(
            Arc::clone(&store),
            bootstrap_admin_key.as_deref(),
            Duration::from_secs(30),
            config.cache.budget("keys"),
        ),
        limiter: KeyLimiter::new(
            config.server.rate_limit_per_key,
            config.server.rate_limit_burst,
        ),
        rates: RateBook::new(base.clone(), manual, derived),
        answers: crate::answers::AnswerCache::new(config.cache.ttl, config.cache.budget("answers")),
        base,
        metrics: crate::metrics::handle(),
        config: Arc::new(config),
        store,
        providers,
        fresh,
        instance_id,
        webhook_wake: Arc::new(tokio::sync::Notify::new()),
        webhook_keeper: crate::webhook_keeper::Keeper::default(),
        closing: tokio::sync::watch::channel(false).0,
        draining: std::sync::atomic::AtomicBool::new(false),
    }))
}

/// The router with its OpenAPI document, and `extra` routes (the benchmarks' baseline) behind
/// the same middleware.
pub fn router(state: AppState, extra: Option<Router>) -> Router {
    let (router, api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(routes::health::healthz))
        .routes(routes!(routes::health::readyz))
        .routes(routes!(routes::health::metrics))
        .routes(routes!(routes::accounts::balance))
        .routes(routes!(routes::accounts::list))
        .routes(routes!(routes::accounts::get_account))
        .routes(routes!(routes::series::balance_history))
        .routes(routes!(routes::changes::account_history))
        .routes(routes!(routes::customers::create, routes::customers::list))
        .routes(routes!(
            routes::customers::get,
            routes::customers::update,
            routes::customers::delete
        ))
        .routes(routes!(routes::customers::refresh))
        .routes(routes!(routes::rates::get_rates, routes::rates::put_rates))
        .routes(routes!(crate::webhooks::receive))
        .routes(routes!(crate::webhooks::admin::list))
        .routes(routes!(crate::webhooks::admin::replay))
        .routes(routes!(routes::status::status))
        .routes(routes!(routes::audit::list))
        .routes(routes!(routes::events::list))
        .routes(routes!(
            routes::subscriptions::create,
            routes::subscriptions::list
        ))
        .routes(routes!(routes::subscriptions::delete))
        .routes(routes!(routes::subscriptions::deliveries))
        .routes(routes!(routes::alerts::create, routes::alerts::list))
        .routes(routes!(routes::alerts::get, routes::alerts::delete))
        .split_for_parts();
    let ctx = crate::openapi::Context {
        providers: state.providers.ids().map(str::to_owned).collect(),
        max_page_size: state.config.server.max_page_size,
        base: state.base.code().to_owned(),
    };
    let api = Arc::new(crate::openapi::document(&api, &ctx));
    let cfg = Arc::clone(&state.config);
    let router = router
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let api = Arc::clone(&api);
                async move { axum::Json(api.as_ref().clone()) }
            }),
        )
        .merge(crate::console::router())
        .with_state(state.clone())
        .merge(extra.unwrap_or_default())
        .layer(middleware::from_fn_with_state(state, crate::audit::reads));
    with_middleware(router, &cfg.server, cfg.log.access)
}

/// Every route's middleware, outermost last: request id, trace span, metrics, the request's
/// deadline, CORS, compression, and the panic guard.
fn with_middleware(router: Router, cfg: &crate::config::ServerConfig, access_log: bool) -> Router {
    router
        // A panic in a handler is a 500 with the error body, never a dropped connection.
        .layer(CatchPanicLayer::custom(crate::error::panic_response))
        .layer(CompressionLayer::new())
        .layer(cors(&cfg.cors_origins))
        .layer(middleware::from_fn_with_state(
            cfg.request_timeout,
            deadline,
        ))
        // Outside the deadline, so requests that run out of time are counted too.
        .layer(middleware::from_fn_with_state(access_log, record_metrics))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req
                .headers()
                .get(REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            let span = tracing::info_span!(
                "request",
                method = %req.method(),
                uri = %req.uri().path(),
                request_id = %id,
                trace_id = tracing::field::Empty,
                span_id = tracing::field::Empty,
            );
            crate::telemetry::set_parent_from(&span, req.headers());
            crate::telemetry::record_trace_ids(&span, req.headers());
            span
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

fn cors(origins: &[String]) -> CorsLayer {
    if origins.is_empty() {
        return CorsLayer::new();
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([
            http::header::AUTHORIZATION,
            http::header::CONTENT_TYPE,
            HeaderName::from_static("x-api-key"),
        ])
}

/// `server.request_timeout`, in one place: past it the client gets the error body (the
/// loader answers before, with what it has: see `fresh.rs`).
async fn deadline(
    axum::extract::State(limit): axum::extract::State<Duration>,
    req: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => crate::error::ApiError::Timeout(limit).into_response(),
    }
}

/// Counts and times every request; with `log.access`, one `info` line per request too (inside
/// the request's span, so it carries the request and trace ids).
async fn record_metrics(
    axum::extract::State(access_log): axum::extract::State<bool>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().to_string();
    let resp = next.run(req).await;
    let (status, elapsed) = (resp.status().as_u16(), started.elapsed());
    crate::metrics::http_request(&route, &method, status, elapsed);
    if access_log {
        tracing::info!(
            target: "coffer::access",
            %method,
            %route,
            status,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "request served"
        );
    }
    resp
}

/// Serves until `shutdown` resolves, then drains requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; draining requests in flight");
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    fn app(timeout: Duration) -> Router {
        let cfg = crate::config::ServerConfig {
            request_timeout: timeout,
            ..Default::default()
        };
        let router = Router::new()
            .route(
                "/slow",
                axum::routing::get(|| async {
                    std::future::pending::<()>().await;
                    "never"
                }),
            )
            .route(
                "/panics",
                axum::routing::get(|| async {
                    let answers: Vec<&str> = Vec::new();
                    // An index out of bounds: a handler bug.
                    answers[std::hint::black_box(3)]
                }),
            );
        with_middleware(router, &cfg, true)
    }

    async fn call(app: Router, path: &str) -> (u16, serde_json::Value) {
        let resp = app
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("an answer");
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    // Past `server.request_timeout` the answer was an empty 503 (tower-http's TimeoutLayer).
    #[tokio::test]
    async fn a_request_out_of_time_gets_the_error_body_and_is_counted() {
        let metrics = crate::metrics::handle();
        let (status, body) = call(app(Duration::from_millis(50)), "/slow").await;
        assert_eq!(status, 503);
        assert_eq!(body["error"], "timeout", "{body}");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("server.request_timeout")),
            "{body}"
        );
        // The metrics layer sat inside the timeout once: such requests were never counted.
        let text = metrics.render();
        assert!(
            text.lines()
                .any(|l| l.starts_with("coffer_http_requests_total")
                    && l.contains("route=\"/slow\"")
                    && l.contains("status=\"503\"")),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_panicking_handler_gets_a_500_with_the_error_body() {
        let (status, body) = call(app(Duration::from_secs(5)), "/panics").await;
        assert_eq!(status, 500);
        assert_eq!(body["error"], "internal", "{body}");
    }
}
