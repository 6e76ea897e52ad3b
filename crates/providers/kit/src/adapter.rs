//! The adapter contract, and the provider the kit makes of any adapter (after hyperswitch's
//! connectors: a connector builds the request and reads answers, the framework makes the call).
//!
//! An adapter ([`HttpAdapter`]) says only what is its provider's own: the request (URL,
//! headers, credential), how a 200 body becomes a [`ProviderSnapshot`], and how any other
//! answer becomes a [`ProviderError`]. [`HttpProvider`] does the rest once for every adapter:
//! the client, the per-request headers, the call with its body cap, the `provider.fetch` span
//! with its `status` and `latency_ms`, and the log lines about the outcome. Retries, timeouts
//! per attempt and breakers stay the server's layers around [`BalanceProvider`].

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use coffer_core::{BalanceProvider, BalanceType, ProviderError, ProviderSnapshot};
use reqwest::header::{HeaderMap, HeaderName};
use reqwest::{RequestBuilder, StatusCode};
use tracing::Instrument;

use crate::config::ConfigError;
use crate::http::{self, HeaderHook};

/// What the kit needs to build an instance's HTTP client, once.
#[derive(Debug, Clone)]
pub struct Transport {
    /// The configured instance id: errors and spans name it.
    pub id: String,
    /// The transport's safety net (connect, and the whole answer); the server's own timeout
    /// per attempt is a layer around the provider.
    pub timeout: Duration,
    pub user_agent: String,
}

/// One provider's HTTP API, as the kit needs to call it. Everything here is the provider's
/// own; nothing here sends, times or logs the call.
#[async_trait::async_trait]
pub trait HttpAdapter: Send + Sync + Sized + 'static {
    /// What one instance is built from (the adapter's config struct).
    type Config: Send;
    /// The config `kind` (`newbank`): [`BalanceProvider::kind`] and the span's `kind`.
    const KIND: &'static str;
    /// The provider's name in log lines (`Newbank`).
    const NAME: &'static str;
    /// [`BalanceProvider::rates_are_derived`]: whether the adapter computes its rates from
    /// rounded amounts rather than reading rates the provider states.
    const RATES_ARE_DERIVED: bool = false;
    /// What the provider's balance means (`available`, or `unspecified` when its documentation
    /// does not say). Required, with no default: a new provider must say it. Every account of
    /// every snapshot is marked with it.
    const BALANCE_TYPE: BalanceType;

    /// Validates the config (messages name the key, never the secret) and splits it into the
    /// adapter and what the kit's client needs.
    fn from_config(config: Self::Config) -> Result<(Self, Transport), ConfigError>;

    /// The headers carrying the credential: the per-request header hook never sets them.
    fn credential_headers(&self) -> &[HeaderName];

    /// The one request for `external_id` on the kit's client: URL, headers, credential. An
    /// error (an id that cannot be sent, a credential refresh that failed) is the fetch's
    /// error, and no call is made.
    async fn build_request(
        &self,
        http: &reqwest::Client,
        provider: &str,
        external_id: &str,
    ) -> Result<RequestBuilder, ProviderError>;

    /// A 200 body → the snapshot. A body that is not the expected shape is a
    /// `MalformedResponse` (retryable when it ends early); one bad balance is `rejected`, not
    /// an error.
    fn parse_success(
        &self,
        provider: &str,
        body: &[u8],
        fetched_at: DateTime<Utc>,
    ) -> Result<ProviderSnapshot, ProviderError>;

    /// Any other answer → the error: kind, retryability, `Retry-After`, the provider's code.
    /// The only place where the provider's answers become errors; it never panics, whatever
    /// the bytes.
    fn parse_error(
        &self,
        provider: &str,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> ProviderError;

    /// Told about every answer that is not a 200, before [`HttpAdapter::parse_error`] (a
    /// refreshing credential drops its token on a 401).
    async fn on_error_answer(&self, _status: StatusCode) {}
}

/// A [`BalanceProvider`] over any [`HttpAdapter`]: the call, its span and logs, written once.
pub struct HttpProvider<A> {
    id: String,
    http: reqwest::Client,
    header_hook: Option<HeaderHook>,
    adapter: A,
}

impl<A: HttpAdapter> std::fmt::Debug for HttpProvider<A> {
    // Only the id and kind: the adapter holds the credential.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpProvider")
            .field("id", &self.id)
            .field("kind", &A::KIND)
            .finish_non_exhaustive()
    }
}

impl<A: HttpAdapter> HttpProvider<A> {
    /// Validates the config and builds the HTTP client once.
    pub fn new(config: A::Config) -> Result<Self, ConfigError> {
        let (adapter, transport) = A::from_config(config)?;
        let http = http::client(&transport.id, transport.timeout, transport.user_agent)?;
        Ok(HttpProvider {
            id: transport.id,
            http,
            header_hook: None,
            adapter,
        })
    }

    /// Adds headers to every request, computed per request (e.g. trace context); they never
    /// override the adapter's credential headers.
    pub fn with_header_hook(mut self, hook: HeaderHook) -> Self {
        self.header_hook = Some(hook);
        self
    }

    pub fn adapter(&self) -> &A {
        &self.adapter
    }

    /// The one call: request, send (status recorded, body capped), then the adapter's parse.
    async fn call(&self, external_id: &str) -> Result<ProviderSnapshot, ProviderError> {
        let request = self
            .adapter
            .build_request(&self.http, &self.id, external_id)
            .await
            // An error from a pluggable credential may not know the instance it serves.
            .map_err(|e| ProviderError {
                provider: self.id.clone(),
                ..e
            })?;
        let extra = self.header_hook.as_ref().map(|h| h()).unwrap_or_default();
        let request = http::with_extra_headers(request, &extra, self.adapter.credential_headers());
        let answer = http::send(&self.id, request).await?;
        if answer.status == StatusCode::OK {
            let mut snapshot = self
                .adapter
                .parse_success(&self.id, &answer.body, Utc::now())?;
            // The declaration holds whatever the parser wrote.
            snapshot.balance_type = A::BALANCE_TYPE;
            return Ok(snapshot);
        }
        self.adapter.on_error_answer(answer.status).await;
        Err(self
            .adapter
            .parse_error(&self.id, answer.status, &answer.headers, &answer.body))
    }
}

#[async_trait::async_trait]
impl<A: HttpAdapter> BalanceProvider for HttpProvider<A> {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> &'static str {
        A::KIND
    }

    fn rates_are_derived(&self) -> bool {
        A::RATES_ARE_DERIVED
    }

    async fn fetch(&self, external_id: &str) -> Result<ProviderSnapshot, ProviderError> {
        let span = tracing::info_span!(
            "provider.fetch",
            provider = %self.id,
            kind = A::KIND,
            customer = %external_id,
            status = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
        );
        let started = Instant::now();
        let result = self.call(external_id).instrument(span.clone()).await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        span.record("latency_ms", latency_ms);
        log_outcome(&span, A::NAME, &result);
        result
    }
}

/// The outcome's log lines, inside the fetch's span (which names provider, kind and customer).
/// The error's message never holds a secret (adapters' `tests/logs.rs`).
fn log_outcome(span: &tracing::Span, name: &str, result: &Result<ProviderSnapshot, ProviderError>) {
    let _entered = span.enter();
    match result {
        Ok(s) => {
            for r in &s.rejected {
                tracing::warn!(account = r.provider_account_id.as_deref(), reason = %r.reason,
                    "{name} balance rejected");
            }
            tracing::debug!(
                accounts = s.accounts.len(),
                rejected = s.rejected.len(),
                "{name} balances fetched"
            );
        }
        Err(e) => {
            tracing::warn!(kind = %e.kind, retryable = e.retryable, code = e.code.as_deref(),
                message = %e.message, "{name} balances call failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use coffer_core::ProviderErrorKind as K;

    use super::*;

    /// The smallest adapter: its request fails for the id `bad`, and it holds a secret.
    struct Toy {
        secret: String,
    }

    #[async_trait::async_trait]
    impl HttpAdapter for Toy {
        type Config = (String, String);
        const KIND: &'static str = "toy";
        const NAME: &'static str = "Toy";
        const RATES_ARE_DERIVED: bool = true;
        const BALANCE_TYPE: BalanceType = BalanceType::Available;

        fn from_config((id, secret): (String, String)) -> Result<(Self, Transport), ConfigError> {
            let transport = Transport {
                id,
                timeout: Duration::from_secs(1),
                user_agent: "toy".into(),
            };
            Ok((Toy { secret }, transport))
        }
        fn credential_headers(&self) -> &[HeaderName] {
            &[]
        }
        async fn build_request(
            &self,
            http: &reqwest::Client,
            _provider: &str,
            external_id: &str,
        ) -> Result<RequestBuilder, ProviderError> {
            if external_id == "bad" {
                // As a pluggable credential would: it does not know the instance.
                return Err(ProviderError::new("", K::Auth, "refresh failed"));
            }
            Ok(http.get("http://127.0.0.1:9/").bearer_auth(&self.secret))
        }
        fn parse_success(
            &self,
            provider: &str,
            _body: &[u8],
            _fetched_at: DateTime<Utc>,
        ) -> Result<ProviderSnapshot, ProviderError> {
            Err(ProviderError::new(provider, K::MalformedResponse, "toy"))
        }
        fn parse_error(
            &self,
            provider: &str,
            _status: StatusCode,
            _headers: &HeaderMap,
            _body: &[u8],
        ) -> ProviderError {
            ProviderError::new(provider, K::Unexpected, "toy")
        }
    }

    #[tokio::test]
    async fn the_kit_names_the_instance_and_keeps_the_adapter_consts() {
        let p = HttpProvider::<Toy>::new(("inst".into(), "s3cret".into())).expect("builds");
        assert_eq!(
            (p.id(), p.kind(), p.rates_are_derived()),
            ("inst", "toy", true)
        );
        assert!(!format!("{p:?}").contains("s3cret"), "{p:?}");
        let e = p.fetch("bad").await.expect_err("no request");
        assert_eq!((e.provider.as_str(), e.kind), ("inst", K::Auth));
        assert_eq!(e.status, None, "no call was made");
    }
}
