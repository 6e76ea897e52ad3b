//! Property tests of the query engine, money parsing and conversion.
#![allow(clippy::unwrap_used)]

use std::cmp::Ordering;

use chrono::{TimeZone, Utc};
use coffer_core::account::{Account, ProviderRate, Status, Wallet};
use coffer_core::currency::Currency;
use coffer_core::money::parse_decimal;
use coffer_core::query::{self, Endpoint, ListData, ParseOptions, Query, SortField, SortSpec};
use coffer_core::rates::{GUARD_DIGITS, Rate, RateSource, RateTable};
use proptest::prelude::*;
use rust_decimal::Decimal;

const CURRENCIES: &[&str] = &["EUR", "USD", "BTC", "DOGE", "USDC", "EURe", "ZZZ", "JPY"];
const PROVIDERS: &[&str] = &["p100", "bank"];
const CUSTOMERS: &[&str] = &["c1", "c2", "c3"];

fn decimal(max_mantissa: i64, max_scale: u32) -> impl Strategy<Value = Decimal> {
    (-max_mantissa..=max_mantissa, 0..=max_scale).prop_map(|(m, s)| Decimal::new(m, s))
}

fn positive(max_mantissa: i64, max_scale: u32) -> impl Strategy<Value = Decimal> {
    (1..=max_mantissa, 0..=max_scale).prop_map(|(m, s)| Decimal::new(m, s))
}

prop_compose! {
    fn account_at(i: usize)(
        cur in 0..CURRENCIES.len(),
        balance in decimal(1_000_000_000_000_000, 8),
        is_crypto: bool,
        active: bool,
        status in 0..4usize,
        provider in 0..PROVIDERS.len(),
        customer in 0..CUSTOMERS.len(),
        iban in proptest::option::of("[A-Z]{2}[0-9]{6}"),
        wallet in proptest::option::of("0x[0-9a-f]{8}"),
    ) -> Account {
        Account {
            id: format!("{}:{i:03}", PROVIDERS[provider]),
            customer_id: CUSTOMERS[customer].into(),
            provider_id: PROVIDERS[provider].into(),
            provider_account_id: format!("{i:03}"),
            provider_customer_ref: None,
            currency: Currency::new(CURRENCIES[cur]),
            is_crypto,
            status: Status::ALL[status],
            active,
            balance,
            wallets: wallet.into_iter().map(|address| Wallet { network: "ethereum".into(), address, ..Wallet::default() }).collect(),
            iban,
            balance_type: coffer_core::BalanceType::Unspecified,
            provider_rate: None,
            fetched_at: Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap(),
        }
    }
}

fn accounts() -> impl Strategy<Value = Vec<Account>> {
    (0..40usize).prop_flat_map(|n| (0..n).map(account_at).collect::<Vec<_>>())
}

/// A table in EUR with a rate (or not) for each other currency, manual or provider.
fn table() -> impl Strategy<Value = RateTable> {
    proptest::collection::vec(
        (
            proptest::option::of(positive(100_000_000_000, 8)),
            any::<bool>(),
        ),
        CURRENCIES.len(),
    )
    .prop_map(|rates| {
        let mut t = RateTable::default();
        for (code, (rate, manual)) in CURRENCIES.iter().zip(rates) {
            if let Some(value) = rate {
                let _ = t.insert(Rate {
                    currency: Currency::new(code),
                    quote: Currency::new("EUR"),
                    value,
                    source: if manual {
                        RateSource::Manual
                    } else {
                        RateSource::Provider
                    },
                    provider: (!manual).then(|| "p100".to_owned()),
                    as_of: Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap(),
                });
            }
        }
        t
    })
}

fn parse(pairs: &[(String, String)], endpoint: Endpoint) -> Query {
    query::parse_query(pairs, &ParseOptions::new(endpoint)).unwrap()
}

fn target() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["EUR", "USD", "BTC", "JPY"])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn total_is_sum_of_groups_and_of_fiat_and_crypto(accts in accounts(), table in table(), tgt in target()) {
        let pairs = vec![("stack".into(), "currency".into()), ("currency".into(), tgt.into())];
        let a = query::balance(&accts, &parse(&pairs, Endpoint::Balance), &table).unwrap();
        let groups = a.groups.unwrap();
        let sum: Decimal = groups.iter().filter_map(|g| g.value).map(|v| v.exact).sum();
        prop_assert_eq!(a.total.exact, sum);
        prop_assert_eq!(a.total.exact, a.fiat.exact + a.crypto.exact);
        prop_assert_eq!(groups.iter().map(|g| g.accounts).sum::<usize>(), accts.len());
        prop_assert_eq!(groups.iter().map(|g| g.unconverted).sum::<usize>(), a.unconverted.len());
        // Unconverted accounts are exactly those whose currency has no rate.
        let target = Currency::new(tgt);
        let tgt_ok = table.rate(&target).is_some();
        for acc in &accts {
            let convertible = acc.currency == target || (tgt_ok && table.rate(&acc.currency).is_some());
            prop_assert_eq!(convertible, !a.unconverted.iter().any(|u| u.account_id == acc.id));
        }
        // Presented with exactly the minor units, unless the total is too large to carry them.
        if a.total.exact.abs() < Decimal::new(1, 0) * Decimal::from(10u64.pow(28 - 8 - 2)) {
            prop_assert_eq!(a.total.rounded.scale(), target.decimals());
        }
    }

    #[test]
    fn filtering_equals_naive_filtering(
        accts in accounts(),
        is_crypto in proptest::option::of(any::<bool>()),
        active in proptest::option::of(any::<bool>()),
        statuses in proptest::sample::subsequence(vec!["active", "inactive", "suspended", "pending"], 0..=4),
        currencies in proptest::sample::subsequence(CURRENCIES.to_vec(), 0..=3),
        provider in proptest::option::of(prop::sample::select(PROVIDERS.to_vec())),
        gt in proptest::option::of(decimal(1_000_000_000_000, 4)),
        lte in proptest::option::of(decimal(1_000_000_000_000, 4)),
        like in proptest::option::of("[0-9]{1,2}"),
    ) {
        let mut pairs: Vec<(String, String)> = vec![("limit".into(), "1000".into())];
        if let Some(v) = is_crypto { pairs.push(("is_crypto".into(), v.to_string())); }
        if let Some(v) = active { pairs.push(("search.active".into(), v.to_string())); }
        if !statuses.is_empty() { pairs.push(("search.status.in".into(), statuses.join(","))); }
        if !currencies.is_empty() { pairs.push(("account_currency".into(), currencies.join(",").to_lowercase())); }
        if let Some(p) = provider { pairs.push(("provider".into(), p.into())); }
        if let Some(v) = gt { pairs.push(("balance_gt".into(), v.to_string())); }
        if let Some(v) = lte { pairs.push(("search.balance.lte".into(), v.to_string())); }
        if let Some(v) = &like { pairs.push(("search.id.like".into(), v.clone())); }
        let Ok(q) = query::parse_query(&pairs, &ParseOptions::new(Endpoint::List)) else {
            // Only an impossible range is refused.
            prop_assert!(gt.is_some() && lte.is_some() && gt >= lte);
            return Ok(());
        };
        let page = query::list(&accts, &q, &RateTable::default()).unwrap();
        let mut got: Vec<&str> = page.data.accounts().iter().map(|a| a.account.id.as_str()).collect();
        got.sort_unstable();
        let mut want: Vec<&str> = accts.iter().filter(|a| {
            is_crypto.is_none_or(|v| a.is_crypto == v)
                && active.is_none_or(|v| a.active == v)
                && (statuses.is_empty() || statuses.contains(&a.status.as_str()))
                && (currencies.is_empty() || currencies.iter().any(|c| c.eq_ignore_ascii_case(a.currency.code())))
                && provider.is_none_or(|p| a.provider_id == p)
                && gt.is_none_or(|v| a.balance > v)
                && lte.is_none_or(|v| a.balance <= v)
                && like.as_ref().is_none_or(|l| a.id.contains(l.as_str()))
        }).map(|a| a.id.as_str()).collect();
        want.sort_unstable();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn pagination_visits_every_account_once_in_order(
        accts in accounts(),
        table in table(),
        limit in 1u32..8,
        sort in proptest::sample::subsequence(SortField::ALL.to_vec(), 0..=3),
        desc in proptest::collection::vec(any::<bool>(), 3),
        stacked: bool,
    ) {
        let sort_text: Vec<String> = sort.iter().zip(&desc).map(|(f, d)| format!("{}{}", if *d { "-" } else { "" }, f.as_str())).collect();
        let mut base: Vec<(String, String)> = vec![("sort".into(), sort_text.join(",")), ("limit".into(), limit.to_string())];
        if stacked { base.push(("group_by".into(), "currency".into())); }
        let mut seen: Vec<String> = Vec::new();
        let mut values: Vec<(String, Option<Decimal>)> = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..=accts.len() {
            let mut pairs = base.clone();
            if let Some(c) = &cursor { pairs.push(("cursor".into(), c.clone())); }
            let q = parse(&pairs, Endpoint::List);
            let page = query::list(&accts, &q, &table).unwrap();
            let items = page.data.accounts();
            prop_assert!(items.len() <= limit as usize);
            if stacked { prop_assert!(matches!(page.data, ListData::Groups(_))); }
            for i in items {
                seen.push(i.account.id.clone());
                values.push((i.account.id.clone(), i.value_in_target));
            }
            cursor = page.next_cursor;
            if cursor.is_none() { break; }
        }
        prop_assert!(cursor.is_none());
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        prop_assert_eq!(unique.len(), seen.len(), "no repeats");
        prop_assert_eq!(seen.len(), accts.len(), "every account");
        // In order, by an independent comparator.
        let spec = if stacked { SortSpec::parse(&sort_text.join(",")).unwrap().stacked() } else { SortSpec::parse(&sort_text.join(",")).unwrap() };
        let by_id = |id: &str| accts.iter().find(|a| a.id == id).unwrap();
        for w in values.windows(2) {
            let ord = naive_compare(&spec, by_id(&w[0].0), w[0].1, by_id(&w[1].0), w[1].1);
            prop_assert_eq!(ord, Ordering::Less, "{} before {}", &w[0].0, &w[1].0);
        }
    }

    #[test]
    fn conversion_through_another_currency_agrees_within_rounding(
        table in table(),
        amount in decimal(1_000_000_000_000, 8),
        from in prop::sample::select(CURRENCIES.to_vec()),
        via in prop::sample::select(CURRENCIES.to_vec()),
        to in prop::sample::select(CURRENCIES.to_vec()),
    ) {
        let (from, via, to) = (Currency::new(from), Currency::new(via), Currency::new(to));
        let (Some(_), Some(rt)) = (table.rate(&from), table.rate(&to)) else {
            prop_assert!(table.convert(amount, &from, &to).is_err() || from == to);
            return Ok(());
        };
        let Some(rv) = table.rate(&via) else { return Ok(()); };
        let direct = table.convert(amount, &from, &to).unwrap().value;
        let Ok(step) = table.convert(amount, &from, &via) else { return Ok(()); };
        let chained = table.convert(step.value, &via, &to).unwrap().value;
        // The intermediate's guard rounding, scaled into the target, plus the target's own.
        let ulp = |c: &Currency| Decimal::new(1, c.decimals() + GUARD_DIGITS);
        let tolerance = ulp(&via) * (rv.value / rt.value) + ulp(&to) * Decimal::TWO
            + direct.abs() * Decimal::new(1, 20);
        prop_assert!((direct - chained).abs() <= tolerance, "{direct} vs {chained} (±{tolerance})");
    }

    #[test]
    fn decimal_text_round_trips(m in any::<i64>(), hi in any::<i32>(), scale in 0u32..=28) {
        let n = i128::from(hi) << 64 | i128::from(m as u64);
        if let Ok(d) = Decimal::try_from_i128_with_scale(n, scale) {
            let parsed = parse_decimal(&d.to_string()).unwrap();
            prop_assert_eq!(parsed, d);
            prop_assert_eq!(parsed.scale(), d.scale());
            // The same value in scientific notation.
            let sci = format!("{}e-{}", d.mantissa(), d.scale());
            prop_assert_eq!(parse_decimal(&sci).unwrap(), d);
            let json: serde_json::Value = serde_json::from_str(&sci).unwrap();
            prop_assert_eq!(json.to_string(), sci.clone());
        }
    }

    #[test]
    fn parsers_never_panic(s in "\\PC{0,40}", k in prop::sample::select(vec![
        "currency", "status", "search.balance.gt", "balance_lte", "limit", "cursor", "sort", "search",
        "search.id.like", "search.currency.in", "is_crypto", "max_age", "stack", "details", "search.x.y", "",
    ])) {
        let _ = parse_decimal(&s);
        for endpoint in [Endpoint::Balance, Endpoint::List] {
            let _ = query::parse_query(&[(k.to_owned(), s.clone())], &ParseOptions::new(endpoint));
            let _ = query::parse_query(&[(s.clone(), s.clone())], &ParseOptions::new(endpoint));
        }
        let _ = SortSpec::parse(&s);
        let _ = coffer_core::query::Cursor::decode(&s, &SortSpec::default());
        let _ = Currency::new(&s);
    }

    /// Whole query strings of arbitrary bytes (split as a URL's query is, lossily decoded):
    /// parsed, or refused by an error that names the parameter and says what is wrong.
    #[test]
    fn arbitrary_query_strings_are_parsed_or_refused_by_name(
        bytes in prop::collection::vec(any::<u8>(), 0..160),
        known in prop::sample::select(vec![
            "customer_id=c1", "currency=EUR", "limit=5", "sort=-balance_in_base", "stack=currency",
            "search.balance.gte=1e-7", "max_age=0", "details=true", "strict=true",
        ]),
    ) {
        let raw = [known.as_bytes(), b"&", &bytes].concat();
        let text = String::from_utf8_lossy(&raw);
        let pairs: Vec<(String, String)> = text
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (p.to_owned(), String::new()),
            })
            .collect();
        for endpoint in [Endpoint::Balance, Endpoint::List] {
            if let Err(e) = query::parse_query(&pairs, &ParseOptions::new(endpoint)) {
                prop_assert!(!e.param.is_empty(), "an error naming no parameter: {e:?}");
                prop_assert!(!e.message.trim().is_empty(), "an error saying nothing: {e:?}");
            }
        }
    }

    #[test]
    fn decimal_parser_never_panics_on_numberish_text(s in "[-+]?[0-9]{0,35}(\\.[0-9]{0,35})?([eE][-+]?[0-9]{0,8})?") {
        if let Ok(d) = parse_decimal(&s) {
            // Whatever parses, parses to the value the text means (compared via the mantissa).
            let again = parse_decimal(&d.to_string()).unwrap();
            prop_assert_eq!(again, d);
        }
    }
}

/// An independent reading of the sort rules: fields in order, `-` reverses, a value that could
/// not be converted sorts last either way, id breaks ties.
fn naive_compare(
    spec: &SortSpec,
    a: &Account,
    av: Option<Decimal>,
    b: &Account,
    bv: Option<Decimal>,
) -> Ordering {
    for k in spec.keys() {
        let ord = match k.field {
            SortField::BalanceInBase => match (av, bv) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => return Ordering::Greater,
                (Some(_), None) => return Ordering::Less,
                (Some(x), Some(y)) => x.cmp(&y),
            },
            SortField::Balance => a.balance.cmp(&b.balance),
            SortField::Currency => a
                .currency
                .code()
                .to_uppercase()
                .cmp(&b.currency.code().to_uppercase()),
            SortField::Id => a.id.cmp(&b.id),
            SortField::CustomerId => a.customer_id.cmp(&b.customer_id),
            SortField::Provider => a.provider_id.cmp(&b.provider_id),
            SortField::Status => a.status.as_str().cmp(b.status.as_str()),
            SortField::IsCrypto => a.is_crypto.cmp(&b.is_crypto),
            SortField::Active => a.active.cmp(&b.active),
        };
        let ord = if k.descending { ord.reverse() } else { ord };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

#[test]
fn provider_rates_from_seed_like_accounts() {
    let mut a = Account {
        id: "p100:doge".into(),
        customer_id: "c".into(),
        provider_id: "p100".into(),
        provider_account_id: "doge".into(),
        provider_customer_ref: None,
        currency: Currency::new("doge"),
        is_crypto: true,
        status: Status::Active,
        active: true,
        balance: parse_decimal("1E-7").unwrap(),
        wallets: vec![],
        iban: None,
        balance_type: coffer_core::BalanceType::Unspecified,
        provider_rate: Some(ProviderRate {
            rate: parse_decimal("9.872368e-2").unwrap(),
            quote: Currency::new("EUR"),
        }),
        fetched_at: Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap(),
    };
    let table = RateTable::from_accounts(Currency::new("EUR"), std::slice::from_ref(&a));
    let v = table
        .convert(a.balance, &a.currency, &Currency::new("EUR"))
        .unwrap();
    assert_eq!(v.value.to_string(), "0.000000009872");
    a.balance = parse_decimal("12345678901234.12345678").unwrap();
    let v = table
        .convert(a.balance, &a.currency, &Currency::new("EUR"))
        .unwrap();
    assert_eq!(
        v.value,
        parse_decimal("1218810853228.189209227643").unwrap()
    );
}
