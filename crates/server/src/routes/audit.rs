//! `GET /v2/audit` (admin): the audit log, newest first, filtered, paged by a cursor, as JSON
//! or CSV.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use coffer_store::{AuditEntry, AuditFilter};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::routes::csv;
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// An action (`customer.update`), or every action under a prefix ending in `.`
    /// (`customer.`, `key.`, `rate.`); reads are `read`, exports `export`.
    pub action: Option<String>,
    /// Only entries by this key id (`cli` for commands, `system` for Coffer itself).
    pub key_id: Option<String>,
    /// Only entries about this target (a customer id, a key id, a currency list).
    pub target: Option<String>,
    /// Entries at or after this instant (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Entries at or before this instant (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// Page size (1–1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`.
    #[param(pattern = "^[1-9][0-9]{0,17}$")]
    pub cursor: Option<String>,
    /// `json` (default) or `csv` (also chosen by `Accept: text/csv`).
    #[param(pattern = "^(json|csv)$")]
    pub format: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditOut {
    /// 1, 2, 3, … without gaps.
    pub seq: i64,
    pub at: DateTime<Utc>,
    /// The API key's id (never the key); `cli` for commands, `system` for Coffer itself.
    pub key_id: String,
    pub request_id: Option<String>,
    pub action: String,
    pub target: String,
    /// The state before a change (null for a creation or a read).
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    /// The state after a change (null for a deletion or a read).
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
    /// The previous entry's hash; the first entry's is 64 zeros.
    pub prev_hash: String,
    /// SHA-256 (hex) of this entry's fields and `prev_hash`: see `coffer audit verify`.
    pub hash: String,
}

impl From<AuditEntry> for AuditOut {
    fn from(e: AuditEntry) -> Self {
        let json = |t: Option<String>| t.and_then(|t| serde_json::from_str(&t).ok());
        AuditOut {
            seq: e.seq,
            at: e.at,
            key_id: e.key_id,
            request_id: e.request_id,
            action: e.action,
            target: e.target,
            before: json(e.before),
            after: json(e.after),
            prev_hash: e.prev_hash,
            hash: e.hash,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub data: Vec<AuditOut>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    pub next_cursor: Option<String>,
}

const COLUMNS: [&str; 10] = [
    "seq",
    "at",
    "key_id",
    "request_id",
    "action",
    "target",
    "before",
    "after",
    "prev_hash",
    "hash",
];

fn row(e: AuditEntry) -> Vec<String> {
    vec![
        e.seq.to_string(),
        e.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        e.key_id,
        e.request_id.unwrap_or_default(),
        e.action,
        e.target,
        e.before.unwrap_or_default(),
        e.after.unwrap_or_default(),
        e.prev_hash,
        e.hash,
    ]
}

fn filter(p: AuditParams) -> ApiResult<AuditFilter> {
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::param("limit", "between 1 and 1000"));
    }
    let before_seq = p
        .cursor
        .map(|c| {
            c.parse::<i64>()
                .ok()
                .filter(|s| *s > 0)
                .ok_or_else(|| ApiError::param("cursor", "not a cursor this endpoint gave"))
        })
        .transpose()?;
    if let (Some(from), Some(to)) = (p.from, p.to)
        && from > to
    {
        return Err(ApiError::param("from", "after `to`"));
    }
    Ok(AuditFilter {
        before_seq,
        action: p.action.filter(|a| !a.is_empty()),
        key_id: p.key_id.filter(|k| !k.is_empty()),
        target: p.target.filter(|t| !t.is_empty()),
        from: p.from,
        to: p.to,
        limit: limit + 1,
    })
}

/// The audit log, newest first.
#[utoipa::path(get, path = "/v2/audit", tag = "audit", params(AuditParams),
    responses((status = 200, description = "A page of entries, newest first (CSV: the rows, the cursor in `x-next-cursor`)",
            content((AuditPage = "application/json"), (String = "text/csv"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    params: Result<Query<AuditParams>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    caller.require_admin()?;
    let Query(p) = params.map_err(|e| ApiError::param("query", e.body_text()))?;
    let as_csv = csv::wanted(p.format.as_deref(), &headers)?;
    let f = filter(p)?;
    let limit = f.limit as usize - 1;
    let mut rows = state.store.list_audit(&f).await?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = more
        .then(|| rows.last().map(|e| e.seq.to_string()))
        .flatten();
    if as_csv {
        // A CSV page carries its cursor in a header: the body is rows only.
        let body = csv::body(&COLUMNS, rows.into_iter().map(row))?;
        let mut response = csv::response("audit", Utc::now(), body);
        if let Some(c) = next_cursor.and_then(|c| http::HeaderValue::from_str(&c).ok()) {
            response.headers_mut().insert("x-next-cursor", c);
        }
        return Ok(response);
    }
    let data = rows.into_iter().map(AuditOut::from).collect();
    Ok(Json(AuditPage { data, next_cursor }).into_response())
}
