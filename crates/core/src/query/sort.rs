//! Sorting the list: a sort spec (`-balance_in_base,currency`), the key values of an account
//! under it, and the one comparison both sorting and keyset pagination use.
//!
//! Invariant: every spec ends with `id` ascending (appended when not given), and ids are unique,
//! so the order is total: no two accounts compare equal, which is what makes a keyset cursor
//! visit every account exactly once.

use std::cmp::Ordering;
use std::fmt;

use rust_decimal::Decimal;

use crate::account::Account;

/// A field the list can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortField {
    /// The value in the target currency (Corebanq's name). Accounts that could not be converted
    /// sort last in either direction.
    BalanceInBase,
    /// The balance in the account's own currency (mixing currencies; mostly useful stacked).
    Balance,
    Currency,
    Id,
    CustomerId,
    Provider,
    Status,
    IsCrypto,
    Active,
}

impl SortField {
    pub const ALL: [SortField; 9] = [
        SortField::BalanceInBase,
        SortField::Balance,
        SortField::Currency,
        SortField::Id,
        SortField::CustomerId,
        SortField::Provider,
        SortField::Status,
        SortField::IsCrypto,
        SortField::Active,
    ];

    /// The name used in `sort=`.
    pub fn as_str(self) -> &'static str {
        match self {
            SortField::BalanceInBase => "balance_in_base",
            SortField::Balance => "balance",
            SortField::Currency => "currency",
            SortField::Id => "id",
            SortField::CustomerId => "customer_id",
            SortField::Provider => "provider",
            SortField::Status => "status",
            SortField::IsCrypto => "is_crypto",
            SortField::Active => "active",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        SortField::ALL.into_iter().find(|f| f.as_str() == s)
    }

    pub(crate) fn kind(self) -> KeyKind {
        match self {
            SortField::BalanceInBase | SortField::Balance => KeyKind::Decimal,
            SortField::IsCrypto | SortField::Active => KeyKind::Bool,
            _ => KeyKind::Text,
        }
    }
}

/// One sort criterion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SortKey {
    pub field: SortField,
    pub descending: bool,
}

/// An ordered list of criteria, always ending with `id` (see the module invariant).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SortSpec {
    keys: Vec<SortKey>,
}

impl Default for SortSpec {
    /// By id: stable, and cheap for the store to index.
    fn default() -> Self {
        SortSpec::new(Vec::new())
    }
}

impl SortSpec {
    /// A spec from criteria; later repeats of a field are dropped and `id` is appended when
    /// missing, so the order is always total.
    pub fn new(keys: Vec<SortKey>) -> Self {
        let mut out: Vec<SortKey> = Vec::with_capacity(keys.len() + 1);
        for k in keys {
            if !out.iter().any(|o| o.field == k.field) {
                out.push(k);
            }
        }
        if !out.iter().any(|k| k.field == SortField::Id) {
            out.push(SortKey {
                field: SortField::Id,
                descending: false,
            });
        }
        SortSpec { keys: out }
    }

    /// Parses `sort=`: comma-separated field names, each optionally prefixed by `-`
    /// (descending) or `+`. An unknown or repeated field is an error (the message names it and
    /// lists the fields); empty means the default.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut keys = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (descending, name) = match part.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, part.strip_prefix('+').unwrap_or(part)),
            };
            let field = SortField::parse(name).ok_or_else(|| {
                let names: Vec<&str> = SortField::ALL.iter().map(|f| f.as_str()).collect();
                format!(
                    "unknown sort field `{}`: expected one of {}, each optionally prefixed by `-` for descending",
                    super::param_error::quote(name),
                    names.join(", ")
                )
            })?;
            if keys.iter().any(|k: &SortKey| k.field == field) {
                return Err(format!("`{}` is given twice", field.as_str()));
            }
            keys.push(SortKey { field, descending });
        }
        Ok(SortSpec::new(keys))
    }

    pub fn keys(&self) -> &[SortKey] {
        &self.keys
    }

    /// The spec the stacked (`stack=currency`) list uses: currency first, so each currency's
    /// accounts are contiguous across pages, then this spec.
    pub fn stacked(&self) -> SortSpec {
        if self
            .keys
            .first()
            .is_some_and(|k| k.field == SortField::Currency)
        {
            return self.clone();
        }
        let mut keys = vec![SortKey {
            field: SortField::Currency,
            descending: false,
        }];
        keys.extend(self.keys.iter().copied());
        SortSpec::new(keys)
    }

    /// Whether the order depends on converted values (`balance_in_base`), hence on the rates.
    pub fn uses_rates(&self) -> bool {
        self.keys
            .iter()
            .any(|k| k.field == SortField::BalanceInBase)
    }

    /// The values of `a` under this spec. `value_in_target` is the account's converted value,
    /// `None` when it could not be converted.
    pub fn key_of(&self, a: &Account, value_in_target: Option<Decimal>) -> Vec<KeyValue> {
        self.keys
            .iter()
            .map(|k| match k.field {
                SortField::BalanceInBase => KeyValue::Dec(value_in_target),
                SortField::Balance => KeyValue::Dec(Some(a.balance)),
                // Upper-cased so `EURe` sorts among the EUR… codes; distinct currencies stay
                // distinct because the registry is unique case-insensitively.
                SortField::Currency => KeyValue::Text(a.currency.code().to_uppercase()),
                SortField::Id => KeyValue::Text(a.id.clone()),
                SortField::CustomerId => KeyValue::Text(a.customer_id.clone()),
                SortField::Provider => KeyValue::Text(a.provider_id.clone()),
                SortField::Status => KeyValue::Text(a.status.as_str().to_owned()),
                SortField::IsCrypto => KeyValue::Bool(a.is_crypto),
                SortField::Active => KeyValue::Bool(a.active),
            })
            .collect()
    }

    /// Compares two keys made by [`SortSpec::key_of`] of this spec. Missing decimals sort last
    /// in both directions. Keys of another shape compare by length, never panic.
    pub fn compare(&self, a: &[KeyValue], b: &[KeyValue]) -> Ordering {
        for ((k, x), y) in self.keys.iter().zip(a).zip(b) {
            let ord = match (x, y) {
                (KeyValue::Dec(None), KeyValue::Dec(None)) => Ordering::Equal,
                (KeyValue::Dec(None), KeyValue::Dec(Some(_))) => Ordering::Greater,
                (KeyValue::Dec(Some(_)), KeyValue::Dec(None)) => Ordering::Less,
                _ => {
                    let o = x.cmp(y);
                    if k.descending { o.reverse() } else { o }
                }
            };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        a.len().cmp(&b.len())
    }
}

impl fmt::Display for SortSpec {
    /// The canonical text (`-balance_in_base,id`), also what a cursor records.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, k) in self.keys.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if k.descending {
                f.write_str("-")?;
            }
            f.write_str(k.field.as_str())?;
        }
        Ok(())
    }
}

/// The type of a sort field's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Text,
    Decimal,
    Bool,
}

/// One value of a sort key (a store pages by them: see [`super::Cursor::key`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyValue {
    /// Compared as Rust compares strings: by bytes (code points).
    Text(String),
    /// `None`: not converted; sorts last in both directions.
    Dec(Option<Decimal>),
    Bool(bool),
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_appends_the_id_tiebreak() {
        assert_eq!(
            SortSpec::parse("-balance_in_base").unwrap().to_string(),
            "-balance_in_base,id"
        );
        assert_eq!(
            SortSpec::parse("currency, -id").unwrap().to_string(),
            "currency,-id"
        );
        assert_eq!(SortSpec::parse("").unwrap().to_string(), "id");
        assert_eq!(SortSpec::parse("+status").unwrap().to_string(), "status,id");
        assert_eq!(SortSpec::default().stacked().to_string(), "currency,id");
        assert_eq!(
            SortSpec::parse("-currency").unwrap().stacked().to_string(),
            "-currency,id"
        );
    }

    #[test]
    fn rejects_unknown_and_repeated_fields() {
        let err = SortSpec::parse("-colour").unwrap_err();
        assert!(
            err.contains("`colour`") && err.contains("balance_in_base"),
            "{err}"
        );
        assert!(SortSpec::parse("id,-id").unwrap_err().contains("twice"));
        assert!(SortSpec::parse("--id").is_err());
    }

    #[test]
    fn missing_values_sort_last_both_ways() {
        for desc in [false, true] {
            let spec = SortSpec::new(vec![SortKey {
                field: SortField::BalanceInBase,
                descending: desc,
            }]);
            let some = [
                KeyValue::Dec(Some(Decimal::ONE)),
                KeyValue::Text("a".into()),
            ];
            let none = [KeyValue::Dec(None), KeyValue::Text("a".into())];
            assert_eq!(spec.compare(&some, &none), Ordering::Less);
        }
    }
}
