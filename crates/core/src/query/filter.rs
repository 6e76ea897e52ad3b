//! The one typed filter every endpoint and the store share.

use rust_decimal::Decimal;

use crate::account::{Account, BalanceType, Status};
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
    /// `search.balance_type[.in]` / `balance_type`: what the balances mean.
    pub balance_types: Vec<BalanceType>,
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
    ///
    /// Currencies compare by canonical code (both sides went through the registry), providers
    /// and ids exactly, field searches as [`FieldSearch::matches`] says, free text as a
    /// case-insensitive substring of the id, any wallet address, or the IBAN.
    pub fn matches(&self, a: &Account) -> bool {
        self.is_crypto.is_none_or(|c| a.is_crypto == c)
            && self.active.is_none_or(|v| a.active == v)
            && (self.currencies.is_empty() || self.currencies.contains(&a.currency))
            && (self.statuses.is_empty() || self.statuses.contains(&a.status))
            && (self.providers.is_empty() || self.providers.contains(&a.provider_id))
            && (self.balance_types.is_empty() || self.balance_types.contains(&a.balance_type))
            && self.balance.contains(a.balance)
            && self.fields.iter().all(|f| f.matches(a))
            && self.text.as_deref().is_none_or(|t| text_matches(t, a))
    }
}

/// Case-insensitive substring test. Unicode-aware lower-casing so `eurøp` finds `EURØP`.
pub(crate) fn contains_ci(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

/// Free text: id, any wallet address (and tag), or IBAN. An IBAN is also matched without its
/// spaces, since people paste it both ways.
fn text_matches(text: &str, a: &Account) -> bool {
    let text = text.trim();
    if text.is_empty() {
        return true;
    }
    if contains_ci(&a.id, text) {
        return true;
    }
    if a.wallets.iter().any(|w| contains_ci(&w.address, text)) {
        return true;
    }
    a.iban.as_deref().is_some_and(|iban| {
        contains_ci(iban, text) || contains_ci(&strip_spaces(iban), &strip_spaces(text))
    })
}

fn strip_spaces(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

impl SearchField {
    /// The field's value on an account. `main_wallet_address` is the first wallet's, as Corebanq
    /// defines it. `None` when the account has no value, which matches no search.
    fn value(self, a: &Account) -> Option<&str> {
        match self {
            SearchField::Id => Some(&a.id),
            SearchField::CustomerId => Some(&a.customer_id),
            SearchField::Currency => Some(a.currency.code()),
            SearchField::Provider => Some(&a.provider_id),
            SearchField::Status => Some(a.status.as_str()),
            SearchField::MainWalletAddress => a.main_wallet_address(),
            SearchField::Iban => a.iban.as_deref(),
        }
    }

    /// Whether equality on this field ignores case. Codes, statuses, addresses and IBANs are
    /// case-insensitive by nature; ids are opaque, so they compare exactly.
    fn case_insensitive(self) -> bool {
        !matches!(
            self,
            SearchField::Id | SearchField::CustomerId | SearchField::Provider
        )
    }
}

impl FieldSearch {
    /// Whether one account passes this field search. `Eq`/`In` compare whole values (ignoring
    /// case where the field is case-insensitive; a currency compares canonically), `Like` is a
    /// case-insensitive substring.
    pub fn matches(&self, a: &Account) -> bool {
        let Some(value) = self.field.value(a) else {
            return false;
        };
        let eq = |want: &str| -> bool {
            match self.field {
                SearchField::Currency => Currency::new(want) == a.currency,
                SearchField::Iban => strip_spaces(want).eq_ignore_ascii_case(&strip_spaces(value)),
                f if f.case_insensitive() => want.trim().to_lowercase() == value.to_lowercase(),
                _ => want == value,
            }
        };
        match &self.op {
            FieldOp::Eq(v) => eq(v),
            FieldOp::In(vs) => vs.iter().any(|v| eq(v)),
            FieldOp::Like(v) => contains_ci(value, v),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::query::fixtures::{accounts, d};

    fn ids(f: &Filter) -> Vec<String> {
        accounts()
            .into_iter()
            .filter(|a| f.matches(a))
            .map(|a| a.id)
            .collect()
    }

    #[test]
    fn empty_filter_matches_everything() {
        assert_eq!(ids(&Filter::default()).len(), accounts().len());
    }

    #[test]
    fn each_field_constrains() {
        let f = Filter {
            is_crypto: Some(false),
            ..Filter::default()
        };
        assert_eq!(ids(&f), ["p100:eur", "bank:1", "bank:2"]);
        let f = Filter {
            active: Some(false),
            ..Filter::default()
        };
        assert_eq!(ids(&f), ["bank:2"]);
        let f = Filter {
            currencies: vec![Currency::new("eur"), Currency::new("zzz")],
            ..Filter::default()
        };
        assert_eq!(ids(&f), ["p100:eur", "bank:1", "bank:3"]);
        let f = Filter {
            statuses: vec![Status::Suspended],
            ..Filter::default()
        };
        assert_eq!(ids(&f), ["bank:2"]);
        let f = Filter {
            providers: vec!["bank".into()],
            ..Filter::default()
        };
        assert_eq!(ids(&f), ["bank:1", "bank:2", "bank:3"]);
        let f = Filter {
            balance_types: vec![BalanceType::Available],
            ..Filter::default()
        };
        assert_eq!(ids(&f), ["p100:eur", "p100:usdc", "p100:doge", "p100:btc"]);
        let f = Filter {
            balance_types: vec![BalanceType::Unspecified, BalanceType::Available],
            ..Filter::default()
        };
        assert_eq!(ids(&f).len(), accounts().len());
        let balance = BalanceRange {
            gt: Some(d("5")),
            lte: Some(d("1500.50")),
            ..BalanceRange::default()
        };
        let f = Filter {
            balance,
            ..Filter::default()
        };
        assert_eq!(ids(&f), ["p100:eur", "p100:doge", "bank:1"]);
    }

    #[test]
    fn field_searches() {
        let search = |field, op| Filter {
            fields: vec![FieldSearch { field, op }],
            ..Filter::default()
        };
        assert_eq!(
            ids(&search(SearchField::Id, FieldOp::Eq("bank:1".into()))),
            ["bank:1"]
        );
        assert!(ids(&search(SearchField::Id, FieldOp::Eq("BANK:1".into()))).is_empty());
        assert_eq!(
            ids(&search(SearchField::Currency, FieldOp::Eq("usdc".into()))),
            ["p100:usdc"]
        );
        assert_eq!(
            ids(&search(SearchField::Currency, FieldOp::Like("Ur".into()))),
            ["p100:eur", "bank:1"]
        );
        assert_eq!(
            ids(&search(
                SearchField::Iban,
                FieldOp::Eq("de89370400440532013000".into())
            )),
            ["bank:1"]
        );
        assert_eq!(
            ids(&search(
                SearchField::CustomerId,
                FieldOp::In(vec!["c2".into(), "c9".into()])
            )),
            ["bank:1", "bank:2"]
        );
        assert_eq!(
            ids(&search(
                SearchField::Status,
                FieldOp::Eq("SUSPENDED".into())
            )),
            ["bank:2"]
        );
        assert_eq!(
            ids(&search(
                SearchField::MainWalletAddress,
                FieldOp::Like("0x9D27".into())
            )),
            ["p100:usdc"]
        );
    }

    #[test]
    fn free_text_searches_id_wallets_and_iban() {
        let text = |t: &str| Filter {
            text: Some(t.into()),
            ..Filter::default()
        };
        assert_eq!(ids(&text("P100:D")), ["p100:doge"]);
        assert_eq!(ids(&text("nwan7y")), ["p100:doge"]);
        assert_eq!(ids(&text("0x2d0236")), ["p100:usdc"]);
        assert_eq!(ids(&text("3704 0044")), ["bank:1"]);
        assert_eq!(ids(&text("37040044")), ["bank:1"]);
        assert!(ids(&text("nothing")).is_empty());
    }
}
