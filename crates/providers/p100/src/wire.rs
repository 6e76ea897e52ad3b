//! P100's JSON, as seed `000_070b0b533eda9812.txt` ("Get User Balances") shows it.
//!
//! These types mirror the provider's field names and nesting; they hold no Coffer concepts.
//! Unknown fields are ignored (serde's default), optional fields are `Option`. Numbers are kept
//! as the exact text the provider sent ([`DecimalText`], from `coffer-provider-kit`) and only `map.rs` turns them into
//! decimals, so nothing here ever goes through floating point.

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

pub use coffer_provider_kit::wire::{DecimalText, Lenient};

/// `GET /v1/user/{externalUserId}/balances`, HTTP 200.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BalancesResponse {
    /// P100's own user id; not the `externalUserId` of the path (seed 000 example).
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub fiat_balances: Option<Vec<Lenient<Balance>>>,
    #[serde(default)]
    pub crypto_balances: Option<Vec<Lenient<Balance>>>,
}

/// One entry of `fiatBalances` or `cryptoBalances`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Balance {
    pub id: String,
    /// A decimal string whose scale depends on the currency: `"0.00"`, `"3.000000"`.
    pub amount: DecimalText,
    /// Lower-case currency code: `"eur"`, `"usdc"`.
    pub name: String,
    /// Value of one unit in EUR, a JSON number: `1`, `0.09872368`, `69258.93415658`.
    #[serde(default)]
    pub rate: Option<DecimalText>,
    /// `ACTIVE`, `WAITING_TO_BE_ACTIVATED`, …; the seed's crypto balances have none.
    #[serde(default)]
    pub status: Option<String>,
    /// Per network (object key: `ethereum`, `polygon`, `btc`…), in the order P100 sent them.
    #[serde(default, deserialize_with = "ordered_networks")]
    pub network_config: Option<Vec<(String, NetworkConfig)>>,
}

/// One network of a crypto balance.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkConfig {
    #[serde(default)]
    pub wallet: Option<String>,
    #[serde(default)]
    pub mainnet: Option<bool>,
    /// The network's own name: `sepolia`, `amoy`, `test`.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub withdrawal: Option<Withdrawal>,
    #[serde(default)]
    pub deposit: Option<Deposit>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Withdrawal {
    #[serde(default)]
    pub fee_withdrawal: Option<DecimalText>,
    #[serde(default)]
    pub min_withdrawal: Option<DecimalText>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deposit {
    #[serde(default)]
    pub min_deposit: Option<DecimalText>,
}

/// A business or validation error: `{"errorCode": "P412", "errorName": …, "errorMessage": …}`
/// (seed 000, "Responses"; DESIGN.md, "What the providers really do").
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub error_code: String,
    #[serde(default)]
    pub error_name: Option<String>,
    #[serde(default)]
    pub error_message: Option<String>,
}

/// `networkConfig` as a list of (key, config) in the order sent; `null` is `None`.
fn ordered_networks<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<(String, NetworkConfig)>>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Vec<(String, NetworkConfig)>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object of network configurations")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some((k, v)) = map.next_entry::<String, NetworkConfig>()? {
                out.push((k, v));
            }
            Ok(Some(out))
        }
    }
    d.deserialize_any(V)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_order_is_kept() {
        let b: Balance = serde_json::from_str(
            r#"{"id":"x","amount":"1","name":"usdc","networkConfig":{"polygon":{},"ethereum":{}}}"#,
        )
        .expect("parses");
        let keys: Vec<_> = b
            .network_config
            .expect("some")
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, ["polygon", "ethereum"]);
    }

    #[test]
    fn lenient_names_the_field() {
        let v: Vec<Lenient<Balance>> = serde_json::from_str(
            r#"[{"id":"a","amount":true,"name":"eur"},{"amount":"1","name":"eur"},
                {"id":"c","amount":"1","name":"usdc","networkConfig":{"eth":{"withdrawal":{"feeWithdrawal":[]}}}}]"#,
        )
        .expect("parses");
        let errors: Vec<_> = v
            .iter()
            .map(|l| match l {
                Lenient::Err { error, .. } => error.clone(),
                Lenient::Ok(_) => String::new(),
            })
            .collect();
        assert!(
            errors[0].starts_with("amount: invalid type: boolean"),
            "{}",
            errors[0]
        );
        assert!(errors[1].contains("missing field `id`"), "{}", errors[1]);
        assert!(
            errors[2].starts_with("networkConfig.eth.withdrawal.feeWithdrawal:"),
            "{}",
            errors[2]
        );
    }
}
