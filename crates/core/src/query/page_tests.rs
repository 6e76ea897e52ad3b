//! Unit tests of the list.

use super::*;
use crate::query::fixtures::{accounts, rates};
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
    parse_query(&pairs, &ParseOptions::new(Endpoint::List)).unwrap()
}

fn ids(page: &ListPage<'_>) -> Vec<String> {
    page.data
        .accounts()
        .iter()
        .map(|a| a.account.id.clone())
        .collect()
}

#[test]
fn sorts_by_value_with_missing_last_and_pages_with_a_cursor() {
    let accts = accounts();
    let table = rates(&accts);
    let p1 = list(&accts, &q("sort=-balance_in_base&limit=3"), &table).unwrap();
    assert_eq!(ids(&p1), ["bank:2", "bank:1", "p100:eur"]);
    assert_eq!(p1.matched, 7);
    let c = p1.next_cursor.clone().unwrap();
    let p2 = list(
        &accts,
        &q(&format!("sort=-balance_in_base&limit=3&cursor={c}")),
        &table,
    )
    .unwrap();
    assert_eq!(ids(&p2), ["p100:doge", "p100:usdc", "p100:btc"]);
    let c = p2.next_cursor.clone().unwrap();
    let p3 = list(
        &accts,
        &q(&format!("sort=-balance_in_base&limit=3&cursor={c}")),
        &table,
    )
    .unwrap();
    assert_eq!(ids(&p3), ["bank:3"]);
    assert_eq!(p3.next_cursor, None);
    assert_eq!(p3.unconverted.len(), 1);
}

#[test]
fn cursor_of_another_currency_is_rejected() {
    let accts = accounts();
    let table = rates(&accts);
    let p1 = list(&accts, &q("limit=1"), &table).unwrap();
    let c = p1.next_cursor.unwrap();
    let err = list(
        &accts,
        &q(&format!("limit=1&currency=USD&cursor={c}")),
        &table,
    )
    .unwrap_err();
    match err {
        QueryError::Param(e) => assert_eq!(e.param, "cursor"),
        other => panic!("{other}"),
    }
}

#[test]
fn field_searches_and_free_text() {
    let accts = accounts();
    let table = rates(&accts);
    let p = list(&accts, &q("search=de8937040044"), &table).unwrap();
    assert_eq!(ids(&p), ["bank:1"]);
    let p = list(&accts, &q("search=0X2D0236"), &table).unwrap();
    assert_eq!(ids(&p), ["p100:usdc"]);
    let p = list(
        &accts,
        &q("search.main_wallet_address=0x2d0236af29ea67721d013dd7ab44ffbad50918ef"),
        &table,
    )
    .unwrap();
    assert!(ids(&p).is_empty(), "main wallet is the first one");
    let p = list(
        &accts,
        &q("search.id.like=P100:&search.currency.in=usdc,DOGE&sort=currency"),
        &table,
    )
    .unwrap();
    assert_eq!(ids(&p), ["p100:doge", "p100:usdc"]);
    let p = list(&accts, &q("search.status.like=susp"), &table).unwrap();
    assert_eq!(ids(&p), ["bank:2"]);
}

#[test]
fn stacked_pages_count_accounts_and_groups_sum_everything() {
    let accts = accounts();
    let table = rates(&accts);
    let p1 = list(&accts, &q("stack=currency&limit=3"), &table).unwrap();
    let ListData::Groups(groups) = &p1.data else {
        panic!("stacked")
    };
    let codes: Vec<&str> = groups.iter().map(|g| g.group.currency.code()).collect();
    assert_eq!(codes, ["BTC", "DOGE", "EUR"]);
    assert_eq!(groups[2].accounts.len(), 1);
    assert_eq!(groups[2].group.accounts, 2);
    let c = p1.next_cursor.unwrap();
    let p2 = list(
        &accts,
        &q(&format!("stack=currency&limit=3&cursor={c}")),
        &table,
    )
    .unwrap();
    let ListData::Groups(groups2) = &p2.data else {
        panic!("stacked")
    };
    assert_eq!(groups2[0].group, groups[2].group);
    assert_eq!(ids(&p2), ["p100:eur", "bank:2", "p100:usdc"]);
}
