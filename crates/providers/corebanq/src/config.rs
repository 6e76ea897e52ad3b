//! Configuration of one Corebanq provider instance.
//!
//! Secrets come from the environment, never from the config file (DESIGN.md, "Configuration");
//! [`Secret`] keeps the API key out of every `Debug`/`Display`, so a config can be logged.

use std::sync::Arc;
use std::time::Duration;

use coffer_core::Currency;
use url::Url;

use crate::auth::CorebanqAuth;

/// Default timeout of one balances call (connect + headers + body).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A credential. `Debug` and `Display` print `***`; only [`Secret::expose`] reveals it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// Reads the secret from the environment variable `var`, which must be set and non-empty.
    pub fn from_env(var: &str) -> Result<Self, ConfigError> {
        match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => Ok(Secret(v.trim().to_owned())),
            Ok(_) => Err(ConfigError::EmptySecret {
                var: var.to_owned(),
            }),
            Err(_) => Err(ConfigError::MissingEnv {
                var: var.to_owned(),
            }),
        }
    }

    /// The secret itself: only for the one place that puts it on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

/// A configuration that cannot work. Messages name the key at fault and never hold a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "environment variable `{var}` is not set (it should hold the provider's token or API key)"
    )]
    MissingEnv { var: String },
    #[error(
        "environment variable `{var}` is empty (it should hold the provider's token or API key)"
    )]
    EmptySecret { var: String },
    #[error("provider `{id}`: `id` must not be empty")]
    EmptyId { id: String },
    #[error("provider `{id}`: `base_url` `{url}` is invalid: {reason}")]
    InvalidBaseUrl {
        id: String,
        url: String,
        reason: String,
    },
    #[error(
        "provider `{id}`: the token or API key is empty or holds characters not allowed in an HTTP header"
    )]
    InvalidSecret { id: String },
    #[error("provider `{id}`: the quote currency must not be empty")]
    EmptyQuote { id: String },
    #[error("provider `{id}`: `timeout` must be greater than zero")]
    ZeroTimeout { id: String },
    #[error("provider `{id}`: `user_agent` holds characters not allowed in an HTTP header")]
    InvalidUserAgent { id: String },
    #[error("provider `{id}`: cannot build the HTTP client: {reason}")]
    Client { id: String, reason: String },
}

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
        let id = || self.id.clone();
        if self.id.trim().is_empty() {
            return Err(ConfigError::EmptyId { id: id() });
        }
        parse_base_url(&self.id, self.base_url.as_str())?;
        if self.quote_currency.code().is_empty() {
            return Err(ConfigError::EmptyQuote { id: id() });
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::ZeroTimeout { id: id() });
        }
        if let Some(ua) = &self.user_agent
            && reqwest::header::HeaderValue::from_str(ua).is_err()
        {
            return Err(ConfigError::InvalidUserAgent { id: id() });
        }
        Ok(())
    }
}

/// An `http(s)` URL that can take path segments, without query or fragment.
fn parse_base_url(id: &str, raw: &str) -> Result<Url, ConfigError> {
    let invalid = |reason: &str| ConfigError::InvalidBaseUrl {
        id: id.to_owned(),
        url: raw.to_owned(),
        reason: reason.to_owned(),
    };
    let url = Url::parse(raw.trim()).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err(invalid("it must be an absolute URL with a host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("it must not have a query or a fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "credentials belong in the environment, not in the URL",
        ));
    }
    Ok(url)
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
