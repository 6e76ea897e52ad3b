//! What every adapter's config shares: the credential as a [`Secret`], the [`ConfigError`]s,
//! the base URL's rules and the checks of `id`, `timeout` and `user_agent`.
//!
//! Secrets come from the environment, never from the config file (DESIGN.md, "Configuration");
//! [`Secret`] keeps the credential out of every `Debug`/`Display`, so a config can be logged.

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

/// Checks every adapter's common fields: a non-empty `id` and a usable `base_url`. Adapters
/// check their own fields next, then [`check_timeout_and_user_agent`].
pub fn check_id_and_base_url(id: &str, base_url: &Url) -> Result<(), ConfigError> {
    if id.trim().is_empty() {
        return Err(ConfigError::EmptyId { id: id.to_owned() });
    }
    parse_base_url(id, base_url.as_str())?;
    Ok(())
}

/// A `timeout` above zero and a `user_agent` that can be a header value.
pub fn check_timeout_and_user_agent(
    id: &str,
    timeout: Duration,
    user_agent: Option<&str>,
) -> Result<(), ConfigError> {
    if timeout.is_zero() {
        return Err(ConfigError::ZeroTimeout { id: id.to_owned() });
    }
    if let Some(ua) = user_agent
        && reqwest::header::HeaderValue::from_str(ua).is_err()
    {
        return Err(ConfigError::InvalidUserAgent { id: id.to_owned() });
    }
    Ok(())
}

/// An `http(s)` URL that can take path segments, without query, fragment or credentials.
pub fn parse_base_url(id: &str, raw: &str) -> Result<Url, ConfigError> {
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
    fn secret_prints_stars_only() {
        let s = Secret::new("top-secret-key");
        assert_eq!(s.to_string(), "***");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(***)");
        assert_eq!(s.expose(), "top-secret-key");
    }

    #[test]
    fn missing_env_names_the_variable_and_no_secret() {
        let err = Secret::from_env("COFFER_TEST_SURELY_UNSET_KIT").expect_err("unset");
        assert_eq!(
            err,
            ConfigError::MissingEnv {
                var: "COFFER_TEST_SURELY_UNSET_KIT".into()
            }
        );
        assert!(err.to_string().contains("COFFER_TEST_SURELY_UNSET_KIT"));
    }

    #[test]
    fn bad_base_urls_are_refused_with_the_key_named() {
        for url in [
            "ftp://x",
            "not a url",
            "https://h/?a=1",
            "https://h/#f",
            "mailto:a@b",
            "https://u:p@h/",
        ] {
            let err = parse_base_url("p", url).expect_err(url);
            assert!(err.to_string().contains("base_url"), "{err}");
        }
        let url = parse_base_url("p", " http://127.0.0.1:9/prefix/ ").expect("valid");
        assert_eq!(url.path(), "/prefix/");
    }

    #[test]
    fn common_checks_name_the_key() {
        let url = parse_base_url("p", "https://h").expect("valid");
        assert_eq!(
            check_id_and_base_url(" ", &url),
            Err(ConfigError::EmptyId { id: " ".into() })
        );
        assert_eq!(
            check_timeout_and_user_agent("p", Duration::ZERO, None),
            Err(ConfigError::ZeroTimeout { id: "p".into() })
        );
        assert_eq!(
            check_timeout_and_user_agent("p", DEFAULT_TIMEOUT, Some("a\nb")),
            Err(ConfigError::InvalidUserAgent { id: "p".into() })
        );
        assert!(check_timeout_and_user_agent("p", DEFAULT_TIMEOUT, Some("coffer/1")).is_ok());
    }
}
