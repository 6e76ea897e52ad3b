//! Deterministic generated customers: `gen-000000`, `gen-000001`, … known to both simulators,
//! each with its own data. A customer is generated on demand from `(seed, provider, index)`,
//! so 100,000 customers cost nothing at start-up and any one of them is rebuilt identically.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;

use crate::model::{
    CorebanqAccount, P100Balance, P100Customer, P100Network, P100Status, rate_to_eur,
};

/// The prefix of generated customer ids.
pub const ID_PREFIX: &str = "gen-";

/// The id of generated customer `index`: `gen-000042`.
pub fn customer_id(index: usize) -> String {
    format!("{ID_PREFIX}{index:06}")
}

/// The index of a generated customer id, if `id` is one spelled canonically (`gen-000042`).
pub fn customer_index(id: &str) -> Option<usize> {
    let digits = id.strip_prefix(ID_PREFIX)?;
    if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let index: usize = digits.parse().ok()?;
    (customer_id(index) == id).then_some(index)
}

struct Currency {
    /// Corebanq's spelling; P100 uses it lower-cased.
    code: &'static str,
    scale: u32,
    crypto: bool,
    /// P100 networks: (key, testnet name, fee, min withdrawal, min deposit).
    networks: &'static [(
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
    )],
}

const fn fiat(code: &'static str) -> Currency {
    Currency {
        code,
        scale: 2,
        crypto: false,
        networks: &[],
    }
}

const ETH: (&str, &str, &str, &str, &str) = ("ethereum", "sepolia", "10", "1", "5");
const POLYGON: (&str, &str, &str, &str, &str) = ("polygon", "amoy", "0.5", "2", "0");

const CURRENCIES: &[Currency] = &[
    fiat("EUR"),
    fiat("USD"),
    fiat("GBP"),
    fiat("CHF"),
    Currency {
        code: "BTC",
        scale: 8,
        crypto: true,
        networks: &[("btc", "test", "0.0003", "0.000001", "0")],
    },
    Currency {
        code: "ETH",
        scale: 8,
        crypto: true,
        networks: &[("ethereum", "sepolia", "0.003", "0.0006", "0")],
    },
    Currency {
        code: "LTC",
        scale: 8,
        crypto: true,
        networks: &[("ltc", "test", "0.002", "0.001", "0")],
    },
    Currency {
        code: "DOGE",
        scale: 8,
        crypto: true,
        networks: &[("doge", "test", "5", "0.01", "0")],
    },
    Currency {
        code: "POL",
        scale: 8,
        crypto: true,
        networks: &[("polygon", "amoy", "0.5", "0.00005", "0")],
    },
    Currency {
        code: "XRP",
        scale: 6,
        crypto: true,
        networks: &[("xrp", "testnet", "0.2", "1", "10")],
    },
    Currency {
        code: "USDC",
        scale: 6,
        crypto: true,
        networks: &[ETH, POLYGON],
    },
    Currency {
        code: "EURC",
        scale: 6,
        crypto: true,
        networks: &[ETH],
    },
    Currency {
        code: "USDT",
        scale: 6,
        crypto: true,
        networks: &[ETH, ("tron", "nile", "1", "10", "1")],
    },
    Currency {
        code: "EURe",
        scale: 6,
        crypto: true,
        networks: &[("gnosis", "chiado", "0.1", "1", "0"), POLYGON],
    },
    Currency {
        code: "eUSD",
        scale: 6,
        crypto: true,
        networks: &[("gnosis", "chiado", "0.1", "1", "0")],
    },
    Currency {
        code: "EURØP",
        scale: 6,
        crypto: true,
        networks: &[ETH],
    },
];

const P100_SALT: u64 = 0x5031_3030; // "P100"
const COREBANQ_SALT: u64 = 0x0043_4241_4e4b; // "CBANK"

fn rng_for(seed: u64, salt: u64, index: usize) -> StdRng {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&seed.to_le_bytes());
    s[8..16].copy_from_slice(&(index as u64).to_le_bytes());
    s[16..24].copy_from_slice(&salt.to_le_bytes());
    StdRng::from_seed(s)
}

fn uuid(rng: &mut StdRng) -> String {
    uuid::Builder::from_random_bytes(rng.random())
        .into_uuid()
        .to_string()
}

fn chars(rng: &mut StdRng, alphabet: &[u8], n: usize) -> String {
    (0..n)
        .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
        .collect()
}

const HEX: &[u8] = b"0123456789abcdef";
const BASE58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const BECH32: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

fn wallet(rng: &mut StdRng, network: &str) -> String {
    match network {
        "btc" => format!("tb1q{}", chars(rng, BECH32, 38)),
        "ltc" => format!("Q{}", chars(rng, BASE58, 33)),
        "doge" => format!("n{}", chars(rng, BASE58, 33)),
        "xrp" => format!("r{}", chars(rng, BASE58, 33)),
        "tron" => format!("T{}", chars(rng, BASE58, 33)),
        _ => format!("0x{}", chars(rng, HEX, 40)),
    }
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap_or_default()
}

/// An amount with exactly `scale` decimal places; sometimes zero, sometimes awkward
/// (`0.09872368`, `12345678901234.12345678`, 20 significant digits, one smallest unit).
fn amount(rng: &mut StdRng, scale: u32) -> Decimal {
    let mut d = match rng.random_range(0..100u32) {
        0..15 => Decimal::ZERO,
        15..25 => match rng.random_range(0..5u32) {
            0 => dec("0.09872368"),
            1 => dec("12345678901234.12345678"),
            // 20 significant digits at this scale.
            2 => Decimal::from_i128_with_scale(12_345_678_901_234_567_891, scale),
            3 => Decimal::new(1, scale),
            _ => dec("1000000"),
        },
        _ => {
            let digits = rng.random_range(0..=7u32) + scale;
            Decimal::new(rng.random_range(0..10i64.pow(digits)), scale)
        }
    };
    d.rescale(scale);
    d
}

/// The P100 data of generated customer `index`: `accounts` balances (distinct currencies while
/// they last), fiat and crypto mixed, lower-case names, one or more networks per crypto
/// balance, `status` ACTIVE / WAITING_TO_BE_ACTIVATED / absent (as in the seed's crypto).
pub fn p100_customer(seed: u64, index: usize, accounts: usize) -> P100Customer {
    let mut rng = rng_for(seed, P100_SALT, index);
    let mut customer = P100Customer {
        user_id: uuid(&mut rng),
        fiat_balances: Vec::new(),
        crypto_balances: Vec::new(),
    };
    let mut pool: Vec<usize> = Vec::new();
    for _ in 0..accounts {
        if pool.is_empty() {
            pool = (0..CURRENCIES.len()).collect();
        }
        let cur = &CURRENCIES[pool.swap_remove(rng.random_range(0..pool.len()))];
        let status = match (cur.crypto, rng.random_range(0..10u32)) {
            (_, 0) => Some(P100Status::WaitingToBeActivated),
            (true, 1..5) => None,
            _ => Some(P100Status::Active),
        };
        let mainnet = rng.random_bool(0.3);
        let networks = cur
            .networks
            .iter()
            .map(|&(key, testnet, fee, min_w, min_d)| P100Network {
                key: key.to_owned(),
                wallet: wallet(&mut rng, key),
                mainnet,
                name: if mainnet { "mainnet" } else { testnet }.to_owned(),
                fee_withdrawal: dec(fee),
                min_withdrawal: dec(min_w),
                min_deposit: dec(min_d),
            })
            .collect();
        let balance = P100Balance {
            id: uuid(&mut rng),
            amount: amount(&mut rng, cur.scale),
            name: cur.code.to_lowercase(),
            rate: rate_to_eur(cur.code).unwrap_or(Decimal::ONE),
            status,
            networks,
        };
        if cur.crypto {
            customer.crypto_balances.push(balance);
        } else {
            customer.fiat_balances.push(balance);
        }
    }
    customer
}

/// The generated P100 body of customer `index` (what the simulator serves for it).
pub fn p100_body(seed: u64, index: usize, accounts: usize) -> serde_json::Value {
    p100_customer(seed, index, accounts).to_json()
}

/// The Corebanq accounts of generated customer `index`: currencies drawn with replacement
/// (several accounts per currency happen), about one customer in five crypto only (so
/// `fiat_accounts` is `null`), `active` and `status` disagreeing now and then, balances
/// sometimes in scientific notation.
pub fn corebanq_accounts(seed: u64, index: usize, accounts: usize) -> Vec<CorebanqAccount> {
    let mut rng = rng_for(seed, COREBANQ_SALT, index);
    let crypto_only = rng.random_bool(0.2);
    let first_crypto = CURRENCIES.iter().position(|c| c.crypto).unwrap_or(0);
    let mut out = Vec::with_capacity(accounts);
    for _ in 0..accounts {
        let from = if crypto_only { first_crypto } else { 0 };
        let cur = &CURRENCIES[rng.random_range(from..CURRENCIES.len())];
        let status = match rng.random_range(0..10u32) {
            0 => "inactive",
            1 => "suspended",
            _ => "active",
        };
        let agrees = rng.random_bool(0.8);
        let active = (status == "active") == agrees;
        let mut balance = amount(&mut rng, cur.scale);
        if balance.is_zero() {
            balance = Decimal::ZERO; // the seed writes zero as `0`
        } else if rng.random_bool(0.2) {
            balance = balance.normalize();
        }
        let scientific = !balance.is_zero() && rng.random_bool(0.1);
        let (address, tag, iban) = if cur.crypto {
            match rng.random_range(0..4u32) {
                0 => (None, None, None),
                _ => {
                    let network = cur.networks.first().map_or("ethereum", |n| n.0);
                    let tag = if network == "xrp" {
                        rng.random_range(1..4_000_000_000u64).to_string()
                    } else {
                        String::new()
                    };
                    (Some(wallet(&mut rng, network)), Some(tag), None)
                }
            }
        } else {
            (None, None, Some(iban(&mut rng)))
        };
        out.push(CorebanqAccount {
            id: uuid(&mut rng),
            currency: cur.code.to_owned(),
            balance,
            scientific,
            is_crypto: cur.crypto,
            active,
            status: status.to_owned(),
            main_wallet_address: address,
            main_wallet_address_tag: tag,
            iban,
        });
    }
    out
}

/// A German IBAN with valid check digits.
fn iban(rng: &mut StdRng) -> String {
    let bban = chars(rng, b"0123456789", 18);
    // Check digits: 98 - (BBAN + "DE00" as digits) mod 97; D = 13, E = 14.
    let rem = format!("{bban}131400")
        .bytes()
        .fold(0u32, |r, b| (r * 10 + u32::from(b - b'0')) % 97);
    format!("DE{:02}{bban}", 98 - rem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        assert_eq!(customer_id(42), "gen-000042");
        assert_eq!(customer_id(1_234_567), "gen-1234567");
        assert_eq!(customer_index("gen-000042"), Some(42));
        assert_eq!(customer_index("gen-1234567"), Some(1_234_567));
        assert_eq!(customer_index("gen-42"), None);
        assert_eq!(customer_index("gen-0000042"), None);
        assert_eq!(customer_index("gen-00004x"), None);
    }

    #[test]
    fn deterministic_and_distinct() {
        assert_eq!(p100_customer(42, 7, 10), p100_customer(42, 7, 10));
        assert_ne!(p100_customer(42, 7, 10), p100_customer(43, 7, 10));
        assert_ne!(p100_customer(42, 7, 10), p100_customer(42, 8, 10));
        assert_eq!(corebanq_accounts(42, 7, 10), corebanq_accounts(42, 7, 10));
        assert_ne!(corebanq_accounts(42, 7, 10), corebanq_accounts(42, 8, 10));
    }

    #[test]
    fn p100_shape() {
        for i in 0..200 {
            let c = p100_customer(1, i, 10);
            assert_eq!(c.balances().count(), 10);
            for b in c.balances() {
                assert_eq!(b.name, b.name.to_lowercase());
                assert!(b.amount.scale() == 2 || b.amount.scale() == 6 || b.amount.scale() == 8);
                assert_eq!(b.networks.is_empty(), c.fiat_balances.contains(b));
            }
        }
    }

    #[test]
    fn generator_covers_the_awkward_cases() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..500 {
            for b in p100_customer(42, i, 10).balances() {
                seen.insert(b.name.clone());
                seen.insert(b.amount.to_string());
                if b.networks.len() > 1 {
                    seen.insert("multi-network".into());
                }
            }
            let accounts = corebanq_accounts(42, i, 10);
            if accounts.iter().all(|a| a.is_crypto) {
                seen.insert("crypto-only".into());
            }
            for a in &accounts {
                seen.insert(a.balance_literal());
                if (a.status == "active") != a.active {
                    seen.insert("disagree".into());
                }
                if accounts.iter().filter(|b| b.currency == a.currency).count() > 1 {
                    seen.insert("same-currency".into());
                }
            }
        }
        for want in [
            "eure",
            "eusd",
            "eurøp",
            "usdc",
            "0.09872368",
            "12345678901234.12345678",
            "123456789012.34567891",
            "9.872368e-2",
            "multi-network",
            "crypto-only",
            "disagree",
            "same-currency",
        ] {
            assert!(seen.contains(want), "generator never produced {want}");
        }
    }

    #[test]
    fn ibans_are_valid() {
        let mut rng = rng_for(1, 2, 3);
        for _ in 0..50 {
            let iban = iban(&mut rng);
            let moved = format!("{}{}", &iban[4..], "1314") + &iban[2..4];
            let rem = moved
                .bytes()
                .fold(0u32, |r, b| (r * 10 + u32::from(b - b'0')) % 97);
            assert_eq!(rem, 1, "{iban}");
        }
    }
}
