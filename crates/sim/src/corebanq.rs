//! The Corebanq unified accounts API v2 simulator:
//! `GET /v2/accounts/balance?customer_id=…&currency=EUR&details=true`.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use rust_decimal::Decimal;
use serde_json::json;

use crate::SimConfig;
use crate::conn::ConnCtl;
use crate::fault::{CorebanqError, Provider, corebanq_error_body};
use crate::fixtures;
use crate::generate;
use crate::model::{CorebanqAccount, corebanq_body, rate_to_eur};
use crate::provider::{AdminQuery, Sim, SimProvider, Stored, edit_raw};
use crate::reply::Reply;
use crate::respond::serve_call;

/// The Corebanq simulator.
pub(crate) struct CorebanqSim;

impl SimProvider for CorebanqSim {
    type Data = Vec<CorebanqAccount>;
    const PROVIDER: Provider = Provider::Corebanq;

    fn routes() -> Router<Arc<Sim<Self>>> {
        Router::new().route("/v2/accounts/balance", get(balance))
    }

    fn latency(config: &SimConfig) -> Duration {
        config.latency_corebanq
    }

    fn scripted() -> HashMap<String, Stored<Self::Data>> {
        HashMap::from([(
            fixtures::COREBANQ_SEED_CUSTOMER.to_owned(),
            Stored::Raw(Bytes::from_static(fixtures::COREBANQ_SEED_BODY.as_bytes())),
        )])
    }

    fn generate(seed: u64, index: usize, accounts: usize) -> Self::Data {
        generate::corebanq_accounts(seed, index, accounts)
    }

    /// Details on, in `?currency=` (EUR by default).
    fn admin_body(customer: &str, accounts: &Self::Data, query: &AdminQuery) -> Vec<u8> {
        let currency = query.get("currency").map_or("EUR", String::as_str);
        corebanq_body(customer, accounts, currency, true)
    }

    /// A JSON array is a list of accounts (converted on each call); anything else is served
    /// verbatim.
    fn parse_put(body: Bytes, value: serde_json::Value) -> Result<Stored<Self::Data>, String> {
        if !value.is_array() {
            return Ok(Stored::Raw(body));
        }
        let accounts: Self::Data =
            serde_json::from_value(value).map_err(|e| format!("invalid accounts: {e}"))?;
        Ok(Stored::Structured(accounts.into()))
    }

    fn set_balance(accounts: &mut Self::Data, account_id: &str, balance: Decimal) -> bool {
        accounts
            .iter_mut()
            .find(|a| a.id == account_id)
            .map(|a| a.balance = balance)
            .is_some()
    }

    /// Only `balance` changes (not `balance_in_base` or the totals).
    fn set_raw_balance(body: &[u8], account_id: &str, balance: Decimal) -> Option<Bytes> {
        // Corebanq writes money as JSON numbers.
        let number = serde_json::Number::from_str(&balance.to_string()).ok()?;
        let lists = ["details.fiat_accounts", "details.crypto_assets"];
        edit_raw(body, &lists, account_id, |a| {
            a.insert("balance".into(), number.clone().into());
        })
    }

    fn rate_limited() -> Reply {
        error(429, "rate_limited", "Too many requests", json!({}))
    }
}

async fn balance(
    State(sim): State<Arc<Sim<CorebanqSim>>>,
    Query(query): Query<HashMap<String, String>>,
    ConnectInfo(conn): ConnectInfo<ConnCtl>,
    headers: HeaderMap,
) -> Response {
    let customer = query.get("customer_id").map(String::as_str);
    serve_call(&sim, customer, &conn, || answer(&sim, &query, &headers)).await
}

fn error(status: u16, code: &str, message: &str, details: serde_json::Value) -> Reply {
    Reply::json(status, corebanq_error_body(code, message, details))
}

fn answer(sim: &Sim<CorebanqSim>, query: &HashMap<String, String>, headers: &HeaderMap) -> Reply {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    match token {
        None => return error(401, "unauthorized", "Missing bearer token", json!({})),
        Some(t) if t != sim.config.corebanq_token => return CorebanqError::Unauthorized.reply(),
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
    let body =
        |accounts: &Vec<CorebanqAccount>| corebanq_body(customer, accounts, currency, details);
    sim.answer(customer, body).unwrap_or_else(|| {
        let details = json!({"customer_id": customer});
        error(404, "not_found", "Customer not found", details)
    })
}
