//! The raw HTTP call to Corebanq and [`parse_error`], the one place where Corebanq's answers
//! become [`ProviderError`]s.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use coffer_core::{Currency, ProviderError, ProviderErrorKind};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use url::Url;

use crate::auth::CorebanqAuth;
use crate::config::{ConfigError, CorebanqConfig};
use crate::wire;

/// A 200 body larger than this is refused rather than buffered.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// How much of an unexpected body an error carries.
pub const SNIPPET_BYTES: usize = 512;

/// HTTP access to one Corebanq instance.
pub struct CorebanqClient {
    http: reqwest::Client,
    base_url: Url,
    auth: Arc<dyn CorebanqAuth>,
    quote: Currency,
    provider: String,
}

impl CorebanqClient {
    pub fn new(config: &CorebanqConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        // The binary installs the process-wide TLS provider at start; this only makes sure a
        // library user (or a test) never panics for lack of one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let user_agent = config.user_agent.clone().unwrap_or_else(|| {
            concat!("coffer-provider-corebanq/", env!("CARGO_PKG_VERSION")).to_owned()
        });
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            // A balance call never redirects; following one could send the token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(user_agent)
            .build()
            .map_err(|e| ConfigError::Client {
                id: config.id.clone(),
                reason: e.to_string(),
            })?;
        Ok(CorebanqClient {
            http,
            base_url: config.base_url.clone(),
            auth: config.auth.clone(),
            quote: config.quote_currency.clone(),
            provider: config.id.clone(),
        })
    }

    /// The currency asked for in every call.
    pub fn quote(&self) -> &Currency {
        &self.quote
    }

    /// `{base}/v2/accounts/balance?customer_id=…&currency=…&details=true` (seed 004).
    pub fn balance_url(&self, customer_id: &str) -> Result<Url, ProviderError> {
        if customer_id.trim().is_empty() {
            return Err(ProviderError::new(
                &self.provider,
                ProviderErrorKind::InvalidRequest,
                "an empty customer_id cannot be asked for",
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
            .extend(["v2", "accounts", "balance"]);
        url.query_pairs_mut()
            .append_pair("customer_id", customer_id)
            .append_pair("currency", self.quote.code())
            .append_pair("details", "true");
        Ok(url)
    }

    /// The 200 body of the balance call; any other answer is mapped by [`parse_error`].
    /// `extra_headers` is the hook for per-request headers (W3C `traceparent`, …).
    pub async fn get_balance(
        &self,
        customer_id: &str,
        extra_headers: &HeaderMap,
    ) -> Result<Bytes, ProviderError> {
        let url = self.balance_url(customer_id)?;
        let mut request = self.http.get(url);
        for (name, value) in extra_headers {
            if name != reqwest::header::AUTHORIZATION && name.as_str() != "x-api-key" {
                request = request.header(name, value);
            }
        }
        let request = self.auth.authorize(request).await.map_err(|mut e| {
            e.provider = self.provider.clone();
            e
        })?;
        let mut response = request
            .send()
            .await
            .map_err(|e| transport_error(&self.provider, &e))?;
        let status = response.status();
        tracing::Span::current().record("status", status.as_u16());
        let body = read_body(&self.provider, &mut response, status).await?;
        if status == StatusCode::OK {
            return Ok(body);
        }
        if status == StatusCode::UNAUTHORIZED {
            self.auth.rejected().await;
        }
        Err(parse_error(
            &self.provider,
            status,
            response.headers(),
            &body,
        ))
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

/// Maps a non-200 answer. Corebanq's errors are `{error, message, details}` (seed 004).
pub fn parse_error(
    provider: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> ProviderError {
    use ProviderErrorKind as K;
    let code = status.as_u16();
    let parsed = serde_json::from_slice::<wire::ErrorBody>(body).ok();
    let text = parsed.as_ref().map_or_else(|| snippet(body), error_text);
    let err = |kind: K, message: String| {
        let e = ProviderError::new(provider, kind, message).with_status(code);
        match &parsed {
            Some(p) if !p.error.is_empty() => e.with_code(truncate(&p.error, 64)),
            _ => e,
        }
    };
    match status {
        StatusCode::UNAUTHORIZED => err(
            K::Auth,
            format!("Corebanq rejected the credentials (expired or wrong token?): {text}"),
        )
        .retryable(false),
        StatusCode::FORBIDDEN => err(
            K::Auth,
            format!("Corebanq does not allow these credentials to read this customer: {text}"),
        )
        .retryable(false),
        // Only Corebanq's own error body says "no such customer"; a bare 404 is more likely a
        // wrong base_url, and must not make every customer look unknown.
        StatusCode::NOT_FOUND if parsed.is_some() => err(
            K::UnknownCustomer,
            format!("Corebanq does not know this customer: {text}"),
        )
        .retryable(false),
        StatusCode::TOO_MANY_REQUESTS => err(
            K::RateLimited,
            format!("Corebanq rate limit reached: {text}"),
        )
        .retryable(true)
        .with_retry_after(retry_after(headers)),
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY if parsed.is_some() => {
            // Coffer built a request Corebanq refuses: our bug.
            tracing::error!(provider, status = code, detail = %text,
                "Corebanq says our balance request is invalid; this is a bug in Coffer's Corebanq adapter");
            err(
                K::InvalidRequest,
                format!("Corebanq refused the request as invalid: {text}"),
            )
            .retryable(false)
        }
        s if s.is_server_error() => err(
            K::Unavailable,
            format!("Corebanq answered HTTP {code}: {text}"),
        )
        .retryable(true)
        .with_retry_after(retry_after(headers)),
        _ => err(
            K::Unexpected,
            format!("unexpected answer HTTP {code}: {}", snippet(body)),
        )
        .retryable(false),
    }
}

fn error_text(body: &wire::ErrorBody) -> String {
    let mut out = body.error.clone();
    if let Some(m) = body.message.as_deref().filter(|m| !m.is_empty()) {
        out.push_str(": ");
        out.push_str(m);
    }
    if let Some(d) = body
        .details
        .as_ref()
        .filter(|d| !d.is_null() && d.as_object().is_none_or(|o| !o.is_empty()))
    {
        out.push_str(&format!(" ({d})"));
    }
    truncate(&out, SNIPPET_BYTES).to_owned()
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(retry: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(retry).unwrap());
        h
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(retry_after(&headers("7")), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 07:28:00 GMT")),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers("soon")), None);
    }

    #[test]
    fn a_bare_404_is_not_an_unknown_customer() {
        let none = HeaderMap::new();
        let e = parse_error("bank", StatusCode::NOT_FOUND, &none, b"<html>404</html>");
        assert_eq!(e.kind, ProviderErrorKind::Unexpected);
        let e = parse_error(
            "bank",
            StatusCode::NOT_FOUND,
            &none,
            br#"{"error":"not_found","message":"Customer not found","details":{}}"#,
        );
        assert_eq!(
            (e.kind, e.code.as_deref()),
            (ProviderErrorKind::UnknownCustomer, Some("not_found"))
        );
        assert!(
            e.message.ends_with("not_found: Customer not found"),
            "{}",
            e.message
        );
    }

    #[test]
    fn snippet_cuts_on_a_char_boundary() {
        let body = "é".repeat(400);
        let s = snippet(body.as_bytes());
        assert!(s.trim_end_matches('…').len() <= SNIPPET_BYTES);
    }
}
