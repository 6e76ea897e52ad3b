//! `POST/GET /v2/subscriptions`, `DELETE /v2/subscriptions/{id}` and
//! `GET /v2/subscriptions/{id}/deliveries` (admin): where events are delivered, signed per
//! Standard Webhooks (see `crate::subscriptions`).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use coffer_store::{Delivery, EventType, NewSubscription, Subscription};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::routes::body::ApiJson;
use crate::state::AppState;
use crate::subscriptions::sign;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionBody {
    /// Where events are POSTed: `http://` or `https://`.
    #[schema(pattern = "^https?://[^/?#]+")]
    pub url: String,
    /// Event types to deliver; empty or absent: every type.
    #[serde(default)]
    pub types: Vec<String>,
    /// Only this customer's events.
    pub customer_id: Option<String>,
    /// `whsec_<base64>` (at least 16 bytes); absent: one is made and answered once.
    pub secret: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionOut {
    pub id: String,
    pub url: String,
    /// Empty: every type.
    pub types: Vec<String>,
    pub customer_id: Option<String>,
    /// The signing secret: answered by the creation only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Since when deliveries fail without a success in between.
    pub failing_since: Option<DateTime<Utc>>,
    /// Set when it was disabled for failing too long: nothing more is delivered.
    pub disabled_at: Option<DateTime<Utc>>,
}

fn out(s: Subscription, with_secret: bool) -> SubscriptionOut {
    SubscriptionOut {
        types: s.types.iter().map(|t| t.as_str().to_owned()).collect(),
        secret: with_secret.then_some(s.secret),
        id: s.id,
        url: s.url,
        customer_id: s.customer_id,
        created_at: s.created_at,
        failing_since: s.failing_since,
        disabled_at: s.disabled_at,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionList {
    pub data: Vec<SubscriptionOut>,
}

fn validate(body: SubscriptionBody) -> ApiResult<NewSubscription> {
    let url = url::Url::parse(body.url.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| ApiError::param("url", "an absolute http:// or https:// URL"))?;
    let mut types = Vec::with_capacity(body.types.len());
    for t in &body.types {
        types.push(EventType::parse(t).ok_or_else(|| {
            ApiError::param(
                "types",
                format!(
                    "unknown event type `{t}`: one of {}",
                    EventType::ALL.map(EventType::as_str).join(", ")
                ),
            )
        })?);
    }
    types.sort();
    types.dedup();
    let secret = match body.secret {
        Some(s) if sign::secret_key(&s).is_some() => s,
        Some(_) => {
            return Err(ApiError::param(
                "secret",
                "whsec_ followed by at least 16 bytes in base64",
            ));
        }
        None => sign::generate_secret(),
    };
    Ok(NewSubscription {
        id: format!("sub_{}", uuid::Uuid::new_v4().simple()),
        url: url.to_string(),
        types,
        customer_id: body.customer_id.filter(|c| !c.is_empty()),
        secret,
        created_at: Utc::now(),
    })
}

/// Subscribe a URL to events (deliveries start with the events written after it).
#[utoipa::path(post, path = "/v2/subscriptions", tag = "events", request_body = SubscriptionBody,
    responses((status = 201, body = SubscriptionOut), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<SubscriptionBody>,
) -> ApiResult<(StatusCode, Json<SubscriptionOut>)> {
    caller.require_admin()?;
    let new = validate(body)?;
    let s = state
        .store
        .create_subscription_by(&new, &caller.actor())
        .await?;
    Ok((StatusCode::CREATED, Json(out(s, true))))
}

/// Every subscription (without secrets).
#[utoipa::path(get, path = "/v2/subscriptions", tag = "events",
    responses((status = 200, body = SubscriptionList), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<SubscriptionList>> {
    caller.require_admin()?;
    let data = state
        .store
        .list_subscriptions()
        .await?
        .into_iter()
        .map(|s| out(s, false))
        .collect();
    Ok(Json(SubscriptionList { data }))
}

fn sub_id(id: Result<Path<String>, axum::extract::rejection::PathRejection>) -> ApiResult<String> {
    id.map(|Path(id)| id)
        .map_err(|_| ApiError::param("id", "a subscription id"))
}

/// Delete a subscription and its delivery log; nothing more is delivered.
#[utoipa::path(delete, path = "/v2/subscriptions/{id}", tag = "events",
    params(("id" = String, Path, description = "The subscription's id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    state
        .store
        .delete_subscription_by(&sub_id(id)?, &caller.actor())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryParams {
    /// Deliveries after this id (the previous page's `next_after`).
    pub after: Option<i64>,
    /// Page size (1–1000, default 100).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryOut {
    pub id: i64,
    pub event_id: i64,
    /// `pending` (to attempt again at `next_attempt_at`), `delivered`, `failed` (given up).
    pub state: String,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    /// The receiver's HTTP status on the last attempt, if it answered.
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<Delivery> for DeliveryOut {
    fn from(d: Delivery) -> Self {
        DeliveryOut {
            id: d.id,
            event_id: d.event_id,
            state: d.state.as_str().to_owned(),
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_status: d.last_status,
            last_error: d.last_error,
            last_attempt_at: d.last_attempt_at,
            delivered_at: d.delivered_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub data: Vec<DeliveryOut>,
    /// Pass as `after` for the next page; null on the last page.
    pub next_after: Option<i64>,
}

/// A subscription's delivery log, oldest first.
#[utoipa::path(get, path = "/v2/subscriptions/{id}/deliveries", tag = "events",
    params(("id" = String, Path, description = "The subscription's id"), DeliveryParams),
    responses((status = 200, body = DeliveryPage), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
    params: Result<Query<DeliveryParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<DeliveryPage>> {
    caller.require_admin()?;
    let id = sub_id(id)?;
    let Query(p) = params.map_err(|e| ApiError::param("query", e.body_text()))?;
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::param("limit", "between 1 and 1000"));
    }
    state.store.get_subscription(&id).await?;
    let rows = state
        .store
        .list_deliveries(&id, p.after.unwrap_or(0), limit + 1)
        .await?;
    let more = rows.len() > limit as usize;
    let data: Vec<DeliveryOut> = rows
        .into_iter()
        .take(limit as usize)
        .map(DeliveryOut::from)
        .collect();
    let next_after = if more {
        data.last().map(|d| d.id)
    } else {
        None
    };
    Ok(Json(DeliveryPage { data, next_after }))
}
