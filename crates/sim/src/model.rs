//! The data the simulators serve, and how each provider writes it on the wire.
//!
//! P100 (seed `000_…`): `amount` is a decimal string with the currency's scale, `rate` a JSON
//! number, names lower-case, `networkConfig` maps network keys to wallet settings.
//! Corebanq (seed `004_…`): money as JSON numbers, `fiat_accounts`/`crypto_assets` `null` when
//! empty, `balance_in_base` in the requested currency. Numbers are written from `Decimal` text,
//! never through a float.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::LazyLock;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::ser::{Error as _, SerializeMap};
use serde::{Deserialize, Serialize, Serializer};

/// One P100 user's balances, as `GET /v1/user/{externalUserId}/balances` returns them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct P100Customer {
    /// P100's own user id; differs from the `externalUserId` in the path.
    pub user_id: String,
    /// `fiatBalances`.
    pub fiat_balances: Vec<P100Balance>,
    /// `cryptoBalances`.
    pub crypto_balances: Vec<P100Balance>,
}

impl P100Customer {
    /// The JSON body as served.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Every balance, fiat first.
    pub fn balances(&self) -> impl Iterator<Item = &P100Balance> {
        self.fiat_balances.iter().chain(&self.crypto_balances)
    }

    pub(crate) fn balance_mut(&mut self, id: &str) -> Option<&mut P100Balance> {
        self.fiat_balances
            .iter_mut()
            .chain(&mut self.crypto_balances)
            .find(|b| b.id == id)
    }
}

/// One P100 balance (fiat when `networks` is empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct P100Balance {
    /// Balance id.
    pub id: String,
    /// Written as a string keeping its scale (`"3.000000"`).
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    /// Lower-case currency name (`"usdc"`, `"eurøp"`).
    pub name: String,
    /// Value of one unit in EUR, written as a JSON number.
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    pub rate: Decimal,
    /// `ACTIVE` / `WAITING_TO_BE_ACTIVATED`; the seed's crypto balances have none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<P100Status>,
    /// `networkConfig`, in this order; omitted when empty.
    #[serde(
        rename = "networkConfig",
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "networks_as_map"
    )]
    pub networks: Vec<P100Network>,
}

/// A P100 balance status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum P100Status {
    /// `ACTIVE`
    Active,
    /// `WAITING_TO_BE_ACTIVATED`
    WaitingToBeActivated,
}

/// One network of a P100 crypto balance (`networkConfig.<key>`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct P100Network {
    /// The map key (`"ethereum"`, `"polygon"`, `"btc"`).
    pub key: String,
    /// `wallet`
    pub wallet: String,
    /// `mainnet`
    pub mainnet: bool,
    /// `name` (`"sepolia"`, `"test"`, `"mainnet"`).
    pub name: String,
    /// `withdrawal.feeWithdrawal`
    pub fee_withdrawal: Decimal,
    /// `withdrawal.minWithdrawal`
    pub min_withdrawal: Decimal,
    /// `deposit.minDeposit`
    pub min_deposit: Decimal,
}

fn networks_as_map<S: Serializer>(networks: &[P100Network], s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Withdrawal {
        #[serde(with = "rust_decimal::serde::arbitrary_precision")]
        fee_withdrawal: Decimal,
        #[serde(with = "rust_decimal::serde::arbitrary_precision")]
        min_withdrawal: Decimal,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Deposit {
        #[serde(with = "rust_decimal::serde::arbitrary_precision")]
        min_deposit: Decimal,
    }
    #[derive(Serialize)]
    struct Wire<'a> {
        wallet: &'a str,
        mainnet: bool,
        name: &'a str,
        withdrawal: Withdrawal,
        deposit: Deposit,
    }
    let mut map = s.serialize_map(Some(networks.len()))?;
    for n in networks {
        let wire = Wire {
            wallet: &n.wallet,
            mainnet: n.mainnet,
            name: &n.name,
            withdrawal: Withdrawal {
                fee_withdrawal: n.fee_withdrawal,
                min_withdrawal: n.min_withdrawal,
            },
            deposit: Deposit {
                min_deposit: n.min_deposit,
            },
        };
        map.serialize_entry(&n.key, &wire)?;
    }
    map.end()
}

/// One Corebanq account. `customer_id` and `balance_in_base` are filled in when served.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorebanqAccount {
    /// Account id.
    pub id: String,
    /// Currency code as Corebanq spells it (`"BTC"`, `"EURe"`, `"EURØP"`).
    pub currency: String,
    /// Exact balance, written as a JSON number with this scale.
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    pub balance: Decimal,
    /// Write `balance` in scientific notation (`9.872368e-2`).
    #[serde(default)]
    pub scientific: bool,
    /// `is_crypto`
    pub is_crypto: bool,
    /// `active` (may disagree with `status`).
    pub active: bool,
    /// `status`: `active`, `inactive`, `suspended`, ….
    pub status: String,
    /// `main_wallet_address` (crypto); omitted when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main_wallet_address: Option<String>,
    /// `main_wallet_address_tag` (crypto); omitted when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main_wallet_address_tag: Option<String>,
    /// `iban` (fiat); omitted when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iban: Option<String>,
}

impl CorebanqAccount {
    /// The literal written for `balance` (`"0.09872368"` or `"9.872368e-2"`).
    pub fn balance_literal(&self) -> String {
        if self.scientific && !self.balance.is_zero() {
            format!("{:e}", self.balance)
        } else {
            self.balance.to_string()
        }
    }
}

/// A JSON number written from its exact text (needs serde_json `arbitrary_precision`).
struct Num(String);

impl Serialize for Num {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serde_json::Number::from_str(&self.0)
            .map_err(S::Error::custom)?
            .serialize(s)
    }
}

#[derive(Serialize)]
struct CorebanqAccountWire<'a> {
    id: &'a str,
    customer_id: &'a str,
    currency: &'a str,
    balance: Num,
    balance_in_base: Option<Num>,
    is_crypto: bool,
    active: bool,
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    main_wallet_address: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    main_wallet_address_tag: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iban: Option<&'a str>,
}

#[derive(Serialize)]
struct CorebanqDetails<'a> {
    fiat_accounts: Option<Vec<CorebanqAccountWire<'a>>>,
    crypto_assets: Option<Vec<CorebanqAccountWire<'a>>>,
}

#[derive(Serialize)]
struct CorebanqBody<'a> {
    total_balance: Num,
    currency: &'a str,
    fiat_balance: Num,
    crypto_balance: Num,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<CorebanqDetails<'a>>,
}

/// The body of `GET /v2/accounts/balance` for these accounts, converted to `target`
/// (which must be in [`rate_to_eur`]'s table). Totals are sums of `balance_in_base`, rounded
/// half-even to 2 places; accounts whose currency has no rate get `balance_in_base: null` and
/// are left out of the totals.
pub fn corebanq_body(
    customer_id: &str,
    accounts: &[CorebanqAccount],
    target: &str,
    details: bool,
) -> Vec<u8> {
    let mut fiat_total = Decimal::ZERO;
    let mut crypto_total = Decimal::ZERO;
    let mut fiat = Vec::new();
    let mut crypto = Vec::new();
    for a in accounts {
        let in_base = balance_in_base(a.balance, &a.currency, target);
        if let Some(v) = in_base {
            let total = if a.is_crypto {
                &mut crypto_total
            } else {
                &mut fiat_total
            };
            *total = total.checked_add(v).unwrap_or(*total);
        }
        let wire = CorebanqAccountWire {
            id: &a.id,
            customer_id,
            currency: &a.currency,
            balance: Num(a.balance_literal()),
            balance_in_base: in_base.map(|v| Num(v.to_string())),
            is_crypto: a.is_crypto,
            active: a.active,
            status: &a.status,
            main_wallet_address: a.main_wallet_address.as_deref(),
            main_wallet_address_tag: a.main_wallet_address_tag.as_deref(),
            iban: a.iban.as_deref(),
        };
        if a.is_crypto {
            crypto.push(wire);
        } else {
            fiat.push(wire);
        }
    }
    let round = |d: Decimal| {
        d.round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven)
            .normalize()
    };
    let total = fiat_total.checked_add(crypto_total).unwrap_or(fiat_total);
    let body = CorebanqBody {
        total_balance: Num(round(total).to_string()),
        currency: canonical_code(target).unwrap_or(target),
        fiat_balance: Num(round(fiat_total).to_string()),
        crypto_balance: Num(round(crypto_total).to_string()),
        details: details.then(|| CorebanqDetails {
            fiat_accounts: (!fiat.is_empty()).then_some(fiat),
            crypto_assets: (!crypto.is_empty()).then_some(crypto),
        }),
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The simulators' fixed rate table: value of one unit in EUR (P100's `rate`). Codes are
/// matched exactly first, then case-insensitively.
pub const RATES_TO_EUR: &[(&str, &str)] = &[
    ("EUR", "1"),
    ("USD", "0.92"),
    ("GBP", "1.17"),
    ("CHF", "1.04"),
    ("BTC", "69258.93415658"),
    ("ETH", "1940.36699474"),
    ("LTC", "49.98676896"),
    ("DOGE", "0.09872368"),
    ("POL", "0.08076022"),
    ("XRP", "0.52"),
    ("USDC", "0.858814"),
    ("EURC", "0.999906"),
    ("USDT", "0.8591"),
    ("EURe", "1"),
    ("eUSD", "0.92"),
    ("EURØP", "0.9998"),
];

static RATES: LazyLock<HashMap<String, (&'static str, Decimal)>> = LazyLock::new(|| {
    RATES_TO_EUR
        .iter()
        .filter_map(|(code, rate)| {
            let rate = Decimal::from_str(rate).ok()?;
            Some((code.to_lowercase(), (*code, rate)))
        })
        .collect()
});

fn lookup(code: &str) -> Option<(&'static str, Decimal)> {
    RATES.get(&code.to_lowercase()).copied()
}

/// Value of one unit of `currency` in EUR, from [`RATES_TO_EUR`].
pub fn rate_to_eur(currency: &str) -> Option<Decimal> {
    lookup(currency).map(|(_, r)| r)
}

fn canonical_code(currency: &str) -> Option<&'static str> {
    lookup(currency).map(|(c, _)| c)
}

/// Corebanq's `balance_in_base`: `balance × rate(currency) ÷ rate(target)`, rounded half-even
/// to 8 places and normalized. `None` when either rate is unknown.
pub fn balance_in_base(balance: Decimal, currency: &str, target: &str) -> Option<Decimal> {
    let from = rate_to_eur(currency)?;
    let to = rate_to_eur(target)?;
    let v = balance.checked_mul(from)?.checked_div(to)?;
    Some(
        v.round_dp_with_strategy(8, RoundingStrategy::MidpointNearestEven)
            .normalize(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).expect("decimal")
    }

    #[test]
    fn p100_amount_string_rate_number() {
        let b = P100Balance {
            id: "x".into(),
            amount: d("3.000000"),
            name: "usdc".into(),
            rate: d("0.858814"),
            status: None,
            networks: vec![],
        };
        let s = serde_json::to_string(&b).expect("json");
        assert_eq!(
            s,
            r#"{"id":"x","amount":"3.000000","name":"usdc","rate":0.858814}"#
        );
    }

    #[test]
    fn corebanq_numbers_exact() {
        let a = CorebanqAccount {
            id: "a".into(),
            currency: "DOGE".into(),
            balance: d("0.09872368"),
            scientific: true,
            is_crypto: true,
            active: true,
            status: "active".into(),
            main_wallet_address: None,
            main_wallet_address_tag: None,
            iban: None,
        };
        let big = CorebanqAccount {
            id: "b".into(),
            currency: "EUR".into(),
            balance: d("12345678901234.12345678"),
            scientific: false,
            is_crypto: false,
            ..a.clone()
        };
        let body = String::from_utf8(corebanq_body("c", &[a, big], "EUR", true)).expect("utf8");
        assert!(body.contains(r#""balance":9.872368e-2"#), "{body}");
        assert!(
            body.contains(r#""balance":12345678901234.12345678"#),
            "{body}"
        );
        assert!(body.contains(r#""crypto_assets":[{"#), "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        let n: Decimal =
            serde_json::from_value(v["details"]["crypto_assets"][0]["balance"].clone())
                .expect("decimal from 9.872368e-2");
        assert_eq!(n, d("0.09872368"));
    }

    #[test]
    fn conversion() {
        assert_eq!(balance_in_base(d("2"), "USD", "EUR"), Some(d("1.84")));
        assert_eq!(balance_in_base(d("1.84"), "EUR", "usd"), Some(d("2")));
        assert_eq!(balance_in_base(d("1"), "ZZZ", "EUR"), None);
        assert_eq!(rate_to_eur("eurøp"), Some(d("0.9998")));
    }
}
