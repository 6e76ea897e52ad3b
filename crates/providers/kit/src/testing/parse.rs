//! Property checks of an adapter's parse paths, written once for every [`HttpAdapter`]: the
//! 200 parse over arbitrary bytes and arbitrary JSON, and `parse_error` over arbitrary status,
//! headers and body. Whatever a provider (or a broken proxy) sends, the adapter never panics,
//! and a bad answer is an error that says what is wrong. The generators are public so that an
//! adapter's own tests can build bodies of its provider's shape with random field values.

use std::collections::HashSet;

use chrono::Utc;
use coffer_core::{ProviderError, ProviderErrorKind as K, ProviderSnapshot};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use rust_decimal::Decimal;

use crate::HttpAdapter;
use crate::http::SNIPPET_BYTES;

/// The instance id the checks parse as.
pub const PROVIDER: &str = "prop";

/// Number texts that have bitten money code: awkward scales, exponents, 28–30 digits, the
/// edges of `Decimal`, and exponents that would allocate without end if expanded naively.
pub const AWKWARD_NUMBERS: &[&str] = &[
    "0",
    "-0",
    "0.0",
    "-0.00",
    "0e0",
    "0.09872368",
    "9.872368e-2",
    "1e-7",
    "1E+2",
    "69258.93415658",
    "12345678901234.12345678",
    "1234567890123456789012345678",
    "79228162514264337593543950335",
    "79228162514264337593543950336",
    "-79228162514264337593543950335",
    "123456789012345678901234567890.5",
    "0.0000000000000000000000000001",
    "0.00000000000000000000000000001",
    "1e28",
    "1e-28",
    "1e29",
    "1e400",
    "1e-400",
    "1e999999999",
    "1e-999999999",
    "18446744073709551616",
];

/// A JSON number's text: an awkward one, an `i64`, or digits with a fraction and an exponent.
pub fn number_text() -> BoxedStrategy<String> {
    let generated = (
        any::<bool>(),
        "0|[1-9][0-9]{0,29}",
        proptest::option::of("[0-9]{1,30}"),
        proptest::option::of(-40i32..40),
    )
        .prop_map(|(negative, int, frac, exp)| {
            let mut s = if negative {
                "-".to_owned()
            } else {
                String::new()
            };
            s.push_str(&int);
            if let Some(frac) = frac {
                s.push('.');
                s.push_str(&frac);
            }
            if let Some(exp) = exp {
                s.push_str(&format!("e{exp}"));
            }
            s
        });
    prop_oneof![
        2 => proptest::sample::select(AWKWARD_NUMBERS).prop_map(str::to_owned),
        1 => any::<i64>().prop_map(|i| i.to_string()),
        3 => generated,
    ]
    .boxed()
}

/// Strings providers send, and some they should not: codes, statuses, decimals with commas.
const WORDS: &[&str] = &[
    "",
    " ",
    "ACTIVE",
    "active",
    "Suspended",
    "pending",
    "WAITING_TO_BE_ACTIVATED",
    "frozen",
    "eur",
    "EUR",
    "usdc",
    "eurøp",
    "btc",
    "12,50",
    "fast",
    "NaN",
    "null",
    "true",
    "é",
];

/// A JSON string literal: arbitrary text, a number as text, or a provider-ish word.
pub fn string_json() -> BoxedStrategy<String> {
    prop_oneof![
        any::<String>(),
        number_text(),
        proptest::sample::select(WORDS).prop_map(str::to_owned),
    ]
    .prop_map(|s| serde_json::Value::String(s).to_string())
    .boxed()
}

/// A money field's value: a number, the same digits as a string (some providers quote
/// amounts), or any JSON at all.
pub fn number_json(keys: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![
        4 => number_text(),
        2 => number_text().prop_map(|n| format!("\"{n}\"")),
        1 => json_text(keys),
    ]
    .boxed()
}

/// Any JSON value's text, built structurally (objects, arrays, strings, numbers, booleans,
/// null, a few levels deep); object keys are drawn from `keys` (the provider's field names,
/// so the parse goes deep) or arbitrary.
pub fn json_text(keys: &'static [&'static str]) -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        any::<bool>().prop_map(|b| b.to_string()),
        number_text(),
        string_json(),
    ];
    let key = prop_oneof![
        3 => proptest::sample::select(keys).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
    .prop_map(|k| serde_json::Value::String(k).to_string());
    leaf.prop_recursive(4, 64, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6)
                .prop_map(|items| format!("[{}]", items.join(","))),
            proptest::collection::vec((key.clone(), inner), 0..6).prop_map(|members| {
                let members: Vec<String> =
                    members.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("{{{}}}", members.join(","))
            }),
        ]
    })
    .boxed()
}

/// A JSON object's text with each of `fields` present or not (`Some` value: the member's
/// JSON), in the order given.
pub fn object(fields: Vec<(&'static str, BoxedStrategy<String>)>) -> BoxedStrategy<String> {
    let members: Vec<_> = fields
        .into_iter()
        .map(|(name, value)| {
            proptest::option::weighted(0.85, value).prop_map(move |v| v.map(|v| (name, v)))
        })
        .collect();
    members
        .prop_map(|members| {
            let members: Vec<String> = members
                .into_iter()
                .flatten()
                .map(|(name, v)| format!("\"{name}\":{v}"))
                .collect();
            format!("{{{}}}", members.join(","))
        })
        .boxed()
}

/// A 200 body of any kind: arbitrary bytes, arbitrary JSON, or JSON cut short.
pub fn bodies(keys: &'static [&'static str]) -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        json_text(keys).prop_map(String::into_bytes),
        (json_text(keys), any::<proptest::sample::Index>()).prop_map(|(text, cut)| {
            let bytes = text.into_bytes();
            bytes[..cut.index(bytes.len() + 1)].to_vec()
        }),
    ]
    .boxed()
}

/// `Retry-After` values: seconds of any size, the three HTTP-date forms at any time (with
/// the right weekday or not), and junk.
fn retry_after_values() -> BoxedStrategy<Vec<u8>> {
    let dates = (0i64..=253_402_300_799, 0usize..4).prop_map(|(secs, form)| {
        let at = chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default();
        let format = [
            "%a, %d %b %Y %H:%M:%S GMT",
            "%A, %d-%b-%y %H:%M:%S GMT",
            "%a %b %e %H:%M:%S %Y",
            "Mon, %d %b %Y %H:%M:%S GMT",
        ][form];
        at.format(format).to_string().into_bytes()
    });
    prop_oneof![
        "[0-9]{1,40}".prop_map(String::into_bytes),
        dates,
        proptest::collection::vec(any::<u8>(), 0..40),
    ]
    .boxed()
}

/// An answer that is not a 200: any status from 100 to 599, `Retry-After` and other headers
/// (some absent), any body.
pub fn error_answers(
    keys: &'static [&'static str],
) -> BoxedStrategy<(StatusCode, HeaderMap, Vec<u8>)> {
    let status = prop_oneof![
        proptest::sample::select(&[400u16, 401, 403, 404, 409, 422, 429, 500, 501, 502, 503][..]),
        100u16..=599,
    ]
    .prop_filter_map("not a 200", |s| {
        StatusCode::from_u16(s)
            .ok()
            .filter(|s| *s != StatusCode::OK)
    });
    let headers = (
        proptest::option::of(retry_after_values()),
        proptest::collection::vec(("[a-z-]{1,12}", any::<Vec<u8>>()), 0..3),
    )
        .prop_map(|(retry, others)| {
            let mut map = HeaderMap::new();
            for (name, value) in others {
                if let (Ok(n), Ok(v)) =
                    (HeaderName::try_from(name), HeaderValue::from_bytes(&value))
                {
                    map.append(n, v);
                }
            }
            if let Some(v) = retry.and_then(|v| HeaderValue::from_bytes(&v).ok()) {
                map.insert(RETRY_AFTER, v);
            }
            map
        });
    (status, headers, bodies(keys)).boxed()
}

/// What every 200 parse must hold: an error is a `MalformedResponse` at status 200 naming what
/// is wrong; a snapshot's accounts have distinct non-empty ids and only positive rates, and
/// every rejected balance says why.
pub fn check_success(
    result: &Result<ProviderSnapshot, ProviderError>,
) -> Result<(), TestCaseError> {
    match result {
        Ok(s) => {
            let mut ids = HashSet::new();
            for a in &s.accounts {
                prop_assert!(!a.provider_account_id.trim().is_empty(), "{a:?}");
                prop_assert!(ids.insert(&a.provider_account_id), "twice: {a:?}");
                if let Some(r) = &a.provider_rate {
                    prop_assert!(r.rate > Decimal::ZERO, "{a:?}");
                }
            }
            for r in &s.rejected {
                prop_assert!(!r.reason.trim().is_empty(), "{r:?}");
            }
        }
        Err(e) => {
            prop_assert_eq!(e.kind, K::MalformedResponse, "{:?}", e);
            prop_assert_eq!(e.status, Some(200));
            prop_assert_eq!(e.provider.as_str(), PROVIDER);
            prop_assert!(!e.message.trim().is_empty(), "{e:?}");
        }
    }
    Ok(())
}

/// What every `parse_error` must hold: the error names the instance and the status, says
/// something, carries at most a bounded part of the body, is retryable only when its kind
/// is, and has a `Retry-After` only when it is a kind that waits.
pub fn check_error(status: StatusCode, e: &ProviderError) -> Result<(), TestCaseError> {
    prop_assert_eq!(e.provider.as_str(), PROVIDER);
    prop_assert_eq!(e.status, Some(status.as_u16()));
    prop_assert!(!e.message.trim().is_empty(), "{e:?}");
    prop_assert!(
        e.message.len() <= 4 * SNIPPET_BYTES,
        "{} bytes",
        e.message.len()
    );
    prop_assert!(e.code.as_ref().is_none_or(|c| c.len() <= 64), "{e:?}");
    prop_assert!(!e.retryable || e.kind.default_retryable(), "{e:?}");
    prop_assert!(
        e.retry_after.is_none() || matches!(e.kind, K::RateLimited | K::Unavailable),
        "{e:?}"
    );
    if status == StatusCode::TOO_MANY_REQUESTS {
        prop_assert_eq!((e.kind, e.retryable), (K::RateLimited, true));
    }
    Ok(())
}

/// Runs both checks over `cases` arbitrary answers each; `keys` are the provider's JSON field
/// names, so generated objects reach into its shape. A panic in the adapter fails the run.
pub fn parse_paths_hold<A: HttpAdapter>(adapter: &A, keys: &'static [&'static str], cases: u32) {
    let mut runner = super::sim::runner(cases);
    let outcome = runner.run(&bodies(keys), |body| {
        check_success(&adapter.parse_success(PROVIDER, &body, Utc::now()))
    });
    if let Err(e) = outcome {
        panic!("{} 200 parse: {e}", A::NAME);
    }
    let outcome = runner.run(&error_answers(keys), |(status, headers, body)| {
        check_error(
            status,
            &adapter.parse_error(PROVIDER, status, &headers, &body),
        )
    });
    if let Err(e) = outcome {
        panic!("{} parse_error: {e}", A::NAME);
    }
}
