//! The one typed filter every endpoint and the store share.

use rust_decimal::Decimal;

use crate::account::{Account, Status};
use crate::currency::Currency;

/// Account filters. Every `Vec` is "any of"; empty means no constraint. All constraints combine
/// with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// `search.is_crypto` / `is_crypto`.
    pub is_crypto: Option<bool>,
    /// `search.currency[.in]` / `account_currency`: canonical currencies.
    pub currencies: Vec<Currency>,
    /// `search.active` / `active`.
    pub active: Option<bool>,
    /// `search.status[.in]` / `status`.
    pub statuses: Vec<Status>,
    /// `search.balance.{gt,gte,lt,lte}` / `balance_gt` …, in the account's own currency.
    pub balance: BalanceRange,
    /// `search.provider[.in]` / `provider`: provider instance ids.
    pub providers: Vec<String>,
    /// The list endpoint's other field searches (`search.id.like=…`, `search.iban=…`).
    pub fields: Vec<FieldSearch>,
    /// Free text `search=…`: case-insensitive substring of id, wallet address or IBAN.
    pub text: Option<String>,
}

/// A balance range; bounds combine with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BalanceRange {
    pub gt: Option<Decimal>,
    pub gte: Option<Decimal>,
    pub lt: Option<Decimal>,
    pub lte: Option<Decimal>,
}

impl BalanceRange {
    pub fn is_empty(&self) -> bool {
        self.gt.is_none() && self.gte.is_none() && self.lt.is_none() && self.lte.is_none()
    }

    pub fn contains(&self, v: Decimal) -> bool {
        self.gt.is_none_or(|b| v > b)
            && self.gte.is_none_or(|b| v >= b)
            && self.lt.is_none_or(|b| v < b)
            && self.lte.is_none_or(|b| v <= b)
    }
}

/// A field the list endpoint can search (`search.<field>[.<op>]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SearchField {
    Id,
    CustomerId,
    Currency,
    Provider,
    Status,
    MainWalletAddress,
    Iban,
}

/// A string operator: equality (no op), `in` (comma list) or `like` (case-insensitive substring).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldOp {
    Eq(String),
    In(Vec<String>),
    Like(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSearch {
    pub field: SearchField,
    pub op: FieldOp,
}

impl Filter {
    /// Whether one account passes every constraint.
    pub fn matches(&self, a: &Account) -> bool {
        let _ = a;
        todo!("core helper implements")
    }
}
