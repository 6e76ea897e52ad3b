//! Corebanq's request and [`parse_error`], the one place where Corebanq's answers become
//! [`ProviderError`]s, as the kit's [`HttpAdapter`] (the kit makes the call).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use coffer_core::BalanceType;
use coffer_core::{Currency, ProviderError, ProviderErrorKind, ProviderSnapshot};
use coffer_provider_kit::http::truncate;
use coffer_provider_kit::{HttpAdapter, Transport};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName};
use reqwest::{RequestBuilder, StatusCode};
use url::Url;

use crate::auth::{API_KEY_HEADER, CorebanqAuth};
use crate::config::{ConfigError, CorebanqConfig};
use crate::{map, wire};

pub use coffer_provider_kit::http::{
    MAX_BODY_BYTES, SNIPPET_BYTES, retry_after, snippet, transport_error,
};

/// The headers the per-request hook may never set, whichever [`CorebanqAuth`] is used.
static CREDENTIAL_HEADERS: [HeaderName; 2] = [AUTHORIZATION, API_KEY_HEADER];

/// Corebanq's HTTP API as the kit calls it: the request, with its credential from the
/// pluggable [`CorebanqAuth`], and [`parse_error`].
pub struct CorebanqAdapter {
    base_url: Url,
    auth: Arc<dyn CorebanqAuth>,
    quote: Currency,
}

impl CorebanqAdapter {
    /// The currency asked for in every call.
    pub fn quote(&self) -> &Currency {
        &self.quote
    }

    /// `{base}/v2/accounts/balance?customer_id=…&currency=…&details=true` (seed 004).
    pub fn balance_url(&self, provider: &str, customer_id: &str) -> Result<Url, ProviderError> {
        if customer_id.trim().is_empty() {
            return Err(ProviderError::new(
                provider,
                ProviderErrorKind::InvalidRequest,
                "an empty customer_id cannot be asked for",
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
            .extend(["v2", "accounts", "balance"]);
        url.query_pairs_mut()
            .append_pair("customer_id", customer_id)
            .append_pair("currency", self.quote.code())
            .append_pair("details", "true");
        Ok(url)
    }
}

#[async_trait::async_trait]
impl HttpAdapter for CorebanqAdapter {
    type Config = CorebanqConfig;
    const KIND: &'static str = crate::KIND;
    const NAME: &'static str = "Corebanq";
    /// Corebanq's `balance` carries no qualifier: Coffer does not guess.
    const BALANCE_TYPE: BalanceType = crate::map::BALANCE_TYPE;
    /// `balance_in_base ÷ balance` (map::rate): only as precise as Corebanq's rounding of
    /// `balance_in_base`.
    const RATES_ARE_DERIVED: bool = true;

    fn from_config(config: CorebanqConfig) -> Result<(Self, Transport), ConfigError> {
        config.validate()?;
        let user_agent = config.user_agent.unwrap_or_else(|| {
            concat!("coffer-provider-corebanq/", env!("CARGO_PKG_VERSION")).to_owned()
        });
        let adapter = CorebanqAdapter {
            base_url: config.base_url,
            auth: config.auth,
            quote: config.quote_currency,
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
        customer_id: &str,
    ) -> Result<RequestBuilder, ProviderError> {
        let url = self.balance_url(provider, customer_id)?;
        self.auth.authorize(http.get(url)).await
    }

    fn parse_success(
        &self,
        provider: &str,
        body: &[u8],
        fetched_at: DateTime<Utc>,
    ) -> Result<ProviderSnapshot, ProviderError> {
        map::snapshot(provider, body, &self.quote, fetched_at)
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

    /// A refreshing credential hears of every 401, to drop its token.
    async fn on_error_answer(&self, status: StatusCode) {
        if status == StatusCode::UNAUTHORIZED {
            self.auth.rejected().await;
        }
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
}
