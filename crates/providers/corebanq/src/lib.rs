//! Coffer's adapter for Corebanq's unified accounts API v2 (seed `004_41bc46fdc16b6081.txt`).
//!
//! `GET {base}/v2/accounts/balance?customer_id=…&currency=EUR&details=true`; the answer's
//! `details.fiat_accounts` and `details.crypto_assets` become
//! [`coffer_core::ProviderAccount`]s.
//!
//! Files: `config.rs` (what an instance needs), `auth.rs` (the [`CorebanqAuth`] seam: bearer
//! token or `x-api-key` now, a refresh flow later), `client.rs` (the request and
//! `parse_error`: the kit's `HttpAdapter`), `wire.rs` (Corebanq's JSON), `map.rs` (JSON →
//! account model). Retry, caching and circuit breaking are the server's layers, not this
//! crate's. What every adapter does the same way (the call, its span and logs, secret, body
//! cap, `Retry-After`, number text, header hook) is `coffer-provider-kit`'s.
#![forbid(unsafe_code)]

pub mod auth;
pub mod client;
pub mod config;
pub mod map;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use coffer_core::{BalanceProvider, Currency};
use coffer_provider_kit::{HttpProvider, header_hook};

pub use auth::{ApiKey, BearerToken, CorebanqAuth};
pub use coffer_provider_kit::HeaderHook;
pub use config::{ConfigError, CorebanqConfig, Secret};

/// The config `kind` of this provider.
pub const KIND: &str = "corebanq";

/// One configured Corebanq instance: the kit's provider over [`client::CorebanqAdapter`]
/// (`CorebanqProvider::new(config)`, `.with_header_hook(..)`).
pub type CorebanqProvider = HttpProvider<client::CorebanqAdapter>;

/// The one-line registration the server uses for `kind = "corebanq"`: a static bearer token,
/// balances quoted in `quote_currency` (`None`: EUR). For `x-api-key` auth or a refreshing
/// token, build a [`CorebanqConfig`] and call [`CorebanqProvider::new`].
pub fn build(
    id: &str,
    base_url: &str,
    token: impl Into<Secret>,
    timeout: Duration,
    quote_currency: Option<&str>,
) -> Result<Arc<dyn BalanceProvider>, ConfigError> {
    build_with_headers(id, base_url, token, timeout, quote_currency, None)
}

/// The server's registration of `kind = "corebanq"`: every kind is built from the same settings.
pub fn factory(s: coffer_core::ProviderSettings) -> Result<Arc<dyn BalanceProvider>, String> {
    let quote = s.quote_currency.as_ref().map(coffer_core::Currency::code);
    build_with_headers(
        &s.id,
        &s.base_url,
        s.secret,
        s.timeout,
        quote,
        s.headers.map(header_hook),
    )
    .map_err(|e| e.to_string())
}

/// [`build`] with per-request headers (the server passes W3C trace context this way).
pub fn build_with_headers(
    id: &str,
    base_url: &str,
    token: impl Into<Secret>,
    timeout: Duration,
    quote_currency: Option<&str>,
    headers: Option<HeaderHook>,
) -> Result<Arc<dyn BalanceProvider>, ConfigError> {
    let auth = Arc::new(BearerToken::new(id, token.into())?);
    let mut config = CorebanqConfig::new(id, base_url, auth)?.with_timeout(timeout);
    if let Some(quote) = quote_currency {
        config = config.with_quote_currency(Currency::new(quote));
    }
    let provider = CorebanqProvider::new(config)?;
    Ok(Arc::new(match headers {
        Some(h) => provider.with_header_hook(h),
        None => provider,
    }))
}
