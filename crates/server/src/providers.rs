//! The provider registry: the one place that knows every provider `kind`. Adding a provider is
//! one crate and one line in [`build`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use coffer_core::BalanceProvider;
use coffer_provider_corebanq as corebanq;
use coffer_provider_p100 as p100;

use crate::config::ProviderConfig;
use crate::resilience::Guarded;

/// Every provider kind a config may name.
pub const KINDS: &[&str] = &[p100::KIND, corebanq::KIND];

/// Builds one adapter from its config and secret. One line per kind.
fn build(cfg: &ProviderConfig, secret: String) -> Result<Arc<dyn BalanceProvider>, String> {
    let (id, url, timeout) = (cfg.id.as_str(), cfg.base_url.as_str(), cfg.timeout);
    let (quote, headers) = (cfg.quote_currency.as_deref(), Some(trace_headers()));
    let e = |e: &dyn std::fmt::Display| e.to_string();
    match cfg.kind.as_str() {
        p100::KIND => {
            p100::build_with_headers(id, url, secret, timeout, headers).map_err(|x| e(&x))
        }
        corebanq::KIND => corebanq::build_with_headers(id, url, secret, timeout, quote, headers)
            .map_err(|x| e(&x)),
        other => Err(format!("unknown provider kind `{other}`")),
    }
}

/// Per-request headers for provider calls: the W3C trace context of the current span.
pub fn trace_headers() -> Arc<dyn Fn() -> http::HeaderMap + Send + Sync> {
    Arc::new(crate::telemetry::trace_context_headers)
}

/// A provider that cannot be built, naming it.
#[derive(Debug, thiserror::Error)]
#[error("provider `{id}`: {message}")]
pub struct ProviderBuildError {
    pub id: String,
    pub message: String,
}

/// The configured providers, each behind its resilience layers.
#[derive(Default)]
pub struct Providers {
    map: BTreeMap<String, Arc<Guarded>>,
    /// Per provider: how long one request may spend on it, retries included.
    budgets: BTreeMap<String, Duration>,
}

impl Providers {
    /// Builds every configured provider, reading each secret from the environment variable the
    /// config names.
    pub fn from_config(cfgs: &[ProviderConfig]) -> Result<Self, ProviderBuildError> {
        let mut out = Providers::default();
        for cfg in cfgs {
            let err = |message: String| ProviderBuildError {
                id: cfg.id.clone(),
                message,
            };
            let secret = std::env::var(&cfg.api_key_env).map_err(|_| {
                err(format!(
                    "environment variable `{}` (api_key_env) is not set",
                    cfg.api_key_env
                ))
            })?;
            let provider = build(cfg, secret).map_err(err)?;
            out.insert(provider, cfg.timeout, cfg.retries);
        }
        Ok(out)
    }

    /// Adds a provider (tests and the demo register adapters directly).
    pub fn insert(&mut self, provider: Arc<dyn BalanceProvider>, timeout: Duration, retries: u32) {
        let id = provider.id().to_owned();
        // One attempt per retry plus the backoff between them; bounded so a request never
        // waits on a provider for longer than a few timeouts.
        let budget = timeout.saturating_mul(retries + 1) + Duration::from_millis(500) * retries;
        self.budgets.insert(id.clone(), budget);
        self.map
            .insert(id, Arc::new(Guarded::new(provider, timeout, retries)));
    }

    pub fn get(&self, id: &str) -> Option<Arc<Guarded>> {
        self.map.get(id).cloned()
    }

    pub fn contains(&self, id: &str) -> bool {
        self.map.contains_key(id)
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<Guarded>> {
        self.map.values()
    }

    pub fn request_budget(&self, id: &str) -> Duration {
        self.budgets
            .get(id)
            .copied()
            .unwrap_or(Duration::from_secs(5))
    }
}
