//! A reader scoped to customer A can neither see nor infer customer B's accounts, through any
//! endpoint or parameter: what is outside its scope looks exactly like what does not exist.

use crate::common;
use crate::support;

use coffer_sim::Provider;
use reqwest::Method;
use serde_json::Value;
use support::{detail_accounts, enc, ids, ids_in_order, list_accounts, pages};

struct World {
    reader: String,
    a: Vec<Value>,
    b: Vec<Value>,
}

/// A (gen-000001) and B (gen-000002), both fetched by an admin so B is in the store too.
async fn world(app: &common::TestApp) -> World {
    app.customer("cust-a", Some("gen-000001"), Some("gen-000001"))
        .await;
    app.customer("cust-b", Some("gen-000002"), Some("gen-000002"))
        .await;
    let a = support::fetch(app, "cust-a").await;
    let b = support::fetch(app, "cust-b").await;
    assert_eq!((a.len(), b.len()), (20, 20));
    let reader = app.reader_key(&["cust-a"]).await;
    World { reader, a, b }
}

fn only_a(accounts: &[Value], what: &str) {
    assert!(
        accounts.iter().all(|a| a["customer_id"] == "cust-a"),
        "{what}: another customer's account leaked"
    );
}

both!(
    customer_id_of_another_looks_missing,
    common::Options::default(),
    |app: common::TestApp| async move {
        let w = world(&app).await;
        let r = &w.reader;
        for (path_b, path_none) in [
            (
                "/v2/accounts/balance?customer_id=cust-b",
                "/v2/accounts/balance?customer_id=cust-zz",
            ),
            (
                "/v2/accounts/balance?customer_id=cust-b&details=true&stack=currency",
                "/v2/accounts/balance?customer_id=cust-zz&details=true&stack=currency",
            ),
            (
                "/v2/accounts?customer_id=cust-b",
                "/v2/accounts?customer_id=cust-zz",
            ),
            ("/v2/customers/cust-b", "/v2/customers/cust-zz"),
        ] {
            let b = app.get_as(r, path_b).await;
            let none = app.get_as(r, path_none).await;
            assert_eq!(b.status, 404, "{path_b}: {}", b.body);
            assert_eq!(
                (b.status, &b.body),
                (none.status, &none.body),
                "{path_b} differs from a missing customer"
            );
        }
        // Refreshing B is refused the same way, and does not call B's providers.
        let calls = app.sim.calls(Provider::P100, "gen-000002");
        let b = app
            .request(Method::POST, "/v2/customers/cust-b/refresh", Some(r), None)
            .await;
        let none = app
            .request(Method::POST, "/v2/customers/cust-zz/refresh", Some(r), None)
            .await;
        assert_eq!(b.status, 404);
        assert_eq!(b.body, none.body);
        assert_eq!(app.sim.calls(Provider::P100, "gen-000002"), calls);
        // One account of B by id looks like an account that does not exist.
        let b_id = w.b[0]["id"].as_str().unwrap();
        let b = app.get_as(r, &format!("/v2/accounts/{}", enc(b_id))).await;
        let none = app
            .get_as(r, "/v2/accounts/p100:00000000-0000-0000-0000-000000000000")
            .await;
        assert_eq!(b.status, 404, "{}", b.body);
        assert_eq!(b.body, none.body);
        // The admin sees all of it (so the above could have failed).
        assert_eq!(
            app.get(&format!("/v2/accounts/{}", enc(b_id))).await.status,
            200
        );
        app.ok("/v2/customers/cust-b").await;

        // What A may do works: its own customer, refresh and account.
        assert_eq!(app.get_as(r, "/v2/customers/cust-a").await.status, 200);
        let own = app
            .request(Method::POST, "/v2/customers/cust-a/refresh", Some(r), None)
            .await;
        assert_eq!(own.status, 200, "{}", own.body);
        let a_id = w.a[0]["id"].as_str().unwrap();
        let one = app.get_as(r, &format!("/v2/accounts/{}", enc(a_id))).await;
        assert_eq!(one.status, 200, "{}", one.body);
        assert_eq!(one.body["id"], a_id);
        app.stop().await;
    }
);

both!(
    totals_and_lists_hold_only_the_scope,
    common::Options::default(),
    |app: common::TestApp| async move {
        let w = world(&app).await;
        let r = &w.reader;
        let admin_a = app
            .ok("/v2/accounts/balance?customer_id=cust-a&stack=currency")
            .await;
        let admin_all = app.ok("/v2/accounts/balance").await;
        assert_eq!(admin_all["accounts_count"], 40);

        // Balance without customer_id: A's totals, to the digit; B's currencies are not counted.
        let mine = app
            .get_as(r, "/v2/accounts/balance?details=true&stack=currency")
            .await;
        assert_eq!(mine.status, 200, "{}", mine.body);
        let m = &mine.body;
        assert_eq!(m["accounts_count"], 20);
        assert_eq!(m["total_balance"], admin_a["total_balance"]);
        assert_eq!(m["exact"], admin_a["exact"]);
        assert_eq!(m["groups"], admin_a["groups"]);
        assert_ne!(m["total_balance"], admin_all["total_balance"]);
        // The balance types count A's accounts only.
        assert_eq!(m["balance_types"], admin_a["balance_types"]);
        let n_types = |b: &Value| {
            b["balance_types"]["available"].as_u64().unwrap()
                + b["balance_types"]["unspecified"].as_u64().unwrap()
        };
        assert!(n_types(m) > 0 && n_types(m) <= 20, "{m}");
        assert!(n_types(&admin_all) > n_types(m), "{admin_all}");
        for f in ["search.balance_type=available", "balance_type=unspecified"] {
            let mine = app
                .get_as(r, &format!("/v2/accounts/balance?stack=currency&{f}"))
                .await;
            assert_eq!(mine.status, 200, "{f}: {}", mine.body);
            let admin = app
                .ok(&format!(
                    "/v2/accounts/balance?customer_id=cust-a&stack=currency&{f}"
                ))
                .await;
            for k in ["exact", "balance_types", "groups", "accounts_count"] {
                assert_eq!(mine.body[k], admin[k], "{f}: {k}");
            }
            let list = app
                .get_as(r, &format!("/v2/accounts?limit=1000&{f}"))
                .await
                .body;
            only_a(list["data"].as_array().unwrap(), f);
            assert_eq!(list["matched"], admin["accounts_count"], "{f}: {list}");
        }
        assert_eq!(ids(&detail_accounts(m)), ids(&w.a));
        assert!(m.get("coverage").is_none_or(|c| c["customers"] == 1), "{m}");

        // The list, plain and stacked.
        let l = app.get_as(r, "/v2/accounts?limit=1000").await.body;
        assert_eq!(ids(l["data"].as_array().unwrap()), ids(&w.a));
        assert_eq!(l["matched"], 20);
        let stacked = app
            .get_as(r, "/v2/accounts?limit=1000&stack=currency")
            .await
            .body;
        let n: usize = stacked["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["accounts_count"].as_u64().unwrap() as usize)
            .sum();
        assert_eq!(n, 20, "{stacked}");

        // Field searches and free text aimed at B find nothing of B.
        let b0 = &w.b[0];
        let b_addr =
            w.b.iter()
                .find_map(|a| a["main_wallet_address"].as_str())
                .unwrap();
        let b_iban = w.b.iter().find_map(|a| a["iban"].as_str());
        let b_prefix = &b0["provider_account_id"].as_str().unwrap()[..8];
        let mut probes = vec![
            "search.customer_id=cust-b".to_owned(),
            "search.customer_id.in=cust-a,cust-b".to_owned(),
            "search.customer_id.like=b".to_owned(),
            format!("search.id.like={b_prefix}"),
            format!("search.id={}", enc(b0["id"].as_str().unwrap())),
            format!("search={}", enc(b_addr)),
            format!("search.main_wallet_address={}", enc(b_addr)),
            format!("search.main_wallet_address.like={}", enc(&b_addr[3..12])),
        ];
        if let Some(iban) = b_iban {
            probes.push(format!("search={iban}"));
            probes.push(format!("search.iban={iban}"));
        }
        for q in &probes {
            let admin = list_accounts(&app, q).await;
            assert!(
                admin.iter().any(|a| a["customer_id"] == "cust-b"),
                "{q}: the probe does not find B even for an admin"
            );
            let got = app.get_as(r, &format!("/v2/accounts?limit=1000&{q}")).await;
            assert_eq!(got.status, 200, "{q}: {}", got.body);
            only_a(got.body["data"].as_array().unwrap(), q);
            assert_eq!(
                got.body["matched"],
                got.body["data"].as_array().unwrap().len(),
                "{q}"
            );
        }
        // B's currencies cannot be inferred from the reader's rates either: only rates its own
        // accounts use are listed.
        let a_currencies: std::collections::BTreeSet<&str> =
            w.a.iter()
                .map(|a| a["currency"].as_str().unwrap())
                .collect();
        for rate in m["rates"].as_array().unwrap() {
            assert!(
                a_currencies.contains(rate["currency"].as_str().unwrap()),
                "{rate}"
            );
        }
        app.stop().await;
    }
);

both!(
    admin_cursor_replayed_by_reader,
    common::Options::default(),
    |app: common::TestApp| async move {
        let w = world(&app).await;
        // The admin pages through everything; at each admin cursor the reader resumes and sees
        // only A's accounts, each once, in the same order.
        let admin_pages = pages(
            &app,
            &app.admin_key,
            "/v2/accounts?limit=3&sort=-balance_in_base",
        )
        .await;
        assert!(admin_pages.len() > 5);
        let reader_all = pages(
            &app,
            &w.reader,
            "/v2/accounts?limit=1000&sort=-balance_in_base",
        )
        .await;
        let reader_order = ids_in_order(reader_all[0]["data"].as_array().unwrap());
        assert_eq!(reader_order.len(), 20);
        let mut checked_b_cursor = false;
        for (i, p) in admin_pages.iter().enumerate() {
            let Some(c) = p["next_cursor"].as_str() else {
                continue;
            };
            let last = p["data"].as_array().unwrap().last().unwrap();
            checked_b_cursor |= last["customer_id"] == "cust-b";
            let got = support::pages_from(
                &app,
                &w.reader,
                "/v2/accounts?limit=4&sort=-balance_in_base",
                Some(c),
            )
            .await;
            let mut seen = Vec::new();
            for g in &got {
                only_a(g["data"].as_array().unwrap(), &format!("admin cursor {i}"));
                seen.extend(ids_in_order(g["data"].as_array().unwrap()));
            }
            // A suffix of the reader's own order.
            assert!(reader_order.ends_with(&seen), "admin cursor {i}: {seen:?}");
        }
        assert!(
            checked_b_cursor,
            "no admin cursor pointed at one of B's accounts"
        );
        app.stop().await;
    }
);
