//! Small helpers shared by the end-to-end test files: reading amounts, collecting accounts from
//! answers, following list cursors.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;

use crate::common::TestApp;

/// A JSON string holding an exact decimal.
pub fn dec(v: &Value) -> Decimal {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("expected a decimal string, got {v}"));
    Decimal::from_str(s).unwrap_or_else(|e| panic!("`{s}` is not a decimal: {e}"))
}

/// Half-even to `dp` places, as Coffer presents amounts.
pub fn round(d: Decimal, dp: u32) -> Decimal {
    d.round_dp_with_strategy(dp, RoundingStrategy::MidpointNearestEven)
}

/// Every account of a balance answer with `details=true`, fiat first.
pub fn detail_accounts(balance: &Value) -> Vec<Value> {
    let d = &balance["details"];
    let fiat = d["fiat_accounts"]
        .as_array()
        .unwrap_or_else(|| panic!("no details: {balance}"));
    let crypto = d["crypto_assets"].as_array().unwrap();
    fiat.iter().chain(crypto.iter()).cloned().collect()
}

pub fn ids(accounts: &[Value]) -> BTreeSet<String> {
    accounts
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

pub fn ids_in_order(accounts: &[Value]) -> Vec<String> {
    accounts
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Percent-encodes a query value (cursors are opaque and may hold `+`, `/`, `=`).
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `path` joined with `extra` query text (`path` may already have a query).
pub fn with_query(path: &str, extra: &str) -> String {
    if extra.is_empty() {
        path.to_owned()
    } else if path.contains('?') {
        format!("{path}&{extra}")
    } else {
        format!("{path}?{extra}")
    }
}

/// Follows `next_cursor` from `path` (a `/v2/accounts` query with `limit`) to the end, as `key`;
/// returns every page's body. Panics on a non-200 page or after 1,000 pages.
pub async fn pages(app: &TestApp, key: &str, path: &str) -> Vec<Value> {
    pages_from(app, key, path, None).await
}

/// [`pages`], starting at `cursor` when given.
pub async fn pages_from(app: &TestApp, key: &str, path: &str, cursor: Option<&str>) -> Vec<Value> {
    let mut out = Vec::new();
    let mut next = match cursor {
        Some(c) => with_query(path, &format!("cursor={}", enc(c))),
        None => path.to_owned(),
    };
    for _ in 0..1000 {
        let r = app.get_as(key, &next).await;
        assert_eq!(r.status, 200, "GET {next}: {}", r.body);
        let cursor = r.body["next_cursor"].as_str().map(str::to_owned);
        out.push(r.body);
        match cursor {
            Some(c) => next = with_query(path, &format!("cursor={}", enc(&c))),
            None => return out,
        }
    }
    panic!("more than 1000 pages for {path}");
}

/// The accounts of a whole list (one page with the largest limit), as admin.
pub async fn list_accounts(app: &TestApp, query: &str) -> Vec<Value> {
    let b = app.ok(&with_query("/v2/accounts?limit=1000", query)).await;
    assert!(b["next_cursor"].is_null(), "more than one page: {b}");
    b["data"].as_array().unwrap().clone()
}

/// Fetches a customer once (admin, fresh), so its accounts are in the store for all-customer
/// queries; returns its accounts.
pub async fn fetch(app: &TestApp, customer: &str) -> Vec<Value> {
    let b = app
        .ok(&format!(
            "/v2/accounts/balance?customer_id={customer}&details=true"
        ))
        .await;
    assert_eq!(b["stale"], false, "{b}");
    assert_eq!(b["partial"], false, "{b}");
    detail_accounts(&b)
}
