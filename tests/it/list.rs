//! The unified list: keyset pagination visits every account exactly once in order, field
//! searches and free text find exactly what they should, and the stacked format.

use crate::common;
use crate::support;

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use serde_json::Value;
use support::{dec, enc, ids, ids_in_order, list_accounts, pages};

/// Two customers, fetched so the store holds them (an admin's all-customer list reads the store).
async fn two_customers(app: &common::TestApp) -> Vec<Value> {
    app.customer("l1", Some("gen-000002"), Some("gen-000002"))
        .await;
    app.customer("l2", Some("gen-000003"), Some("gen-000003"))
        .await;
    let mut all = support::fetch(app, "l1").await;
    all.extend(support::fetch(app, "l2").await);
    assert_eq!(all.len(), 40);
    all
}

/// Whether `a` may come before `b` under `field` (ascending unless `desc`).
fn ordered(a: &Value, b: &Value, field: &str, desc: bool) -> bool {
    let cmp = match field {
        "balance" | "balance_in_base" => dec(&a[field]).cmp(&dec(&b[field])),
        _ => a[field].as_str().unwrap().cmp(b[field].as_str().unwrap()),
    };
    let cmp = if desc { cmp.reverse() } else { cmp };
    match cmp {
        // The list sorts by the exact value; the answer shows it rounded, so equal-looking
        // values may come in any id order.
        std::cmp::Ordering::Equal if field == "balance_in_base" => true,
        std::cmp::Ordering::Less => true,
        std::cmp::Ordering::Greater => false,
        // Ties are broken by id, ascending.
        std::cmp::Ordering::Equal => a["id"].as_str().unwrap() < b["id"].as_str().unwrap(),
    }
}

both!(
    pagination_visits_every_account_once,
    common::Options::default(),
    |app: common::TestApp| async move {
        let all = two_customers(&app).await;
        let every = ids(&all);
        for (sort, field, desc) in [
            ("-balance_in_base", "balance_in_base", true),
            ("currency", "currency", false),
            ("balance", "balance", false),
            ("-balance", "balance", true),
            ("", "id", false),
        ] {
            let one_page = list_accounts(&app, &format!("sort={sort}")).await;
            assert_eq!(ids(&one_page), every, "sort={sort}");
            for w in one_page.windows(2) {
                assert!(
                    ordered(&w[0], &w[1], field, desc),
                    "sort={sort}: {} before {}",
                    w[0],
                    w[1]
                );
            }
            for limit in [1, 7, 40] {
                let bodies = pages(
                    &app,
                    &app.admin_key,
                    &format!("/v2/accounts?sort={sort}&limit={limit}"),
                )
                .await;
                let mut visited = Vec::new();
                for b in &bodies {
                    let data = b["data"].as_array().unwrap();
                    assert!(data.len() <= limit, "page larger than limit {limit}");
                    assert_eq!(b["matched"], 40);
                    visited.extend(ids_in_order(data));
                }
                assert_eq!(
                    bodies.len(),
                    40usize.div_ceil(limit),
                    "sort={sort} limit={limit}"
                );
                assert_eq!(
                    visited,
                    ids_in_order(&one_page),
                    "sort={sort} limit={limit}"
                );
            }
        }
        // A cursor follows its own sort: replaying it under another sort is refused, not misread.
        let first = app.ok("/v2/accounts?sort=currency&limit=5").await;
        let c = enc(first["next_cursor"].as_str().unwrap());
        let r = app
            .get(&format!("/v2/accounts?sort=balance&limit=5&cursor={c}"))
            .await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(r.body["details"]["parameter"], "cursor");
        // Pagination with filters: only matching accounts, each once.
        let bodies = pages(
            &app,
            &app.admin_key,
            "/v2/accounts?is_crypto=true&limit=3&sort=-balance_in_base",
        )
        .await;
        let crypto: Vec<String> = bodies
            .iter()
            .flat_map(|b| ids_in_order(b["data"].as_array().unwrap()))
            .collect();
        let want: BTreeSet<String> = ids(&all
            .iter()
            .filter(|a| a["is_crypto"] == true)
            .cloned()
            .collect::<Vec<_>>());
        assert_eq!(crypto.len(), want.len());
        assert_eq!(crypto.into_iter().collect::<BTreeSet<_>>(), want);
        app.stop().await;
    }
);

fn matching(all: &[Value], keep: impl Fn(&Value) -> bool) -> BTreeSet<String> {
    ids(&all.iter().filter(|a| keep(a)).cloned().collect::<Vec<_>>())
}

async fn found(app: &common::TestApp, query: &str) -> BTreeSet<String> {
    ids(&list_accounts(app, query).await)
}

both!(
    field_searches_and_free_text,
    common::Options::default(),
    |app: common::TestApp| async move {
        let all = two_customers(&app).await;

        // search.id.like: a piece of one account's id, in upper case, finds exactly that account.
        let target = &all[5];
        let id = target["id"].as_str().unwrap();
        let piece = &target["provider_account_id"].as_str().unwrap()[..13];
        assert_eq!(
            found(
                &app,
                &format!("search.id.like={}", enc(&piece.to_uppercase()))
            )
            .await,
            BTreeSet::from([id.to_owned()])
        );
        assert_eq!(
            found(&app, &format!("search.id={}", enc(id))).await,
            BTreeSet::from([id.to_owned()])
        );
        assert_eq!(
            found(&app, "search.id.like=bank:").await,
            matching(&all, |a| a["provider"] == "bank")
        );

        // search.currency.in: any of the list (two currencies the data holds, and one it does not).
        let mut by_cur: BTreeMap<String, usize> = BTreeMap::new();
        for a in &all {
            *by_cur
                .entry(a["currency"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
        let two: Vec<&String> = by_cur.keys().take(2).collect();
        let q = enc(&format!("{},{},XYZ", two[0], two[1].to_lowercase()));
        let want = matching(&all, |a| {
            a["currency"] == two[0].as_str() || a["currency"] == two[1].as_str()
        });
        assert_eq!(found(&app, &format!("search.currency.in={q}")).await, want);
        assert_eq!(want.len(), by_cur[two[0]] + by_cur[two[1]]);
        // USDC and EURC, as a dashboard would ask; the answer is exactly those accounts.
        let stable = matching(&all, |a| a["currency"] == "USDC" || a["currency"] == "EURC");
        assert!(!stable.is_empty() && stable.len() < all.len());
        assert_eq!(found(&app, "search.currency.in=USDC,EURC").await, stable);

        // search.main_wallet_address.like: a piece of an address, case-insensitive.
        let with_addr = all
            .iter()
            .find(|a| a["main_wallet_address"].is_string())
            .unwrap();
        let addr = with_addr["main_wallet_address"].as_str().unwrap();
        let mid = &addr[4..20];
        let want = matching(&all, |a| {
            a["main_wallet_address"]
                .as_str()
                .is_some_and(|w| w.to_lowercase().contains(&mid.to_lowercase()))
        });
        assert!(want.contains(with_addr["id"].as_str().unwrap()));
        assert_eq!(
            found(
                &app,
                &format!(
                    "search.main_wallet_address.like={}",
                    enc(&mid.to_uppercase())
                )
            )
            .await,
            want
        );
        assert_eq!(
            found(&app, &format!("search.main_wallet_address={}", enc(addr))).await,
            matching(&all, |a| a["main_wallet_address"] == addr)
        );

        // search.customer_id and customer_id.
        let l1 = matching(&all, |a| a["customer_id"] == "l1");
        assert_eq!(l1.len(), 20);
        assert_eq!(found(&app, "search.customer_id=l1").await, l1);
        assert_eq!(found(&app, "customer_id=l1").await, l1);
        assert_eq!(found(&app, "search.customer_id.in=l1,l2").await, ids(&all));
        assert_eq!(
            found(&app, "search.customer_id.like=L2").await,
            matching(&all, |a| a["customer_id"] == "l2")
        );

        // search.iban and free text: an IBAN piece, a wallet address, an id piece.
        let with_iban = all.iter().find(|a| a["iban"].is_string()).unwrap();
        let iban = with_iban["iban"].as_str().unwrap();
        assert_eq!(
            found(&app, &format!("search.iban={iban}")).await,
            matching(&all, |a| a["iban"] == iban)
        );
        let text = |t: &str| {
            let t = t.to_lowercase();
            matching(&all, move |a| {
                let hit = |v: &Value| v.as_str().is_some_and(|s| s.to_lowercase().contains(&t));
                hit(&a["id"])
                    || hit(&a["iban"])
                    || a["wallets"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|w| hit(&w["address"]))
            })
        };
        for t in [&iban[6..18], addr, &addr[3..15].to_uppercase(), piece] {
            let want = text(t);
            assert!(!want.is_empty() && want.len() < all.len(), "{t}");
            assert_eq!(
                found(&app, &format!("search={}", enc(t))).await,
                want,
                "search={t}"
            );
        }
        assert!(
            found(&app, "search=no-such-thing-anywhere")
                .await
                .is_empty()
        );
        // An empty search box searches nothing.
        assert_eq!(found(&app, "search=").await, ids(&all));
        app.stop().await;
    }
);

both!(
    stacked_list,
    common::Options::default(),
    |app: common::TestApp| async move {
        let all = two_customers(&app).await;
        let mut by_cur: BTreeMap<String, (Decimal, usize)> = BTreeMap::new();
        for a in &all {
            let e = by_cur
                .entry(a["currency"].as_str().unwrap().to_owned())
                .or_default();
            e.0 += dec(&a["balance"]);
            e.1 += 1;
        }
        // One page: every group once, with all its accounts.
        let one = app.ok("/v2/accounts?stack=currency&limit=1000").await;
        let groups = one["data"].as_array().unwrap();
        assert_eq!(groups.len(), by_cur.len());
        for g in groups {
            let cur = g["currency"].as_str().unwrap();
            let accounts = g["accounts"].as_array().unwrap();
            assert!(accounts.iter().all(|a| a["currency"] == cur), "{g}");
            assert_eq!(dec(&g["balance"]), by_cur[cur].0, "{g}");
            assert_eq!(g["accounts_count"], by_cur[cur].1);
            assert_eq!(accounts.len(), by_cur[cur].1);
            let sum: Decimal = accounts.iter().map(|a| dec(&a["balance_in_base"])).sum();
            let tolerance = Decimal::new(5, 3) * Decimal::from(accounts.len());
            assert!((sum - dec(&g["balance_in_base"])).abs() <= tolerance, "{g}");
        }
        // The page limit counts accounts, and paging through gives every account once.
        let bodies = pages(
            &app,
            &app.admin_key,
            "/v2/accounts?group_by=currency&limit=6",
        )
        .await;
        let mut seen = Vec::new();
        for b in &bodies {
            let n: usize = b["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g["accounts"].as_array().unwrap().len())
                .sum();
            assert!(n <= 6, "{b}");
            for g in b["data"].as_array().unwrap() {
                // Group totals cover every matching account, not only this page's.
                assert_eq!(
                    g["accounts_count"],
                    by_cur[g["currency"].as_str().unwrap()].1
                );
                seen.extend(ids_in_order(g["accounts"].as_array().unwrap()));
            }
        }
        assert_eq!(seen.len(), 40);
        assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), ids(&all));
        let flat: Vec<String> = groups
            .iter()
            .flat_map(|g| ids_in_order(g["accounts"].as_array().unwrap()))
            .collect();
        assert_eq!(seen, flat, "paged order differs from the one-page order");
        app.stop().await;
    }
);

both!(
    stacked_pages_from_the_store_group_as_the_balance,
    common::Options::default(),
    |app: common::TestApp| async move {
        two_customers(&app).await;
        let reader = app.reader_key(&["l1", "l2"]).await;
        // An admin's and a reader-of-both's stacked pages are read from the store a page at a
        // time; each group is the balance answer's group for the same question, and the pages'
        // accounts come in the currency-first order the unstacked list gives.
        for key in [app.admin_key.clone(), reader] {
            for filter in ["", "&is_crypto=true", "&search.balance.gt=100&currency=USD"] {
                let balance = app
                    .get_as(
                        &key,
                        &format!("/v2/accounts/balance?stack=currency{filter}"),
                    )
                    .await
                    .body;
                let want: BTreeMap<String, Value> = balance["groups"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|g| (g["currency"].as_str().unwrap().to_owned(), g.clone()))
                    .collect();
                let stacked = pages(
                    &app,
                    &key,
                    &format!("/v2/accounts?stack=currency&limit=4{filter}"),
                )
                .await;
                let mut seen = Vec::new();
                for b in &stacked {
                    assert_eq!(b["matched"], balance["accounts_count"], "{filter}: {b}");
                    for g in b["data"].as_array().unwrap() {
                        let mut group = g.clone();
                        let accounts = group.as_object_mut().unwrap().remove("accounts").unwrap();
                        let cur = g["currency"].as_str().unwrap();
                        assert_eq!(group, want[cur], "{filter}: the group of {cur}");
                        seen.extend(ids_in_order(accounts.as_array().unwrap()));
                    }
                }
                let flat = pages(
                    &app,
                    &key,
                    &format!("/v2/accounts?sort=currency&limit=9{filter}"),
                )
                .await;
                let order: Vec<String> = flat
                    .iter()
                    .flat_map(|b| ids_in_order(b["data"].as_array().unwrap()))
                    .collect();
                assert_eq!(seen, order, "{filter}");
            }
        }
        app.stop().await;
    }
);
