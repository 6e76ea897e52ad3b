//! P100's request and [`parse_error`], the one place where P100's answers become
//! [`ProviderError`]s, as the kit's [`HttpAdapter`] (the kit makes the call).

use std::time::Duration;

use chrono::{DateTime, Utc};
use coffer_core::BalanceType;
use coffer_core::{ProviderError, ProviderErrorKind, ProviderSnapshot};
use coffer_provider_kit::http::{self, truncate};
use coffer_provider_kit::{HttpAdapter, Transport};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{RequestBuilder, StatusCode};
use url::Url;

use crate::config::{ConfigError, P100Config};
use crate::{map, wire};

pub use coffer_provider_kit::http::{
    MAX_BODY_BYTES, SNIPPET_BYTES, retry_after, snippet, transport_error,
};
/// Wait suggested after P501 "service temporarily unavailable" when P100 sends no Retry-After.
pub const P501_BACKOFF: Duration = Duration::from_secs(5);

/// The most of an `errorCode` an error carries.
pub const MAX_CODE_BYTES: usize = 64;

const API_KEY_HEADER: HeaderName = HeaderName::from_static("x-api-key");
/// The headers the per-request hook may never set.
static CREDENTIAL_HEADERS: [HeaderName; 1] = [API_KEY_HEADER];

/// P100's HTTP API as the kit calls it: the request and [`parse_error`]. Holds the key as a
/// sensitive header value, so neither reqwest nor hyper print it.
pub struct P100Adapter {
    base_url: Url,
    api_key: HeaderValue,
}

impl P100Adapter {
    /// `{base}/v1/user/{externalUserId}/balances`, the id percent-encoded as one path segment.
    pub fn balances_url(&self, provider: &str, external_id: &str) -> Result<Url, ProviderError> {
        // `url` drops `.` and `..` segments, which would call another endpoint.
        if external_id.is_empty() || matches!(external_id, "." | "..") {
            return Err(ProviderError::new(
                provider,
                ProviderErrorKind::InvalidRequest,
                format!("`{external_id}` cannot be a P100 externalUserId"),
            ));
        }
        let mut url = self.base_url.clone();
        url.path_segments_mut()
            .map_err(|()| {
                ProviderError::new(
                    provider,
                    ProviderErrorKind::InvalidRequest,
                    "base_url cannot take a path",
                )
            })?
            .pop_if_empty()
            .extend(["v1", "user", external_id, "balances"]);
        Ok(url)
    }
}

#[async_trait::async_trait]
impl HttpAdapter for P100Adapter {
    type Config = P100Config;
    const KIND: &'static str = crate::KIND;
    const NAME: &'static str = "P100";
    /// P100's documentation calls `amount` the "current available amount".
    const BALANCE_TYPE: BalanceType = crate::map::BALANCE_TYPE;

    fn from_config(config: P100Config) -> Result<(Self, Transport), ConfigError> {
        config.validate()?;
        let api_key = http::sensitive_header(&config.id, config.api_key.expose())?;
        let user_agent = config.user_agent.unwrap_or_else(|| {
            concat!("coffer-provider-p100/", env!("CARGO_PKG_VERSION")).to_owned()
        });
        let adapter = P100Adapter {
            base_url: config.base_url,
            api_key,
        };
        let transport = Transport {
            id: config.id,
            timeout: config.timeout,
            user_agent,
        };
        Ok((adapter, transport))
    }

    fn credential_headers(&self) -> &[HeaderName] {
        &CREDENTIAL_HEADERS
    }

    async fn build_request(
        &self,
        http: &reqwest::Client,
        provider: &str,
        external_id: &str,
    ) -> Result<RequestBuilder, ProviderError> {
        let url = self.balances_url(provider, external_id)?;
        Ok(http.get(url).header(API_KEY_HEADER, self.api_key.clone()))
    }

    fn parse_success(
        &self,
        provider: &str,
        body: &[u8],
        fetched_at: DateTime<Utc>,
    ) -> Result<ProviderSnapshot, ProviderError> {
        map::snapshot(provider, body, fetched_at)
    }

    fn parse_error(
        &self,
        provider: &str,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> ProviderError {
        parse_error(provider, status, headers, body)
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
        // A code is a few letters (`P412`); a body that says more is cut, so an error never
        // carries a body's worth of text.
        let error_code = truncate(&body.error_code, MAX_CODE_BYTES);
        let e = match error_code {
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
        return e.with_code(error_code);
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
        truncate(&body.error_code, MAX_CODE_BYTES).to_owned()
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

    /// Found by the kit's property checks: an `errorCode` is echoed, so a body-sized one made
    /// a body-sized error.
    #[test]
    fn a_huge_error_code_is_cut() {
        let body = format!(r#"{{"errorCode":"{}"}}"#, "é".repeat(5000));
        for status in [StatusCode::BAD_REQUEST, StatusCode::BAD_GATEWAY] {
            let e = parse_error("p100", status, &HeaderMap::new(), body.as_bytes());
            assert_eq!(e.code.as_deref(), Some("é".repeat(32).as_str()));
            assert!(e.message.len() < 2 * SNIPPET_BYTES, "{}", e.message.len());
        }
    }
}
