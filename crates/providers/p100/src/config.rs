//! Configuration of one P100 provider instance.
//!
//! Secrets come from the environment, never from the config file (DESIGN.md, "Configuration");
//! [`Secret`] (from `coffer-provider-kit`) keeps the API key out of every `Debug`/`Display`, so a
//! config can be logged.

use std::time::Duration;

use coffer_provider_kit::config::{
    check_id_and_base_url, check_timeout_and_user_agent, parse_base_url,
};
use url::Url;

pub use coffer_provider_kit::config::{ConfigError, DEFAULT_TIMEOUT, Secret};

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
        check_id_and_base_url(&self.id, &self.base_url)?;
        let key = self.api_key.expose();
        if key.is_empty() || reqwest::header::HeaderValue::from_str(key).is_err() {
            return Err(ConfigError::InvalidSecret {
                id: self.id.clone(),
            });
        }
        check_timeout_and_user_agent(&self.id, self.timeout, self.user_agent.as_deref())
    }
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
