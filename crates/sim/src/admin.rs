//! The admin API each simulator serves under `/_sim` (for its own provider), written once on
//! [`SimProvider`]. It shares its state with [`crate::SimHandle`]; see the crate docs for the
//! routes and their JSON.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use bytes::Bytes;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::fault::{Fault, Target};
use crate::generate;
use crate::provider::{AdminQuery, AnySim, Sim, SimProvider};
use crate::state::{FaultEntry, read};

/// The state of a provider's admin routes.
type App<P> = State<Arc<Sim<P>>>;

pub(crate) fn router<P: SimProvider>() -> Router<Arc<Sim<P>>> {
    Router::new()
        .route("/calls", get(get_calls::<P>).delete(reset_calls::<P>))
        .route(
            "/faults",
            get(get_faults::<P>)
                .put(put_fault::<P>)
                .delete(clear_faults::<P>),
        )
        .route("/latency", get(get_latency::<P>).put(put_latency::<P>))
        .route("/customers", get(get_customers::<P>))
        .route(
            "/customers/{id}",
            get(get_customer::<P>)
                .put(put_customer::<P>)
                .delete(delete_customer::<P>),
        )
        .route(
            "/customers/{id}/balances/{balance_id}",
            put(put_balance::<P>),
        )
        .route("/reset", post(reset::<P>))
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

async fn get_calls<P: SimProvider>(State(sim): App<P>, Query(q): Query<CallsQuery>) -> Response {
    let calls = &sim.controls.calls;
    let provider = P::PROVIDER;
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

async fn reset_calls<P: SimProvider>(State(sim): App<P>) -> StatusCode {
    sim.controls.calls.reset();
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

async fn get_faults<P: SimProvider>(State(sim): App<P>) -> Response {
    let table = read(&sim.controls.faults);
    let customers: BTreeMap<&String, FaultView> = table
        .customers
        .iter()
        .map(|(k, v)| (k, FaultView::from(&**v)))
        .collect();
    let global = table.global.as_deref().map(FaultView::from);
    Json(json!({"provider": P::PROVIDER, "global": global, "customers": customers})).into_response()
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

async fn put_fault<P: SimProvider>(State(sim): App<P>, body: Bytes) -> Response {
    let req: FaultRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(format!("invalid fault request: {e}")),
    };
    let target = req.customer.map_or(Target::Global, Target::Customer);
    sim.controls.set_fault(target, req.fault, req.times);
    StatusCode::NO_CONTENT.into_response()
}

async fn clear_faults<P: SimProvider>(State(sim): App<P>) -> StatusCode {
    sim.controls.clear_faults();
    StatusCode::NO_CONTENT
}

#[derive(Serialize, Deserialize)]
struct LatencyBody {
    #[serde(with = "humantime_serde")]
    latency: Duration,
}

async fn get_latency<P: SimProvider>(State(sim): App<P>) -> Json<LatencyBody> {
    Json(LatencyBody {
        latency: sim.controls.latency(),
    })
}

async fn put_latency<P: SimProvider>(State(sim): App<P>, body: Bytes) -> Response {
    match serde_json::from_slice::<LatencyBody>(&body) {
        Ok(b) => {
            sim.controls.set_latency(b.latency);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => bad_request(format!("expected {{\"latency\": \"250ms\"}}: {e}")),
    }
}

async fn get_customers<P: SimProvider>(State(sim): App<P>) -> Response {
    let cfg = &sim.config;
    let (stored, removed) = sim.stored_ids();
    let range = (cfg.customers > 0).then(|| {
        json!({"first": generate::customer_id(0), "last": generate::customer_id(cfg.customers - 1)})
    });
    Json(json!({
        "provider": P::PROVIDER,
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

async fn get_customer<P: SimProvider>(
    State(sim): App<P>,
    Path(id): Path<String>,
    Query(q): Query<AdminQuery>,
) -> Response {
    sim.answer(&id, |data| P::admin_body(&id, data, &q))
        .map_or_else(
            || not_found("unknown customer"),
            IntoResponse::into_response,
        )
}

async fn put_customer<P: SimProvider>(
    State(sim): App<P>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad_request(format!("body is not JSON: {e}")),
    };
    match P::parse_put(body, value) {
        Ok(stored) => sim.put(&id, stored),
        Err(message) => return bad_request(message),
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn delete_customer<P: SimProvider>(State(sim): App<P>, Path(id): Path<String>) -> StatusCode {
    sim.remove(&id);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct BalanceBody {
    amount: Decimal,
}

async fn put_balance<P: SimProvider>(
    State(sim): App<P>,
    Path((id, balance_id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let amount = match serde_json::from_slice::<BalanceBody>(&body) {
        Ok(b) => b.amount,
        Err(e) => return bad_request(format!("expected {{\"amount\": \"1.23\"}}: {e}")),
    };
    if sim.set_balance(&id, &balance_id, amount) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        not_found("unknown customer or balance")
    }
}

async fn reset<P: SimProvider>(State(sim): App<P>) -> StatusCode {
    sim.reset();
    StatusCode::NO_CONTENT
}
