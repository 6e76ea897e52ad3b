//! Every filter of DESIGN.md's table in both spellings gives the same, non-trivial answer on
//! both endpoints; totals and grouping add up exactly; conversion to EUR and to USD (manual
//! rate) is computed as DESIGN.md says.

use crate::common;
use crate::support;

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use serde_json::{Value, json};
use support::{dec, detail_accounts, enc, ids, round};

/// One filter: the canonical query, the alias query, and an independent check of one account.
struct Case {
    canonical: String,
    alias: String,
    keep: Box<dyn Fn(&Value) -> bool>,
}

fn case(canonical: String, alias: String, keep: impl Fn(&Value) -> bool + 'static) -> Case {
    Case {
        canonical,
        alias,
        keep: Box::new(keep),
    }
}

/// A value of `field` held by some but not all accounts (so a filter on it is non-trivial).
fn partial_value(accounts: &[Value], field: &str) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for a in accounts {
        *counts
            .entry(a[field].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    counts
        .into_iter()
        .find(|(_, n)| *n < accounts.len())
        .map(|(v, _)| v)
        .unwrap_or_else(|| panic!("every account has the same {field}"))
}

fn cases(all: &[Value]) -> Vec<Case> {
    let currency = partial_value(all, "currency");
    let status = partial_value(all, "status");
    let mut balances: Vec<Decimal> = all.iter().map(|a| dec(&a["balance"])).collect();
    balances.sort();
    let mid = balances[balances.len() / 2];
    // Spelled in lower case: matching is case-insensitive.
    let cur_q = enc(&currency.to_lowercase());
    let cur = currency.clone();
    let st = status.clone();
    let b = |a: &Value| dec(&a["balance"]);
    vec![
        case(
            "search.is_crypto=true".into(),
            "is_crypto=true".into(),
            |a| a["is_crypto"] == true,
        ),
        case(
            "search.is_crypto=false".into(),
            "is_crypto=false".into(),
            |a| a["is_crypto"] == false,
        ),
        case(
            format!("search.currency={cur_q}"),
            format!("account_currency={cur_q}"),
            move |a| a["currency"].as_str().unwrap().eq_ignore_ascii_case(&cur),
        ),
        case("search.active=false".into(), "active=false".into(), |a| {
            a["active"] == false
        }),
        case("search.active=true".into(), "active=true".into(), |a| {
            a["active"] == true
        }),
        case(
            format!("search.status={status}"),
            format!("status={status}"),
            move |a| a["status"] == st.as_str(),
        ),
        case(
            format!("search.balance.gt={mid}"),
            format!("balance_gt={mid}"),
            move |a| b(a) > mid,
        ),
        case(
            format!("search.balance.gte={mid}"),
            format!("balance_gte={mid}"),
            move |a| b(a) >= mid,
        ),
        case(
            format!("search.balance.lt={mid}"),
            format!("balance_lt={mid}"),
            move |a| b(a) < mid,
        ),
        case(
            format!("search.balance.lte={mid}"),
            format!("balance_lte={mid}"),
            move |a| b(a) <= mid,
        ),
        case("search.provider=bank".into(), "provider=bank".into(), |a| {
            a["provider"] == "bank"
        }),
        case("search.provider=p100".into(), "provider=p100".into(), |a| {
            a["provider"] == "p100"
        }),
        // What each balance means: P100 declares `available`, Corebanq says nothing.
        case(
            "search.balance_type=available".into(),
            "balance_type=AVAILABLE".into(),
            |a| a["balance_type"] == "available" && a["provider"] == "p100",
        ),
        case(
            "search.balance_type.in=unspecified".into(),
            "balance_type=unspecified".into(),
            |a| a["balance_type"] == "unspecified" && a["provider"] == "bank",
        ),
    ]
}

both!(
    every_filter_in_both_spellings,
    common::Options::default(),
    |app: common::TestApp| async move {
        app.customer("f1", Some("gen-000001"), Some("gen-000001"))
            .await;
        let base = "customer_id=f1";
        let unfiltered = app
            .ok(&format!("/v2/accounts/balance?{base}&details=true"))
            .await;
        let all = detail_accounts(&unfiltered);
        assert_eq!(all.len(), 20, "{unfiltered}");
        assert_eq!(unfiltered["accounts_count"], 20);

        for c in cases(&all) {
            let expected: BTreeSet<String> = ids(&all
                .iter()
                .filter(|a| (c.keep)(a))
                .cloned()
                .collect::<Vec<_>>());
            assert!(
                !expected.is_empty() && expected.len() < all.len(),
                "{}: not a useful filter on this data ({} of {})",
                c.canonical,
                expected.len(),
                all.len()
            );
            let mut answers = Vec::new();
            for q in [&c.canonical, &c.alias] {
                let b = app
                    .ok(&format!("/v2/accounts/balance?{base}&details=true&{q}"))
                    .await;
                let got = detail_accounts(&b);
                assert!(
                    got.iter().all(|a| (c.keep)(a)),
                    "{q}: an account does not satisfy it: {b}"
                );
                assert_eq!(ids(&got), expected, "balance endpoint, {q}");
                assert_eq!(b["accounts_count"], expected.len(), "{q}");

                let l = app.ok(&format!("/v2/accounts?{base}&limit=1000&{q}")).await;
                let listed = l["data"].as_array().unwrap().clone();
                assert!(
                    listed.iter().all(|a| (c.keep)(a)),
                    "{q}: a listed account does not satisfy it"
                );
                assert_eq!(ids(&listed), expected, "list endpoint, {q}");
                assert_eq!(l["matched"], expected.len(), "{q}");
                answers.push((
                    b["total_balance"].clone(),
                    b["exact"].clone(),
                    support::ids_in_order(&listed),
                ));
            }
            assert_eq!(
                answers[0], answers[1],
                "{} and {} differ",
                c.canonical, c.alias
            );
        }

        // Comma lists and `.in` mean "any of", in both spellings.
        let two: Vec<String> = all
            .iter()
            .map(|a| a["currency"].as_str().unwrap().to_owned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .take(2)
            .collect();
        let want: BTreeSet<String> = ids(&all
            .iter()
            .filter(|a| two.iter().any(|c| a["currency"] == c.as_str()))
            .cloned()
            .collect::<Vec<_>>());
        let joined = enc(&two.join(","));
        for q in [
            format!("search.currency.in={joined}"),
            format!("search.currency={joined}"),
            format!("account_currency={joined}"),
        ] {
            let l = app.ok(&format!("/v2/accounts?{base}&limit=1000&{q}")).await;
            assert_eq!(ids(l["data"].as_array().unwrap()), want, "{q}");
        }

        // A balance type nobody declares is refused, naming the parameter as given.
        for (q, param) in [
            ("search.balance_type=booked", "search.balance_type"),
            ("balance_type=available,current", "balance_type"),
        ] {
            for path in ["/v2/accounts/balance", "/v2/accounts"] {
                let r = app.get(&format!("{path}?{base}&{q}")).await;
                assert_eq!(r.status, 400, "{path}?{q}: {}", r.body);
                assert_eq!(r.body["details"]["parameter"], param, "{q}: {}", r.body);
                let msg = r.body["message"].as_str().unwrap();
                assert!(
                    msg.contains("available") && msg.contains("unspecified"),
                    "{msg}"
                );
            }
        }
        // The totals say which types they add: with both providers, both.
        let t = &unfiltered["balance_types"];
        let (n_available, n_unspecified) = (
            all.iter()
                .filter(|a| a["balance_type"] == "available")
                .count(),
            all.iter()
                .filter(|a| a["balance_type"] == "unspecified")
                .count(),
        );
        assert!(n_available > 0 && n_unspecified > 0);
        let converted = 20 - unfiltered["unconverted"].as_array().unwrap().len();
        assert_eq!(
            t["available"].as_u64().unwrap() + t["unspecified"].as_u64().unwrap(),
            converted as u64,
            "{unfiltered}"
        );

        // Filters combine with AND.
        let b = app
            .ok(&format!(
                "/v2/accounts/balance?{base}&details=true&is_crypto=true&search.provider=p100"
            ))
            .await;
        let want: BTreeSet<String> = ids(&all
            .iter()
            .filter(|a| a["is_crypto"] == true && a["provider"] == "p100")
            .cloned()
            .collect::<Vec<_>>());
        assert_eq!(ids(&detail_accounts(&b)), want);

        // `stack`/`group_by` and `details`/`include_details`.
        let canonical = app
            .ok(&format!(
                "/v2/accounts/balance?{base}&stack=currency&details=true"
            ))
            .await;
        let alias = app
            .ok(&format!(
                "/v2/accounts/balance?{base}&group_by=currency&include_details=true"
            ))
            .await;
        assert!(
            canonical["groups"].as_array().is_some_and(|g| g.len() > 1),
            "{canonical}"
        );
        assert_eq!(canonical["groups"], alias["groups"]);
        assert_eq!(
            ids(&detail_accounts(&canonical)),
            ids(&detail_accounts(&alias))
        );
        assert_eq!(ids(&detail_accounts(&alias)), ids(&all));
        let plain = app.ok(&format!("/v2/accounts/balance?{base}")).await;
        assert!(
            plain.get("groups").is_none() && plain.get("details").is_none(),
            "{plain}"
        );
        app.stop().await;
    }
);

/// The rate the answer says it used for `currency` (the base is 1). Every quote is the base.
fn rate_of(answer: &Value, currency: &str) -> Decimal {
    if currency == "EUR" {
        return Decimal::ONE;
    }
    let r = answer["rates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["currency"] == currency)
        .unwrap_or_else(|| panic!("no rate for {currency} in {}", answer["rates"]));
    assert_eq!(r["quote"], "EUR", "{r}");
    dec(&r["rate"])
}

both!(
    a_currency_both_providers_hold_is_valued_at_the_stated_rate,
    common::Options::default(),
    |app: common::TestApp| async move {
        // Corebanq's rates are quotients of amounts rounded to cents and `bank` sorts before
        // `p100`: by id alone a Corebanq quotient would value this customer's P100 holdings too.
        app.customer("t1", Some("gen-000002"), Some("gen-000002"))
            .await;
        let b = app
            .ok("/v2/accounts/balance?customer_id=t1&details=true")
            .await;
        let all = detail_accounts(&b);
        let stated = |provider: &str, cur: &str| -> Option<Decimal> {
            all.iter()
                .filter(|a| a["provider"] == provider && a["currency"] == cur)
                .find_map(|a| a["provider_rate"].get("rate").map(dec))
        };
        let mut shared = 0;
        for r in b["rates"].as_array().unwrap() {
            let cur = r["currency"].as_str().unwrap();
            let (Some(p100), Some(_)) = (stated(common::P100, cur), stated(common::BANK, cur))
            else {
                continue;
            };
            shared += 1;
            assert_eq!(r["provider"], common::P100, "{r}");
            assert_eq!(dec(&r["rate"]), p100, "{r}");
        }
        assert!(
            shared > 0,
            "no currency with a rate at both providers: {}",
            b["rates"]
        );
        app.stop().await;
    }
);

fn assert_close(got: Decimal, want: Decimal) {
    assert!((got - want).abs() < Decimal::new(1, 9), "{got} != {want}");
}

both!(
    totals_and_grouping_add_up,
    common::Options::default(),
    |app: common::TestApp| async move {
        app.customer("t1", Some("gen-000002"), Some("gen-000002"))
            .await;
        let b = app
            .ok("/v2/accounts/balance?customer_id=t1&stack=currency&details=true")
            .await;
        assert_eq!(b["currency"], "EUR");
        assert_eq!(b["unconverted"], json!([]), "{b}");
        let all = detail_accounts(&b);
        assert_eq!(all.len(), 20);

        // Every account's value, computed here from the balance and the rate the answer lists.
        let mut exact_total = Decimal::ZERO;
        let mut exact_fiat = Decimal::ZERO;
        let mut by_cur: BTreeMap<String, (Decimal, Decimal, usize)> = BTreeMap::new();
        for a in &all {
            let cur = a["currency"].as_str().unwrap();
            let v = dec(&a["balance"]) * rate_of(&b, cur);
            assert_eq!(dec(&a["balance_in_base"]), round(v, 2), "{a}");
            exact_total += v;
            if a["is_crypto"] == false {
                exact_fiat += v;
            }
            let e = by_cur.entry(cur.to_owned()).or_default();
            e.0 += dec(&a["balance"]);
            e.1 += v;
            e.2 += 1;
        }
        assert!(exact_total > Decimal::ZERO, "{b}");
        // "Exact" to Decimal's 28 digits: a rate derived from Corebanq's `balance_in_base ÷ balance`
        // has no finite expansion, so the last digits depend on where the sum was rescaled.
        assert_close(dec(&b["exact"]["total_balance"]), exact_total);
        assert_close(dec(&b["exact"]["fiat_balance"]), exact_fiat);
        assert_close(dec(&b["exact"]["crypto_balance"]), exact_total - exact_fiat);
        assert_eq!(dec(&b["total_balance"]), round(exact_total, 2));
        assert_eq!(
            b["total_balance"]
                .as_str()
                .unwrap()
                .split('.')
                .nth(1)
                .map(str::len),
            Some(2)
        );
        assert_eq!(dec(&b["fiat_balance"]), round(exact_fiat, 2));
        assert_eq!(
            dec(&b["crypto_balance"]),
            round(exact_total - exact_fiat, 2)
        );

        // Groups: one per currency, each with its exact own-currency sum and its rounded value.
        let groups = b["groups"].as_array().unwrap();
        assert_eq!(groups.len(), by_cur.len(), "{}", b["groups"]);
        let mut sum_rounded = Decimal::ZERO;
        for g in groups {
            let (bal, val, n) = &by_cur[g["currency"].as_str().unwrap()];
            assert_eq!(dec(&g["balance"]), *bal, "{g}");
            assert_eq!(dec(&g["balance_in_base"]), round(*val, 2), "{g}");
            assert_eq!(g["accounts_count"], *n, "{g}");
            sum_rounded += dec(&g["balance_in_base"]);
        }
        // Σ of rounded groups is within half a cent per group of the total.
        let tolerance = Decimal::new(5, 3) * Decimal::from(groups.len());
        assert!(
            (sum_rounded - dec(&b["total_balance"])).abs() <= tolerance,
            "{sum_rounded} vs {}",
            b["total_balance"]
        );

        // Grouping the list the same way gives the same groups.
        let l = app
            .ok("/v2/accounts?customer_id=t1&stack=currency&limit=1000")
            .await;
        for g in l["data"].as_array().unwrap() {
            let (bal, _, n) = &by_cur[g["currency"].as_str().unwrap()];
            assert_eq!(dec(&g["balance"]), *bal);
            assert_eq!(g["accounts"].as_array().unwrap().len(), *n);
        }
        app.stop().await;
    }
);

both!(
    conversion_to_eur_and_usd,
    common::Options::default(),
    |app: common::TestApp| async move {
        app.customer("c1", Some("gen-000003"), Some("gen-000003"))
            .await;
        // No USD rate yet: the generated data may hold USD accounts, so set one by hand.
        let put = app
            .put("/v2/rates", json!({"rates": {"USD": "0.92"}}))
            .await;
        assert_eq!(put.status, 200, "{}", put.body);
        assert_eq!(put.body["base"], "EUR");
        let usd_rate = put.body["rates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["currency"] == "USD")
            .cloned();
        let usd_rate = usd_rate.unwrap_or_else(|| panic!("{}", put.body));
        assert_eq!(usd_rate["rate"], "0.92");
        assert_eq!(usd_rate["source"], "manual");
        let table = app.ok("/v2/rates").await;
        assert!(
            table["rates"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["currency"] == "USD" && r["rate"] == "0.92")
        );

        let eur = app
            .ok("/v2/accounts/balance?customer_id=c1&details=true")
            .await;
        let explicit = app
            .ok("/v2/accounts/balance?customer_id=c1&details=true&currency=EUR")
            .await;
        assert_eq!(eur["exact"], explicit["exact"]);
        assert_eq!(explicit["currency"], "EUR");
        let usd = app
            .ok("/v2/accounts/balance?customer_id=c1&details=true&currency=USD")
            .await;
        assert_eq!(usd["currency"], "USD");
        assert_eq!(rate_of(&usd, "USD"), Decimal::new(92, 2));
        let to_usd = Decimal::new(92, 2);
        let all = detail_accounts(&usd);
        let mut total = Decimal::ZERO;
        let mut checked_provider_rate = false;
        for a in &all {
            let cur = a["currency"].as_str().unwrap();
            let rate = rate_of(&usd, cur);
            let v = dec(&a["balance"]) * rate / to_usd;
            assert_eq!(dec(&a["balance_in_base"]), round(v, 2), "{a}");
            if cur == "USD" {
                assert_eq!(
                    dec(&a["balance_in_base"]),
                    round(dec(&a["balance"]), 2),
                    "manual rate wins: {a}"
                );
            }
            // The rate the P100 account itself reported, when the table took it from P100.
            let listed = usd["rates"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["currency"] == cur);
            if a["provider"] == "p100"
                && dec(&a["balance"]) > Decimal::ZERO
                && let Some(r) = listed.filter(|r| r["provider"] == "p100")
            {
                assert_eq!(r["rate"], a["provider_rate"]["rate"], "{a}");
                assert_eq!(
                    dec(&a["balance_in_base"]),
                    round(
                        dec(&a["balance"]) * dec(&a["provider_rate"]["rate"]) / to_usd,
                        2
                    )
                );
                checked_provider_rate = true;
            }
            total += v;
        }
        assert!(
            checked_provider_rate,
            "no P100 account priced with its own rate: {}",
            usd["rates"]
        );
        assert_eq!(dec(&usd["total_balance"]), round(total, 2), "{usd}");
        // The same money: the USD total is the EUR total ÷ 0.92.
        let from_eur = dec(&eur["exact"]["total_balance"]) / to_usd;
        assert_close(dec(&usd["exact"]["total_balance"]), from_eur);

        // A target with no rate is a 400 naming `currency`, never a silent 0.
        let r = app
            .get("/v2/accounts/balance?customer_id=c1&currency=JPY")
            .await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(r.body["details"]["parameter"], "currency");
        app.stop().await;
    }
);
