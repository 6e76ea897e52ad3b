//! The admin API each simulator serves under `/_sim` (for its own provider). It shares its
//! state with [`crate::SimHandle`]; see the crate docs for the routes and their JSON.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use bytes::Bytes;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::fault::{Fault, Provider, Target};
use crate::generate;
use crate::model::CorebanqAccount;
use crate::state::{FaultEntry, Stored, read};
use crate::{AppState, corebanq, p100};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/calls", get(get_calls).delete(reset_calls))
        .route(
            "/faults",
            get(get_faults).put(put_fault).delete(clear_faults),
        )
        .route("/latency", get(get_latency).put(put_latency))
        .route("/customers", get(get_customers))
        .route(
            "/customers/{id}",
            get(get_customer).put(put_customer).delete(delete_customer),
        )
        .route("/customers/{id}/balances/{balance_id}", put(put_balance))
        .route("/reset", axum::routing::post(reset))
}

fn bad_request(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "bad_request", "message": message.into()})),
    )
        .into_response()
}

fn not_found(message: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": "not_found", "message": message})),
    )
        .into_response()
}

#[derive(Deserialize)]
struct CallsQuery {
    customer: Option<String>,
}

async fn get_calls(State(app): State<AppState>, Query(q): Query<CallsQuery>) -> Response {
    let calls = &app.shared.provider(app.provider).calls;
    let provider = app.provider;
    match q.customer {
        Some(c) => Json(json!({
            "provider": provider, "customer": c, "calls": calls.get(&c), "total": calls.total()
        })),
        None => {
            let customers: BTreeMap<String, u64> = calls.all().into_iter().collect();
            Json(json!({"provider": provider, "total": calls.total(), "customers": customers}))
        }
    }
    .into_response()
}

async fn reset_calls(State(app): State<AppState>) -> StatusCode {
    app.shared.provider(app.provider).calls.reset();
    StatusCode::NO_CONTENT
}

#[derive(Serialize)]
struct FaultView {
    fault: Fault,
    /// Calls left before it clears itself; `null`: until cleared.
    remaining: Option<u64>,
}

impl From<&FaultEntry> for FaultView {
    fn from(e: &FaultEntry) -> Self {
        FaultView {
            fault: e.fault.clone(),
            remaining: e.remaining(),
        }
    }
}

async fn get_faults(State(app): State<AppState>) -> Response {
    let table = read(&app.shared.provider(app.provider).faults);
    let customers: BTreeMap<&String, FaultView> = table
        .customers
        .iter()
        .map(|(k, v)| (k, FaultView::from(&**v)))
        .collect();
    let global = table.global.as_deref().map(FaultView::from);
    Json(json!({"provider": app.provider, "global": global, "customers": customers}))
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultRequest {
    /// `null` or absent: the global fault.
    #[serde(default)]
    customer: Option<String>,
    /// `null` or absent: clear.
    #[serde(default)]
    fault: Option<Fault>,
    /// Apply to the next `times` calls only.
    #[serde(default)]
    times: Option<u64>,
}

async fn put_fault(State(app): State<AppState>, body: Bytes) -> Response {
    let req: FaultRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(format!("invalid fault request: {e}")),
    };
    let target = req.customer.map_or(Target::Global, Target::Customer);
    app.shared
        .provider(app.provider)
        .set_fault(target, req.fault, req.times);
    StatusCode::NO_CONTENT.into_response()
}

async fn clear_faults(State(app): State<AppState>) -> StatusCode {
    app.shared.provider(app.provider).clear_faults();
    StatusCode::NO_CONTENT
}

#[derive(Serialize, Deserialize)]
struct LatencyBody {
    #[serde(with = "humantime_serde")]
    latency: Duration,
}

async fn get_latency(State(app): State<AppState>) -> Json<LatencyBody> {
    Json(LatencyBody {
        latency: app.shared.provider(app.provider).latency(),
    })
}

async fn put_latency(State(app): State<AppState>, body: Bytes) -> Response {
    match serde_json::from_slice::<LatencyBody>(&body) {
        Ok(b) => {
            app.shared.provider(app.provider).set_latency(b.latency);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => bad_request(format!("expected {{\"latency\": \"250ms\"}}: {e}")),
    }
}

async fn get_customers(State(app): State<AppState>) -> Response {
    let cfg = &app.shared.config;
    let (stored, removed) = app.shared.stored_ids(app.provider);
    let range = (cfg.customers > 0).then(|| {
        json!({"first": generate::customer_id(0), "last": generate::customer_id(cfg.customers - 1)})
    });
    Json(json!({
        "provider": app.provider,
        "seed": cfg.seed,
        "generated": cfg.customers,
        "accounts_per_customer": cfg.accounts_per_customer,
        "generated_ids": range,
        "id_format": "gen-{index:06}",
        "stored": stored,
        "removed": removed,
    }))
    .into_response()
}

#[derive(Deserialize)]
struct CustomerQuery {
    currency: Option<String>,
}

async fn get_customer(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<CustomerQuery>,
) -> Response {
    let reply = match app.provider {
        Provider::P100 => p100::body(&app.shared, &id),
        Provider::Corebanq => {
            let currency = q.currency.as_deref().unwrap_or("EUR");
            corebanq::body(&app.shared, &id, currency, true)
        }
    };
    reply.map_or_else(
        || not_found("unknown customer"),
        IntoResponse::into_response,
    )
}

async fn put_customer(
    State(app): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad_request(format!("body is not JSON: {e}")),
    };
    match (app.provider, value) {
        (Provider::P100, _) => app.shared.put_p100(&id, Stored::Raw(body)),
        (Provider::Corebanq, serde_json::Value::Array(items)) => {
            let accounts: Vec<CorebanqAccount> =
                match serde_json::from_value(serde_json::Value::Array(items)) {
                    Ok(a) => a,
                    Err(e) => return bad_request(format!("invalid accounts: {e}")),
                };
            app.shared
                .put_corebanq(&id, Stored::Structured(accounts.into()));
        }
        (Provider::Corebanq, _) => app.shared.put_corebanq(&id, Stored::Raw(body)),
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn delete_customer(State(app): State<AppState>, Path(id): Path<String>) -> StatusCode {
    app.shared.remove(app.provider, &id);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct BalanceBody {
    amount: Decimal,
}

async fn put_balance(
    State(app): State<AppState>,
    Path((id, balance_id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let amount = match serde_json::from_slice::<BalanceBody>(&body) {
        Ok(b) => b.amount,
        Err(e) => return bad_request(format!("expected {{\"amount\": \"1.23\"}}: {e}")),
    };
    let done = match app.provider {
        Provider::P100 => app.shared.set_p100_balance(&id, &balance_id, amount),
        Provider::Corebanq => app.shared.set_corebanq_balance(&id, &balance_id, amount),
    };
    if done {
        StatusCode::NO_CONTENT.into_response()
    } else {
        not_found("unknown customer or balance")
    }
}

async fn reset(State(app): State<AppState>) -> StatusCode {
    app.shared.reset(app.provider);
    StatusCode::NO_CONTENT
}
