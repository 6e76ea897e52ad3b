//! Unit tests of the parameter parser.

use std::str::FromStr;

use rust_decimal::Decimal;

use super::*;
use crate::account::{BalanceType, Status};
use crate::query::filter::{FieldOp, FieldSearch, SearchField};

fn pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (p.to_owned(), String::new()),
        })
        .collect()
}

fn list(q: &str) -> Result<Query, ParamError> {
    parse_query(&pairs(q), &ParseOptions::new(Endpoint::List))
}

fn bal(q: &str) -> Result<Query, ParamError> {
    parse_query(&pairs(q), &ParseOptions::new(Endpoint::Balance))
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

#[test]
fn empty_query_is_everything_in_the_base() {
    let q = bal("").unwrap();
    assert_eq!(q, Query::default());
}

#[test]
fn aliases_map_to_canonical_names() {
    let a = bal("is_crypto=true&account_currency=usdc&active=false&status=suspended&balance_gt=1000&balance_lte=2000&provider=p100&group_by=currency&include_details=true").unwrap();
    let c = bal("search.is_crypto=true&search.currency=usdc&search.active=false&search.status=suspended&search.balance.gt=1000&search.balance.lte=2000&search.provider=p100&stack=currency&details=true").unwrap();
    assert_eq!(a, c);
    assert_eq!(a.filter.is_crypto, Some(true));
    assert_eq!(a.filter.currencies, vec![Currency::new("USDC")]);
    assert_eq!(a.filter.active, Some(false));
    assert_eq!(a.filter.statuses, vec![Status::Suspended]);
    assert_eq!(a.filter.balance.gt, Some(d("1000")));
    assert_eq!(a.filter.balance.lte, Some(d("2000")));
    assert_eq!(a.filter.providers, vec!["p100".to_owned()]);
    assert_eq!(a.stack, Some(Stack::Currency));
    assert!(a.details);
}

#[test]
fn every_alias_is_accepted_by_the_balance_endpoint() {
    for (alias, canon) in ALIASES {
        let value = match *canon {
            "stack" => "currency",
            "search.status" => "active",
            "search.balance_type" => "available",
            "search.currency" | "search.provider" => "x",
            c if c.starts_with("search.balance") => "1",
            _ => "true",
        };
        assert!(bal(&format!("{alias}={value}")).is_ok(), "{alias}");
    }
}

#[test]
fn in_lists_and_target_currency() {
    let q = bal("search.currency.in=USDC,eure,%20&search.status.in=active,pending&currency=eurøp")
        .unwrap();
    assert_eq!(
        q.filter.currencies,
        vec![
            Currency::new("USDC"),
            Currency::new("EURe"),
            Currency::new("%20")
        ]
    );
    assert_eq!(q.filter.statuses, vec![Status::Active, Status::Pending]);
    assert_eq!(q.currency.unwrap().code(), "EURØP");
}

#[test]
fn balance_type_filters_on_both_endpoints() {
    let a = bal("balance_type=AVAILABLE").unwrap();
    assert_eq!(a, bal("search.balance_type=available").unwrap());
    assert_eq!(a.filter.balance_types, vec![BalanceType::Available]);
    let both = list("search.balance_type.in=unspecified,available,unspecified").unwrap();
    assert_eq!(
        both.filter.balance_types,
        vec![BalanceType::Unspecified, BalanceType::Available]
    );
    for (q, param) in [
        ("search.balance_type=booked", "search.balance_type"),
        ("balance_type=available,current", "balance_type"),
        ("search.balance_type=", "search.balance_type"),
    ] {
        let e = bal(q).unwrap_err();
        assert_eq!(e.param, param, "{q}");
        assert!(
            e.message.contains("available") && e.message.contains("unspecified")
                || e.message.contains("empty"),
            "{q}: {e}"
        );
    }
    let e = bal("search.balance_type=booked").unwrap_err();
    assert!(e.message.contains("`booked`"), "{e}");
    let e = list("search.balance_type.like=avail").unwrap_err();
    assert_eq!(e.param, "search.balance_type.like");
    let e = bal("balance_type=available&search.balance_type=unspecified").unwrap_err();
    assert!(e.message.contains("mean the same"), "{e}");
}

#[test]
fn list_field_searches_and_text() {
    let q = list("search.id.like=ABC&search.iban=DE89 3704&search.main_wallet_address.in=0x1,0x2&search=tb1q&search.balance=5&sort=-balance_in_base&limit=10").unwrap();
    assert_eq!(
        q.filter.fields,
        vec![
            FieldSearch {
                field: SearchField::Iban,
                op: FieldOp::Eq("DE89 3704".into())
            },
            FieldSearch {
                field: SearchField::Id,
                op: FieldOp::Like("ABC".into())
            },
            FieldSearch {
                field: SearchField::MainWalletAddress,
                op: FieldOp::In(vec!["0x1".into(), "0x2".into()])
            },
        ]
    );
    assert_eq!(q.filter.text.as_deref(), Some("tb1q"));
    assert_eq!(
        (q.filter.balance.gte, q.filter.balance.lte),
        (Some(d("5")), Some(d("5")))
    );
    assert_eq!(q.sort.to_string(), "-balance_in_base,id");
    assert_eq!(q.limit, 10);
    assert!(list("search=").unwrap().filter.text.is_none());
}

fn err(r: Result<Query, ParamError>) -> ParamError {
    r.unwrap_err()
}

#[test]
fn errors_name_the_parameter_and_what_was_expected() {
    let e = err(bal("balance_gt=abc"));
    assert_eq!(e.param, "balance_gt");
    assert!(
        e.message.contains("`abc`") && e.message.contains("decimal"),
        "{e}"
    );

    let e = err(bal("status=frozen"));
    assert_eq!(e.param, "status");
    assert!(
        e.message.contains("frozen") && e.message.contains("suspended"),
        "{e}"
    );

    for bad in ["limit=0", "limit=1001", "limit=-1", "limit=ten", "limit="] {
        let e = err(list(bad));
        assert_eq!(e.param, "limit", "{bad}");
        assert!(e.message.contains("1 to 1000"), "{e}");
    }
    let opts = ParseOptions {
        max_limit: 50,
        ..ParseOptions::new(Endpoint::List)
    };
    assert!(
        parse_query(&pairs("limit=51"), &opts)
            .unwrap_err()
            .message
            .contains("1 to 50")
    );
    assert_eq!(parse_query(&pairs(""), &opts).unwrap().limit, 50);

    let e = err(bal("search.balance.gt=10&search.balance.lt=5"));
    assert_eq!(e.param, "search.balance.gt");
    assert!(e.message.contains("no balance possible"), "{e}");
    assert!(bal("balance_gt=5&balance_lte=5").is_err());
    assert!(bal("balance_gte=5&balance_lte=5").is_ok());

    let e = err(bal("currency=XYZ"));
    assert_eq!(e.param, "currency");
    assert!(e.message.contains("`XYZ`"), "{e}");

    let e = err(bal("is_crypto=yes"));
    assert_eq!(e.param, "is_crypto");
    assert!(e.message.contains("true"), "{e}");
    assert!(err(bal("strict=maybe")).message.contains("boolean"));
    assert!(bal("strict").unwrap().strict);

    let e = err(bal("status=active&search.status=pending"));
    assert!(e.message.contains("mean the same"), "{e}");
    assert!(bal("status=active&search.status=active").is_ok());
    assert!(
        err(bal("currency=EUR&currency=USD"))
            .message
            .contains("twice")
    );

    let e = err(list("cursor=garbage"));
    assert_eq!(e.param, "cursor");

    assert_eq!(err(bal("max_age=-5")).param, "max_age");
    assert_eq!(
        bal("max_age=60").unwrap().max_age,
        Some(std::time::Duration::from_secs(60))
    );
    assert_eq!(err(bal("stack=provider")).param, "stack");
    assert_eq!(err(bal("customer_id=a%20b")).param, "customer_id");
}

#[test]
fn unknown_and_other_endpoint_parameters_are_rejected() {
    let e = err(bal("stauts=active"));
    assert_eq!(e.param, "stauts");
    assert!(
        e.message.contains("unknown parameter") && e.message.contains("search.status"),
        "{e}"
    );
    for p in [
        "sort=id",
        "limit=5",
        "cursor=x",
        "search=x",
        "search.id=x",
        "search.currency.like=eu",
    ] {
        let e = err(bal(p));
        assert!(e.message.contains("list endpoint"), "{p}: {e}");
    }
    assert!(
        err(list("search.colour=red"))
            .message
            .contains("unknown search field")
    );
    assert!(err(list("search.id.gt=5")).message.contains("balance only"));
    assert!(
        err(list("search.balance.in=5"))
            .message
            .contains("operator")
    );
}

#[test]
fn cursor_must_match_the_sort_and_stack() {
    use crate::query::sort::KeyValue;
    let spec = SortSpec::parse("-balance_in_base").unwrap();
    let c = Cursor::new(
        &spec,
        "EUR",
        vec![KeyValue::Dec(None), KeyValue::Text("a".into())],
    )
    .encode();
    assert!(
        list(&format!("sort=-balance_in_base&cursor={c}"))
            .unwrap()
            .cursor
            .is_some()
    );
    let e = err(list(&format!("sort=id&cursor={c}")));
    assert_eq!(e.param, "cursor");
    assert!(e.message.contains("issued for sort"), "{e}");
    assert!(
        err(list(&format!(
            "sort=-balance_in_base&stack=currency&cursor={c}"
        )))
        .param
            == "cursor"
    );
}

#[test]
fn at_is_an_instant_and_excludes_refreshing() {
    let q = list(
        "at=2026-11-30T23:59:59.1234567%2B01:00"
            .replace("%2B", "+")
            .as_str(),
    )
    .unwrap();
    assert_eq!(
        q.at.unwrap().to_rfc3339(),
        "2026-11-30T22:59:59.123456+00:00"
    );
    assert_eq!(
        bal("AT=2026-11-30T00:00:00Z")
            .unwrap()
            .at
            .unwrap()
            .to_rfc3339(),
        "2026-11-30T00:00:00+00:00"
    );
    for bad in [
        "at=2026-11-30",
        "at=yesterday",
        "at=",
        "at=2026-11-30T00:00:00Z&at=2026-11-29T00:00:00Z",
        "at=2026-11-30T00:00:00Z&max_age=60",
        "at=2026-11-30T00:00:00Z&strict",
        "strict=false&at=2026-11-30T00:00:00Z",
    ] {
        assert_eq!(err(bal(bad)).param, "at", "{bad}");
    }
}
