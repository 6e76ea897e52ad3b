//! API bodies for accounts and balances. Corebanq's field names first, then Coffer's.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use coffer_core::money::round_for;
use coffer_core::query::{ConvertedAccount, Group, Unconverted};
use coffer_core::{Account, BalanceTypeCounts, Currency, Wallet};
use serde::Serialize;
use utoipa::ToSchema;

use crate::routes::answer::{Freshness, Warning};

// A rate's body is shared with the events and the exports (rate_body.rs).
pub use crate::rate_body::{RateOut, rates};

/// One account. Amounts are exact decimal strings.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountOut {
    /// `"{provider}:{provider_account_id}"`, stable across fetches.
    pub id: String,
    pub customer_id: String,
    /// Canonical currency code (`EUR`, `USDC`, `EURe`, `EURØP`).
    pub currency: String,
    /// In the account's own currency, with the provider's scale.
    #[schema(example = "3.000000")]
    pub balance: String,
    /// What `balance` means, as the provider's adapter declares it: `available` (P100's
    /// "current available amount") or `unspecified` (the provider does not say: Corebanq).
    #[schema(example = "available", pattern = "^(available|unspecified)$")]
    pub balance_type: String,
    /// Value in the answer's target currency, rounded half-even to its minor units; null when
    /// no rate converts it (see `unconverted`).
    pub balance_in_base: Option<String>,
    pub is_crypto: bool,
    /// The provider's own active flag (may disagree with `status`).
    pub active: bool,
    /// `active`, `inactive`, `suspended` or `pending`.
    pub status: String,
    pub main_wallet_address: Option<String>,
    pub main_wallet_address_tag: Option<String>,
    pub iban: Option<String>,
    /// The provider instance id.
    pub provider: String,
    pub provider_account_id: String,
    pub provider_customer_ref: Option<String>,
    pub wallets: Vec<WalletOut>,
    pub provider_rate: Option<ProviderRateOut>,
    /// When the provider reported this balance.
    pub as_of: DateTime<Utc>,
    /// Answers at a past instant (`at`) only: the observation of its (customer, provider)
    /// pair this state comes from (the pair's last at or before `at`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<DateTime<Utc>>,
    pub metadata: Metadata,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WalletOut {
    pub network: String,
    pub address: String,
    pub tag: Option<String>,
    pub mainnet: Option<bool>,
    pub network_name: Option<String>,
    pub withdrawal_fee: Option<String>,
    pub withdrawal_min: Option<String>,
    pub deposit_min: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderRateOut {
    /// One unit is worth `rate` units of `quote`.
    pub rate: String,
    pub quote: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Metadata {
    /// Stablecoin issuer (e.g. `Circle`).
    pub issuer: Option<String>,
    /// Stablecoin peg (e.g. `EUR`).
    pub peg: Option<String>,
    pub currency_name: Option<String>,
    /// False when the currency is not in Coffer's registry (kept, flagged).
    pub known_currency: bool,
}

fn s(d: rust_decimal::Decimal) -> String {
    d.to_string()
}

fn wallet(w: &Wallet) -> WalletOut {
    WalletOut {
        network: w.network.clone(),
        address: w.address.clone(),
        tag: w.tag.clone(),
        mainnet: w.mainnet,
        network_name: w.network_name.clone(),
        withdrawal_fee: w.withdrawal_fee.map(s),
        withdrawal_min: w.withdrawal_min.map(s),
        deposit_min: w.deposit_min.map(s),
    }
}

pub fn account(
    a: &Account,
    value_in_target: Option<rust_decimal::Decimal>,
    target: &Currency,
) -> AccountOut {
    let info = a.currency.info();
    AccountOut {
        id: a.id.clone(),
        customer_id: a.customer_id.clone(),
        currency: a.currency.to_string(),
        balance: s(a.balance),
        balance_type: a.balance_type.as_str().to_owned(),
        balance_in_base: value_in_target.map(|v| s(round_for(target, v))),
        is_crypto: a.is_crypto,
        active: a.active,
        status: a.status.to_string(),
        main_wallet_address: a.main_wallet_address().map(str::to_owned),
        main_wallet_address_tag: a.main_wallet_address_tag().map(str::to_owned),
        iban: a.iban.clone(),
        provider: a.provider_id.clone(),
        provider_account_id: a.provider_account_id.clone(),
        provider_customer_ref: a.provider_customer_ref.clone(),
        wallets: a.wallets.iter().map(wallet).collect(),
        provider_rate: a.provider_rate.as_ref().map(|r| ProviderRateOut {
            rate: s(r.rate),
            quote: r.quote.to_string(),
        }),
        as_of: a.fetched_at,
        observed_at: None,
        metadata: Metadata {
            issuer: a.currency.issuer().map(str::to_owned),
            peg: a.currency.peg().map(str::to_owned),
            currency_name: info.map(|i| i.name.to_owned()),
            known_currency: info.is_some(),
        },
    }
}

pub fn converted(c: &ConvertedAccount<'_>, target: &Currency) -> AccountOut {
    account(c.account, c.value_in_target, target)
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GroupOut {
    pub currency: String,
    pub is_crypto: bool,
    /// Sum in the group's own currency, exact.
    pub balance: String,
    /// Sum in the target currency, rounded half-even to its minor units; null if unconverted.
    pub balance_in_base: Option<String>,
    /// Accounts in the group (all matching, not only this page).
    pub accounts_count: usize,
    pub unconverted_count: usize,
    /// The group's accounts by balance type: every one its `balance` adds (converted or not).
    pub balance_types: BalanceTypesOut,
}

/// How many accounts of each balance type a total adds. Every type is always present, zero
/// included, so the shape never depends on the data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct BalanceTypesOut {
    /// Accounts whose balance is what the holder can spend now (P100).
    pub available: u64,
    /// Accounts whose provider does not say which balance it is (Corebanq).
    pub unspecified: u64,
}

impl From<BalanceTypeCounts> for BalanceTypesOut {
    fn from(c: BalanceTypeCounts) -> Self {
        BalanceTypesOut {
            available: c.available,
            unspecified: c.unspecified,
        }
    }
}

pub fn group(g: &Group) -> GroupOut {
    GroupOut {
        currency: g.currency.to_string(),
        is_crypto: g.is_crypto,
        balance: s(g.balance),
        balance_in_base: g.value.map(|v| s(v.rounded)),
        accounts_count: g.accounts,
        unconverted_count: g.unconverted,
        balance_types: g.balance_types.into(),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnconvertedOut {
    pub id: String,
    pub currency: String,
    pub balance: String,
    /// Why: e.g. `no rate for XYZ in EUR`.
    pub reason: String,
}

pub fn unconverted(u: &Unconverted) -> UnconvertedOut {
    UnconvertedOut {
        id: u.account_id.clone(),
        currency: u.currency.to_string(),
        balance: s(u.balance),
        reason: u.reason.to_string(),
    }
}

/// The freshness part every account answer carries.
#[derive(Debug, Serialize, ToSchema)]
pub struct FreshnessOut {
    /// Per provider: when the data served was fetched (the oldest, over several customers).
    pub as_of: BTreeMap<String, Option<DateTime<Utc>>>,
    /// Some data is older than asked because a provider failed.
    pub stale: bool,
    /// Some accounts are left out because a provider failed with no recent data, or a balance
    /// could not be read.
    pub partial: bool,
    pub warnings: Vec<Warning>,
}

impl From<Freshness> for FreshnessOut {
    fn from(f: Freshness) -> Self {
        FreshnessOut {
            as_of: f.as_of.into_iter().map(|p| (p.provider, p.as_of)).collect(),
            stale: f.stale,
            partial: f.partial,
            warnings: f.warnings,
        }
    }
}

/// What an all-customer answer (read from the store) covers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CoverageOut {
    pub customers: u64,
    pub oldest_as_of: Option<DateTime<Utc>>,
    pub newest_as_of: Option<DateTime<Utc>>,
}

/// One point of a balance series (`GET /v2/accounts/balance/history`).
#[derive(Debug, Serialize, ToSchema)]
pub struct PointOut {
    pub at: DateTime<Utc>,
    pub total_balance: String,
    pub fiat_balance: String,
    pub crypto_balance: String,
    /// The accounts `total_balance` adds, by balance type (as the balance answer's).
    pub balance_types: BalanceTypesOut,
    /// With `stack=currency`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<GroupOut>>,
    pub partial: bool,
    pub warnings: Vec<Warning>,
}
