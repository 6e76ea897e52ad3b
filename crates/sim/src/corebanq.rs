//! The Corebanq unified accounts API v2 simulator:
//! `GET /v2/accounts/balance?customer_id=…&currency=EUR&details=true`.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use axum::routing::get;
use serde_json::json;

use crate::AppState;
use crate::conn::ConnCtl;
use crate::fault::{CorebanqError, Provider, corebanq_error_body};
use crate::model::{corebanq_body, rate_to_eur};
use crate::respond::{Reply, serve_call};
use crate::state::{Found, Shared};

/// Corebanq's own routes (the simulator's `/_sim` admin routes are added by the caller).
pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/v2/accounts/balance", get(balance))
}

async fn balance(
    State(app): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    ConnectInfo(conn): ConnectInfo<ConnCtl>,
    headers: HeaderMap,
) -> Response {
    let customer = query.get("customer_id").map(String::as_str);
    serve_call(&app.shared, Provider::Corebanq, customer, &conn, || {
        answer(&app.shared, &query, &headers)
    })
    .await
}

fn error(status: u16, code: &str, message: &str, details: serde_json::Value) -> Reply {
    Reply::json(status, corebanq_error_body(code, message, details))
}

fn answer(shared: &Shared, query: &HashMap<String, String>, headers: &HeaderMap) -> Reply {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    match token {
        None => return error(401, "unauthorized", "Missing bearer token", json!({})),
        Some(t) if t != shared.config.corebanq_token => {
            return Reply::json(401, CorebanqError::Unauthorized.body());
        }
        Some(_) => {}
    }
    let Some(customer) = query.get("customer_id").filter(|c| !c.is_empty()) else {
        let details = json!({"parameter": "customer_id"});
        return error(400, "bad_request", "customer_id is required", details);
    };
    let currency = query.get("currency").map_or("EUR", String::as_str);
    if rate_to_eur(currency).is_none() {
        let details = json!({"parameter": "currency", "value": currency});
        return error(400, "bad_request", "Unsupported currency", details);
    }
    let details = query
        .get("details")
        .or_else(|| query.get("include_details"))
        .is_some_and(|v| v == "true" || v == "1");
    body(shared, customer, currency, details).unwrap_or_else(|| {
        let details = json!({"customer_id": customer});
        error(404, "not_found", "Customer not found", details)
    })
}

/// The 200 answer for this customer, if Corebanq knows them. Raw bodies are served verbatim.
pub(crate) fn body(
    shared: &Shared,
    customer: &str,
    currency: &str,
    details: bool,
) -> Option<Reply> {
    Some(match shared.corebanq_customer(customer)? {
        Found::Raw(b) => Reply::json(200, b),
        Found::Structured(accounts) => {
            Reply::json(200, corebanq_body(customer, &accounts, currency, details))
        }
    })
}
