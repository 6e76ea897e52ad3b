//! Configuration of one Corebanq provider instance.
//!
//! Secrets come from the environment, never from the config file (DESIGN.md, "Configuration");
//! [`Secret`] (from `coffer-provider-kit`) keeps the token out of every `Debug`/`Display`, so a
//! config can be logged.

use std::sync::Arc;
use std::time::Duration;

use coffer_core::Currency;
use coffer_provider_kit::config::{
    check_id_and_base_url, check_timeout_and_user_agent, parse_base_url,
};
use url::Url;

use crate::auth::CorebanqAuth;

pub use coffer_provider_kit::config::{ConfigError, DEFAULT_TIMEOUT, Secret};

/// The currency Coffer asks Corebanq to express `balance_in_base` in, unless configured.
pub const DEFAULT_QUOTE: &str = "EUR";

/// One Corebanq instance: `[[providers]] kind = "corebanq"` in `coffer.toml`.
#[derive(Clone)]
pub struct CorebanqConfig {
    /// The configured instance id (e.g. `bank`); account ids start with it.
    pub id: String,
    /// Corebanq's API root; `/v2/accounts/balance` is appended (a path prefix is kept).
    pub base_url: Url,
    /// How requests are authorised (DESIGN.md: tokens are short-lived, so this is pluggable).
    pub auth: Arc<dyn CorebanqAuth>,
    /// The `currency` query parameter: what `balance_in_base` is quoted in.
    pub quote_currency: Currency,
    pub timeout: Duration,
    /// `User-Agent` header; `coffer-provider-corebanq/<version>` when `None`.
    pub user_agent: Option<String>,
}

impl std::fmt::Debug for CorebanqConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CorebanqConfig")
            .field("id", &self.id)
            .field("base_url", &self.base_url.as_str())
            .field("auth", &self.auth.describe())
            .field("quote_currency", &self.quote_currency.code())
            .field("timeout", &self.timeout)
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

impl CorebanqConfig {
    /// A config with the default timeout and quote currency (EUR), validated.
    pub fn new(id: &str, base_url: &str, auth: Arc<dyn CorebanqAuth>) -> Result<Self, ConfigError> {
        let config = CorebanqConfig {
            id: id.to_owned(),
            base_url: parse_base_url(id, base_url)?,
            auth,
            quote_currency: Currency::new(DEFAULT_QUOTE),
            timeout: DEFAULT_TIMEOUT,
            user_agent: None,
        };
        config.validate()?;
        Ok(config)
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn with_quote_currency(mut self, quote: Currency) -> Self {
        self.quote_currency = quote;
        self
    }

    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Checks the fields, which are public; called again when the provider is built.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_id_and_base_url(&self.id, &self.base_url)?;
        if self.quote_currency.code().is_empty() {
            return Err(ConfigError::EmptyQuote {
                id: self.id.clone(),
            });
        }
        check_timeout_and_user_agent(&self.id, self.timeout, self.user_agent.as_deref())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::auth::BearerToken;

    fn bearer(token: &str) -> Arc<dyn CorebanqAuth> {
        Arc::new(BearerToken::new("bank", Secret::new(token)).unwrap())
    }

    #[test]
    fn secret_never_prints() {
        let config = CorebanqConfig::new(
            "bank",
            "https://corebanq.example",
            bearer("top-secret-token"),
        )
        .unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("top-secret-token"), "{debug}");
        assert!(debug.contains("bearer"), "{debug}");
        assert_eq!(Secret::new("x").to_string(), "***");
        assert_eq!(format!("{:?}", Secret::new("x")), "***");
    }

    #[test]
    fn bad_base_urls_are_refused_with_the_key_named() {
        for url in ["ftp://x", "not a url", "https://h/?a=1", "https://u:p@h/"] {
            let err = CorebanqConfig::new("bank", url, bearer("t")).expect_err(url);
            assert!(err.to_string().contains("base_url"), "{err}");
        }
    }

    #[test]
    fn zero_timeout_is_refused() {
        let c = CorebanqConfig::new("bank", "https://h", bearer("t"))
            .unwrap()
            .with_timeout(Duration::ZERO);
        assert_eq!(
            c.validate(),
            Err(ConfigError::ZeroTimeout { id: "bank".into() })
        );
    }

    #[test]
    fn missing_env_names_the_variable() {
        let err = Secret::from_env("COFFER_TEST_SURELY_UNSET_BANK").expect_err("unset");
        assert!(err.to_string().contains("COFFER_TEST_SURELY_UNSET_BANK"));
    }
}
