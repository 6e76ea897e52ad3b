//! Who is calling: the key a request presents (`x-api-key` or `Authorization: Bearer`), resolved
//! through the key cache ([`crate::keys`]), checked for expiry and its rate limit, and handed to
//! handlers as a [`Caller`].

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::Utc;

use crate::error::ApiError;
use crate::state::AppState;

pub use crate::keys::{Caller, KEY_PREFIX, KeyResolver, create_key, generate_key, hash_key};

/// The key from `x-api-key` or `Authorization: Bearer`.
fn presented_key(parts: &Parts) -> Option<&str> {
    if let Some(v) = parts.headers.get("x-api-key") {
        return v.to_str().ok().map(str::trim);
    }
    let auth = parts
        .headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = auth.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(c) = parts.extensions.get::<Caller>() {
            return Ok(c.clone());
        }
        let key = presented_key(parts)
            .filter(|k| !k.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        let mut caller = state
            .keys
            .resolve(key)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        if let Some(at) = caller.expires_at.filter(|at| *at <= Utc::now()) {
            return Err(ApiError::KeyExpired(at));
        }
        state.limiter.check(&caller.key_id)?;
        caller.request_id = parts
            .headers
            .get(crate::telemetry::REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}
