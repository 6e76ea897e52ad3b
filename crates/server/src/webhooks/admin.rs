//! The inbox for admins: `GET /v2/webhooks/inbox` and `POST /v2/webhooks/inbox/{id}/replay`.

use axum::Json;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use coffer_store::{WebhookEntry, WebhookFilter, WebhookState};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InboxParams {
    /// Only this provider's deliveries.
    pub provider: Option<String>,
    /// `pending`, `processed`, `ignored` or `failed`.
    #[param(inline, value_type = Option<String>, pattern = "^(pending|processed|ignored|failed)$")]
    pub state: Option<String>,
    /// Deliveries after this id (the previous page's `next_after`).
    pub after: Option<i64>,
    /// Page size (1–1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// The pair a delivery refreshed.
#[derive(Debug, Serialize, ToSchema)]
pub struct PairOut {
    pub customer_id: String,
    pub provider: String,
    pub external_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InboxEntry {
    pub id: i64,
    pub provider: String,
    /// Derived from the body: a provider's retry of it has the same.
    pub delivery_id: String,
    /// The body as received (bytes that are not UTF-8 replaced).
    pub body: String,
    pub received_at: DateTime<Utc>,
    /// `pending`, `processed`, `ignored` or `failed`.
    pub state: String,
    /// Why it was ignored or failed.
    pub reason: Option<String>,
    /// The user it named, when it named one.
    pub external_id: Option<String>,
    /// The pair it refreshed.
    pub pair: Option<PairOut>,
    pub processed_at: Option<DateTime<Utc>>,
    /// Times it was taken for processing.
    pub attempts: u32,
}

impl From<WebhookEntry> for InboxEntry {
    fn from(e: WebhookEntry) -> Self {
        let pair = match (&e.customer_id, &e.external_id) {
            (Some(c), Some(x)) => Some(PairOut {
                customer_id: c.clone(),
                provider: e.provider_id.clone(),
                external_id: x.clone(),
            }),
            _ => None,
        };
        InboxEntry {
            id: e.id,
            provider: e.provider_id,
            delivery_id: e.delivery_id,
            body: e.body,
            received_at: e.received_at,
            state: e.state.as_str().to_owned(),
            reason: e.reason,
            external_id: e.external_id,
            pair,
            processed_at: e.processed_at,
            attempts: e.attempts,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InboxPage {
    pub data: Vec<InboxEntry>,
    /// Pass as `after` for the next page; null on the last page.
    pub next_after: Option<i64>,
}

/// List the webhook inbox, oldest first.
#[utoipa::path(get, path = "/v2/webhooks/inbox", tag = "webhooks", params(InboxParams),
    responses((status = 200, body = InboxPage), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<InboxParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<InboxPage>> {
    caller.require_admin()?;
    let Query(p) = params.map_err(|e| ApiError::param("query", e.body_text()))?;
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::param("limit", "between 1 and 1000"));
    }
    let wanted = match p.state.as_deref() {
        None => None,
        Some(s) => Some(WebhookState::parse(s).ok_or_else(|| {
            ApiError::param("state", "one of pending, processed, ignored, failed")
        })?),
    };
    let rows = state
        .store
        .list_webhooks(&WebhookFilter {
            provider_id: p.provider,
            state: wanted,
            after: p.after,
            limit: limit + 1,
        })
        .await?;
    let more = rows.len() > limit as usize;
    let data: Vec<InboxEntry> = rows
        .into_iter()
        .take(limit as usize)
        .map(InboxEntry::from)
        .collect();
    let next_after = if more {
        data.last().map(|e| e.id)
    } else {
        None
    };
    Ok(Json(InboxPage { data, next_after }))
}

/// Re-queue a delivery: it is processed again as if just received.
#[utoipa::path(post, path = "/v2/webhooks/inbox/{id}/replay", tag = "webhooks",
    params(("id" = i64, Path, description = "The delivery's id (`GET /v2/webhooks/inbox`)")),
    responses((status = 200, body = InboxEntry), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, axum::extract::rejection::PathRejection>,
) -> ApiResult<Json<InboxEntry>> {
    caller.require_admin()?;
    let Path(id) = id.map_err(|_| ApiError::param("id", "a delivery id (an integer)"))?;
    let entry = state.store.replay_webhook(id).await?;
    state.webhook_wake.notify_one();
    Ok(Json(entry.into()))
}
