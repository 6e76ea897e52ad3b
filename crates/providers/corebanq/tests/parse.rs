//! Corebanq's parse paths over arbitrary answers (the kit's checks) and over balance-shaped
//! bodies whose fields hold random values: never a panic, a bad answer says what is wrong, and
//! every account sent is either mapped or rejected, never dropped.
#![allow(clippy::unwrap_used)]

use std::cell::Cell;
use std::sync::Arc;

use chrono::Utc;
use coffer_provider_corebanq::{BearerToken, CorebanqConfig, CorebanqProvider, Secret};
use coffer_provider_kit::HttpAdapter;
use coffer_provider_kit::testing::parse::{
    self, PROVIDER, json_text, number_json, object, string_json,
};
use coffer_provider_kit::testing::sim::runner;
use proptest::prelude::*;

/// Corebanq's field names (seed 004), so generated objects reach into its shape.
const KEYS: &[&str] = &[
    "total_balance",
    "currency",
    "fiat_balance",
    "crypto_balance",
    "details",
    "fiat_accounts",
    "crypto_assets",
    "id",
    "customer_id",
    "balance",
    "balance_in_base",
    "is_crypto",
    "active",
    "status",
    "main_wallet_address",
    "main_wallet_address_tag",
    "iban",
    "error",
    "message",
];

const CASES: u32 = 256;

fn provider() -> CorebanqProvider {
    let auth = Arc::new(BearerToken::new(PROVIDER, Secret::new("t")).unwrap());
    CorebanqProvider::new(CorebanqConfig::new(PROVIDER, "http://127.0.0.1:9", auth).unwrap())
        .unwrap()
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

fn account() -> BoxedStrategy<String> {
    object(vec![
        ("id", id()),
        ("customer_id", field()),
        ("currency", field()),
        ("balance", number_json(KEYS)),
        (
            "balance_in_base",
            prop_oneof![4 => number_json(KEYS), 1 => Just("null".to_owned())].boxed(),
        ),
        ("is_crypto", flag()),
        ("active", flag()),
        ("status", field()),
        ("main_wallet_address", field()),
        ("main_wallet_address_tag", field()),
        ("iban", field()),
    ])
}

/// A list member: its JSON and how many accounts it holds, when that is known (`null` holds
/// none; arbitrary JSON, who knows).
fn list() -> BoxedStrategy<(String, Option<usize>)> {
    prop_oneof![
        6 => proptest::collection::vec(account(), 0..5)
            .prop_map(|a| (format!("[{}]", a.join(",")), Some(a.len()))),
        1 => Just(("null".to_owned(), Some(0))),
        1 => json_text(KEYS).prop_map(|j| (j, None)),
    ]
    .boxed()
}

/// `details`: its JSON and how many accounts it holds, when known.
fn details() -> BoxedStrategy<(String, Option<usize>)> {
    let lists = (
        proptest::option::weighted(0.9, list()),
        proptest::option::weighted(0.9, list()),
    )
        .prop_map(|(fiat, crypto)| {
            let mut members = Vec::new();
            let mut count = Some(0);
            for (name, list) in [("fiat_accounts", fiat), ("crypto_assets", crypto)] {
                if let Some((text, n)) = list {
                    members.push(format!("\"{name}\":{text}"));
                    count = count.zip(n).map(|(a, b)| a + b);
                }
            }
            (format!("{{{}}}", members.join(",")), count)
        });
    prop_oneof![6 => lists, 1 => json_text(KEYS).prop_map(|j| (j, None))].boxed()
}

/// A balance body, whether it must parse as a whole, and how many accounts it holds.
fn balance_body() -> BoxedStrategy<(String, bool, Option<usize>)> {
    (
        object(vec![
            ("total_balance", number_json(KEYS)),
            ("fiat_balance", number_json(KEYS)),
            ("crypto_balance", number_json(KEYS)),
        ]),
        proptest::option::weighted(0.8, field()),
        proptest::option::weighted(0.9, details()),
    )
        .prop_map(|(totals, currency, details)| {
            // `totals` is `{…}`: open it to add the other members.
            let mut members = vec![totals[1..totals.len() - 1].to_owned()];
            if let Some(c) = &currency {
                members.push(format!("\"currency\":{c}"));
            }
            let count = details.as_ref().and_then(|(_, n)| *n);
            if let Some((text, _)) = &details {
                members.push(format!("\"details\":{text}"));
            }
            let members: Vec<String> = members.into_iter().filter(|m| !m.is_empty()).collect();
            // Seed 004's shape with a string (or no) `currency` and details whose lists are
            // lists: one bad account must never fail the others.
            let must_parse =
                currency.as_ref().is_none_or(|c| c.starts_with('"')) && count.is_some();
            (format!("{{{}}}", members.join(",")), must_parse, count)
        })
        .boxed()
}

#[test]
fn balance_shaped_bodies_account_for_every_account() {
    let provider = provider();
    let adapter = provider.adapter();
    // How many bodies mapped an account, and rejected one: the generator must reach both.
    let (mapped, rejected) = (Cell::new(0), Cell::new(0));
    runner(CASES)
        .run(&balance_body(), |(body, must_parse, count)| {
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
                        r.reason.starts_with("fiat_accounts[")
                            || r.reason.starts_with("crypto_assets["),
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
