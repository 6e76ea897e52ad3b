//! The rate table.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Query, State};
use chrono::{DateTime, SubsecRound, Utc};
use coffer_core::Currency;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::routes::body::ApiJson;
use crate::state::AppState;

// The rate body lives with the other bodies (dto.rs), which the accounts answers share.
pub use crate::routes::dto::RateOut;

#[derive(Debug, Serialize, ToSchema)]
pub struct RateTableOut {
    pub base: String,
    /// With `at`: the instant the table was in force (to the microsecond, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
    pub rates: Vec<RateOut>,
}

/// `GET /v2/rates` parameters (other parameters are ignored, as they always were).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documentation only: the handler reads the pairs itself
pub struct RatesParams {
    /// An RFC 3339 instant, not in the future: the table in force then (manual rate versions,
    /// then the rates providers reported last at or before it), from the store only.
    #[param(value_type = Option<String>, format = DateTime, example = "2026-11-30T23:59:59Z")]
    at: Option<String>,
}

type Pairs = Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>;

/// The rate table: manual rates and the latest rate each provider reported; with `at`, the
/// table in force at that instant.
#[utoipa::path(get, path = "/v2/rates", tag = "rates", params(RatesParams),
    responses((status = 200, body = RateTableOut), (status = 400, body = ErrorBody)))]
pub async fn get_rates(
    State(state): State<AppState>,
    _caller: Caller,
    pairs: Pairs,
) -> ApiResult<Json<RateTableOut>> {
    match at_param(pairs, Utc::now())? {
        None => table(&state).await,
        Some(at) => {
            crate::routes::at::within_retention(&state, "at", at)?;
            let t = state.rates.table_at(state.store.as_ref(), at).await?;
            Ok(Json(RateTableOut {
                base: state.base.to_string(),
                at: Some(at),
                rates: t.rates().iter().map(RateOut::from).collect(),
            }))
        }
    }
}

/// The `at` parameter (names are case-insensitive, as everywhere): an RFC 3339 instant, cut
/// to the microsecond the store keeps, not after `now`.
fn at_param(pairs: Pairs, now: DateTime<Utc>) -> ApiResult<Option<DateTime<Utc>>> {
    // Only a query that is not even key=value pairs fails here; the endpoint ignored it before.
    let Ok(Query(pairs)) = pairs else {
        return Ok(None);
    };
    let mut values = pairs.iter().filter(|(k, _)| k.eq_ignore_ascii_case("at"));
    let Some((_, text)) = values.next() else {
        return Ok(None);
    };
    if values.any(|(_, other)| other != text) {
        return Err(ApiError::param("at", "given twice with different values"));
    }
    let at = DateTime::parse_from_rfc3339(text)
        .map_err(|e| {
            ApiError::param(
                "at",
                format!("`{text}` is not an RFC 3339 instant such as 2026-11-30T23:59:59Z: {e}"),
            )
        })?
        .with_timezone(&Utc)
        .trunc_subsecs(6);
    if at > now {
        return Err(ApiError::param(
            "at",
            "is in the future: only what was observed can be answered",
        ));
    }
    Ok(Some(at))
}

async fn table(state: &AppState) -> ApiResult<Json<RateTableOut>> {
    let t = state.rates.table_for_all(state.store.as_ref()).await;
    Ok(Json(RateTableOut {
        base: state.base.to_string(),
        at: None,
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
    ApiJson(body): ApiJson<PutRates>,
) -> ApiResult<Json<RateTableOut>> {
    caller.require_admin()?;
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
        .set_manual_rates(&state.base, &rates, Utc::now(), &caller.actor())
        .await?;
    state.rates.invalidate().await;
    crate::notify::changed(&state, None).await;
    table(&state).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(query: &[(&str, &str)]) -> ApiResult<Option<DateTime<Utc>>> {
        let pairs = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let now = DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z").unwrap();
        at_param(Ok(Query(pairs)), now.with_timezone(&Utc))
    }

    fn parameter(e: ApiError) -> String {
        match e {
            ApiError::InvalidParam { param, .. } => param,
            other => panic!("not a parameter error: {other:?}"),
        }
    }

    #[test]
    fn at_is_an_rfc3339_instant_in_the_past() {
        assert_eq!(at(&[]).unwrap(), None);
        assert_eq!(at(&[("currency", "USD")]).unwrap(), None, "others ignored");
        let t = at(&[("AT", "2026-11-30T23:59:59.1234567+01:00")]).unwrap();
        assert_eq!(t.unwrap().to_rfc3339(), "2026-11-30T22:59:59.123456+00:00");
        let same = [
            ("at", "2026-11-30T00:00:00Z"),
            ("at", "2026-11-30T00:00:00Z"),
        ];
        assert!(at(&same).unwrap().is_some());
        assert!(
            at(&[("at", "2026-12-01T00:00:00Z")]).unwrap().is_some(),
            "now"
        );
        for bad in [
            vec![("at", "2026-11-30")],
            vec![("at", "yesterday")],
            vec![("at", "2026-12-01T00:00:00.000001Z")],
            vec![
                ("at", "2026-11-30T00:00:00Z"),
                ("at", "2026-11-29T00:00:00Z"),
            ],
        ] {
            assert_eq!(parameter(at(&bad).unwrap_err()), "at", "{bad:?}");
        }
    }
}
