//! How requests to Corebanq are authorised. Corebanq's access tokens are short-lived (a login
//! and refresh flow, DESIGN.md "What the providers really do"), so the client only knows this
//! trait: a static bearer token from the environment comes first, a refreshing implementation
//! can be plugged in later without touching the client.

use coffer_core::ProviderError;
use coffer_provider_kit::http::sensitive_header;
use reqwest::RequestBuilder;
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};

use coffer_provider_kit::config::{ConfigError, Secret};

/// Adds credentials to one request.
#[async_trait::async_trait]
pub trait CorebanqAuth: Send + Sync + 'static {
    /// The request with its credentials. An error (e.g. a refresh that failed) is returned as
    /// the fetch's error; its `provider` field is filled in by the kit.
    async fn authorize(&self, request: RequestBuilder) -> Result<RequestBuilder, ProviderError>;

    /// What kind of credential this is, for logs and `Debug` (never the credential itself).
    fn describe(&self) -> &'static str;

    /// Called after Corebanq answered 401, so a refreshing implementation can drop its token.
    async fn rejected(&self) {}
}

/// `Authorization: Bearer <token>`, the token fixed at start (from the environment).
pub struct BearerToken {
    value: HeaderValue,
}

impl BearerToken {
    pub fn new(id: &str, token: Secret) -> Result<Self, ConfigError> {
        if token.expose().trim().is_empty() {
            return Err(ConfigError::InvalidSecret { id: id.to_owned() });
        }
        // Sensitive values are never printed by `http`'s Debug, reqwest or hyper.
        let value = sensitive_header(id, &format!("Bearer {}", token.expose().trim()))?;
        Ok(BearerToken { value })
    }

    /// The token from the environment variable `var`.
    pub fn from_env(id: &str, var: &str) -> Result<Self, ConfigError> {
        Self::new(id, Secret::from_env(var)?)
    }
}

#[async_trait::async_trait]
impl CorebanqAuth for BearerToken {
    async fn authorize(&self, request: RequestBuilder) -> Result<RequestBuilder, ProviderError> {
        Ok(request.header(AUTHORIZATION, self.value.clone()))
    }

    fn describe(&self) -> &'static str {
        "bearer token"
    }
}

/// `x-api-key: <key>`, for Corebanq deployments that issue API keys.
pub struct ApiKey {
    value: HeaderValue,
}

pub(crate) const API_KEY_HEADER: HeaderName = HeaderName::from_static("x-api-key");

impl ApiKey {
    pub fn new(id: &str, key: Secret) -> Result<Self, ConfigError> {
        if key.expose().trim().is_empty() {
            return Err(ConfigError::InvalidSecret { id: id.to_owned() });
        }
        let value = sensitive_header(id, key.expose().trim())?;
        Ok(ApiKey { value })
    }

    pub fn from_env(id: &str, var: &str) -> Result<Self, ConfigError> {
        Self::new(id, Secret::from_env(var)?)
    }
}

#[async_trait::async_trait]
impl CorebanqAuth for ApiKey {
    async fn authorize(&self, request: RequestBuilder) -> Result<RequestBuilder, ProviderError> {
        Ok(request.header(API_KEY_HEADER, self.value.clone()))
    }

    fn describe(&self) -> &'static str {
        "x-api-key"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_that_cannot_be_headers_are_refused_without_echo() {
        for bad in ["", "  ", "to\nken"] {
            let e = BearerToken::new("bank", Secret::new(bad))
                .err()
                .expect("refused");
            assert!(!e.to_string().contains("to\nken"));
            assert!(ApiKey::new("bank", Secret::new(bad)).is_err());
        }
    }
}
