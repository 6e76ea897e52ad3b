//! The raw HTTP call to P100 and [`parse_error`], the one place where P100's answers become
//! [`ProviderError`]s.

use std::time::Duration;

use bytes::Bytes;
use coffer_core::{ProviderError, ProviderErrorKind};
use coffer_provider_kit::http::{self, truncate};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

use crate::config::{ConfigError, P100Config};
use crate::wire;

pub use coffer_provider_kit::http::{
    MAX_BODY_BYTES, SNIPPET_BYTES, retry_after, snippet, transport_error,
};
/// Wait suggested after P501 "service temporarily unavailable" when P100 sends no Retry-After.
pub const P501_BACKOFF: Duration = Duration::from_secs(5);

const API_KEY_HEADER: HeaderName = HeaderName::from_static("x-api-key");

/// HTTP access to one P100 instance. Holds the key as a sensitive header value, so neither
/// reqwest nor hyper print it.
pub struct P100Client {
    http: reqwest::Client,
    base_url: Url,
    api_key: HeaderValue,
    provider: String,
}

impl P100Client {
    pub fn new(config: &P100Config) -> Result<Self, ConfigError> {
        config.validate()?;
        let api_key = http::sensitive_header(&config.id, config.api_key.expose())?;
        let user_agent = config.user_agent.clone().unwrap_or_else(|| {
            concat!("coffer-provider-p100/", env!("CARGO_PKG_VERSION")).to_owned()
        });
        Ok(P100Client {
            http: http::client(&config.id, config.timeout, user_agent)?,
            base_url: config.base_url.clone(),
            api_key,
            provider: config.id.clone(),
        })
    }

    /// `{base}/v1/user/{externalUserId}/balances`, the id percent-encoded as one path segment.
    pub fn balances_url(&self, external_id: &str) -> Result<Url, ProviderError> {
        // `url` drops `.` and `..` segments, which would call another endpoint.
        if external_id.is_empty() || matches!(external_id, "." | "..") {
            return Err(ProviderError::new(
                &self.provider,
                ProviderErrorKind::InvalidRequest,
                format!("`{external_id}` cannot be a P100 externalUserId"),
            ));
        }
        let mut url = self.base_url.clone();
        url.path_segments_mut()
            .map_err(|()| {
                ProviderError::new(
                    &self.provider,
                    ProviderErrorKind::InvalidRequest,
                    "base_url cannot take a path",
                )
            })?
            .pop_if_empty()
            .extend(["v1", "user", external_id, "balances"]);
        Ok(url)
    }

    /// The 200 body of the balances call; any other answer is mapped by [`parse_error`].
    /// `extra_headers` is the hook for per-request headers (W3C `traceparent`, …).
    pub async fn get_balances(
        &self,
        external_id: &str,
        extra_headers: &HeaderMap,
    ) -> Result<Bytes, ProviderError> {
        let url = self.balances_url(external_id)?;
        let request = self
            .http
            .get(url)
            .header(API_KEY_HEADER, self.api_key.clone());
        let request = http::with_extra_headers(request, extra_headers, &[API_KEY_HEADER]);
        let answer = http::send(&self.provider, request).await?;
        if answer.status == StatusCode::OK {
            Ok(answer.body)
        } else {
            Err(parse_error(
                &self.provider,
                answer.status,
                &answer.headers,
                &answer.body,
            ))
        }
    }
}

/// Maps a non-200 answer by P100's own codes first, then by HTTP status (seed 000,
/// "Responses"; DESIGN.md, "What the providers really do").
pub fn parse_error(
    provider: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> ProviderError {
    use ProviderErrorKind as K;
    let code = status.as_u16();
    let err =
        |kind: K, message: String| ProviderError::new(provider, kind, message).with_status(code);

    // 401 with a text body: `Access Denied. xo1` (no key), `xo2` (wrong key), `xo3` (IP not
    // allowed, production only).
    if status == StatusCode::UNAUTHORIZED {
        let text = String::from_utf8_lossy(body);
        let (reason, xo) = if text.contains("xo1") {
            (
                "no API key reached P100 (xo1): check the key's environment variable",
                Some("xo1"),
            )
        } else if text.contains("xo2") {
            (
                "P100 rejected the API key (xo2): wrong key, or a key of the other environment",
                Some("xo2"),
            )
        } else if text.contains("xo3") {
            (
                "P100 does not allow this IP address (xo3): add it to the key's allow-list",
                Some("xo3"),
            )
        } else {
            ("P100 denied access", None)
        };
        let e = err(K::Auth, format!("{reason}: {}", snippet(body))).retryable(false);
        return match xo {
            Some(xo) => e.with_code(xo),
            None => e,
        };
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        return err(K::RateLimited, "P100 rate limit reached".into())
            .retryable(true)
            .with_retry_after(retry_after(headers));
    }

    if let Ok(body) = serde_json::from_slice::<wire::ErrorBody>(body) {
        let text = business_text(&body);
        let e = match body.error_code.as_str() {
            "P412" => err(
                K::UnknownCustomer,
                format!("P100 does not know this user: {text}"),
            )
            .retryable(false),
            "P459" => err(
                K::CustomerNotVerified,
                format!("the user is not verified yet: {text}"),
            )
            .retryable(false),
            "P403" => {
                // A validation error means Coffer sent something P100 refuses: our bug.
                tracing::error!(provider, status = code, error_code = "P403", detail = %text,
                    "P100 says our balances request is invalid; this is a bug in Coffer's P100 adapter");
                err(
                    K::InvalidRequest,
                    format!("P100 refused the request as invalid: {text}"),
                )
                .retryable(false)
            }
            "P500" => err(
                K::Unavailable,
                format!("P100 failed with an unknown exception: {text}"),
            )
            .retryable(true),
            "P501" => err(
                K::Unavailable,
                format!("P100 is temporarily unavailable: {text}"),
            )
            .retryable(true)
            .with_retry_after(Some(retry_after(headers).unwrap_or(P501_BACKOFF))),
            other if status.is_server_error() => {
                err(K::Unavailable, format!("P100 error {other}: {text}"))
                    .retryable(true)
                    .with_retry_after(retry_after(headers))
            }
            other => err(
                K::Unexpected,
                format!("unexpected P100 error {other} (HTTP {code}): {text}"),
            )
            .retryable(false),
        };
        return e.with_code(body.error_code);
    }

    if status.is_server_error() {
        return err(
            K::Unavailable,
            format!("P100 answered HTTP {code}: {}", snippet(body)),
        )
        .retryable(true)
        .with_retry_after(retry_after(headers));
    }
    // Includes a 404 without P412: most likely a wrong base_url, not an unknown user.
    err(
        K::Unexpected,
        format!("unexpected answer HTTP {code}: {}", snippet(body)),
    )
    .retryable(false)
}

fn business_text(body: &wire::ErrorBody) -> String {
    let parts: Vec<&str> = [body.error_name.as_deref(), body.error_message.as_deref()]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect();
    let joined = if parts.is_empty() {
        body.error_code.clone()
    } else {
        parts.join(": ")
    };
    truncate(&joined, SNIPPET_BYTES).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_win_over_http_status() {
        let ok = HeaderMap::new();
        let e = parse_error(
            "p100",
            StatusCode::BAD_REQUEST,
            &ok,
            br#"{"errorCode":"P501","errorName":"x"}"#,
        );
        assert_eq!(
            (e.kind, e.retryable, e.retry_after),
            (ProviderErrorKind::Unavailable, true, Some(P501_BACKOFF))
        );
        let e = parse_error(
            "p100",
            StatusCode::NOT_FOUND,
            &ok,
            br#"{"errorCode":"P412"}"#,
        );
        assert_eq!(
            (e.kind, e.code.as_deref()),
            (ProviderErrorKind::UnknownCustomer, Some("P412"))
        );
        let e = parse_error("p100", StatusCode::NOT_FOUND, &ok, b"<html>nginx</html>");
        assert_eq!(e.kind, ProviderErrorKind::Unexpected);
    }
}
