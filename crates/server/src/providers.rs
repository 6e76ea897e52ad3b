//! The configured providers, built: each adapter from the registry ([`crate::registry`]) wrapped
//! in its provider stack.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use coffer_core::{BalanceProvider, ProviderSettings};

use crate::config::ProviderConfig;
use crate::provider::{DEFAULT_MAX_RETRY_AFTER, ProviderStack, StackConfig};
use crate::registry::REGISTRY;

/// Builds one adapter from its config and secret.
fn build(cfg: &ProviderConfig, secret: String) -> Result<Arc<dyn BalanceProvider>, String> {
    let factory = REGISTRY
        .iter()
        .find(|(k, _)| *k == cfg.kind)
        .map(|(_, f)| *f)
        .ok_or_else(|| format!("unknown provider kind `{}`", cfg.kind))?;
    factory(ProviderSettings {
        id: cfg.id.clone(),
        base_url: cfg.base_url.clone(),
        secret,
        timeout: cfg.timeout,
        quote_currency: cfg
            .quote_currency
            .as_deref()
            .map(coffer_core::Currency::new),
        headers: Some(Arc::new(crate::telemetry::trace_context_pairs)),
    })
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

/// The configured providers, each behind its stack (`provider/`).
#[derive(Default)]
pub struct Providers {
    map: BTreeMap<String, Arc<ProviderStack>>,
    /// Live replicas (from the sync worker's heartbeats): each takes its share of every
    /// provider's quota.
    replicas: Arc<AtomicU32>,
    /// Webhook tokens by provider id (`webhook_secret_env`): a provider without one has no
    /// webhook inbox.
    webhook_secrets: BTreeMap<String, String>,
}

impl Providers {
    /// Builds every configured provider, reading each secret from the environment variable the
    /// config names.
    pub fn from_config(cfgs: &[ProviderConfig]) -> Result<Self, ProviderBuildError> {
        Self::from_config_with(cfgs, &|name| std::env::var(name).ok())
    }

    /// Builds every configured provider through the registry, each secret (`api_key_env`,
    /// `webhook_secret_env`) looked up by `secret` under the name the config gives: the
    /// environment in production, a fixed table in tests and benchmarks, so they build their
    /// providers exactly as `coffer serve` does.
    pub fn from_config_with(
        cfgs: &[ProviderConfig],
        secret: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ProviderBuildError> {
        let mut out = Providers::default();
        for cfg in cfgs {
            let err = |message: String| ProviderBuildError {
                id: cfg.id.clone(),
                message,
            };
            let key = secret(&cfg.api_key_env).ok_or_else(|| {
                err(format!(
                    "environment variable `{}` (api_key_env) is not set",
                    cfg.api_key_env
                ))
            })?;
            let provider = build(cfg, key).map_err(err)?;
            out.insert_with(provider, &stack_config(cfg));
            if let Some(env) = &cfg.webhook_secret_env {
                let token = secret(env).filter(|t| !t.is_empty()).ok_or_else(|| {
                    err(format!(
                        "environment variable `{env}` (webhook_secret_env) is not set"
                    ))
                })?;
                out.set_webhook_secret(&cfg.id, token);
            }
        }
        Ok(out)
    }

    /// Adds a provider (tests register adapters directly); its quota is set from
    /// the config by [`Self::apply_quotas`].
    pub fn insert(&mut self, provider: Arc<dyn BalanceProvider>, timeout: Duration, retries: u32) {
        self.insert_with(
            provider,
            &StackConfig {
                timeout,
                retries,
                rate_limit: 0,
                max_retry_after: DEFAULT_MAX_RETRY_AFTER,
            },
        );
    }

    pub fn insert_with(&mut self, provider: Arc<dyn BalanceProvider>, cfg: &StackConfig) {
        let id = provider.id().to_owned();
        let stack = ProviderStack::new(provider, cfg, Arc::clone(&self.replicas));
        self.map.insert(id, Arc::new(stack));
    }

    /// Each configured provider's `rate_limit`, for providers added by [`Self::insert`].
    pub fn apply_quotas(&self, cfgs: &[ProviderConfig]) {
        for cfg in cfgs {
            if let Some(p) = self.map.get(&cfg.id) {
                p.quota().set_rate(cfg.rate_limit);
            }
        }
    }

    /// Accepts `provider`'s webhooks with this token.
    fn set_webhook_secret(&mut self, provider: &str, token: String) {
        self.webhook_secrets.insert(provider.to_owned(), token);
    }

    /// The token `provider`'s webhooks must carry; `None`: it has no webhook inbox.
    pub fn webhook_secret(&self, provider: &str) -> Option<&str> {
        self.webhook_secrets.get(provider).map(String::as_str)
    }

    /// Whether any provider has a webhook inbox (its processor is started then).
    pub fn any_webhooks(&self) -> bool {
        !self.webhook_secrets.is_empty()
    }

    /// How many replicas share the quotas (at least 1).
    pub fn set_live_replicas(&self, n: u32) {
        self.replicas.store(n.max(1), Ordering::Relaxed);
    }

    pub fn get(&self, id: &str) -> Option<Arc<ProviderStack>> {
        self.map.get(id).cloned()
    }

    pub fn contains(&self, id: &str) -> bool {
        self.map.contains_key(id)
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<ProviderStack>> {
        self.map.values()
    }

    /// How long one call to the provider may take, retries included.
    pub fn request_budget(&self, id: &str) -> Duration {
        self.map
            .get(id)
            .map_or(Duration::from_secs(5), |p| p.budget())
    }
}

fn stack_config(cfg: &ProviderConfig) -> StackConfig {
    StackConfig {
        timeout: cfg.timeout,
        retries: cfg.retries,
        rate_limit: cfg.rate_limit,
        max_retry_after: cfg.max_retry_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::kinds;

    fn cfg(id: &str, kind: &str, env: &str) -> ProviderConfig {
        ProviderConfig {
            id: id.into(),
            kind: kind.into(),
            base_url: "http://127.0.0.1:9".into(),
            api_key_env: env.into(),
            timeout: Duration::from_secs(1),
            rate_limit: 0,
            retries: 0,
            quote_currency: Some("USD".into()),
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
            webhook_secret_env: None,
        }
    }

    #[test]
    fn every_registered_kind_builds_from_config() {
        // `PATH` is set in every environment: a stand-in for the key variable.
        let cfgs: Vec<_> = kinds()
            .into_iter()
            .map(|k| cfg(&format!("{k}-1"), k, "PATH"))
            .collect();
        let p = Providers::from_config(&cfgs).unwrap();
        for k in kinds() {
            let built = p.get(&format!("{k}-1")).unwrap();
            assert_eq!(built.kind(), k);
        }
    }

    #[test]
    fn build_errors_name_the_provider_and_the_cause() {
        let err = Providers::from_config(&[cfg("x", "p100", "COFFER_SURELY_UNSET_VAR")])
            .err()
            .unwrap();
        assert_eq!(err.id, "x");
        assert!(err.message.contains("COFFER_SURELY_UNSET_VAR"), "{err}");
        let err = Providers::from_config(&[cfg("y", "nope", "PATH")])
            .err()
            .unwrap();
        assert!(
            err.message.contains("unknown provider kind `nope`"),
            "{err}"
        );
        let mut bad_url = cfg("z", "p100", "PATH");
        bad_url.base_url = "not a url".into();
        let err = Providers::from_config(&[bad_url]).err().unwrap();
        assert_eq!(err.id, "z");
    }
}
