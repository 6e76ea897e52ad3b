//! Exact conversions between domain values and their stored text forms, shared by both
//! backends. The backends' `FromRow` types live in their own files and call these.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use coffer_core::{Account, Currency, ProviderRate, Status, Wallet};
use rust_decimal::Decimal;

use crate::{ApiKey, HistoryEntry, RateSource, Result, Role, StoreError, StoredRate};

/// Parses a stored decimal exactly; anything that would round is `Corrupt`, never truncated.
pub(crate) fn decimal(s: &str, what: &str) -> Result<Decimal> {
    Decimal::from_str_exact(s.trim())
        .map_err(|e| StoreError::Corrupt(format!("{what}: `{s}` is not an exact decimal: {e}")))
}

pub(crate) fn status(s: &str) -> Result<Status> {
    Status::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn role(s: &str) -> Result<Role> {
    match s {
        "admin" => Ok(Role::Admin),
        "reader" => Ok(Role::Reader),
        _ => Err(StoreError::Corrupt(format!("unknown role `{s}`"))),
    }
}

pub(crate) fn source(s: &str) -> Result<RateSource> {
    match s {
        "manual" => Ok(RateSource::Manual),
        "provider" => Ok(RateSource::Provider),
        _ => Err(StoreError::Corrupt(format!("unknown rate source `{s}`"))),
    }
}

/// Wallets as JSON text; their decimals serialise as JSON strings, so they stay exact.
pub(crate) fn wallets_json(w: &[Wallet]) -> Result<String> {
    serde_json::to_string(w).map_err(|e| StoreError::Other(format!("wallets to JSON: {e}")))
}

pub(crate) fn wallets(s: &str) -> Result<Vec<Wallet>> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("wallets JSON: {e}")))
}

pub(crate) fn strings_json(v: &[String]) -> String {
    serde_json::Value::from(v.to_vec()).to_string()
}

pub(crate) fn strings(s: &str) -> Result<Vec<String>> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("string list JSON: {e}")))
}

/// The fixed-width UTC text form SQLite stores (`2024-05-01T12:00:00.000000Z`): text order is
/// time order.
#[cfg(feature = "sqlite")]
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[cfg(feature = "sqlite")]
pub(crate) fn parse_ts(s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("timestamp `{s}`: {e}")))
}

#[cfg(feature = "sqlite")]
pub(crate) fn opt_ts(s: Option<&str>) -> Result<Option<DateTime<Utc>>> {
    s.map(parse_ts).transpose()
}

/// A stored balance type; anything else is a corrupt row, not a guess.
pub(crate) fn balance_type(s: &str) -> Result<coffer_core::BalanceType> {
    coffer_core::BalanceType::parse(s)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown balance type `{s}`")))
}

/// An account's columns, as text where the backends differ, before exact parsing.
pub(crate) struct AccountCols {
    pub id: String,
    pub customer_id: String,
    pub provider_id: String,
    pub provider_account_id: String,
    pub provider_customer_ref: Option<String>,
    pub currency: String,
    pub is_crypto: bool,
    pub status: String,
    pub active: bool,
    pub balance: String,
    pub wallets: String,
    pub iban: Option<String>,
    pub balance_type: String,
    pub provider_rate: Option<String>,
    pub provider_rate_quote: Option<String>,
    pub fetched_at: DateTime<Utc>,
}

impl AccountCols {
    pub(crate) fn into_account(self) -> Result<Account> {
        let what = format!("account {}", self.id);
        let provider_rate = match (self.provider_rate, self.provider_rate_quote) {
            (Some(rate), Some(quote)) => Some(ProviderRate {
                rate: decimal(&rate, &what)?,
                quote: Currency::new(&quote),
            }),
            _ => None,
        };
        Ok(Account {
            balance: decimal(&self.balance, &what)?,
            status: status(&self.status)?,
            wallets: wallets(&self.wallets)?,
            currency: Currency::new(&self.currency),
            id: self.id,
            customer_id: self.customer_id,
            provider_id: self.provider_id,
            provider_account_id: self.provider_account_id,
            provider_customer_ref: self.provider_customer_ref,
            is_crypto: self.is_crypto,
            active: self.active,
            iban: self.iban,
            balance_type: crate::rows::balance_type(&self.balance_type)?,
            provider_rate,
            fetched_at: self.fetched_at,
        })
    }
}

pub(crate) struct HistoryCols {
    pub account_id: String,
    pub customer_id: String,
    pub balance: String,
    pub status: String,
    pub closed: bool,
    pub recorded_at: DateTime<Utc>,
}

impl HistoryCols {
    pub(crate) fn into_entry(self) -> Result<HistoryEntry> {
        Ok(HistoryEntry {
            balance: decimal(&self.balance, &format!("history of {}", self.account_id))?,
            status: status(&self.status)?,
            account_id: self.account_id,
            customer_id: self.customer_id,
            closed: self.closed,
            recorded_at: self.recorded_at,
        })
    }
}

pub(crate) struct RateCols {
    pub source: String,
    pub provider: String,
    pub currency: String,
    pub quote: String,
    pub rate: String,
    pub as_of: DateTime<Utc>,
}

impl RateCols {
    pub(crate) fn into_rate(self) -> Result<StoredRate> {
        Ok(StoredRate {
            rate: decimal(&self.rate, &format!("rate of {}", self.currency))?,
            currency: Currency::new(&self.currency),
            quote: Currency::new(&self.quote),
            source: source(&self.source)?,
            provider: (!self.provider.is_empty()).then_some(self.provider),
            as_of: self.as_of,
        })
    }
}

pub(crate) struct ApiKeyCols {
    pub id: String,
    pub hash: String,
    pub role: String,
    pub customers: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl ApiKeyCols {
    pub(crate) fn into_key(self) -> Result<ApiKey> {
        Ok(ApiKey {
            role: role(&self.role)?,
            id: self.id,
            hash: self.hash,
            customers: self.customers,
            created_at: self.created_at,
            revoked_at: self.revoked_at,
            expires_at: self.expires_at,
            last_used_at: self.last_used_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_parse_exactly_or_fail() {
        assert_eq!(
            decimal("1500.000000", "x").unwrap().to_string(),
            "1500.000000"
        );
        let d = decimal("1234567890.123456789012345678", "x").unwrap();
        assert_eq!(d.to_string(), "1234567890.123456789012345678");
        // 30 significant digits do not fit: an error, never a rounded value.
        assert!(matches!(
            decimal("123456789012345678901234567890", "x"),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            decimal("0.00000000000000000000000000001", "x"),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn timestamps_are_fixed_width() {
        let t = DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(ts(t), "2024-05-01T12:00:00.000000Z");
        assert_eq!(parse_ts(&ts(t)).unwrap(), t);
    }
}
