//! Unit tests of the rate table (in their own file to keep `rates.rs` readable).

use std::str::FromStr;

use chrono::TimeZone;

use super::*;
use crate::account::{ProviderRate, Status};

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn c(s: &str) -> Currency {
    Currency::new(s)
}

fn t(h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, h, 0, 0).unwrap()
}

fn provider(cur: &str, quote: &str, v: &str, p: &str, h: u32) -> Rate {
    Rate {
        currency: c(cur),
        quote: c(quote),
        value: d(v),
        source: RateSource::Provider,
        provider: Some(p.into()),
        as_of: t(h),
    }
}

fn account(cur: &str, rate: Option<(&str, &str)>) -> Account {
    Account {
        id: format!("p100:{cur}"),
        customer_id: "c1".into(),
        provider_id: "p100".into(),
        provider_account_id: cur.into(),
        provider_customer_ref: None,
        currency: c(cur),
        is_crypto: true,
        status: Status::Active,
        active: true,
        balance: d("1"),
        wallets: vec![],
        iban: None,
        balance_type: crate::BalanceType::Unspecified,
        provider_rate: rate.map(|(v, q)| ProviderRate {
            rate: d(v),
            quote: c(q),
        }),
        fetched_at: t(3),
    }
}

#[test]
fn base_converts_to_itself_at_one() {
    let table = RateTable::default();
    let r = table.rate(&c("eur")).unwrap();
    assert_eq!(r.value, Decimal::ONE);
    assert!(r.used.is_empty());
    let conv = table.convert(d("2.58"), &c("EUR"), &c("EUR")).unwrap();
    assert_eq!(conv.value.to_string(), "2.58");
    assert!(conv.rates.is_empty());
}

#[test]
fn manual_beats_provider() {
    let mut table = RateTable::default();
    table
        .insert(provider("USD", "EUR", "0.90", "p100", 1))
        .unwrap();
    table
        .insert(provider("USD", "EUR", "0.91", "bank", 2))
        .unwrap();
    assert_eq!(table.rate(&c("USD")).unwrap().value, d("0.91"));
    table
        .insert(Rate::manual(c("USD"), c("EUR"), d("0.92"), t(0)))
        .unwrap();
    let r = table.rate(&c("USD")).unwrap();
    assert_eq!(r.value, d("0.92"));
    assert_eq!(r.used[0].source, RateSource::Manual);
}

#[test]
fn same_slot_keeps_the_newest() {
    let mut table = RateTable::default();
    table
        .insert(provider("BTC", "EUR", "2", "p100", 5))
        .unwrap();
    table
        .insert(provider("BTC", "EUR", "1", "p100", 4))
        .unwrap();
    assert_eq!(table.rates().len(), 1);
    assert_eq!(table.rate(&c("BTC")).unwrap().value, d("2"));
}

#[test]
fn refuses_zero_negative_and_self_quoted_rates() {
    let mut table = RateTable::default();
    assert!(matches!(
        table.insert(provider("BTC", "EUR", "0", "p", 1)),
        Err(RateError::NotPositive { .. })
    ));
    assert!(table.insert(provider("BTC", "EUR", "-1", "p", 1)).is_err());
    assert!(matches!(
        table.insert(provider("EUR", "eur", "1", "p", 1)),
        Err(RateError::SelfQuoted(_))
    ));
    assert!(table.rates().is_empty());
}

#[test]
fn missing_rate_is_an_error_never_zero() {
    let table = RateTable::default();
    let err = table.convert(d("5"), &c("BTC"), &c("EUR")).unwrap_err();
    assert_eq!(
        err,
        ConvertError::MissingRate {
            currency: c("BTC"),
            base: c("EUR")
        }
    );
    assert!(err.to_string().contains("BTC"));
    let mut conv = table.converter(&c("USD"));
    assert_eq!(conv.convert(d("5"), &c("USD")).unwrap().value, d("5"));
    assert_eq!(
        conv.convert(d("5"), &c("EUR")).unwrap_err(),
        ConvertError::MissingRate {
            currency: c("USD"),
            base: c("EUR")
        }
    );
}

#[test]
fn triangulates_through_the_quote() {
    // Corebanq asked in USD: BTC quoted in USD; a manual USD rate in EUR.
    let mut table = RateTable::default();
    table
        .insert(provider("BTC", "USD", "100000", "bank", 1))
        .unwrap();
    assert!(table.rate(&c("BTC")).is_none());
    table
        .insert(Rate::manual(c("USD"), c("EUR"), d("0.92"), t(0)))
        .unwrap();
    let r = table.rate(&c("BTC")).unwrap();
    assert_eq!(r.value, d("92000"));
    assert_eq!(r.used.len(), 2);
    let conv = table.convert(d("0.5"), &c("BTC"), &c("USD")).unwrap();
    assert_eq!(conv.value, d("50000"));
}

#[test]
fn inverse_of_a_base_rate_values_the_quote() {
    // Base USD, P100 reports EUR-quoted rates, and the table knows USD in EUR.
    let mut table = RateTable::new(c("USD"));
    table
        .insert(provider("USD", "EUR", "0.8", "p100", 1))
        .unwrap();
    table
        .insert(provider("BTC", "EUR", "80000", "p100", 1))
        .unwrap();
    assert_eq!(table.rate(&c("EUR")).unwrap().value, d("1.25"));
    assert_eq!(table.rate(&c("BTC")).unwrap().value, d("100000"));
}

#[test]
fn cycles_terminate() {
    let mut table = RateTable::default();
    table.insert(provider("AAA", "BBB", "2", "p", 1)).unwrap();
    table.insert(provider("BBB", "AAA", "0.5", "p", 1)).unwrap();
    assert!(table.rate(&c("AAA")).is_none());
}

#[test]
fn from_accounts_takes_provider_rates_at_fetch_time() {
    let accounts = [
        account("doge", Some(("0.09872368", "EUR"))),
        account("eur", Some(("1", "EUR"))),
        account("zzz", Some(("0", "EUR"))),
        account("btc", None),
    ];
    let table = RateTable::from_accounts(c("EUR"), &accounts);
    assert_eq!(table.rates().len(), 1);
    let r = &table.rates()[0];
    assert_eq!(
        (r.currency.code(), r.value, r.as_of),
        ("DOGE", d("0.09872368"), t(3))
    );
    assert_eq!(r.provider.as_deref(), Some("p100"));
}

#[test]
fn conversion_is_exact_and_lists_its_rates() {
    let mut table = RateTable::default();
    table
        .insert(provider("DOGE", "EUR", "0.09872368", "p100", 1))
        .unwrap();
    table
        .insert(Rate::manual(c("USD"), c("EUR"), d("0.92"), t(0)))
        .unwrap();
    let conv = table.convert(d("3.000000"), &c("DOGE"), &c("EUR")).unwrap();
    assert_eq!(conv.value.to_string(), "0.296171040000");
    // Into USD: 0.29617104 / 0.92, rounded half-even 12 places below the cent.
    let conv = table.convert(d("3"), &c("DOGE"), &c("USD")).unwrap();
    assert_eq!(conv.value, d("0.321925043478"));
    assert_eq!(conv.rates.len(), 2);
    let mut conv_many = table.converter(&c("USD"));
    conv_many.convert(d("1"), &c("DOGE")).unwrap();
    conv_many.convert(d("2"), &c("DOGE")).unwrap();
    assert_eq!(conv_many.rates_used().len(), 2);
}

#[test]
fn overflow_is_an_error_not_a_panic() {
    let mut table = RateTable::default();
    table
        .insert(provider("BTC", "EUR", "1000000", "p", 1))
        .unwrap();
    table
        .insert(Rate::manual(c("JPY"), c("EUR"), d("0.0000000000001"), t(0)))
        .unwrap();
    let err = table
        .convert(Decimal::MAX, &c("BTC"), &c("EUR"))
        .unwrap_err();
    assert!(matches!(err, ConvertError::Overflow { .. }));
    assert!(
        table
            .convert(d("1000000000000000000000"), &c("BTC"), &c("JPY"))
            .is_err()
    );
}

#[test]
fn provider_rates_do_not_swap_with_the_order_providers_answered_in() {
    // Whichever provider answered last, the same provider values USDC: totals are repeatable.
    for (bank_hour, p100_hour) in [(1, 2), (2, 1)] {
        let mut t = RateTable::new(c("EUR"));
        t.insert(provider("USDC", "EUR", "0.86", "p100", p100_hour))
            .unwrap();
        t.insert(provider("USDC", "EUR", "0.87", "bank", bank_hour))
            .unwrap();
        assert_eq!(t.rate(&c("USDC")).unwrap().value, d("0.87"));
    }
    // Within one provider, the newest still wins.
    let mut t = RateTable::new(c("EUR"));
    t.insert(provider("USDC", "EUR", "0.86", "p100", 1))
        .unwrap();
    let mut newer = provider("USDC", "EUR", "0.85", "p100", 3);
    newer.currency = c("usdc");
    t.insert(newer).unwrap();
    assert_eq!(t.rate(&c("USDC")).unwrap().value, d("0.85"));
}

#[test]
fn the_newest_manual_rate_wins() {
    let mut table = RateTable::new(c("EUR"));
    table
        .insert(Rate::manual(c("USD"), c("EUR"), d("0.90"), t(1)))
        .unwrap();
    table
        .insert(Rate::manual(c("USD"), c("EUR"), d("0.92"), t(2)))
        .unwrap();
    table
        .insert(provider("USD", "EUR", "0.95", "bank", 5))
        .unwrap();
    assert_eq!(table.rate(&c("USD")).unwrap().value, d("0.92"));
}

fn derived_account(id: &str, balance: &str, rate: &str) -> Account {
    let mut a = account("USDC", Some((rate, "EUR")));
    a.id = format!("bank:{id}");
    a.provider_id = "bank".into();
    a.provider_account_id = id.into();
    a.balance = d(balance);
    a
}

#[test]
fn a_stated_rate_ranks_before_a_derived_one_whatever_the_ids() {
    // `bank` sorts before `p100`: by id alone its quotient would value USDC.
    let rates = [
        provider("USDC", "EUR", "0.9166666666666666666666666667", "bank", 2),
        provider("USDC", "EUR", "0.858814", "p100", 1),
    ];
    let mut plain = RateTable::default();
    let mut marked = RateTable::default().with_derived_providers(["bank".to_owned()]);
    for r in rates {
        plain.insert(r.clone()).unwrap();
        marked.insert(r).unwrap();
    }
    assert_eq!(
        plain.rate(&c("USDC")).unwrap().value,
        d("0.9166666666666666666666666667")
    );
    let r = marked.rate(&c("USDC")).unwrap();
    assert_eq!(r.value, d("0.858814"));
    assert_eq!(r.used[0].provider.as_deref(), Some("p100"));
    // A derived rate still values what nothing else can.
    marked
        .insert(provider("EURC", "EUR", "0.999906", "bank", 2))
        .unwrap();
    assert_eq!(marked.rate(&c("EURC")).unwrap().value, d("0.999906"));
    // Manual still beats both.
    marked
        .insert(Rate::manual(c("USDC"), c("EUR"), d("0.86"), t(0)))
        .unwrap();
    assert_eq!(marked.rate(&c("USDC")).unwrap().value, d("0.86"));
}

#[test]
fn of_one_fetch_the_largest_balance_gives_the_rate() {
    // Quotients of balance_in_base rounded to cents: 0.11 / 0.12 and 10305.77 / 12000.
    let small = derived_account("s", "0.12", "0.9166666666666666666666666667");
    let large = derived_account("l", "12000", "0.8588141666666666666666666667");
    let negative_large = derived_account("n", "-50000", "0.85881400");
    for accounts in [
        vec![small.clone(), large.clone()],
        vec![large.clone(), small.clone()],
    ] {
        let table = RateTable::from_accounts(c("EUR"), &accounts);
        assert_eq!(table.rates().len(), 1);
        assert_eq!(
            table.rate(&c("USDC")).unwrap().value,
            d("0.8588141666666666666666666667")
        );
    }
    // The size of a balance, not its sign (an overdraft is as precise as a holding).
    let table = RateTable::from_accounts(c("EUR"), &[large.clone(), negative_large, small.clone()]);
    assert_eq!(table.rate(&c("USDC")).unwrap().value, d("0.85881400"));
    // A newer fetch still replaces an older one, however small.
    let mut newer = small;
    newer.fetched_at = t(4);
    let table = RateTable::from_accounts(c("EUR"), &[large, newer]);
    let r = table.rate(&c("USDC")).unwrap();
    assert_eq!(
        (r.value, r.used[0].as_of),
        (d("0.9166666666666666666666666667"), t(4))
    );
}
