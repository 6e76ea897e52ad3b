//! The raw HTTP call to P100 and [`parse_error`], the one place where P100's answers become
//! [`ProviderError`]s.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use coffer_core::{ProviderError, ProviderErrorKind};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use url::Url;

use crate::config::{ConfigError, P100Config};
use crate::wire;

/// A 200 body larger than this is refused rather than buffered (a balances answer is a few KB).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// How much of an unexpected body an error carries.
pub const SNIPPET_BYTES: usize = 512;
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
        // The binary installs the process-wide TLS provider at start; this only makes sure a
        // library user (or a test) never panics for lack of one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut api_key = HeaderValue::from_str(config.api_key.expose()).map_err(|_| {
            ConfigError::InvalidSecret {
                id: config.id.clone(),
            }
        })?;
        api_key.set_sensitive(true);
        let user_agent = config.user_agent.clone().unwrap_or_else(|| {
            concat!("coffer-provider-p100/", env!("CARGO_PKG_VERSION")).to_owned()
        });
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            // A balances call never redirects; following one could send the key elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(user_agent)
            .build()
            .map_err(|e| ConfigError::Client {
                id: config.id.clone(),
                reason: e.to_string(),
            })?;
        Ok(P100Client {
            http,
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
        let mut request = self
            .http
            .get(url)
            .header(API_KEY_HEADER, self.api_key.clone());
        for (name, value) in extra_headers {
            if name != API_KEY_HEADER {
                request = request.header(name, value);
            }
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| transport_error(&self.provider, &e))?;
        let status = response.status();
        tracing::Span::current().record("status", status.as_u16());
        let body = read_body(&self.provider, &mut response, status).await?;
        if status == StatusCode::OK {
            Ok(body)
        } else {
            Err(parse_error(
                &self.provider,
                status,
                response.headers(),
                &body,
            ))
        }
    }
}

/// Reads the body, at most [`MAX_BODY_BYTES`]; a body cut by the connection is a retryable
/// malformed response, a body too slow for the timeout is a timeout.
async fn read_body(
    provider: &str,
    response: &mut reqwest::Response,
    status: StatusCode,
) -> Result<Bytes, ProviderError> {
    let mut body = BytesMut::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(ProviderError::new(
                        provider,
                        ProviderErrorKind::MalformedResponse,
                        format!("the answer is larger than {MAX_BODY_BYTES} bytes"),
                    )
                    .with_status(status.as_u16()));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body.freeze()),
            Err(e) if e.is_timeout() => {
                return Err(transport_error(provider, &e).with_status(status.as_u16()));
            }
            Err(e) => {
                return Err(ProviderError::new(
                    provider,
                    ProviderErrorKind::MalformedResponse,
                    format!(
                        "the answer was cut after {} bytes: {}",
                        body.len(),
                        error_chain(&e)
                    ),
                )
                .with_status(status.as_u16())
                .retryable(true));
            }
        }
    }
}

/// A failure before any answer: timeout, refused or dropped connection.
pub fn transport_error(provider: &str, e: &reqwest::Error) -> ProviderError {
    let kind = if e.is_timeout() {
        ProviderErrorKind::Timeout
    } else {
        // Connect failures, and connections closed before a complete answer.
        ProviderErrorKind::Connection
    };
    // reqwest's message may hold the URL (with the customer's id) but never a header value.
    ProviderError::new(provider, kind, error_chain(e))
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
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

/// The first [`SNIPPET_BYTES`] of a body as text, cut on a character boundary.
pub fn snippet(body: &[u8]) -> String {
    let head = &body[..body.len().min(SNIPPET_BYTES + 4)];
    let text = String::from_utf8_lossy(head);
    let cut = truncate(&text, SNIPPET_BYTES);
    if cut.len() < body.len() {
        format!("{cut}…")
    } else {
        cut.to_owned()
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3); a date in the past is 0.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = date.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(retry: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(retry).expect("header"));
        h
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(retry_after(&headers("7")), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 07:28:00 GMT")),
            Some(Duration::ZERO)
        );
        let later = (chrono::Utc::now() + chrono::Duration::seconds(120))
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let wait = retry_after(&headers(&later)).expect("date");
        assert!(
            wait > Duration::from_secs(100) && wait <= Duration::from_secs(120),
            "{wait:?}"
        );
        assert_eq!(retry_after(&headers("soon")), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn snippet_cuts_on_a_char_boundary() {
        let body = "é".repeat(400); // 800 bytes
        let s = snippet(body.as_bytes());
        assert!(s.ends_with('…'));
        assert!(s.trim_end_matches('…').len() <= SNIPPET_BYTES);
        assert_eq!(snippet(b"short"), "short");
    }

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
