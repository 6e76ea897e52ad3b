//! Configuration of one P100 provider instance.
//!
//! Secrets come from the environment, never from the config file (DESIGN.md, "Configuration");
//! [`Secret`] keeps the API key out of every `Debug`/`Display`, so a config can be logged.

use std::time::Duration;

use url::Url;

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
    #[error("environment variable `{var}` is not set (it should hold the provider's API key)")]
    MissingEnv { var: String },
    #[error("environment variable `{var}` is empty (it should hold the provider's API key)")]
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
        "provider `{id}`: the API key is empty or holds characters not allowed in an HTTP header"
    )]
    InvalidSecret { id: String },
    #[error("provider `{id}`: `timeout` must be greater than zero")]
    ZeroTimeout { id: String },
    #[error("provider `{id}`: `user_agent` holds characters not allowed in an HTTP header")]
    InvalidUserAgent { id: String },
    #[error("provider `{id}`: cannot build the HTTP client: {reason}")]
    Client { id: String, reason: String },
}

/// One P100 instance: `[[providers]] kind = "p100"` in `coffer.toml`.
#[derive(Debug, Clone)]
pub struct P100Config {
    /// The configured instance id (e.g. `p100`); account ids start with it.
    pub id: String,
    /// `https://partner-api-stage.p100.io` or `https://partner-api.p100.io` (seed 000); a path
    /// prefix is kept.
    pub base_url: Url,
    /// Sent as the lower-case `x-api-key` header (seed 000, "Authorization").
    pub api_key: Secret,
    pub timeout: Duration,
    /// `User-Agent` header; `coffer-provider-p100/<version>` when `None`.
    pub user_agent: Option<String>,
}

impl P100Config {
    /// A config with the default timeout, validated.
    pub fn new(id: &str, base_url: &str, api_key: impl Into<Secret>) -> Result<Self, ConfigError> {
        let config = P100Config {
            id: id.to_owned(),
            base_url: parse_base_url(id, base_url)?,
            api_key: api_key.into(),
            timeout: DEFAULT_TIMEOUT,
            user_agent: None,
        };
        config.validate()?;
        Ok(config)
    }

    /// Like [`P100Config::new`], reading the key from the environment variable `api_key_env`.
    pub fn from_env(id: &str, base_url: &str, api_key_env: &str) -> Result<Self, ConfigError> {
        Self::new(id, base_url, Secret::from_env(api_key_env)?)
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Checks what [`P100Config::new`] checks, plus the timeout and user agent; called again
    /// when the provider is built, since the fields are public.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let id = || self.id.clone();
        if self.id.trim().is_empty() {
            return Err(ConfigError::EmptyId { id: id() });
        }
        parse_base_url(&self.id, self.base_url.as_str())?;
        let key = self.api_key.expose();
        if key.is_empty() || reqwest::header::HeaderValue::from_str(key).is_err() {
            return Err(ConfigError::InvalidSecret { id: id() });
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
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let config = P100Config::new(
            "p100",
            "https://partner-api-stage.p100.io",
            "top-secret-key",
        )
        .expect("valid config");
        let debug = format!("{config:?}");
        assert!(!debug.contains("top-secret-key"), "{debug}");
        assert!(debug.contains("***"));
        assert_eq!(config.api_key.to_string(), "***");
    }

    #[test]
    fn bad_base_urls_are_refused_with_the_key_named() {
        for url in [
            "ftp://x",
            "not a url",
            "https://h/?a=1",
            "mailto:a@b",
            "https://u:p@h/",
        ] {
            let err = P100Config::new("p100", url, "k").expect_err(url);
            assert!(err.to_string().contains("base_url"), "{err}");
        }
        assert!(P100Config::new("p100", "http://127.0.0.1:9/prefix/", "k").is_ok());
    }

    #[test]
    fn keys_that_cannot_be_headers_are_refused_without_echo() {
        let err = P100Config::new("p100", "https://h", "bad\nkey").expect_err("newline");
        assert!(!err.to_string().contains("bad"), "{err}");
        assert!(P100Config::new("p100", "https://h", "").is_err());
    }

    #[test]
    fn zero_timeout_is_refused() {
        let config = P100Config::new("p100", "https://h", "k")
            .expect("valid")
            .with_timeout(Duration::ZERO);
        assert_eq!(
            config.validate(),
            Err(ConfigError::ZeroTimeout { id: "p100".into() })
        );
    }

    #[test]
    fn missing_env_names_the_variable() {
        let err = Secret::from_env("COFFER_TEST_SURELY_UNSET_P100").expect_err("unset");
        assert!(err.to_string().contains("COFFER_TEST_SURELY_UNSET_P100"));
    }
}
