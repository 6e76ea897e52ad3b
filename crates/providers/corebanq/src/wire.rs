//! Corebanq's JSON, as seed `004_41bc46fdc16b6081.txt` (`GET /v2/accounts/balance`) shows it.
//!
//! These types mirror the provider's field names and nesting; they hold no Coffer concepts.
//! Unknown fields are ignored, optional fields are `Option`. Money comes as JSON numbers and is
//! kept as the exact text sent ([`DecimalText`], from `coffer-provider-kit`); only `map.rs` turns it into decimals, so nothing
//! here goes through floating point.

use serde::Deserialize;
use serde_json::Value;

pub use coffer_provider_kit::wire::{DecimalText, Lenient};

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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
