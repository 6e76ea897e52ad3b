//! P100's parse paths over arbitrary answers (the kit's checks) and over balances-shaped bodies
//! whose fields hold random values: never a panic, a bad answer says what is wrong, and every
//! balance sent is either mapped or rejected, never dropped.
#![allow(clippy::unwrap_used)]

use chrono::Utc;
use coffer_provider_kit::HttpAdapter;
use coffer_provider_kit::testing::parse::{
    self, PROVIDER, json_text, number_json, object, string_json,
};
use coffer_provider_kit::testing::sim::runner;
use coffer_provider_p100::{P100Config, P100Provider};
use proptest::prelude::*;
use std::cell::Cell;

/// P100's field names (seed 000), so generated objects reach into its shape.
const KEYS: &[&str] = &[
    "userId",
    "fiatBalances",
    "cryptoBalances",
    "id",
    "amount",
    "name",
    "rate",
    "status",
    "networkConfig",
    "ethereum",
    "wallet",
    "mainnet",
    "withdrawal",
    "feeWithdrawal",
    "minWithdrawal",
    "deposit",
    "minDeposit",
    "errorCode",
    "errorName",
    "errorMessage",
];

const CASES: u32 = 256;

fn provider() -> P100Provider {
    P100Provider::new(P100Config::new(PROVIDER, "http://127.0.0.1:9", "k").unwrap()).unwrap()
}

#[test]
fn arbitrary_answers_never_panic_and_say_what_is_wrong() {
    parse::parse_paths_hold(provider().adapter(), KEYS, CASES);
}

/// A field's value: mostly a string, sometimes any JSON.
fn field() -> BoxedStrategy<String> {
    prop_oneof![3 => string_json(), 1 => json_text(KEYS)].boxed()
}

/// Ids from a small pool, so duplicates and empty ids happen.
fn id() -> BoxedStrategy<String> {
    prop_oneof![
        3 => proptest::sample::select(&["a", "b", "c", "d", "", " "][..])
            .prop_map(|s| format!("\"{s}\"")),
        1 => field(),
    ]
    .boxed()
}

fn flag() -> BoxedStrategy<String> {
    prop_oneof![3 => any::<bool>().prop_map(|b| b.to_string()), 1 => json_text(KEYS)].boxed()
}

fn network() -> BoxedStrategy<String> {
    object(vec![
        ("wallet", field()),
        ("mainnet", flag()),
        ("name", field()),
        (
            "withdrawal",
            object(vec![
                ("feeWithdrawal", number_json(KEYS)),
                ("minWithdrawal", number_json(KEYS)),
            ]),
        ),
        ("deposit", object(vec![("minDeposit", number_json(KEYS))])),
    ])
}

fn balance() -> BoxedStrategy<String> {
    let networks = proptest::collection::vec(
        (
            proptest::sample::select(&["ethereum", "polygon", "btc", ""][..]),
            network(),
        ),
        0..3,
    )
    .prop_map(|n| {
        let members: Vec<String> = n.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", members.join(","))
    });
    object(vec![
        ("id", id()),
        ("amount", number_json(KEYS)),
        ("name", field()),
        ("rate", number_json(KEYS)),
        ("status", field()),
        (
            "networkConfig",
            prop_oneof![4 => networks, 1 => json_text(KEYS)].boxed(),
        ),
    ])
}

/// A list member: its JSON and how many balances it holds, when that is known (`null` holds
/// none; arbitrary JSON, who knows).
fn list() -> BoxedStrategy<(String, Option<usize>)> {
    prop_oneof![
        6 => proptest::collection::vec(balance(), 0..5)
            .prop_map(|b| (format!("[{}]", b.join(",")), Some(b.len()))),
        1 => Just(("null".to_owned(), Some(0))),
        1 => json_text(KEYS).prop_map(|j| (j, None)),
    ]
    .boxed()
}

/// A balances body, whether it must parse as a whole, and how many balances it holds.
fn balances_body() -> BoxedStrategy<(String, bool, Option<usize>)> {
    (
        proptest::option::weighted(0.8, field()),
        proptest::option::weighted(0.9, list()),
        proptest::option::weighted(0.9, list()),
    )
        .prop_map(|(user, fiat, crypto)| {
            let mut members = Vec::new();
            if let Some(u) = &user {
                members.push(format!("\"userId\":{u}"));
            }
            let mut count = Some(0);
            for (name, list) in [("fiatBalances", &fiat), ("cryptoBalances", &crypto)] {
                if let Some((text, n)) = list {
                    members.push(format!("\"{name}\":{text}"));
                    count = count.zip(*n).map(|(a, b)| a + b);
                }
            }
            // Seed 000's shape with a string (or no) `userId` and lists that are lists: one
            // bad balance must never fail the others. (With neither `userId` nor a list, `null`
            // being no list, the body is malformed: docs/providers.md.)
            let is_list = |l: &Option<(String, Option<usize>)>| {
                l.as_ref().is_some_and(|(text, _)| text != "null")
            };
            let must_parse = user.as_ref().is_none_or(|u| u.starts_with('"'))
                && count.is_some()
                && (user.is_some() || is_list(&fiat) || is_list(&crypto));
            (format!("{{{}}}", members.join(",")), must_parse, count)
        })
        .boxed()
}

#[test]
fn balances_shaped_bodies_account_for_every_balance() {
    let provider = provider();
    let adapter = provider.adapter();
    // How many bodies mapped an account, and rejected one: the generator must reach both.
    let (mapped, rejected) = (Cell::new(0), Cell::new(0));
    runner(CASES)
        .run(&balances_body(), |(body, must_parse, count)| {
            let result = adapter.parse_success(PROVIDER, body.as_bytes(), Utc::now());
            parse::check_success(&result)?;
            if must_parse {
                prop_assert!(result.is_ok(), "{body}: {result:?}");
            }
            if let Ok(s) = &result {
                mapped.set(mapped.get() + usize::from(!s.accounts.is_empty()));
                rejected.set(rejected.get() + usize::from(!s.rejected.is_empty()));
            }
            if let (Ok(s), Some(n)) = (&result, count) {
                prop_assert_eq!(s.accounts.len() + s.rejected.len(), n, "{}", body);
                for r in &s.rejected {
                    prop_assert!(
                        r.reason.starts_with("fiatBalances[")
                            || r.reason.starts_with("cryptoBalances["),
                        "the reason names the list and index: {r:?}"
                    );
                }
            }
            Ok(())
        })
        .unwrap();
    assert!(
        mapped.get() > 0 && rejected.get() > 0,
        "{mapped:?} {rejected:?}"
    );
}
