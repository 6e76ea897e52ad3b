//! Filtered lists and totals: pushdown agrees with `Filter::matches`.
#![allow(unused_imports, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use coffer_core::query::{BalanceRange, FieldOp, FieldSearch, Filter, SearchField};
use coffer_core::{
    Account, BalanceType, BalanceTypeCounts, Currency, ProviderErrorKind, ProviderRate, Status,
    Wallet,
};
use coffer_store::{NewApiKey, RateSource, Role, Scope, Store, StoreError, SyncOutcome};
use rust_decimal::Decimal;

use super::*;

/// Three customers, two providers, a mix of currencies, statuses and flags.
async fn fill(s: &dyn Store) -> Vec<Account> {
    let statuses = [
        Status::Active,
        Status::Inactive,
        Status::Suspended,
        Status::Pending,
    ];
    let currencies = ["EUR", "USDC", "BTC", "EURe", "ZZZ", "USD"];
    let mut out = vec![];
    for (ci, c) in ["c1", "c2", "c3"].iter().enumerate() {
        s.create_customer(&customer(
            c,
            &[("p100", format!("x-{c}").as_str()), ("bank", c)],
        ))
        .await
        .unwrap();
        for (pi, p) in ["p100", "bank"].iter().enumerate() {
            let mut accounts = vec![];
            for i in 0..6 {
                let n = ci * 12 + pi * 6 + i;
                let bal = format!("{}.{:02}", (n * 37) % 2000, n % 100);
                let mut a = account(
                    c,
                    p,
                    &format!("{c}-{i}"),
                    currencies[(n + ci) % 6],
                    &bal,
                    // Fetched with its snapshot, below.
                    10 + i64::try_from(n_off(ci, pi)).unwrap(),
                );
                a.status = statuses[n % 4];
                a.active = n % 3 != 0;
                // Mostly as the adapters declare it (P100 available), with exceptions both
                // ways (data stored before balance types, another provider's), so every
                // currency and provider mixes both.
                let p100 = *p == "p100";
                a.balance_type = if p100 != (n % 5 == 0) {
                    BalanceType::Available
                } else {
                    BalanceType::Unspecified
                };
                if i == 2 {
                    a.iban = Some(format!("DE89370400440532013{n:03}"));
                }
                if a.is_crypto {
                    a.wallets = vec![Wallet {
                        network: "ethereum".into(),
                        address: format!("0xAbC{n:04}"),
                        ..Wallet::default()
                    }];
                }
                accounts.push(a);
            }
            s.save_snapshot(
                &meta(c, p, 10 + i64::try_from(n_off(ci, pi)).unwrap()),
                &accounts,
            )
            .await
            .unwrap();
            out.extend(accounts);
        }
    }
    out
}

fn n_off(ci: usize, pi: usize) -> usize {
    ci * 2 + pi
}

fn filters() -> Vec<Filter> {
    let b =
        |gt: Option<&str>, gte: Option<&str>, lt: Option<&str>, lte: Option<&str>| BalanceRange {
            gt: gt.map(d),
            gte: gte.map(d),
            lt: lt.map(d),
            lte: lte.map(d),
        };
    vec![
        all(),
        Filter {
            is_crypto: Some(true),
            ..all()
        },
        Filter {
            is_crypto: Some(false),
            active: Some(true),
            ..all()
        },
        Filter {
            currencies: vec![Currency::new("usdc"), Currency::new("EURE")],
            ..all()
        },
        Filter {
            currencies: vec![Currency::new("zzz")],
            ..all()
        },
        Filter {
            statuses: vec![Status::Suspended, Status::Pending],
            ..all()
        },
        Filter {
            providers: vec!["bank".into()],
            statuses: vec![Status::Active],
            ..all()
        },
        Filter {
            balance: b(Some("1000"), None, None, None),
            ..all()
        },
        Filter {
            balance: b(None, Some("148.04"), Some("1500"), None),
            ..all()
        },
        Filter {
            balance: b(None, None, None, Some("407.11")),
            is_crypto: Some(true),
            ..all()
        },
        Filter {
            fields: vec![FieldSearch {
                field: SearchField::Id,
                op: FieldOp::Like("C2-".into()),
            }],
            ..all()
        },
        Filter {
            fields: vec![FieldSearch {
                field: SearchField::CustomerId,
                op: FieldOp::In(vec!["c1".into(), "c3".into()]),
            }],
            balance: b(Some("100"), None, None, None),
            ..all()
        },
        Filter {
            text: Some("de8937".into()),
            ..all()
        },
        Filter {
            text: Some("0xabc00".into()),
            active: Some(false),
            ..all()
        },
        Filter {
            providers: vec!["nobody".into()],
            ..all()
        },
        Filter {
            balance_types: vec![BalanceType::Available],
            ..all()
        },
        Filter {
            balance_types: vec![BalanceType::Unspecified],
            providers: vec!["p100".into()],
            ..all()
        },
        Filter {
            balance_types: vec![BalanceType::Unspecified, BalanceType::Available],
            is_crypto: Some(false),
            ..all()
        },
        Filter {
            balance_types: vec![BalanceType::Available],
            balance: b(None, Some("100"), None, None),
            ..all()
        },
        Filter {
            balance_types: vec![BalanceType::Unspecified],
            fields: vec![FieldSearch {
                field: SearchField::Id,
                op: FieldOp::Like("-1".into()),
            }],
            ..all()
        },
    ]
}

/// Per (currency, crypto): the exact sum, the count and the count by balance type.
type Want = BTreeMap<(String, bool), (Decimal, u64, BalanceTypeCounts)>;

fn want_of<'a>(accounts: impl IntoIterator<Item = &'a Account>) -> Want {
    let mut want = Want::new();
    for a in accounts {
        let e = want
            .entry((a.currency.code().to_owned(), a.is_crypto))
            .or_default();
        e.0 += a.balance;
        e.1 += 1;
        e.2.add(a.balance_type, 1);
    }
    want
}

fn got_of(t: &coffer_store::Totals) -> Want {
    t.by_currency
        .iter()
        .map(|t| {
            (
                (t.currency.code().to_owned(), t.is_crypto),
                (t.balance, t.accounts, t.balance_types),
            )
        })
        .collect()
}

pub async fn filters_pushed_down_match_filter_matches(s: &dyn Store) {
    let mut every = fill(s).await;
    every.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(s.list_accounts(&Scope::All, &all()).await.unwrap(), every);
    let scopes = [
        Scope::All,
        Scope::Customers(vec!["c2".into()]),
        Scope::Customers(vec!["c1".into(), "c3".into(), "ghost".into()]),
        Scope::Customers(vec![]),
    ];
    for scope in &scopes {
        for f in filters() {
            let want: Vec<Account> = every
                .iter()
                .filter(|a| match scope {
                    Scope::All => true,
                    Scope::Customers(ids) => ids.contains(&a.customer_id),
                })
                .filter(|a| f.matches(a))
                .cloned()
                .collect();
            let got = s.list_accounts(scope, &f).await.unwrap();
            assert_eq!(got, want, "scope {scope:?}, filter {f:?}");
        }
    }
}

pub async fn totals_are_exact_and_say_what_they_cover(s: &dyn Store) {
    let every = fill(s).await;
    for scope in [Scope::All, Scope::Customers(vec!["c1".into(), "c3".into()])] {
        for f in filters() {
            let matching: Vec<&Account> = every
                .iter()
                .filter(|a| match &scope {
                    Scope::All => true,
                    Scope::Customers(ids) => ids.contains(&a.customer_id),
                })
                .filter(|a| f.matches(a))
                .collect();
            let want = want_of(matching);
            let got = s.totals(&scope, &f).await.unwrap();
            assert_eq!(got_of(&got), want, "scope {scope:?}, filter {f:?}");
            for t in &got.by_currency {
                assert_eq!(t.balance.scale(), 2, "sums keep the scale: {t:?}");
            }
        }
    }
    let all_totals = s.totals(&Scope::All, &all()).await.unwrap();
    assert_eq!(all_totals.customers, 3);
    assert_eq!(all_totals.oldest_as_of, Some(t(10)));
    assert_eq!(all_totals.newest_as_of, Some(t(15)));
    let scoped = s
        .totals(&Scope::Customers(vec!["c2".into(), "ghost".into()]), &all())
        .await
        .unwrap();
    assert_eq!(scoped.customers, 1);
    assert_eq!(
        (scoped.oldest_as_of, scoped.newest_as_of),
        (Some(t(12)), Some(t(13)))
    );
    let bank = s
        .totals(
            &Scope::All,
            &Filter {
                providers: vec!["bank".into()],
                ..all()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (bank.oldest_as_of, bank.newest_as_of),
        (Some(t(11)), Some(t(15)))
    );
    assert_eq!(
        bank.customers, 3,
        "customers covered do not depend on the provider filter"
    );
    let scoped_bank = s
        .totals(
            &Scope::Customers(vec!["c1".into()]),
            &Filter {
                providers: vec!["bank".into()],
                ..all()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (
            scoped_bank.customers,
            scoped_bank.oldest_as_of,
            scoped_bank.newest_as_of
        ),
        (1, Some(t(11)), Some(t(11)))
    );
    // A customer without any snapshot is not covered.
    s.create_customer(&customer("c9", &[])).await.unwrap();
    assert_eq!(s.totals(&Scope::All, &all()).await.unwrap().customers, 3);

    // Totals follow changes: a balance change, a close, a deleted customer.
    let mut a = every.iter().find(|a| a.id == "p100:c1-0").unwrap().clone();
    let others: Vec<Account> = every
        .iter()
        .filter(|x| {
            x.customer_id == "c1" && x.provider_id == "p100" && x.id != a.id && x.id != "p100:c1-1"
        })
        .map(|x| Account {
            fetched_at: t(100),
            ..x.clone()
        })
        .collect();
    a.balance += d("0.01");
    a.fetched_at = t(100);
    // Another account's balance type changes alone: its count moves to the other type.
    let mut others = others;
    let flipped = others.iter_mut().find(|x| x.id == "p100:c1-2").unwrap();
    flipped.balance_type = match flipped.balance_type {
        BalanceType::Available => BalanceType::Unspecified,
        BalanceType::Unspecified => BalanceType::Available,
    };
    let mut snap = others.clone();
    snap.push(a.clone());
    s.save_snapshot(&meta("c1", "p100", 100), &snap)
        .await
        .unwrap();
    s.delete_customer("c3").await.unwrap();
    let now: Vec<Account> = s.list_accounts(&Scope::All, &all()).await.unwrap();
    assert!(now.iter().any(|x| {
        x.id == "p100:c1-2"
            && x.balance_type
                != every
                    .iter()
                    .find(|e| e.id == "p100:c1-2")
                    .unwrap()
                    .balance_type
    }));
    let got = s.totals(&Scope::All, &all()).await.unwrap();
    assert_eq!(got_of(&got), want_of(&now));
    for f in filters() {
        let got = s.totals(&Scope::All, &f).await.unwrap();
        assert_eq!(
            got_of(&got),
            want_of(now.iter().filter(|a| f.matches(a))),
            "{f:?}"
        );
    }
    assert_eq!(got.customers, 2);
    assert_eq!(now.len(), 12 + 12 - 1);
}
