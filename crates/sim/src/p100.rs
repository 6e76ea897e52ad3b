//! The P100 Partner API v1 simulator: `GET /v1/user/{externalUserId}/balances`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use rust_decimal::Decimal;

use crate::SimConfig;
use crate::conn::ConnCtl;
use crate::fault::{DenyReason, P100Error, Provider};
use crate::fixtures;
use crate::generate;
use crate::model::P100Customer;
use crate::provider::{AdminQuery, Sim, SimProvider, Stored, edit_raw};
use crate::reply::{Reply, TEXT};
use crate::respond::serve_call;

/// The P100 simulator.
pub(crate) struct P100Sim;

impl SimProvider for P100Sim {
    type Data = P100Customer;
    const PROVIDER: Provider = Provider::P100;

    fn routes() -> Router<Arc<Sim<Self>>> {
        Router::new().route("/v1/user/{external_user_id}/balances", get(balances))
    }

    fn latency(config: &SimConfig) -> Duration {
        config.latency_p100
    }

    fn scripted() -> HashMap<String, Stored<P100Customer>> {
        HashMap::from([(
            fixtures::P100_SEED_USER.to_owned(),
            Stored::Raw(Bytes::from_static(fixtures::P100_SEED_BODY.as_bytes())),
        )])
    }

    fn generate(seed: u64, index: usize, accounts: usize) -> P100Customer {
        generate::p100_customer(seed, index, accounts)
    }

    fn admin_body(_: &str, data: &P100Customer, _: &AdminQuery) -> Vec<u8> {
        serde_json::to_vec(data).unwrap_or_default()
    }

    /// P100 bodies are kept raw: tests put exactly the bytes P100 would send.
    fn parse_put(body: Bytes, _: serde_json::Value) -> Result<Stored<P100Customer>, String> {
        Ok(Stored::Raw(body))
    }

    fn set_balance(data: &mut P100Customer, balance_id: &str, amount: Decimal) -> bool {
        data.balance_mut(balance_id)
            .map(|b| b.amount = amount)
            .is_some()
    }

    fn set_raw_balance(body: &[u8], balance_id: &str, amount: Decimal) -> Option<Bytes> {
        // P100 writes amounts as strings.
        let lists = ["fiatBalances", "cryptoBalances"];
        edit_raw(body, &lists, balance_id, |b| {
            b.insert("amount".into(), amount.to_string().into());
        })
    }

    fn rate_limited() -> Reply {
        Reply::new(429, TEXT, "Too Many Requests")
    }
}

async fn balances(
    State(sim): State<Arc<Sim<P100Sim>>>,
    Path(id): Path<String>,
    ConnectInfo(conn): ConnectInfo<ConnCtl>,
    headers: HeaderMap,
) -> Response {
    serve_call(&sim, Some(&id), &conn, || answer(&sim, &id, &headers)).await
}

fn answer(sim: &Sim<P100Sim>, id: &str, headers: &HeaderMap) -> Reply {
    // Lower-case `x-api-key` (header names are case-insensitive on the wire anyway).
    match headers.get("x-api-key") {
        None => return P100Error::Unauthorized(DenyReason::Xo1).reply(),
        Some(k) if k.as_bytes() != sim.config.p100_api_key.as_bytes() => {
            return P100Error::Unauthorized(DenyReason::Xo2).reply();
        }
        Some(_) => {}
    }
    sim.answer(id, |c| serde_json::to_vec(c).unwrap_or_default())
        .unwrap_or_else(|| P100Error::P412.reply())
}
