//! `GET /v2/accounts/{id}/history`: one account's observed changes (its versions: opened,
//! changed, closed), newest first, keyset-paginated, from the store only.

use axum::Json;
use axum::extract::{Path, Query as QueryExtract, State};
use chrono::{DateTime, Utc};
use coffer_core::query::{self, ChangeCursor};
use coffer_store::ChangesQuery;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documentation only: the handler reads the pairs itself
pub struct ChangesParams {
    /// Changes observed at or after this RFC 3339 instant.
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<String>,
    /// Changes observed at or before this RFC 3339 instant.
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<String>,
    /// Page size (default 100, at most `server.max_page_size`).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(min_length = 1)]
    cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeOut {
    /// The observation that saw the account so (its state from then on).
    pub observed_at: DateTime<Utc>,
    /// In the account's own currency, exact.
    pub balance: String,
    pub status: String,
    pub active: bool,
    /// The account was gone from its provider's answer from then on.
    pub closed: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChangesOut {
    /// Newest first.
    pub data: Vec<ChangeOut>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    pub next_cursor: Option<String>,
}

type Pairs = Result<QueryExtract<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>;

fn parse(state: &AppState, pairs: Vec<(String, String)>) -> ApiResult<ChangesQuery> {
    let max = state.config.server.max_page_size;
    let mut q = ChangesQuery {
        limit: 100.min(max),
        ..Default::default()
    };
    for (k, v) in pairs {
        let instant = || query::parse_instant(&v).map_err(|m| ApiError::param(k.as_str(), m));
        match k.to_ascii_lowercase().as_str() {
            "from" => q.from = Some(instant()?),
            "to" => q.to = Some(instant()?),
            "limit" => {
                q.limit = v
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=max).contains(n))
                    .ok_or_else(|| {
                        ApiError::param(k.as_str(), format!("expected an integer from 1 to {max}"))
                    })?;
            }
            "cursor" => {
                let c = ChangeCursor::decode(&v).map_err(|m| ApiError::param(k.as_str(), m))?;
                q.after = Some((c.observed_at, c.customer_id));
            }
            _ => {
                return Err(ApiError::param(
                    k.as_str(),
                    "unknown parameter: expected from, to, limit or cursor",
                ));
            }
        }
    }
    if let (Some(from), Some(to)) = (q.from, q.to)
        && from > to
    {
        return Err(ApiError::param("from", "is after `to`"));
    }
    Ok(q)
}

/// One account's observed changes, newest first. Scope-checked like `GET /v2/accounts/{id}`:
/// an account the caller may not see is the same 404 as an unknown one.
#[utoipa::path(get, path = "/v2/accounts/{id}/history", tag = "accounts",
    params(("id" = String, Path, description = "`{provider}:{provider_account_id}`"), ChangesParams),
    responses((status = 200, body = ChangesOut), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn account_history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    pairs: Pairs,
) -> ApiResult<Json<ChangesOut>> {
    let QueryExtract(pairs) = pairs.map_err(|e| ApiError::param("query", e.body_text()))?;
    let mut q = parse(&state, pairs)?;
    let limit = q.limit;
    // One more than the page: whether there is a next one.
    q.limit = limit.saturating_add(1);
    let mut found = state
        .store
        .account_changes(&caller.scope(None), &id, &q)
        .await?
        .ok_or_else(|| ApiError::NotFound("account".into()))?;
    let more = found.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    found.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = more.then(|| found.last()).flatten().map(|c| {
        ChangeCursor {
            observed_at: c.observed_at,
            customer_id: c.customer_id.clone(),
        }
        .encode()
    });
    let data = found
        .into_iter()
        .map(|c| ChangeOut {
            observed_at: c.observed_at,
            balance: c.balance.to_string(),
            status: c.status.to_string(),
            active: c.active,
            closed: c.closed,
        })
        .collect();
    Ok(Json(ChangesOut { data, next_cursor }))
}
