//! The one place where errors become HTTP answers: `{"error", "message", "details"}`.
//! 5xx answers log the cause and tell the client little; no provider or database text reaches
//! the client.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use coffer_store::StoreError;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

/// The error body every endpoint answers with.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable machine-readable code, e.g. `invalid_parameter`.
    pub error: String,
    /// Human text.
    pub message: String,
    #[schema(value_type = Object)]
    pub details: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: a request parameter or body is invalid; names it.
    #[error("invalid parameter `{param}`: {message}")]
    InvalidParam { param: String, message: String },
    #[error("invalid body: {0}")]
    InvalidBody(String),
    #[error("missing or invalid API key")]
    Unauthorized,
    /// 401: a key that was valid until its expiry.
    #[error("the API key expired at {0}")]
    KeyExpired(chrono::DateTime<chrono::Utc>),
    /// 401 on a provider's webhook: no token, a wrong one, or no webhook inbox for that id.
    #[error("missing or wrong webhook token")]
    WebhookUnauthorized,
    /// 413: a body larger than the endpoint takes (bytes).
    #[error("body larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// 403 is never used for data outside a reader's scope (that is 404); only for a reader
    /// calling an admin-only endpoint.
    #[error("this endpoint needs the admin role")]
    Forbidden,
    #[error("{0} not found")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("rate limit exceeded")]
    RateLimited { retry_after_secs: u64 },
    /// 502: `strict` was asked and a provider failed.
    #[error("provider failure: {message}")]
    Provider { message: String, details: Value },
    /// 503: the request ran past `server.request_timeout`.
    #[error("no answer within {0:?} (server.request_timeout)")]
    Timeout(std::time::Duration),
    /// 503: the store or a dependency is unavailable.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn param(param: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::InvalidParam {
            param: param.into(),
            message: message.into(),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidParam { .. } | ApiError::InvalidBody(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized | ApiError::WebhookUnauthorized | ApiError::KeyExpired(_) => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Provider { .. } => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable(_) | ApiError::Timeout(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn body(&self) -> ErrorBody {
        let (error, message, details) = match self {
            ApiError::InvalidParam { param, message } => (
                "invalid_parameter",
                format!("invalid parameter `{param}`: {message}"),
                json!({ "parameter": param }),
            ),
            ApiError::InvalidBody(m) => ("invalid_body", m.clone(), json!({})),
            ApiError::Unauthorized => (
                "unauthorized",
                "missing or invalid API key: send `x-api-key: KEY` or `Authorization: Bearer KEY`"
                    .into(),
                json!({}),
            ),
            ApiError::KeyExpired(at) => (
                "key_expired",
                format!(
                    "the API key expired at {}: ask an administrator for a new one",
                    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
                json!({ "expired_at": at }),
            ),
            ApiError::WebhookUnauthorized => (
                "unauthorized",
                "missing or wrong webhook token: send the provider's token in `Authorization`"
                    .into(),
                json!({}),
            ),
            ApiError::PayloadTooLarge(limit) => (
                "payload_too_large",
                self.to_string(),
                json!({ "limit_bytes": limit }),
            ),
            ApiError::Forbidden => ("forbidden", self.to_string(), json!({})),
            ApiError::NotFound(what) => ("not_found", format!("{what} not found"), json!({})),
            ApiError::Conflict(m) => ("conflict", m.clone(), json!({})),
            ApiError::RateLimited { retry_after_secs } => (
                "rate_limited",
                "too many requests for this API key".into(),
                json!({ "retry_after_seconds": retry_after_secs }),
            ),
            ApiError::Provider { message, details } => {
                ("provider_error", message.clone(), details.clone())
            }
            ApiError::Unavailable(_) => (
                "unavailable",
                "the service cannot answer right now; retry later".into(),
                json!({}),
            ),
            ApiError::Timeout(limit) => (
                "timeout",
                format!(
                    "no answer within {}s (server.request_timeout); retry later",
                    limit.as_secs_f64()
                ),
                json!({}),
            ),
            ApiError::Internal(_) => ("internal", "internal error".into(), json!({})),
        };
        ErrorBody {
            error: error.into(),
            message,
            details,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let mut resp = (status, Json(self.body())).into_response();
        if let ApiError::RateLimited { retry_after_secs } = &self
            && let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what } => ApiError::NotFound(what),
            StoreError::Conflict(m) => ApiError::Conflict(m),
            StoreError::Unavailable(m) => ApiError::Unavailable(m),
            StoreError::Corrupt(m) | StoreError::Other(m) => ApiError::Internal(m),
        }
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(e: axum::extract::rejection::JsonRejection) -> Self {
        ApiError::InvalidBody(e.body_text())
    }
}

/// A handler's panic as an answer (tower-http's `CatchPanicLayer`): a 500 with the error
/// body, and the one log line every 5xx gets.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    ApiError::Internal(format!("a handler panicked: {what}")).into_response()
}

pub type ApiResult<T> = Result<T, ApiError>;
