//! The rate table.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use coffer_core::Currency;
use coffer_core::rates::Rate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct RateOut {
    pub currency: String,
    /// One unit of `currency` is worth `rate` units of `quote`.
    #[schema(value_type = String, example = "0.92")]
    pub rate: String,
    pub quote: String,
    /// `manual` or `provider`.
    pub source: String,
    pub provider: Option<String>,
    pub as_of: DateTime<Utc>,
}

impl From<&Rate> for RateOut {
    fn from(r: &Rate) -> Self {
        RateOut {
            currency: r.currency.to_string(),
            rate: r.value.to_string(),
            quote: r.quote.to_string(),
            source: r.source.as_str().to_owned(),
            provider: r.provider.clone(),
            as_of: r.as_of,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RateTableOut {
    pub base: String,
    pub rates: Vec<RateOut>,
}

/// The rate table: manual rates and the latest rate each provider reported.
#[utoipa::path(get, path = "/v2/rates", tag = "rates", responses((status = 200, body = RateTableOut)))]
pub async fn get_rates(
    State(state): State<AppState>,
    _caller: Caller,
) -> ApiResult<Json<RateTableOut>> {
    table(&state).await
}

async fn table(state: &AppState) -> ApiResult<Json<RateTableOut>> {
    let t = state.rates.table_for_all(state.store.as_ref()).await;
    Ok(Json(RateTableOut {
        base: state.base.to_string(),
        rates: t.rates().iter().map(RateOut::from).collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutRates {
    /// Currency → value of one unit in the base currency, as a decimal string (`"0.92"`).
    #[schema(value_type = BTreeMap<String, String>)]
    pub rates: BTreeMap<String, serde_json::Value>,
}

/// Set manual rates (admin). Answers with the whole table.
#[utoipa::path(put, path = "/v2/rates", tag = "rates", request_body = PutRates,
    responses((status = 200, body = RateTableOut), (status = 400, body = ErrorBody)))]
pub async fn put_rates(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<PutRates>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<RateTableOut>> {
    caller.require_admin()?;
    let Json(body) = body?;
    let mut rates = BTreeMap::new();
    for (code, v) in body.rates {
        let key = format!("rates.{code}");
        let cur = Currency::known(&code)
            .ok_or_else(|| ApiError::param(&key, format!("`{code}` is not a known currency")))?;
        if cur == state.base {
            return Err(ApiError::param(&key, "the base currency is always worth 1"));
        }
        let text = match &v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => {
                return Err(ApiError::param(
                    &key,
                    "expected a decimal string such as \"0.92\"",
                ));
            }
        };
        let value: Decimal = coffer_core::money::parse_decimal(&text)
            .map_err(|e| ApiError::param(&key, e.to_string()))?;
        if value <= Decimal::ZERO {
            return Err(ApiError::param(&key, "a rate must be greater than 0"));
        }
        rates.insert(cur, value);
    }
    state
        .store
        .set_manual_rates(&state.base, &rates, Utc::now(), Some(&caller.key_id))
        .await?;
    state.rates.invalidate().await;
    crate::notify::changed(&state, None).await;
    table(&state).await
}
