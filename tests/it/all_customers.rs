//! All-customer answers (an admin, no `customer_id`), on SQLite and PostgreSQL: read from the
//! store only (the simulators are not called), with the same filters, grouping and conversion
//! as one customer's answers (the per-customer answers add up to the all-customer one), and a
//! coverage that counts the customers and spans their `as_of`.

use crate::cluster;
use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use coffer_sim::Provider;
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::types::chrono::{DateTime, Utc};

const CUSTOMERS: usize = 5;

fn ext(i: usize) -> String {
    coffer_sim::generate::customer_id(i)
}

fn opts() -> common::Options {
    common::Options {
        sim: coffer_sim::SimConfig {
            customers: CUSTOMERS,
            ..Default::default()
        },
        sync: false,
        configure: Box::new(|_| {}),
    }
}

fn dec(v: &Value) -> Decimal {
    Decimal::from_str(v.as_str().unwrap_or_else(|| panic!("not a decimal: {v}"))).unwrap()
}

fn calls(app: &common::TestApp) -> u64 {
    app.sim.total_calls(Provider::P100) + app.sim.total_calls(Provider::Corebanq)
}

/// Microsecond precision, as the store keeps timestamps.
fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// Equal exactly in the base currency; converted to another currency, conversion goes through
/// a division (cross rate), exact to 28 significant digits only, so equal to 1e-6.
fn same(all: Decimal, sum: Decimal, f: &str, what: &str, body: &Value) {
    if f.contains("currency=") {
        assert!(
            (all - sum).abs() <= Decimal::new(1, 6),
            "{what} with `{f}`: {all} vs the per-customer sum {sum}: {body}"
        );
    } else {
        assert_eq!(all, sum, "{what} with `{f}`: {body}");
    }
}

/// Filters asked of both kinds of answer.
const FILTERS: &[&str] = &[
    "",
    "search.provider=p100",
    "search.provider=bank",
    "search.is_crypto=true",
    "search.is_crypto=false",
    "search.active=true",
    "search.balance.gt=0",
    "currency=USD",
    "search.provider=p100&currency=USD",
    "search.balance_type=available",
    "balance_type=unspecified&search.is_crypto=false",
    "search.balance_type.in=available,unspecified&currency=USD",
];

/// Per (currency, crypto): a group's balance, accounts and (available, unspecified).
type Groups = BTreeMap<(String, bool), (Decimal, u64, (u64, u64))>;

/// A total's `balance_types` as (available, unspecified).
fn types(v: &Value) -> (u64, u64) {
    let t = &v["balance_types"];
    (
        t["available"]
            .as_u64()
            .unwrap_or_else(|| panic!("no balance_types: {v}")),
        t["unspecified"].as_u64().unwrap(),
    )
}

both!(
    all_customer_answers_come_from_the_store,
    opts(),
    |app: common::TestApp| async move {
        check(app, "details=true&", true).await;
    }
);

both!(
    all_customer_totals_from_sums_match_the_sum_of_customers,
    opts(),
    |app: common::TestApp| async move {
        // Without `details` the balance is answered from the store's per-currency sums.
        check(app, "", true).await;
    }
);

/// Without manual rates, a consolidated answer uses one rate table for every customer (the
/// providers' latest rates), while each customer's own answer uses the rates its own accounts
/// carry, so the two need not add up. What must hold: the answer from per-currency sums and the
/// answer from every account agree, and nothing a provider priced is left unconverted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consolidated_totals_agree_with_and_without_details() {
    let Some(app) = common::spawn(common::Backend::Sqlite, opts()).await else {
        return;
    };
    for i in 0..CUSTOMERS {
        app.customer(&format!("c{i}"), Some(&ext(i)), Some(&ext(i)))
            .await;
        app.ok(&format!("/v2/accounts/balance?customer_id=c{i}"))
            .await;
    }
    for filter in FILTERS {
        let sums = app
            .ok(&format!("/v2/accounts/balance?stack=currency&{filter}"))
            .await;
        let full = app
            .ok(&format!(
                "/v2/accounts/balance?stack=currency&details=true&{filter}"
            ))
            .await;
        for k in [
            "total_balance",
            "fiat_balance",
            "crypto_balance",
            "accounts_count",
            "balance_types",
        ] {
            assert_eq!(sums[k], full[k], "{k} for `{filter}`:\n{sums}\n{full}");
        }
        assert_eq!(sums["groups"], full["groups"], "groups for `{filter}`");
        let unconverted = |b: &serde_json::Value| b["unconverted"].as_array().map_or(0, Vec::len);
        assert_eq!(unconverted(&full), 0, "unconverted for `{filter}`: {full}");
        assert_eq!(unconverted(&sums), 0, "unconverted for `{filter}`: {sums}");
    }
    app.stop().await;
}

/// `details`: `"details=true&"` or `""`, put before the filters of the all-customer balance;
/// `manual_rates`: set an admin rate for every currency first.
async fn check(app: common::TestApp, details: &str, manual_rates: bool) {
    for i in 0..CUSTOMERS {
        app.customer(&format!("c{i}"), Some(&ext(i)), Some(&ext(i)))
            .await;
    }
    // One customer only at P100, and one never fetched (no snapshot: not covered).
    app.customer("solo", Some("gen-000000-solo"), None).await;
    // Each customer fetched once (requests), so the store holds their snapshots.
    let mut as_of: Vec<DateTime<Utc>> = Vec::new();
    for i in 0..CUSTOMERS {
        let b = app
            .ok(&format!("/v2/accounts/balance?customer_id=c{i}"))
            .await;
        assert_eq!(b["stale"], false, "{b}");
        for p in [common::P100, common::BANK] {
            as_of.push(cluster::ts(&b["as_of"][p]));
        }
    }
    // Providers report rates with each account, and customers' rates for one currency
    // differ; an admin's manual rate wins over all of them, so every answer converts alike.
    let listed = app.ok("/v2/accounts?limit=1000").await;
    let currencies: BTreeSet<String> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["currency"].as_str().unwrap().to_owned())
        .collect();
    for (k, c) in currencies
        .iter()
        .filter(|c| manual_rates && *c != "EUR")
        .enumerate()
    {
        let rate = format!("{}.{}", k + 1, k + 3);
        let r = app
            .put("/v2/rates", serde_json::json!({"rates": {c: rate}}))
            .await;
        assert!(r.status == 200 || r.status == 400, "{c}: {}", r.body);
    }
    let fetched = calls(&app);

    for f in FILTERS {
        let sep = if f.is_empty() { "" } else { "&" };
        // Balance: the all-customer total is the sum of the per-customer totals.
        let all = app.ok(&format!("/v2/accounts/balance?{details}{f}")).await;
        let mut sum = (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
        let mut count = 0;
        let mut by_type = (0, 0);
        for i in 0..CUSTOMERS {
            let one = app
                .ok(&format!("/v2/accounts/balance?customer_id=c{i}{sep}{f}"))
                .await;
            assert_eq!(one["currency"], all["currency"], "{f}");
            sum.0 += dec(&one["exact"]["total_balance"]);
            sum.1 += dec(&one["exact"]["fiat_balance"]);
            sum.2 += dec(&one["exact"]["crypto_balance"]);
            count += one["accounts_count"].as_u64().unwrap();
            let (available, unspecified) = types(&one);
            by_type = (by_type.0 + available, by_type.1 + unspecified);
        }
        same(dec(&all["exact"]["total_balance"]), sum.0, f, "total", &all);
        same(dec(&all["exact"]["fiat_balance"]), sum.1, f, "fiat", &all);
        same(
            dec(&all["exact"]["crypto_balance"]),
            sum.2,
            f,
            "crypto",
            &all,
        );
        assert_eq!(
            all["accounts_count"].as_u64().unwrap(),
            count,
            "count with `{f}`: {all}"
        );
        // Every rate is set, so the totals add every account: the types split the count.
        assert_eq!(types(&all), by_type, "balance types with `{f}`: {all}");
        assert_eq!(by_type.0 + by_type.1, count, "{f}: {all}");
        if f.contains("balance_type=available") {
            assert_eq!(by_type.1, 0, "{f}: {all}");
            assert!(by_type.0 > 0, "P100's accounts are available: {all}");
        }
        if f.contains("balance_type=unspecified") {
            assert_eq!(by_type.0, 0, "{f}: {all}");
            assert!(by_type.1 > 0, "Corebanq's accounts are unspecified: {all}");
        }

        // List: the all-customer list is the union of the per-customer lists.
        let all_list = app.ok(&format!("/v2/accounts?limit=1000{sep}{f}")).await;
        assert!(all_list["next_cursor"].is_null(), "{all_list}");
        let ids = |b: &Value| -> BTreeSet<String> {
            b["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["id"].as_str().unwrap().to_owned())
                .collect()
        };
        let mut union = BTreeSet::new();
        for i in 0..CUSTOMERS {
            let one = app
                .ok(&format!("/v2/accounts?customer_id=c{i}&limit=1000{sep}{f}"))
                .await;
            union.extend(ids(&one));
        }
        assert_eq!(ids(&all_list), union, "list with `{f}`");
        assert_eq!(
            all_list["matched"].as_u64().unwrap(),
            union.len() as u64,
            "{f}"
        );
        assert_eq!(all_list["currency"], all["currency"], "{f}");

        // Coverage: the five fetched customers, from the oldest to the newest snapshot.
        for b in [&all, &all_list] {
            let c = &b["coverage"];
            assert_eq!(c["customers"], CUSTOMERS as u64, "coverage with `{f}`: {b}");
            let provider = f
                .split('&')
                .find_map(|kv| kv.strip_prefix("search.provider="));
            let span: Vec<i64> = as_of
                .iter()
                .enumerate()
                .filter(|(k, _)| match provider {
                    Some(common::P100) => k % 2 == 0,
                    Some(_) => k % 2 == 1,
                    None => true,
                })
                .map(|(_, t)| micros(*t))
                .collect();
            assert_eq!(
                micros(cluster::ts(&c["oldest_as_of"])),
                *span.iter().min().unwrap(),
                "oldest with `{f}`: {c}"
            );
            assert_eq!(
                micros(cluster::ts(&c["newest_as_of"])),
                *span.iter().max().unwrap(),
                "newest with `{f}`: {c}"
            );
        }
    }

    // Grouping: each currency group of the all-customer answer is the sum of that group in
    // the per-customer answers (balance in its own currency, accounts, and their types).
    let groups = |b: &Value| -> Groups {
        b["groups"]
            .as_array()
            .unwrap_or_else(|| panic!("no groups: {b}"))
            .iter()
            .map(|g| {
                (
                    (
                        g["currency"].as_str().unwrap().to_owned(),
                        g["is_crypto"] == true,
                    ),
                    (
                        dec(&g["balance"]),
                        g["accounts_count"].as_u64().unwrap(),
                        types(g),
                    ),
                )
            })
            .collect()
    };
    let all = groups(
        &app.ok(&format!("/v2/accounts/balance?{details}stack=currency"))
            .await,
    );
    let mut summed: Groups = BTreeMap::new();
    for i in 0..CUSTOMERS {
        let one = app
            .ok(&format!(
                "/v2/accounts/balance?customer_id=c{i}&stack=currency"
            ))
            .await;
        for (k, (b, n, (available, unspecified))) in groups(&one) {
            let e = summed.entry(k).or_insert((Decimal::ZERO, 0, (0, 0)));
            e.0 += b;
            e.1 += n;
            e.2 = (e.2.0 + available, e.2.1 + unspecified);
        }
    }
    assert!(!all.is_empty());
    assert_eq!(all, summed, "groups");
    for (k, (_, n, (available, unspecified))) in &all {
        assert_eq!(
            available + unspecified,
            *n,
            "{k:?}: a group's types split its count"
        );
    }
    // A currency both providers hold mixes both types in its group.
    assert!(
        all.values().any(|(_, _, (a, u))| *a > 0 && *u > 0),
        "some group mixes both types: {all:?}"
    );

    // None of this asked a provider: the per-customer answers came from L1 and the store,
    // the all-customer ones from the store.
    assert_eq!(
        calls(&app),
        fetched,
        "an all-customer answer called a provider"
    );
    app.stop().await;
}
