//! The one account model every provider's answer is normalised into.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::currency::Currency;

/// One balance a provider reports for one customer.
///
/// `id` is `"{provider_id}:{provider_account_id}"` and stays stable across fetches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    /// Coffer's customer id (not the provider's).
    pub customer_id: String,
    /// The configured provider instance (e.g. `p100`), not its kind.
    pub provider_id: String,
    pub provider_account_id: String,
    /// The provider's own reference of the customer (P100's `userId`, which differs from the
    /// `externalUserId` Coffer calls with).
    pub provider_customer_ref: Option<String>,
    pub currency: Currency,
    pub is_crypto: bool,
    pub status: Status,
    /// The provider's own active flag; may disagree with `status` (seed 004 shows both).
    pub active: bool,
    /// Exact, in the account's own currency, with the scale the provider sent.
    pub balance: Decimal,
    /// What `balance` means, as its provider's adapter declares it. Absent in data written
    /// before balance types existed: `unspecified` (nobody said), never a guess.
    #[serde(default)]
    pub balance_type: BalanceType,
    pub wallets: Vec<Wallet>,
    pub iban: Option<String>,
    /// Value of one unit in the provider's base currency, when the provider gives one.
    pub provider_rate: Option<ProviderRate>,
    pub fetched_at: DateTime<Utc>,
}

impl Account {
    /// The stable account id for a provider instance and the provider's account id.
    pub fn make_id(provider_id: &str, provider_account_id: &str) -> String {
        format!("{provider_id}:{provider_account_id}")
    }

    /// The first wallet's address: what Corebanq calls `main_wallet_address`.
    pub fn main_wallet_address(&self) -> Option<&str> {
        self.wallets.first().map(|w| w.address.as_str())
    }

    /// The first wallet's tag (`main_wallet_address_tag`).
    pub fn main_wallet_address_tag(&self) -> Option<&str> {
        self.wallets.first().and_then(|w| w.tag.as_deref())
    }
}

/// What a balance means. Peers distinguish available (spendable now) from current/booked;
/// Coffer's providers give one figure each, and say so or not: P100's `amount` is the
/// "current available amount", Corebanq's `balance` carries no qualifier.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum BalanceType {
    /// What the holder can spend now.
    Available,
    /// The provider does not say which balance it is.
    #[default]
    Unspecified,
}

impl BalanceType {
    pub const ALL: [BalanceType; 2] = [BalanceType::Available, BalanceType::Unspecified];

    pub fn as_str(self) -> &'static str {
        match self {
            BalanceType::Available => "available",
            BalanceType::Unspecified => "unspecified",
        }
    }

    /// The stored or asked name (`available`, `unspecified`), case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl std::fmt::Display for BalanceType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many accounts of each [`BalanceType`] a total adds: what a total says it mixes.
/// Every type is always there, zero included, so a total's shape does not depend on its data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct BalanceTypeCounts {
    pub available: u64,
    pub unspecified: u64,
}

impl BalanceTypeCounts {
    /// One account of type `t`.
    pub fn one(t: BalanceType) -> Self {
        let mut c = Self::default();
        c.add(t, 1);
        c
    }

    /// Counts `n` more accounts of type `t`.
    pub fn add(&mut self, t: BalanceType, n: u64) {
        let slot = match t {
            BalanceType::Available => &mut self.available,
            BalanceType::Unspecified => &mut self.unspecified,
        };
        *slot = slot.saturating_add(n);
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Self) {
        for (t, n) in other.iter() {
            self.add(t, n);
        }
    }

    pub fn get(&self, t: BalanceType) -> u64 {
        match t {
            BalanceType::Available => self.available,
            BalanceType::Unspecified => self.unspecified,
        }
    }

    /// Every type with its count, in [`BalanceType::ALL`]'s order, zeros included.
    pub fn iter(&self) -> impl Iterator<Item = (BalanceType, u64)> + '_ {
        BalanceType::ALL.into_iter().map(|t| (t, self.get(t)))
    }

    /// All the accounts counted.
    pub fn total(&self) -> u64 {
        self.iter().map(|(_, n)| n).fold(0, u64::saturating_add)
    }
}

/// A rate a provider reported: one unit of the account's currency is worth `rate` units of
/// `quote` (the provider's base currency: EUR for P100, the requested currency for Corebanq).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderRate {
    pub rate: Decimal,
    pub quote: Currency,
}

/// Account status, normalised. An unclear provider status maps to `Pending`, never to `Active`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    Inactive,
    Suspended,
    Pending,
}

impl Status {
    pub const ALL: [Status; 4] = [
        Status::Active,
        Status::Inactive,
        Status::Suspended,
        Status::Pending,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Inactive => "inactive",
            Status::Suspended => "suspended",
            Status::Pending => "pending",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status `{0}`: expected one of active, inactive, suspended, pending")]
pub struct StatusParseError(pub String);

impl std::str::FromStr for Status {
    type Err = StatusParseError;
    /// Parses Coffer's own spelling, case-insensitively.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| StatusParseError(s.to_owned()))
    }
}

/// One network's wallet of a (crypto) account: P100's `networkConfig` entries, Corebanq's
/// `main_wallet_address[_tag]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Wallet {
    /// Network key, e.g. `ethereum`, `polygon`, `btc`.
    pub network: String,
    pub address: String,
    pub tag: Option<String>,
    pub mainnet: Option<bool>,
    /// The network's own name, e.g. `sepolia`, `amoy`.
    pub network_name: Option<String>,
    pub withdrawal_fee: Option<Decimal>,
    pub withdrawal_min: Option<Decimal>,
    pub deposit_min: Option<Decimal>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn status_parses_case_insensitively_and_names_the_choices() {
        assert_eq!("ACTIVE".parse::<Status>(), Ok(Status::Active));
        assert_eq!(" pending ".parse::<Status>(), Ok(Status::Pending));
        let err = "frozen".parse::<Status>().unwrap_err();
        assert!(err.to_string().contains("frozen"));
        assert!(err.to_string().contains("suspended"));
    }

    #[test]
    fn balance_type_counts_keep_every_type() {
        let mut c = BalanceTypeCounts::one(BalanceType::Available);
        c.add(BalanceType::Unspecified, 2);
        c.merge(&BalanceTypeCounts::one(BalanceType::Available));
        assert_eq!(c.get(BalanceType::Available), 2);
        assert_eq!(c.total(), 4);
        let zero: Vec<_> = BalanceTypeCounts::default().iter().collect();
        assert_eq!(
            zero,
            [(BalanceType::Available, 0), (BalanceType::Unspecified, 0)]
        );
        assert_eq!(
            BalanceType::parse(" AVAILABLE "),
            Some(BalanceType::Available)
        );
        assert_eq!(BalanceType::parse("booked"), None);
    }

    #[test]
    fn id_joins_provider_and_account() {
        assert_eq!(Account::make_id("p100", "abc"), "p100:abc");
    }
}
