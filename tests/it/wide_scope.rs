//! A reader whose key names several customers is answered from the store for those customers,
//! as an admin's all-customer question is (issue 21, deliverable 4): no provider is called,
//! the answer says what it covers (`coverage`), its pages and totals are those customers' own
//! accounts, and nothing of a customer outside the key appears. A key naming one customer keeps
//! the freshness path of that customer's question.

use crate::common;
use crate::support;

use std::collections::{BTreeMap, BTreeSet};

use coffer_sim::Provider;
use rust_decimal::Decimal;
use serde_json::Value;
use support::{dec, ids, pages};

/// Every provider call the simulators received.
fn provider_calls(app: &common::TestApp) -> u64 {
    app.sim.total_calls(Provider::P100) + app.sim.total_calls(Provider::Corebanq)
}

/// The ids of every page's accounts, in order, each once.
fn paged_ids(bodies: &[Value]) -> Vec<String> {
    let out: Vec<String> = bodies
        .iter()
        .flat_map(|b| b["data"].as_array().unwrap().clone())
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    let once: BTreeSet<&String> = out.iter().collect();
    assert_eq!(once.len(), out.len(), "an account on two pages: {out:?}");
    out
}

/// Per currency, the exact sum of the accounts' balances.
fn sums(accounts: &[&Value]) -> BTreeMap<String, Decimal> {
    let mut out = BTreeMap::new();
    for a in accounts {
        *out.entry(a["currency"].as_str().unwrap().to_owned())
            .or_insert(Decimal::ZERO) += dec(&a["balance"]);
    }
    out
}

both!(
    a_reader_of_several_customers_is_answered_from_the_store,
    common::Options::default(),
    |app: common::TestApp| async move {
        for (c, user) in [
            ("wa", "gen-000001"),
            ("wb", "gen-000002"),
            ("wc", "gen-000003"),
        ] {
            app.customer(c, Some(user), Some(user)).await;
        }
        let a = support::fetch(&app, "wa").await;
        let b = support::fetch(&app, "wb").await;
        support::fetch(&app, "wc").await;
        let mine: Vec<&Value> = a.iter().chain(&b).collect();
        let want: BTreeSet<String> = ids(&a).union(&ids(&b)).cloned().collect();
        assert_eq!(want.len(), 40);
        let reader = app.reader_key(&["wa", "wb"]).await;
        app.sim.reset_calls();

        // The balance: the two customers' accounts, summed by the store, with coverage.
        let bal = app
            .get_as(&reader, "/v2/accounts/balance?stack=currency&max_age=0")
            .await;
        assert_eq!(bal.status, 200, "{}", bal.body);
        let bal = bal.body;
        assert_eq!(bal["coverage"]["customers"], 2, "{bal}");
        assert_eq!(bal["accounts_count"], 40, "{bal}");
        let groups: BTreeMap<String, Decimal> = bal["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                (
                    g["currency"].as_str().unwrap().to_owned(),
                    dec(&g["balance"]),
                )
            })
            .collect();
        assert_eq!(groups, sums(&mine), "{bal}");
        let detail = app
            .get_as(&reader, "/v2/accounts/balance?details=true")
            .await
            .body;
        assert_eq!(ids(&support::detail_accounts(&detail)), want, "{detail}");
        assert_eq!(detail["coverage"]["customers"], 2, "{detail}");

        // The list, page by page, by id, by balance and by converted value.
        for sort in ["", "&sort=-balance", "&sort=-balance_in_base"] {
            let path = format!("/v2/accounts?limit=7{sort}");
            let bodies = pages(&app, &reader, &path).await;
            let got = paged_ids(&bodies);
            assert_eq!(got.iter().cloned().collect::<BTreeSet<_>>(), want, "{path}");
            for body in &bodies {
                assert_eq!(body["matched"], 40, "{path}: {body}");
                assert_eq!(body["coverage"]["customers"], 2, "{path}: {body}");
            }
            if sort.is_empty() {
                let mut sorted = got.clone();
                sorted.sort();
                assert_eq!(got, sorted, "{path}: by id");
            }
        }
        let filtered = app
            .get_as(&reader, "/v2/accounts?limit=1000&is_crypto=true")
            .await
            .body;
        let crypto: BTreeSet<String> = mine
            .iter()
            .filter(|a| a["is_crypto"] == true)
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            ids(filtered["data"].as_array().unwrap()),
            crypto,
            "{filtered}"
        );

        // The export streams the same accounts.
        let r = app
            .client
            .get(format!("{}/v2/accounts?format=csv", app.url))
            .header("x-api-key", &reader)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        let mut csv = csv::Reader::from_reader(text.as_bytes());
        let id_col = csv
            .headers()
            .unwrap()
            .iter()
            .position(|h| h == "id")
            .unwrap();
        let exported: BTreeSet<String> = csv
            .records()
            .map(|r| r.unwrap()[id_col].to_owned())
            .collect();
        assert_eq!(exported, want);

        // The rates are those the two customers' own accounts were reported with.
        let own: BTreeSet<(String, String)> = mine
            .iter()
            .map(|a| (a["currency"].to_string(), a["provider"].to_string()))
            .collect();
        for r in bal["rates"].as_array().unwrap() {
            if r["source"] == "provider" {
                let key = (r["currency"].to_string(), r["provider"].to_string());
                assert!(own.contains(&key), "{r} is not from wa's or wb's accounts");
            }
        }
        assert_eq!(provider_calls(&app), 0, "a store answer calls no provider");

        // A key naming one customer: that customer's question, through the freshness path.
        let one = app.reader_key(&["wc"]).await;
        let r = app.get_as(&one, "/v2/accounts/balance?max_age=0").await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.get("coverage").is_none(), "{}", r.body);
        assert!(
            provider_calls(&app) > 0,
            "max_age=0 fetches the one customer"
        );
    }
);
