//! Unit tests of the balance answer.

use super::*;
use crate::query::fixtures::{accounts, d, rates, t};
use crate::query::{Endpoint, ParseOptions, parse_query};

fn q(s: &str) -> Query {
    let pairs: Vec<(String, String)> = s
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.split_once('=')
                .map_or((p.into(), String::new()), |(k, v)| (k.into(), v.into()))
        })
        .collect();
    parse_query(&pairs, &ParseOptions::new(Endpoint::Balance)).unwrap()
}

#[test]
fn totals_in_the_base_are_exact_and_rounded_once() {
    let accts = accounts();
    let a = balance(&accts, &q(""), &rates(&accts)).unwrap();
    assert_eq!(a.currency.code(), "EUR");
    // fiat: 10.00 + 1500.5 + 2000 × 0.92
    assert_eq!(a.fiat.exact, d("3350.50"));
    assert_eq!(a.fiat.rounded.to_string(), "3350.50");
    // crypto: 3 × 0.858814 + 100 × 0.09872368 + 0.00000001 × 69258.93415658
    let crypto = d("2.576442") + d("9.872368") + d("0.0006925893415658");
    assert_eq!(a.crypto.exact, crypto.round_dp(12));
    assert_eq!(a.crypto.rounded.to_string(), "12.45");
    assert_eq!(a.total.exact, a.fiat.exact + a.crypto.exact);
    // The unknown currency is listed, not counted as 0.
    assert_eq!(a.unconverted.len(), 1);
    assert_eq!(a.unconverted[0].account_id, "bank:3");
    assert_eq!(a.accounts, 7);
    // The total adds the four P100 accounts and two of the three bank ones (bank:3 is
    // unconverted, so not in it).
    assert_eq!(
        (a.balance_types.available, a.balance_types.unspecified),
        (4, 2)
    );
    assert!(a.groups.is_none() && a.details.is_none());
    assert_eq!(a.rates.len(), 4);
    assert_eq!(a.as_of.get("p100"), Some(&t(1)));
}

#[test]
fn a_balance_type_filter_selects_what_the_totals_add() {
    let accts = accounts();
    let a = balance(&accts, &q("balance_type=available"), &rates(&accts)).unwrap();
    assert_eq!(a.accounts, 4);
    assert_eq!(
        (a.balance_types.available, a.balance_types.unspecified),
        (4, 0)
    );
    assert_eq!(a.fiat.exact, d("10.00"));
    let b = balance(&accts, &q("balance_type=unspecified"), &rates(&accts)).unwrap();
    assert_eq!(b.fiat.exact, d("3340.50"));
    assert_eq!(
        b.total.exact + a.total.exact,
        balance(&accts, &q(""), &rates(&accts)).unwrap().total.exact
    );
}

#[test]
fn groups_and_details() {
    let accts = accounts();
    let a = balance(&accts, &q("stack=currency&details=true"), &rates(&accts)).unwrap();
    let groups = a.groups.unwrap();
    let codes: Vec<&str> = groups.iter().map(|g| g.currency.code()).collect();
    assert_eq!(codes, ["BTC", "DOGE", "EUR", "USD", "USDC", "ZZZ"]);
    let eur = &groups[2];
    assert_eq!(
        (eur.balance, eur.accounts, eur.is_crypto),
        (d("1510.50"), 2, false)
    );
    assert_eq!(eur.value.unwrap().rounded.to_string(), "1510.50");
    // EUR mixes P100's available balance with the bank's unspecified one.
    assert_eq!(
        (eur.balance_types.available, eur.balance_types.unspecified),
        (1, 1)
    );
    let zzz = &groups[5];
    assert_eq!((zzz.value, zzz.unconverted), (None, 1));
    // A group counts every account its `balance` adds, converted or not.
    assert_eq!(zzz.balance_types.unspecified, 1);
    for g in &groups {
        assert_eq!(g.balance_types.total(), g.accounts as u64, "{}", g.currency);
    }
    let sum = groups
        .iter()
        .filter_map(|g| g.value)
        .map(|v| v.exact)
        .sum::<Decimal>();
    assert_eq!(sum, a.total.exact);
    let details = a.details.unwrap();
    assert_eq!(details.fiat_accounts.len(), 3);
    assert_eq!(details.crypto_assets.len(), 4);
    assert_eq!(details.fiat_accounts[0].account.id, "bank:1");
}

#[test]
fn filters_and_customer_select() {
    let accts = accounts();
    let table = rates(&accts);
    let a = balance(&accts, &q("customer_id=c2&status=suspended"), &table).unwrap();
    assert_eq!(a.accounts, 1);
    assert_eq!(a.total.exact, d("1840.00"));
    let a = balance(&accts, &q("is_crypto=false&balance_gt=100"), &table).unwrap();
    assert_eq!(a.accounts, 2);
    assert_eq!(a.crypto.rounded.to_string(), "0.00");
}

#[test]
fn into_another_target() {
    let accts = accounts();
    let a = balance(
        &accts,
        &q("currency=usd&account_currency=usd"),
        &rates(&accts),
    )
    .unwrap();
    assert_eq!(a.total.exact, d("2000"));
    assert!(a.rates.is_empty());
    let a = balance(
        &accts,
        &q("currency=usd&account_currency=eur"),
        &rates(&accts),
    )
    .unwrap();
    // 1510.50 / 0.92
    assert_eq!(a.total.rounded.to_string(), "1641.85");
    assert_eq!(
        a.rates.len(),
        1,
        "EUR is the base: only the USD rate divides"
    );
    // A target without a rate: everything else is unconverted, naming the target.
    let a = balance(&accts, &q("currency=GBP"), &rates(&accts)).unwrap();
    assert_eq!(a.unconverted.len(), 7);
    assert_eq!(a.total.rounded.to_string(), "0.00");
    assert!(a.unconverted[0].reason.to_string().contains("GBP"));
}

#[test]
fn overflowing_sums_are_errors() {
    let mut accts = accounts();
    accts[0].balance = Decimal::MAX;
    accts[4].balance = Decimal::MAX;
    let err = balance(&accts, &q(""), &rates(&accts)).unwrap_err();
    assert!(matches!(err, QueryError::Overflow { .. }), "{err}");
}
