//! Customers and their provider links (admin), and refresh.

use std::collections::HashSet;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use coffer_store::{Customer, Link, NewCustomer, SyncState};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::fresh::Need;
use crate::routes::answer::{ProviderAsOf, Warning, freshness_of};
use crate::routes::body::ApiJson;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerBody {
    /// 1–64 characters of `A-Za-z0-9._:-`; generated (a UUID) when omitted. On `PUT`, the
    /// path's id (when given, it must be the same).
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,64}$")]
    pub id: Option<String>,
    #[schema(max_length = 200)]
    pub name: Option<String>,
    /// At most one link per provider.
    #[serde(default)]
    pub links: Vec<LinkBody>,
}

/// `PUT /v2/customers/{id}` as documented: the id is the path's (a body `id` is accepted only
/// when it is the same).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // documentation only
pub struct CustomerUpdate {
    #[schema(max_length = 200)]
    name: Option<String>,
    #[serde(default)]
    links: Vec<LinkBody>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkBody {
    /// A configured provider id.
    #[schema(pattern = "^[A-Za-z0-9._-]+$")]
    pub provider: String,
    /// The customer's id at that provider: 1–256 characters, no control characters, not only
    /// spaces (leading and trailing spaces are dropped).
    #[schema(
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\u0000-\\u0020\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$",
        min_length = 1,
        max_length = 256
    )]
    pub external_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerOut {
    pub id: String,
    pub name: Option<String>,
    pub links: Vec<LinkBody>,
    pub created_at: DateTime<Utc>,
    /// Per linked provider: background sync state (only on `GET /v2/customers/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync: Option<Vec<SyncOut>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SyncOut {
    pub provider: String,
    pub last_success: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_kind: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub consecutive_failures: u32,
    pub next_due: DateTime<Utc>,
}

impl From<SyncState> for SyncOut {
    fn from(s: SyncState) -> Self {
        SyncOut {
            provider: s.provider_id,
            last_success: s.last_success,
            last_error: s.last_error,
            last_error_kind: s.last_error_kind,
            last_error_at: s.last_error_at,
            consecutive_failures: s.failures,
            next_due: s.next_due,
        }
    }
}

fn out(c: Customer, sync: Option<Vec<SyncOut>>) -> CustomerOut {
    CustomerOut {
        id: c.id,
        name: c.name,
        links: c
            .links
            .into_iter()
            .map(|l| LinkBody {
                provider: l.provider,
                external_id: l.external_id,
            })
            .collect(),
        created_at: c.created_at,
        sync,
    }
}

/// Checks a customer body and turns it into the store's form.
fn validate(state: &AppState, id: String, body: CustomerBody) -> ApiResult<NewCustomer> {
    if id.is_empty()
        || id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._:-".contains(c))
    {
        return Err(ApiError::param("id", "1-64 characters of A-Za-z0-9._:-"));
    }
    if let Some(n) = &body.name
        && n.chars().count() > 200
    {
        return Err(ApiError::param("name", "at most 200 characters"));
    }
    let mut seen = HashSet::new();
    let mut links = Vec::with_capacity(body.links.len());
    for (i, l) in body.links.into_iter().enumerate() {
        if !state.providers.contains(&l.provider) {
            let known: Vec<_> = state.providers.ids().collect();
            return Err(ApiError::param(
                format!("links[{i}].provider"),
                format!(
                    "`{}` is not a configured provider (configured: {})",
                    l.provider,
                    known.join(", ")
                ),
            ));
        }
        let ext = l.external_id.trim();
        if ext.is_empty() || ext.chars().count() > 256 || ext.chars().any(char::is_control) {
            return Err(ApiError::param(
                format!("links[{i}].external_id"),
                "1-256 printable characters",
            ));
        }
        if !seen.insert(l.provider.clone()) {
            return Err(ApiError::param(
                format!("links[{i}].provider"),
                format!(
                    "`{}` is linked twice: one external id per provider",
                    l.provider
                ),
            ));
        }
        links.push(Link {
            provider: l.provider,
            external_id: ext.to_owned(),
        });
    }
    Ok(NewCustomer {
        id,
        name: body.name,
        links,
    })
}

/// Create a customer with its provider links.
#[utoipa::path(post, path = "/v2/customers", tag = "customers", request_body = CustomerBody,
    responses((status = 201, body = CustomerOut), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CustomerBody>,
) -> ApiResult<(StatusCode, Json<CustomerOut>)> {
    caller.require_admin()?;
    let id = body
        .id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let new = validate(&state, id, body)?;
    let c = state
        .store
        .create_customer_by(&new, &caller.actor())
        .await?;
    crate::notify::changed(&state, Some(&c.id)).await;
    Ok((StatusCode::CREATED, Json(out(c, None))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Customers after this id.
    pub after: Option<String>,
    /// Page size (1–1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerPage {
    pub data: Vec<CustomerOut>,
    /// Pass as `after` for the next page; null on the last page.
    pub next_after: Option<String>,
}

/// List customers, ordered by id.
#[utoipa::path(get, path = "/v2/customers", tag = "customers", params(ListParams),
    responses((status = 200, body = CustomerPage), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<CustomerPage>> {
    caller.require_admin()?;
    let Query(p) = params.map_err(|e| ApiError::param("query", e.body_text()))?;
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::param("limit", "between 1 and 1000"));
    }
    let rows = state
        .store
        .list_customers(p.after.as_deref(), limit + 1)
        .await?;
    let more = rows.len() > limit as usize;
    let data: Vec<_> = rows
        .into_iter()
        .take(limit as usize)
        .map(|c| out(c, None))
        .collect();
    let next_after = if more {
        data.last().map(|c| c.id.clone())
    } else {
        None
    };
    Ok(Json(CustomerPage { data, next_after }))
}

/// One customer, its links and the sync state of each.
#[utoipa::path(get, path = "/v2/customers/{id}", tag = "customers",
    responses((status = 200, body = CustomerOut), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<CustomerOut>> {
    if !caller.can_see(&id) {
        return Err(ApiError::NotFound("customer".into()));
    }
    let c = state.store.get_customer(&id).await?;
    let sync = state
        .store
        .sync_states(&id)
        .await?
        .into_iter()
        .map(SyncOut::from)
        .collect();
    Ok(Json(out(c, Some(sync))))
}

/// Replace a customer's name and links.
#[utoipa::path(put, path = "/v2/customers/{id}", tag = "customers", request_body = CustomerUpdate,
    responses((status = 200, body = CustomerOut), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CustomerBody>,
) -> ApiResult<Json<CustomerOut>> {
    caller.require_admin()?;
    if body.id.as_ref().is_some_and(|b| b != &id) {
        return Err(ApiError::param(
            "id",
            "the body's id differs from the path's",
        ));
    }
    let new = validate(&state, id, body)?;
    let c = state
        .store
        .update_customer_by(&new, &caller.actor())
        .await?;
    crate::notify::changed(&state, Some(&c.id)).await;
    Ok(Json(out(c, None)))
}

/// Delete a customer, its links, snapshots and history.
#[utoipa::path(delete, path = "/v2/customers/{id}", tag = "customers",
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    state.store.delete_customer_by(&id, &caller.actor()).await?;
    crate::notify::changed(&state, Some(&id)).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RefreshOut {
    pub customer_id: String,
    pub as_of: Vec<ProviderAsOf>,
    pub stale: bool,
    pub partial: bool,
    pub warnings: Vec<Warning>,
}

/// Fetch a customer's balances from every linked provider now.
#[utoipa::path(post, path = "/v2/customers/{id}/refresh", tag = "customers",
    responses((status = 200, body = RefreshOut), (status = 404, body = ErrorBody)))]
pub async fn refresh(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<RefreshOut>> {
    if !caller.can_see(&id) {
        return Err(ApiError::NotFound("customer".into()));
    }
    let view = state
        .fresh
        .customer(
            &id,
            Need::request(None, true, state.config.server.request_timeout),
        )
        .await?;
    let f = freshness_of(std::slice::from_ref(&view));
    Ok(Json(RefreshOut {
        customer_id: id,
        as_of: f.as_of,
        stale: f.stale,
        partial: f.partial,
        warnings: f.warnings,
    }))
}
