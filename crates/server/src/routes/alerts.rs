//! `POST/GET /v2/alerts`, `GET/DELETE /v2/alerts/{id}` (admin): a balance query and a bound;
//! `threshold.crossed` is written once per crossing (see `alert_eval.rs`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use coffer_store::{Alert, Direction, NewAlert};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::routes::body::ApiJson;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertBody {
    /// 1 to 200 characters, not only white space (kept trimmed).
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: String,
    /// The balance endpoint's parameters, as a query string (`customer_id=c1&currency=EUR`);
    /// not `at`, `max_age` or `strict`.
    pub query: String,
    /// Alert when the total goes strictly below this amount (a decimal string). One of `below`
    /// and `above`.
    #[schema(pattern = "^-?[0-9]+(\\.[0-9]+)?$", example = "1000.00")]
    pub below: Option<String>,
    /// Alert when the total goes strictly above this amount (a decimal string).
    #[schema(pattern = "^-?[0-9]+(\\.[0-9]+)?$")]
    pub above: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertOut {
    pub id: String,
    pub name: String,
    pub query: String,
    /// `below` or `above`.
    pub direction: String,
    /// The bound, exact.
    pub bound: String,
    pub created_at: DateTime<Utc>,
    /// Whether the total was on the alerted side at the last evaluation; null before the first.
    pub triggered: Option<bool>,
    /// The exact total at the last evaluation, in the query's currency.
    pub last_total: Option<String>,
    pub evaluated_at: Option<DateTime<Utc>>,
}

impl From<Alert> for AlertOut {
    fn from(a: Alert) -> Self {
        AlertOut {
            direction: a.direction.as_str().to_owned(),
            bound: a.bound.to_string(),
            last_total: a.last_total.map(|t| t.to_string()),
            id: a.id,
            name: a.name,
            query: a.query,
            created_at: a.created_at,
            triggered: a.triggered,
            evaluated_at: a.evaluated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertList {
    pub data: Vec<AlertOut>,
}

fn amount(field: &str, text: &str) -> ApiResult<Decimal> {
    let t = text.trim();
    let ok = !t.is_empty()
        && t.trim_start_matches('-')
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.');
    ok.then(|| t.parse::<Decimal>().ok())
        .flatten()
        .ok_or_else(|| ApiError::param(field, format!("`{text}` is not a decimal amount")))
}

async fn validate(state: &AppState, body: AlertBody) -> ApiResult<NewAlert> {
    // Characters, not bytes, as the document's `maxLength` counts them.
    let name = body.name.trim().to_owned();
    if name.is_empty() || body.name.chars().count() > 200 {
        return Err(ApiError::param("name", "between 1 and 200 characters"));
    }
    let (direction, bound) = match (&body.below, &body.above) {
        (Some(b), None) => (Direction::Below, amount("below", b)?),
        (None, Some(a)) => (Direction::Above, amount("above", a)?),
        _ => {
            return Err(ApiError::param(
                "below",
                "exactly one of `below` and `above`",
            ));
        }
    };
    let q = crate::routes::alert_eval::parse(&body.query).map_err(|e| {
        ApiError::param(
            "query",
            format!("invalid parameter `{}`: {}", e.param, e.message),
        )
    })?;
    if let Some(c) = &q.customer_id {
        match state.store.get_customer(c).await {
            Ok(_) => {}
            Err(coffer_store::StoreError::NotFound { .. }) => {
                return Err(ApiError::param("query", format!("unknown customer `{c}`")));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(NewAlert {
        id: format!("al_{}", uuid::Uuid::new_v4().simple()),
        name,
        query: body.query.trim().trim_start_matches('?').to_owned(),
        customer_id: q.customer_id,
        direction,
        bound,
        created_at: Utc::now(),
    })
}

/// Create an alert: evaluated at once (where the total stands), then on every account event of
/// its customers and every `alerts.interval`.
#[utoipa::path(post, path = "/v2/alerts", tag = "events", request_body = AlertBody,
    responses((status = 201, body = AlertOut), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<AlertBody>,
) -> ApiResult<(StatusCode, Json<AlertOut>)> {
    caller.require_admin()?;
    let new = validate(&state, body).await?;
    let a = state.store.create_alert_by(&new, &caller.actor()).await?;
    // Its first evaluation (the side it starts on, never a crossing), so the answer says where
    // the total stands; if it fails here the evaluator makes it.
    let a = match crate::routes::alert_eval::evaluate(&state, &a, true).await {
        Ok(()) => state.store.get_alert(&a.id).await.unwrap_or(a),
        Err(e) => {
            tracing::warn!(alert = %a.id, error = %e, "alert not evaluated at creation");
            a
        }
    };
    Ok((StatusCode::CREATED, Json(a.into())))
}

/// Every alert, with its state at the last evaluation.
#[utoipa::path(get, path = "/v2/alerts", tag = "events",
    responses((status = 200, body = AlertList), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<AlertList>> {
    caller.require_admin()?;
    let data = state
        .store
        .list_alerts()
        .await?
        .into_iter()
        .map(AlertOut::from)
        .collect();
    Ok(Json(AlertList { data }))
}

type IdPath = Result<Path<String>, axum::extract::rejection::PathRejection>;

fn alert_id(id: IdPath) -> ApiResult<String> {
    id.map(|Path(id)| id)
        .map_err(|_| ApiError::param("id", "an alert id"))
}

/// One alert.
#[utoipa::path(get, path = "/v2/alerts/{id}", tag = "events",
    params(("id" = String, Path, description = "The alert's id")),
    responses((status = 200, body = AlertOut), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    id: IdPath,
) -> ApiResult<Json<AlertOut>> {
    caller.require_admin()?;
    Ok(Json(state.store.get_alert(&alert_id(id)?).await?.into()))
}

/// Delete an alert; nothing more is evaluated for it.
#[utoipa::path(delete, path = "/v2/alerts/{id}", tag = "events",
    params(("id" = String, Path, description = "The alert's id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    id: IdPath,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    state
        .store
        .delete_alert_by(&alert_id(id)?, &caller.actor())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
