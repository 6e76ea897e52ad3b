//! Accounts and rates shared by the query engine's unit tests.

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use rust_decimal::Decimal;

use crate::account::{Account, ProviderRate, Status, Wallet};
use crate::currency::Currency;
use crate::rates::{Rate, RateTable};

pub fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

pub fn t(h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, h, 0, 0).unwrap()
}

pub fn account(id: &str, cur: &str, balance: &str, is_crypto: bool) -> Account {
    let (provider, pid) = id.split_once(':').unwrap_or(("p100", id));
    Account {
        id: id.to_owned(),
        customer_id: "c1".into(),
        provider_id: provider.into(),
        provider_account_id: pid.into(),
        provider_customer_ref: None,
        currency: Currency::new(cur),
        is_crypto,
        status: Status::Active,
        active: true,
        balance: d(balance),
        wallets: vec![],
        iban: None,
        // As the adapters declare it: P100's amount is the available one.
        balance_type: if provider == "p100" {
            crate::BalanceType::Available
        } else {
            crate::BalanceType::Unspecified
        },
        provider_rate: None,
        fetched_at: t(1),
    }
}

/// P100-like: EUR fiat, USDC on two networks, DOGE, BTC; a bank EUR account with an IBAN and a
/// suspended USD account; an unknown-currency account.
pub fn accounts() -> Vec<Account> {
    let rate = |v: &str| {
        Some(ProviderRate {
            rate: d(v),
            quote: Currency::new("EUR"),
        })
    };
    let mut eur = account("p100:eur", "eur", "10.00", false);
    eur.provider_rate = rate("1");
    let mut usdc = account("p100:usdc", "usdc", "3.000000", true);
    usdc.provider_rate = rate("0.858814");
    usdc.wallets = vec![
        Wallet {
            network: "ethereum".into(),
            address: "0x9d278eedb0d7af715658638473de7a1bb8cc7eff".into(),
            ..Wallet::default()
        },
        Wallet {
            network: "polygon".into(),
            address: "0x2d0236af29ea67721d013dd7ab44ffbad50918ef".into(),
            ..Wallet::default()
        },
    ];
    let mut doge = account("p100:doge", "doge", "100", true);
    doge.provider_rate = rate("0.09872368");
    doge.wallets = vec![Wallet {
        network: "doge".into(),
        address: "nWAN7yRZxmsUk8vJTP5uvfaphDu9yeAdWt".into(),
        ..Wallet::default()
    }];
    let mut btc = account("p100:btc", "btc", "0.00000001", true);
    btc.provider_rate = rate("69258.93415658");
    let mut bank = account("bank:1", "EUR", "1500.5", false);
    bank.iban = Some("DE89 3704 0044 0532 0130 00".into());
    bank.customer_id = "c2".into();
    let mut usd = account("bank:2", "USD", "2000", false);
    usd.status = Status::Suspended;
    usd.active = false;
    usd.customer_id = "c2".into();
    let odd = account("bank:3", "zzz", "5", true);
    vec![eur, usdc, doge, btc, bank, usd, odd]
}

/// The providers' rates from [`accounts`] plus a manual USD rate.
pub fn rates(accounts: &[Account]) -> RateTable {
    let mut table = RateTable::from_accounts(Currency::new("EUR"), accounts);
    table
        .insert(Rate::manual(
            Currency::new("USD"),
            Currency::new("EUR"),
            d("0.92"),
            t(0),
        ))
        .unwrap();
    table
}
