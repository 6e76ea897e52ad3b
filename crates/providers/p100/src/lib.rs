//! Coffer's adapter for the P100 Partner API v1 (seed `000_070b0b533eda9812.txt`).
//!
//! `GET {base}/v1/user/{externalUserId}/balances` with a lower-case `x-api-key` header; the
//! answer's `fiatBalances` and `cryptoBalances` become [`coffer_core::ProviderAccount`]s.
//!
//! Files: `config.rs` (what an instance needs; the key as a redacted [`Secret`]), `client.rs`
//! (the HTTP call and `parse_error`), `wire.rs` (P100's JSON), `map.rs` (JSON → account model).
//! What every adapter does the same way (secret, body cap, `Retry-After`, number text, header
//! hook) is `coffer-provider-kit`'s.
//! Retry, caching and circuit breaking are the server's layers, not this crate's.
#![forbid(unsafe_code)]

pub mod client;
pub mod config;
pub mod map;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use coffer_core::{BalanceProvider, ProviderError, ProviderSnapshot};
use coffer_provider_kit::header_hook;

pub use coffer_provider_kit::HeaderHook;
pub use config::{ConfigError, P100Config, Secret};

/// The config `kind` of this provider.
pub const KIND: &str = "p100";

/// One configured P100 instance.
pub struct P100Provider {
    id: String,
    client: client::P100Client,
    header_hook: Option<HeaderHook>,
}

impl std::fmt::Debug for P100Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("P100Provider")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl P100Provider {
    /// Validates the config and builds the HTTP client once.
    pub fn new(config: P100Config) -> Result<Self, ConfigError> {
        let client = client::P100Client::new(&config)?;
        Ok(P100Provider {
            id: config.id,
            client,
            header_hook: None,
        })
    }

    /// Adds headers to every request, computed per request (e.g. trace context).
    pub fn with_header_hook(mut self, hook: HeaderHook) -> Self {
        self.header_hook = Some(hook);
        self
    }
}

/// The one-line registration the server uses for `kind = "p100"`.
pub fn build(
    id: &str,
    base_url: &str,
    api_key: impl Into<Secret>,
    timeout: Duration,
) -> Result<Arc<dyn BalanceProvider>, ConfigError> {
    build_with_headers(id, base_url, api_key, timeout, None)
}

/// The server's registration of `kind = "p100"`: every kind is built from the same settings.
pub fn factory(s: coffer_core::ProviderSettings) -> Result<Arc<dyn BalanceProvider>, String> {
    build_with_headers(
        &s.id,
        &s.base_url,
        s.secret,
        s.timeout,
        s.headers.map(header_hook),
    )
    .map_err(|e| e.to_string())
}

/// [`build`] with per-request headers (the server passes W3C trace context this way).
pub fn build_with_headers(
    id: &str,
    base_url: &str,
    api_key: impl Into<Secret>,
    timeout: Duration,
    headers: Option<HeaderHook>,
) -> Result<Arc<dyn BalanceProvider>, ConfigError> {
    let config = P100Config::new(id, base_url, api_key)?.with_timeout(timeout);
    let provider = P100Provider::new(config)?;
    Ok(Arc::new(match headers {
        Some(h) => provider.with_header_hook(h),
        None => provider,
    }))
}

#[async_trait::async_trait]
impl BalanceProvider for P100Provider {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> &'static str {
        KIND
    }

    async fn fetch(&self, external_id: &str) -> Result<ProviderSnapshot, ProviderError> {
        let span = tracing::info_span!(
            "provider.fetch",
            provider = %self.id,
            kind = KIND,
            customer = %external_id,
            status = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
        );
        let extra = self.header_hook.as_ref().map(|h| h()).unwrap_or_default();
        let result = coffer_provider_kit::http::timed(&span, async {
            let body = self.client.get_balances(external_id, &extra).await?;
            map::snapshot(&self.id, &body, chrono::Utc::now())
        })
        .await;
        let _entered = span.enter();
        match &result {
            Ok(s) => {
                for r in &s.rejected {
                    tracing::warn!(account = r.provider_account_id.as_deref(), reason = %r.reason,
                        "P100 balance rejected");
                }
                tracing::debug!(
                    accounts = s.accounts.len(),
                    rejected = s.rejected.len(),
                    "P100 balances fetched"
                );
            }
            Err(e) => {
                tracing::warn!(kind = %e.kind, retryable = e.retryable, code = e.code.as_deref(),
                message = %e.message, "P100 balances call failed")
            }
        }
        result
    }
}
