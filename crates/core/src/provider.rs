//! The one seam a provider plugs into: [`BalanceProvider`], and what it returns.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::account::{Account, BalanceType, ProviderRate, Status, Wallet};
use crate::currency::Currency;

/// A provider adapter. Adding a provider means implementing this in its own crate and
/// registering one config `kind`; nothing else changes.
#[async_trait::async_trait]
pub trait BalanceProvider: Send + Sync + 'static {
    /// The configured instance id (e.g. `p100`, `bank`).
    fn id(&self) -> &str;
    /// The provider kind (e.g. `p100`, `corebanq`).
    fn kind(&self) -> &'static str;
    /// Every balance the provider holds for one customer, by the provider's external id.
    async fn fetch(&self, external_id: &str) -> Result<ProviderSnapshot, ProviderError>;
    /// Whether the accounts' `provider_rate` is a quotient this adapter computes from rounded
    /// amounts (Corebanq's `balance_in_base ÷ balance`) rather than a rate the provider states:
    /// such rates rank after stated ones ([`crate::rates::RateTable::with_derived_providers`]).
    fn rates_are_derived(&self) -> bool {
        false
    }
}

/// Extra headers an adapter adds to every request, computed per request (the server passes the
/// W3C trace context this way).
pub type HeaderFn = Arc<dyn Fn() -> Vec<(String, String)> + Send + Sync>;

/// What the server hands an adapter to build one provider instance. Every kind is built from
/// the same settings, so registering a kind is one line (a [`ProviderFactory`] in a table).
#[derive(Clone)]
pub struct ProviderSettings {
    /// The configured instance id (`p100`, `bank`).
    pub id: String,
    pub base_url: String,
    /// The API key or token. Never printed: `Debug` shows `***`.
    pub secret: String,
    pub timeout: Duration,
    /// The currency the provider should value balances in, for kinds that take one.
    pub quote_currency: Option<Currency>,
    pub headers: Option<HeaderFn>,
}

impl std::fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSettings")
            .field("id", &self.id)
            .field("base_url", &self.base_url)
            .field("secret", &"***")
            .field("timeout", &self.timeout)
            .field("quote_currency", &self.quote_currency)
            .finish_non_exhaustive()
    }
}

/// Builds a provider of one kind; the error names what is wrong (never the secret).
pub type ProviderFactory = fn(ProviderSettings) -> Result<Arc<dyn BalanceProvider>, String>;

/// One provider's answer for one customer, already normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSnapshot {
    /// The provider's own reference of the customer, when it sends one (P100 `userId`).
    pub provider_customer_ref: Option<String>,
    pub accounts: Vec<ProviderAccount>,
    /// Balances the provider sent that could not be understood: reported, never dropped in
    /// silence, and they do not fail the others.
    pub rejected: Vec<RejectedBalance>,
    pub fetched_at: DateTime<Utc>,
    /// What every balance of the answer means, as the adapter declares it (one figure per
    /// provider: an adapter cannot leave it out, see `HttpAdapter::BALANCE_TYPE`).
    pub balance_type: BalanceType,
}

impl ProviderSnapshot {
    /// Turns the snapshot into Coffer accounts of `customer_id` at provider instance
    /// `provider_id`.
    pub fn to_accounts(&self, customer_id: &str, provider_id: &str) -> Vec<Account> {
        self.accounts
            .iter()
            .map(|a| Account {
                id: Account::make_id(provider_id, &a.provider_account_id),
                customer_id: customer_id.to_owned(),
                provider_id: provider_id.to_owned(),
                provider_account_id: a.provider_account_id.clone(),
                provider_customer_ref: self.provider_customer_ref.clone(),
                currency: a.currency.clone(),
                is_crypto: a.is_crypto,
                status: a.status,
                active: a.active,
                balance: a.balance,
                balance_type: self.balance_type,
                wallets: a.wallets.clone(),
                iban: a.iban.clone(),
                provider_rate: a.provider_rate.clone(),
                fetched_at: self.fetched_at,
            })
            .collect()
    }
}

/// One balance as an adapter maps it, before it is bound to a Coffer customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderAccount {
    pub provider_account_id: String,
    pub currency: Currency,
    pub is_crypto: bool,
    pub status: Status,
    pub active: bool,
    pub balance: Decimal,
    pub wallets: Vec<Wallet>,
    pub iban: Option<String>,
    pub provider_rate: Option<ProviderRate>,
}

/// A balance in a provider's answer that could not be mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedBalance {
    /// The provider's id for the balance, when it could be read.
    pub provider_account_id: Option<String>,
    /// What was wrong, naming the field.
    pub reason: String,
}

/// What went wrong, in terms the freshness layer can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderErrorKind {
    /// Our credentials were rejected. Not retryable.
    Auth,
    /// The provider does not know this customer (P100 P412, HTTP 404).
    UnknownCustomer,
    /// The customer exists but may not be queried yet (P100 P459). Not retryable.
    CustomerNotVerified,
    /// The provider says our request was invalid: a bug on our side (P100 P403).
    InvalidRequest,
    /// Too many requests; see `retry_after`.
    RateLimited,
    /// The provider is (temporarily) unable to answer: 5xx, P500, P501.
    Unavailable,
    /// No answer within the timeout.
    Timeout,
    /// The connection failed or dropped.
    Connection,
    /// The answer could not be parsed (malformed or truncated JSON, wrong shape).
    MalformedResponse,
    /// Any other answer; the message carries the status and the start of the body.
    Unexpected,
}

impl ProviderErrorKind {
    /// A stable snake_case name, used in warnings, metrics labels and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::UnknownCustomer => "unknown_customer",
            Self::CustomerNotVerified => "customer_not_verified",
            Self::InvalidRequest => "invalid_request",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
            Self::Connection => "connection",
            Self::MalformedResponse => "malformed_response",
            Self::Unexpected => "unexpected",
        }
    }

    /// The default retryability of the kind.
    pub fn default_retryable(self) -> bool {
        matches!(
            self,
            Self::RateLimited | Self::Unavailable | Self::Timeout | Self::Connection
        )
    }
}

impl std::fmt::Display for ProviderErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A provider call that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("provider {provider}: {kind}: {message}")]
pub struct ProviderError {
    /// The configured provider instance id.
    pub provider: String,
    pub kind: ProviderErrorKind,
    pub retryable: bool,
    /// How long the provider asked us to wait (429 Retry-After), if it said.
    pub retry_after: Option<Duration>,
    /// The provider's HTTP status, when there was one.
    pub status: Option<u16>,
    /// The provider's error code, when it sent one (e.g. `P412`).
    pub code: Option<String>,
    /// Human text. Never holds a secret.
    pub message: String,
}

impl ProviderError {
    /// An error of `kind` with the kind's default retryability.
    pub fn new(
        provider: impl Into<String>,
        kind: ProviderErrorKind,
        message: impl Into<String>,
    ) -> Self {
        Self {
            provider: provider.into(),
            kind,
            retryable: kind.default_retryable(),
            retry_after: None,
            status: None,
            code: None,
            message: message.into(),
        }
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    pub fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }

    pub fn retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }
}
