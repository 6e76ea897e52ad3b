//! Coffer's adapter for the P100 Partner API v1 (seed `000_070b0b533eda9812.txt`).
//!
//! `GET {base}/v1/user/{externalUserId}/balances` with a lower-case `x-api-key` header; the
//! answer's `fiatBalances` and `cryptoBalances` become [`coffer_core::ProviderAccount`]s.
//!
//! Files: `config.rs` (what an instance needs; the key as a redacted [`Secret`]), `client.rs`
//! (the request and `parse_error`: the kit's `HttpAdapter`), `wire.rs` (P100's JSON), `map.rs`
//! (JSON → account model). What every adapter does the same way (the call, its span and logs,
//! secret, body cap, `Retry-After`, number text, header hook) is `coffer-provider-kit`'s.
//! Retry, caching and circuit breaking are the server's layers, not this crate's.
#![forbid(unsafe_code)]

pub mod client;
pub mod config;
pub mod map;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use coffer_core::BalanceProvider;
use coffer_provider_kit::{HttpProvider, header_hook};

pub use coffer_provider_kit::HeaderHook;
pub use config::{ConfigError, P100Config, Secret};

/// The config `kind` of this provider.
pub const KIND: &str = "p100";

/// One configured P100 instance: the kit's provider over [`client::P100Adapter`]
/// (`P100Provider::new(config)`, `.with_header_hook(..)`).
pub type P100Provider = HttpProvider<client::P100Adapter>;

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
