//! The P100 Partner API v1 simulator: `GET /v1/user/{externalUserId}/balances`.

use axum::Router;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;

use crate::AppState;
use crate::conn::ConnCtl;
use crate::fault::{DenyReason, P100Error, Provider};
use crate::respond::{Reply, p100_error_reply as error_reply, serve_call};
use crate::state::{Found, Shared};

/// P100's own routes (the simulator's `/_sim` admin routes are added by the caller).
pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/v1/user/{external_user_id}/balances", get(balances))
}

async fn balances(
    State(app): State<AppState>,
    Path(id): Path<String>,
    ConnectInfo(conn): ConnectInfo<ConnCtl>,
    headers: HeaderMap,
) -> Response {
    serve_call(&app.shared, Provider::P100, Some(&id), &conn, || {
        answer(&app.shared, &id, &headers)
    })
    .await
}

fn answer(shared: &Shared, id: &str, headers: &HeaderMap) -> Reply {
    // Lower-case `x-api-key` (header names are case-insensitive on the wire anyway).
    match headers.get("x-api-key") {
        None => return error_reply(P100Error::Unauthorized(DenyReason::Xo1)),
        Some(k) if k.as_bytes() != shared.config.p100_api_key.as_bytes() => {
            return error_reply(P100Error::Unauthorized(DenyReason::Xo2));
        }
        Some(_) => {}
    }
    body(shared, id).unwrap_or_else(|| error_reply(P100Error::P412))
}

/// The 200 answer for this user, if P100 knows them.
pub(crate) fn body(shared: &Shared, id: &str) -> Option<Reply> {
    Some(match shared.p100_customer(id)? {
        Found::Raw(b) => Reply::json(200, b),
        Found::Structured(c) => Reply::json(200, serde_json::to_vec(&*c).unwrap_or_default()),
    })
}
