//! Providers' webhooks in (DESIGN.md "Push", In): `POST /v2/webhooks/{provider_id}` keeps the
//! delivery in the store's inbox and answers 200 before any other work; [`process`] acts on it
//! later, on whichever replica leases it. A provider's delivery is never lost: anything
//! authenticated and within the size limit is kept, malformed JSON included.

pub mod admin;
mod event;
pub mod process;
mod writer;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use chrono::Utc;
use coffer_store::NewWebhook;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

/// The largest delivery kept (P100's bodies are a few hundred bytes).
pub const MAX_BODY: usize = 1 << 20;

/// What a provider is answered.
#[derive(Debug, Serialize, ToSchema)]
pub struct Received {
    /// The delivery's id in the inbox (`GET /v2/webhooks/inbox`).
    pub id: i64,
    /// `false`: this body was delivered before (a provider's retry) and is kept once.
    pub new: bool,
}

/// Receive a provider's webhook.
///
/// Authenticated by the provider's own token in `Authorization` (bare, as P100 sends it, or as
/// `Bearer <token>`); no Coffer key. A provider id that is not configured, or has no
/// `webhook_secret_env`, is answered 401 like a wrong token, so the endpoint tells an
/// unauthenticated caller nothing about which providers exist.
#[utoipa::path(post, path = "/v2/webhooks/{provider_id}", tag = "webhooks",
    security(("webhook_token" = [])),
    request_body(content = Object, description = "The provider's event, kept as sent"),
    responses((status = 200, body = Received), (status = 401, body = ErrorBody),
        (status = 413, body = ErrorBody)))]
pub async fn receive(
    State(state): State<AppState>,
    Path(provider_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Received>> {
    let Some(secret) = state.providers.webhook_secret(&provider_id) else {
        crate::metrics::webhook("unknown", "unauthorized");
        return Err(ApiError::WebhookUnauthorized);
    };
    if !token_matches(presented_token(&headers), secret) {
        crate::metrics::webhook(&provider_id, "unauthorized");
        return Err(ApiError::WebhookUnauthorized);
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        crate::metrics::webhook(&provider_id, "too_large");
        return Err(ApiError::PayloadTooLarge(MAX_BODY));
    };
    let (entry, new) = state
        .webhook_keeper
        .keep(
            &state.store,
            NewWebhook {
                delivery_id: delivery_id(&provider_id, &bytes),
                body: String::from_utf8_lossy(&bytes).into_owned(),
                provider_id: provider_id.clone(),
                received_at: Utc::now(),
            },
        )
        .await?;
    crate::metrics::webhook(&provider_id, if new { "received" } else { "duplicate" });
    if new {
        state.webhook_wake.notify_one();
    }
    Ok(Json(Received { id: entry.id, new }))
}

/// P100 sends no delivery id: a retry repeats the body, so the body (with the provider, so two
/// providers' equal bodies stay apart) identifies the delivery.
pub fn delivery_id(provider_id: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(provider_id.as_bytes());
    h.update([0]);
    h.update(body);
    hex::encode(h.finalize())
}

/// The token in `Authorization`: bare, or after `Bearer `.
fn presented_token(headers: &HeaderMap) -> Option<&str> {
    let v = headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    match v.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Some(token.trim()),
        _ => Some(v),
    }
}

/// Compares in constant time: both sides are hashed first (equal lengths, and the length of
/// the secret is not revealed), then every byte is compared.
fn token_matches(presented: Option<&str>, secret: &str) -> bool {
    let Some(presented) = presented.filter(|p| !p.is_empty()) else {
        return false;
    };
    let (a, b) = (Sha256::digest(presented), Sha256::digest(secret));
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | std::hint::black_box(x ^ y));
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, v.parse().expect("header"));
        h
    }

    #[test]
    fn the_token_is_taken_bare_or_as_bearer() {
        assert_eq!(presented_token(&headers("s3cret")), Some("s3cret"));
        assert_eq!(presented_token(&headers("Bearer s3cret")), Some("s3cret"));
        assert_eq!(presented_token(&headers("bearer  s3cret ")), Some("s3cret"));
        assert_eq!(presented_token(&HeaderMap::new()), None);
    }

    #[test]
    fn tokens_match_exactly() {
        assert!(token_matches(Some("s3cret"), "s3cret"));
        assert!(!token_matches(Some("s3cre"), "s3cret"));
        assert!(!token_matches(Some("s3cret2"), "s3cret"));
        assert!(!token_matches(Some(""), "s3cret"));
        assert!(!token_matches(None, "s3cret"));
    }

    #[test]
    fn a_retry_has_the_same_delivery_id() {
        let a = delivery_id("p100", br#"{"status":"ACTIVE"}"#);
        assert_eq!(a, delivery_id("p100", br#"{"status":"ACTIVE"}"#));
        assert_ne!(a, delivery_id("p101", br#"{"status":"ACTIVE"}"#));
        assert_ne!(a, delivery_id("p100", br#"{"status":"INACTIVE"}"#));
        assert_eq!(a.len(), 64);
    }
}
