//! The HTTP every adapter does the same way: the client built once, credentials as sensitive
//! header values, per-request headers, the one request with its body read under a size cap,
//! and the helpers an adapter's `parse_error` maps answers with ([`retry_after`], [`snippet`]).
//! What an answer *means* stays in each adapter's `parse_error`; the call itself is made by
//! [`crate::adapter::HttpProvider`].

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use coffer_core::{ProviderError, ProviderErrorKind};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{RequestBuilder, StatusCode};

use crate::config::ConfigError;

/// A 200 body larger than this is refused rather than buffered (a balances answer is a few KB).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// How much of an unexpected body an error carries.
pub const SNIPPET_BYTES: usize = 512;

/// Per-request extra headers (the hook for W3C trace context, `traceparent`/`tracestate`).
pub type HeaderHook = Arc<dyn Fn() -> HeaderMap + Send + Sync>;

/// The server's per-request headers as an adapter's hook; invalid names or values are skipped.
pub fn header_hook(f: coffer_core::HeaderFn) -> HeaderHook {
    Arc::new(move || {
        let mut map = HeaderMap::new();
        for (k, v) in f() {
            if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
                map.insert(k, v);
            }
        }
        map
    })
}

/// The reqwest client of one provider instance, built once: `timeout` for connect and for the
/// whole answer, no redirects (a balances call never redirects, and following one could send
/// the credential elsewhere), rustls.
pub fn client(
    id: &str,
    timeout: Duration,
    user_agent: String,
) -> Result<reqwest::Client, ConfigError> {
    // The binary installs the process-wide TLS provider at start; this only makes sure a
    // library user (or a test) never panics for lack of one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(user_agent)
        .build()
        .map_err(|e| ConfigError::Client {
            id: id.to_owned(),
            reason: e.to_string(),
        })
}

/// A credential as a header value marked sensitive, so neither `http`'s `Debug`, reqwest nor
/// hyper ever print it. A value that cannot be a header is refused without echoing it.
pub fn sensitive_header(id: &str, value: &str) -> Result<HeaderValue, ConfigError> {
    let mut value = HeaderValue::from_str(value)
        .map_err(|_| ConfigError::InvalidSecret { id: id.to_owned() })?;
    value.set_sensitive(true);
    Ok(value)
}

/// Adds the per-request headers, except the `reserved` ones (the credential's): a hook can
/// never override authentication.
pub fn with_extra_headers(
    mut request: RequestBuilder,
    extra: &HeaderMap,
    reserved: &[HeaderName],
) -> RequestBuilder {
    for (name, value) in extra {
        if !reserved.contains(name) {
            request = request.header(name, value);
        }
    }
    request
}

/// One answer, its body read in full.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Sends the request and reads the answer, at most [`MAX_BODY_BYTES`]; records `status` on
/// the current span (the kit's `provider.fetch`, [`crate::adapter::HttpProvider`]). Only transport failures are errors here:
/// every status, 200 or not, comes back as an [`Answer`] for the adapter's `parse_error`.
pub async fn send(provider: &str, request: RequestBuilder) -> Result<Answer, ProviderError> {
    let mut response = request
        .send()
        .await
        .map_err(|e| transport_error(provider, &e))?;
    let status = response.status();
    tracing::Span::current().record("status", status.as_u16());
    let body = read_body(provider, &mut response, status).await?;
    Ok(Answer {
        status,
        headers: std::mem::take(response.headers_mut()),
        body,
    })
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

/// An error and its sources, `: `-separated.
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

/// The first [`SNIPPET_BYTES`] of a body as text, cut on a character boundary; `…` marks a
/// cut.
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

/// At most `max` bytes of `s`, cut on a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3), a date in the past
/// being 0. All three date forms of §5.6.7 are read (IMF-fixdate `Sun, 06 Nov 1994 08:49:37
/// GMT`, RFC 850 `Sunday, 06-Nov-94 08:49:37 GMT`, asctime `Sun Nov  6 08:49:37 1994`), and,
/// leniently, RFC 2822 dates with a numeric offset, which some servers send.
///
/// A delay too large for `u64` seconds is `u64::MAX` seconds rather than no delay: the
/// provider asked for a long wait, and ignoring it would retry at once. How long the server
/// actually waits is its own clamp, not the adapter's.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = match httpdate::parse_http_date(value) {
        Ok(at) => at,
        Err(_) => chrono::DateTime::parse_from_rfc2822(value).ok()?.into(),
    };
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_TIMEOUT;

    fn headers(retry: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(retry).expect("header"));
        h
    }

    #[test]
    fn retry_after_reads_seconds() {
        assert_eq!(retry_after(&headers("7")), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(&headers(" 0 ")), Some(Duration::ZERO));
        assert_eq!(retry_after(&headers("soon")), None);
        assert_eq!(retry_after(&headers("-3")), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn retry_after_reads_http_dates() {
        assert_eq!(
            retry_after(&headers("Wed, 21 Oct 2015 07:28:00 GMT")),
            Some(Duration::ZERO),
            "a date in the past is no wait"
        );
        let wait = retry_after(&headers(&in_120s("%a, %d %b %Y %H:%M:%S GMT"))).expect("date");
        assert_about_120s(wait);
    }

    /// RFC 9110 §5.6.7: a recipient must accept all three forms; the obsolete two were once
    /// ignored, so a rate limit's wait was lost.
    #[test]
    fn retry_after_reads_the_obsolete_rfc850_and_asctime_dates() {
        for past in [
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun, 06 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(retry_after(&headers(past)), Some(Duration::ZERO), "{past}");
        }
        // RFC 850's two-digit year is read as 1970–2069, so a near-future date is near.
        let wait = retry_after(&headers(&in_120s("%A, %d-%b-%y %H:%M:%S GMT"))).expect("rfc850");
        assert_about_120s(wait);
        let wait = retry_after(&headers(&in_120s("%a %b %e %H:%M:%S %Y"))).expect("asctime");
        assert_about_120s(wait);
        // Lenient: RFC 2822 with a numeric offset, as some servers send.
        let wait = retry_after(&headers(&in_120s("%a, %d %b %Y %H:%M:%S +0000"))).expect("2822");
        assert_about_120s(wait);
        for bad in [
            "Sunday, 06-Nov-94 08:49:37",
            "Mon, 06 Nov 1994 08:49:37 GMT", // the weekday is wrong
            "Sun Nov 6 08:49:37 1994",       // asctime pads the day with a space
            "",
        ] {
            assert_eq!(retry_after(&headers(bad)), None, "{bad:?}");
        }
    }

    #[test]
    fn retry_after_keeps_huge_delays_huge() {
        let max = Some(Duration::from_secs(u64::MAX));
        assert_eq!(retry_after(&headers("18446744073709551615")), max);
        assert_eq!(retry_after(&headers("18446744073709551616")), max);
        assert_eq!(retry_after(&headers(&"9".repeat(400))), max);
        assert_eq!(
            retry_after(&headers("Fri, 31 Dec 9999 23:59:59 GMT"))
                .map(|d| d > Duration::from_secs(200 * 365 * 86_400)),
            Some(true)
        );
        assert_eq!(retry_after(&headers("1e3")), None);
        assert_eq!(retry_after(&headers("+5")), None);
    }

    fn in_120s(format: &str) -> String {
        (chrono::Utc::now() + chrono::Duration::seconds(120))
            .format(format)
            .to_string()
    }

    fn assert_about_120s(wait: Duration) {
        assert!(
            wait > Duration::from_secs(100) && wait <= Duration::from_secs(120),
            "{wait:?}"
        );
    }

    #[test]
    fn snippet_cuts_on_a_char_boundary() {
        let body = "é".repeat(400); // 800 bytes, every char 2 bytes
        let s = snippet(body.as_bytes());
        assert!(s.ends_with('…'));
        let cut = s.trim_end_matches('…');
        assert!(cut.len() <= SNIPPET_BYTES);
        assert_eq!(cut, "é".repeat(SNIPPET_BYTES / 2));
        // A 3-byte char straddling the limit is left out whole.
        let body = format!("{}€", "a".repeat(SNIPPET_BYTES - 1));
        assert_eq!(
            snippet(body.as_bytes()),
            format!("{}…", "a".repeat(SNIPPET_BYTES - 1))
        );
        assert_eq!(snippet(b"short"), "short");
        assert_eq!(snippet(&[0xff, b'a']), "\u{fffd}a");
    }

    #[test]
    fn truncate_never_splits_a_char() {
        assert_eq!(truncate("aé", 2), "a");
        assert_eq!(truncate("aé", 3), "aé");
        assert_eq!(truncate("abc", 10), "abc");
    }

    #[test]
    fn header_hook_skips_what_cannot_be_a_header() {
        let hook = header_hook(Arc::new(|| {
            vec![
                ("traceparent".to_owned(), "00-abc-01".to_owned()),
                ("bad name".to_owned(), "x".to_owned()),
                ("x-ok".to_owned(), "bad\nvalue".to_owned()),
            ]
        }));
        let map = hook();
        assert_eq!(map.len(), 1);
        assert_eq!(map["traceparent"], "00-abc-01");
    }

    #[test]
    fn sensitive_headers_hide_the_credential() {
        let v = sensitive_header("p", "k-123").expect("valid");
        assert!(v.is_sensitive());
        assert!(!format!("{v:?}").contains("k-123"));
        let e = sensitive_header("p", "bad\nkey").expect_err("newline");
        assert_eq!(e, ConfigError::InvalidSecret { id: "p".into() });
    }

    #[test]
    fn reserved_headers_are_not_overridden() {
        let client = client("p", DEFAULT_TIMEOUT, "coffer-test".into()).expect("client");
        let mut extra = HeaderMap::new();
        extra.insert("x-api-key", HeaderValue::from_static("from-hook"));
        extra.insert("traceparent", HeaderValue::from_static("t"));
        let request = with_extra_headers(
            client.get("http://127.0.0.1:9/"),
            &extra,
            &[HeaderName::from_static("x-api-key")],
        )
        .build()
        .expect("request");
        assert!(request.headers().get("x-api-key").is_none());
        assert_eq!(request.headers()["traceparent"], "t");
    }
}
