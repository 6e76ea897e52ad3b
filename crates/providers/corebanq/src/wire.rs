//! Corebanq's JSON, as seed `004_41bc46fdc16b6081.txt` (`GET /v2/accounts/balance`) shows it.
//!
//! These types mirror the provider's field names and nesting; they hold no Coffer concepts.
//! Unknown fields are ignored, optional fields are `Option`. Money comes as JSON numbers and is
//! kept as the exact text sent ([`DecimalText`]); only `map.rs` turns it into decimals, so nothing
//! here goes through `f64`.

use serde::Deserialize;
use serde::de::{self, Deserializer};
use serde_json::Value;

/// `GET /v2/accounts/balance?customer_id=…&currency=…&details=true`, HTTP 200.
#[derive(Debug, Clone, Deserialize)]
pub struct BalanceResponse {
    /// Totals in `currency`; Coffer recomputes its own, so they are only read to tell an empty
    /// answer from a broken one.
    #[serde(default)]
    pub total_balance: Option<Value>,
    /// The currency `balance_in_base` is expressed in: the one asked for.
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub fiat_balance: Option<Value>,
    #[serde(default)]
    pub crypto_balance: Option<Value>,
    #[serde(default)]
    pub details: Option<Details>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Details {
    /// `null` in the seed's example when the customer has no fiat account.
    #[serde(default)]
    pub fiat_accounts: Option<Vec<Lenient<Account>>>,
    #[serde(default)]
    pub crypto_assets: Option<Vec<Lenient<Account>>>,
}

/// One account or crypto asset.
#[derive(Debug, Clone, Deserialize)]
pub struct Account {
    pub id: String,
    #[serde(default)]
    pub customer_id: Option<String>,
    pub currency: String,
    /// A JSON number in the account's currency: `0`, `9.872368e-2`, `12345678901234.12345678`.
    pub balance: DecimalText,
    /// The balance in the response's `currency`; may be missing or `null`.
    #[serde(default)]
    pub balance_in_base: Option<DecimalText>,
    #[serde(default)]
    pub is_crypto: Option<bool>,
    /// The provider's own flag; may disagree with `status` (seed 004: `active: false`,
    /// `status: "active"`).
    #[serde(default)]
    pub active: Option<bool>,
    /// `active`, `inactive`, `suspended`, `pending`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub main_wallet_address: Option<String>,
    /// `""` when the network has no tag (seed 004).
    #[serde(default)]
    pub main_wallet_address_tag: Option<String>,
    #[serde(default)]
    pub iban: Option<String>,
}

/// Every error: `{"error": "…", "message": "…", "details": {…}}` (seed 004).
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub details: Option<Value>,
}

/// A number as the exact text Corebanq sent, whether a JSON number (`0`, `9.872368e-2`, `12345678901234.12345678`)
/// or a JSON string. Relies on `serde_json/arbitrary_precision`, which keeps a
/// number's digits instead of going through `f64`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecimalText {
    pub text: String,
    /// Whether it came as a JSON string.
    pub quoted: bool,
}

impl<'de> Deserialize<'de> for DecimalText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Number(n) => Ok(DecimalText {
                text: n.to_string(),
                quoted: false,
            }),
            Value::String(s) => Ok(DecimalText {
                text: s,
                quoted: true,
            }),
            other => Err(de::Error::invalid_type(
                unexpected(&other),
                &"a decimal number or string",
            )),
        }
    }
}

fn unexpected(v: &Value) -> de::Unexpected<'_> {
    match v {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
        Value::Number(_) => de::Unexpected::Other("number"),
        Value::String(s) => de::Unexpected::Str(s),
    }
}

/// One element of a list that may be malformed on its own: a bad balance must not fail the
/// whole answer (issue 3), so it is kept with its error instead.
#[derive(Debug, Clone)]
pub enum Lenient<T> {
    Ok(T),
    Err {
        /// The element as sent, to read its `id` for the report.
        raw: Value,
        /// What was wrong, starting with the path of the field at fault.
        error: String,
    },
}

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Value::deserialize(d)?;
        match serde_path_to_error::deserialize::<_, T>(&raw) {
            Ok(v) => Ok(Lenient::Ok(v)),
            Err(e) => {
                let path = e.path().to_string();
                let inner = e.into_inner();
                let error = if path == "." {
                    inner.to_string()
                } else {
                    format!("{path}: {inner}")
                };
                Ok(Lenient::Err { raw, error })
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_their_text() {
        let v: Vec<DecimalText> =
            serde_json::from_str(r#"[0, 9.872368e-2, 12345678901234.12345678, "1.50"]"#).unwrap();
        let texts: Vec<_> = v.iter().map(|d| d.text.as_str()).collect();
        assert_eq!(
            texts,
            ["0", "9.872368e-2", "12345678901234.12345678", "1.50"]
        );
    }

    #[test]
    fn lenient_names_the_field() {
        let v: Vec<Lenient<Account>> = serde_json::from_str(
            r#"[{"id":"a","currency":"EUR","balance":"x","balance_in_base":[]},{"currency":"EUR","balance":1}]"#,
        )
        .unwrap();
        let errors: Vec<_> = v
            .iter()
            .map(|l| match l {
                Lenient::Err { error, .. } => error.clone(),
                Lenient::Ok(_) => String::new(),
            })
            .collect();
        assert!(
            errors[0].starts_with("balance_in_base: invalid type: sequence"),
            "{}",
            errors[0]
        );
        assert!(errors[1].contains("missing field `id`"), "{}", errors[1]);
    }
}
