//! CSV exports (issue 17): the list, the balance and the balance history as CSV hold the same
//! rows and numbers as the JSON for the same parameters, on SQLite and PostgreSQL; a reader's
//! export holds only its scope; awkward decimals come out exactly; an admin's exports are
//! audited whichever way CSV was asked.

use crate::common;
use crate::support;

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde_json::{Value, json};
use support::{enc, pages};

/// Page size of the JSON list, and (as `server.max_page_size`) the export's batch: small, so
/// a streamed export crosses many batches.
const PAGE: u32 = 7;

fn options() -> common::Options {
    common::Options {
        configure: Box::new(|c| c.server.max_page_size = PAGE),
        ..Default::default()
    }
}

struct Csv {
    headers: reqwest::header::HeaderMap,
    rows: Vec<BTreeMap<String, String>>,
}

/// GET `path` as `key` with `accept`; panics unless 200 and `text/csv`.
async fn csv_as(app: &common::TestApp, key: &str, path: &str, accept: Option<&str>) -> Csv {
    let mut req = app
        .client
        .get(format!("{}{path}", app.url))
        .header("x-api-key", key);
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    assert_eq!(status, 200, "GET {path}: {text}");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv"),
        "{headers:?}"
    );
    assert!(text.ends_with("\r\n"), "RFC 4180 lines: {text:?}");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let columns: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let rows = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            assert_eq!(r.len(), columns.len(), "every row has every column");
            columns
                .iter()
                .cloned()
                .zip(r.iter().map(String::from))
                .collect()
        })
        .collect();
    Csv { headers, rows }
}

async fn csv(app: &common::TestApp, path: &str) -> Csv {
    csv_as(app, &app.admin_key.clone(), path, None).await
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Two customers in the store, with awkward decimals: a P100 balance of 1e-7 and a Corebanq
/// balance of 28 significant digits, and a manual USD rate of 0.09872368.
async fn awkward(app: &common::TestApp) {
    let mut p = app.sim.p100_customer("gen-000002").unwrap();
    let first = p.fiat_balances.first_mut().unwrap();
    first.amount = "0.0000001".parse().unwrap();
    app.sim.put_p100_data("gen-000002", p);
    let bank = app.sim.corebanq_accounts("gen-000002").unwrap();
    let wide: Decimal = "1234567890.123456789012345678".parse().unwrap();
    assert!(
        app.sim
            .set_corebanq_balance("gen-000002", &bank[0].id, wide)
    );
    let r = app
        .put("/v2/rates", json!({"rates": {"USD": "0.09872368"}}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    app.customer("l1", Some("gen-000002"), Some("gen-000002"))
        .await;
    app.customer("l2", Some("gen-000003"), Some("gen-000003"))
        .await;
    support::fetch(app, "l1").await;
    support::fetch(app, "l2").await;
}

/// Every account of a JSON list, page after page, in order (stacked pages flattened).
async fn json_accounts(app: &common::TestApp, key: &str, query: &str) -> (Vec<Value>, Vec<Value>) {
    let path = support::with_query(&format!("/v2/accounts?limit={PAGE}"), query);
    let mut accounts = Vec::new();
    let mut rates = Vec::new();
    for page in pages(app, key, &path).await {
        for item in page["data"].as_array().unwrap() {
            match item["accounts"].as_array() {
                Some(group) => accounts.extend(group.iter().cloned()),
                None => accounts.push(item.clone()),
            }
        }
        rates.extend(page["rates"].as_array().unwrap().iter().cloned());
    }
    (accounts, rates)
}

/// The CSV rows are the JSON accounts, in the same order, field by field; each converted row's
/// rate is the JSON's rate of its currency.
fn same_accounts(query: &str, json: &[Value], rates: &[Value], rows: &[BTreeMap<String, String>]) {
    assert_eq!(rows.len(), json.len(), "{query}: one row per account");
    for (row, a) in rows.iter().zip(json) {
        for field in [
            "id",
            "customer_id",
            "provider",
            "provider_account_id",
            "currency",
            "is_crypto",
            "status",
            "balance",
            "balance_type",
            "balance_in_base",
            "as_of",
            "observed_at",
            "iban",
        ] {
            assert_eq!(
                row[field],
                text(&a[field]),
                "{query}: {field} of {}",
                a["id"]
            );
        }
        if a["balance_in_base"].is_null() || row["currency"] == row["target_currency"] {
            assert_eq!(row["rate"], "", "{query}: no rate for {}", a["id"]);
            continue;
        }
        let currencies = row["rate_currency"].split(';');
        let values = row["rate"].split(';');
        let sources = row["rate_source"].split(';');
        for ((c, v), source) in currencies.zip(values).zip(sources) {
            let json_rate = rates
                .iter()
                .find(|r| r["currency"] == c && r["rate"] == v)
                .unwrap_or_else(|| panic!("{query}: the JSON names the rate {c} {v}: {rates:?}"));
            let want = json_rate["source"].as_str().unwrap();
            assert!(source.starts_with(want), "{query}: {source}");
        }
        assert!(!row["rate_as_of"].is_empty(), "{query}");
    }
}

const FILTERS: [&str; 9] = [
    "",
    "search.is_crypto=true",
    "search.is_crypto=false&sort=-balance",
    "sort=-balance_in_base",
    "sort=balance_in_base&currency=USD",
    "search.provider=bank",
    "search.id.like=bank&search.customer_id=l1",
    "stack=currency",
    "search.balance.gt=0.5&sort=currency,-id",
];

both!(
    list_exports_are_the_json_row_by_row,
    options(),
    |app: common::TestApp| async move {
        awkward(&app).await;
        let admin = app.admin_key.clone();
        for f in FILTERS {
            let (json, rates) = json_accounts(&app, &admin, f).await;
            assert!(!json.is_empty(), "{f}: the filter finds something");
            let got = csv(&app, &support::with_query("/v2/accounts?format=csv", f)).await;
            same_accounts(f, &json, &rates, &got.rows);
        }
        let all = csv(&app, "/v2/accounts?format=csv").await;
        let balances: Vec<&str> = all.rows.iter().map(|r| r["balance"].as_str()).collect();
        assert!(
            balances.contains(&"0.0000001"),
            "1e-7 exactly: {balances:?}"
        );
        assert!(
            balances.contains(&"1234567890.123456789012345678"),
            "28 significant digits exactly"
        );
        // Each adapter declares what its balance means (issue 17, balance types).
        for r in &all.rows {
            let want = if r["provider"] == common::P100 {
                "available"
            } else {
                "unspecified"
            };
            assert_eq!(r["balance_type"], want, "{r:?}");
        }
        let usd = csv(&app, "/v2/accounts?format=csv&currency=USD").await;
        assert!(
            usd.rows.iter().any(|r| r["rate"].contains("0.09872368")),
            "the manual rate as given"
        );

        // One customer (the loader's path) and an instant (the store's history).
        let (json, rates) = json_accounts(&app, &admin, "customer_id=l1").await;
        let got = csv(&app, "/v2/accounts?format=csv&customer_id=l1").await;
        same_accounts("customer_id=l1", &json, &rates, &got.rows);
        let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let q = format!("at={}", enc(&at));
        let (json, rates) = json_accounts(&app, &admin, &q).await;
        let got = csv(&app, &format!("/v2/accounts?format=csv&{q}")).await;
        same_accounts(&q, &json, &rates, &got.rows);
        assert!(got.rows.iter().all(|r| !r["observed_at"].is_empty()));

        // A cursor resumes the export where a JSON page ended.
        let first = app.ok(&format!("/v2/accounts?limit={PAGE}")).await;
        let cursor = first["next_cursor"].as_str().unwrap();
        let rest = csv(
            &app,
            &format!("/v2/accounts?format=csv&cursor={}", enc(cursor)),
        )
        .await;
        assert_eq!(rest.rows.len() + PAGE as usize, all.rows.len());
        assert_eq!(rest.rows[0]["id"], all.rows[PAGE as usize]["id"]);

        let r = app.get("/v2/accounts?format=csv&limit=5").await;
        assert_eq!(r.status, 400, "an export has no page limit: {}", r.body);
        assert!(r.body.to_string().contains("limit"), "{}", r.body);
        let r = app.get("/v2/accounts?format=xlsx").await;
        assert_eq!(r.status, 400, "{}", r.body);
    }
);

both!(
    exports_are_named_asked_by_accept_and_audited,
    options(),
    |app: common::TestApp| async move {
        awkward(&app).await;
        let admin = app.admin_key.clone();
        let by_accept = csv_as(&app, &admin, "/v2/accounts", Some("text/csv")).await;
        let by_param = csv(&app, "/v2/accounts?format=csv").await;
        assert_eq!(by_accept.rows, by_param.rows);
        let name = by_accept.headers["content-disposition"].to_str().unwrap();
        assert!(
            name.starts_with("attachment; filename=\"coffer-accounts-20")
                && name.ends_with("Z.csv\""),
            "{name}"
        );
        let json = app
            .request(
                reqwest::Method::GET,
                "/v2/accounts?format=json",
                Some(&admin),
                None,
            )
            .await;
        assert!(
            json.body["data"].is_array(),
            "format=json wins over nothing"
        );
        csv_as(
            &app,
            &admin,
            "/v2/accounts/balance?customer_id=l1",
            Some("text/csv"),
        )
        .await;
        let log = app.ok("/v2/audit?action=export").await;
        let targets: Vec<&str> = log["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["target"].as_str().unwrap())
            .collect();
        assert_eq!(
            targets,
            [
                "/v2/accounts/balance?customer_id=l1",
                "/v2/accounts?format=csv",
                "/v2/accounts",
            ],
            "every export, asked by parameter or by Accept"
        );
    }
);

both!(
    a_readers_export_holds_only_its_scope,
    options(),
    |app: common::TestApp| async move {
        awkward(&app).await;
        let reader = app.reader_key(&["l1"]).await;
        let got = csv_as(&app, &reader, "/v2/accounts?format=csv", None).await;
        assert!(!got.rows.is_empty());
        assert!(got.rows.iter().all(|r| r["customer_id"] == "l1"), "only l1");
        let (json, rates) = json_accounts(&app, &reader, "").await;
        same_accounts("reader", &json, &rates, &got.rows);
        let balance = csv_as(&app, &reader, "/v2/accounts/balance?format=csv", None).await;
        let mine = app
            .ok("/v2/accounts/balance?customer_id=l1&stack=currency")
            .await;
        let total = balance.rows.iter().find(|r| r["row"] == "total").unwrap();
        assert_eq!(total["balance"], text(&mine["exact"]["total_balance"]));
        for path in [
            "/v2/accounts?format=csv&customer_id=l2",
            "/v2/accounts/balance?format=csv&customer_id=l2",
        ] {
            let r = app.get_as(&reader, path).await;
            assert_eq!(
                r.status, 404,
                "{path}: not in scope is not found: {}",
                r.body
            );
        }
        let log = app.ok("/v2/audit?action=export").await;
        assert_eq!(
            log["data"],
            json!([]),
            "a reader's export is not all-customer"
        );
    }
);

/// The balance CSV's group rows are the JSON's groups and its total rows the JSON's totals.
fn same_balance(query: &str, json: &Value, rows: &[BTreeMap<String, String>]) {
    let groups = json["groups"].as_array().unwrap();
    let group_rows: Vec<_> = rows.iter().filter(|r| r["row"] == "group").collect();
    assert_eq!(group_rows.len(), groups.len(), "{query}: a row per group");
    for (row, g) in group_rows.iter().zip(groups) {
        for field in [
            "currency",
            "is_crypto",
            "balance",
            "balance_in_base",
            "accounts_count",
        ] {
            assert_eq!(row[field], text(&g[field]), "{query}: {field}");
        }
        for t in ["available", "unspecified"] {
            assert_eq!(
                row[format!("balance_types_{t}").as_str()],
                text(&g["balance_types"][t]),
                "{query}: a group's {t}"
            );
        }
        if !g["balance_in_base"].is_null() && g["currency"] != json["currency"] {
            assert!(!row["rate"].is_empty(), "{query}: {row:?}");
        }
    }
    for (name, field) in [
        ("fiat", "fiat_balance"),
        ("crypto", "crypto_balance"),
        ("total", "total_balance"),
    ] {
        let row = rows.iter().find(|r| r["row"] == name).unwrap();
        assert_eq!(
            row["balance"],
            text(&json["exact"][field]),
            "{query}: {name}"
        );
        assert_eq!(
            row["balance_in_base"],
            text(&json[field]),
            "{query}: {name}"
        );
        assert_eq!(row["currency"], text(&json["currency"]));
    }
    let total = rows.iter().find(|r| r["row"] == "total").unwrap();
    assert_eq!(
        total["accounts_count"],
        text(&json["accounts_count"]),
        "{query}"
    );
    assert_eq!(total["at"], text(&json["at"]), "{query}");
    for t in ["available", "unspecified"] {
        let column = format!("balance_types_{t}");
        assert_eq!(
            total[column.as_str()],
            text(&json["balance_types"][t]),
            "{query}: the total's {t}"
        );
        for kind in ["fiat", "crypto"] {
            let row = rows.iter().find(|r| r["row"] == kind).unwrap();
            assert_eq!(
                row[column.as_str()],
                "",
                "{query}: the JSON gives none for {kind}"
            );
        }
    }
}

both!(
    balance_and_history_exports_are_the_json,
    options(),
    |app: common::TestApp| async move {
        awkward(&app).await;
        let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let at_q = format!("at={}", enc(&at));
        for f in [
            "",
            "search.is_crypto=false",
            "currency=USD",
            "customer_id=l1",
            "search.provider=bank&customer_id=l2",
            "search.balance_type=available",
            "balance_type=unspecified&customer_id=l1",
            at_q.as_str(),
            &format!("{at_q}&currency=USD"),
        ] {
            let json = app
                .ok(&support::with_query(
                    "/v2/accounts/balance?stack=currency",
                    f,
                ))
                .await;
            let got = csv(
                &app,
                &support::with_query("/v2/accounts/balance?format=csv", f),
            )
            .await;
            same_balance(f, &json, &got.rows);
        }
        let r = app
            .get("/v2/accounts/balance?format=csv&details=true")
            .await;
        assert_eq!(r.status, 400, "{}", r.body);

        // The point at `at` (after every fetch), so it holds every account.
        let q = format!("from={}&to={}&interval=1h&currency=USD", enc(&at), enc(&at));
        let json = app.ok(&format!("/v2/accounts/balance/history?{q}")).await;
        let got = csv(
            &app,
            &format!("/v2/accounts/balance/history?{q}&format=csv"),
        )
        .await;
        let points = json["points"].as_array().unwrap();
        assert_eq!(got.rows.len(), points.len(), "a row per point");
        for (row, p) in got.rows.iter().zip(points) {
            for field in [
                "at",
                "total_balance",
                "fiat_balance",
                "crypto_balance",
                "partial",
            ] {
                assert_eq!(row[field], text(&p[field]), "{field}");
            }
            for t in ["available", "unspecified"] {
                let column = format!("balance_types_{t}");
                assert_eq!(row[column.as_str()], text(&p["balance_types"][t]), "{t}");
            }
            assert_eq!(row["currency"], "USD");
            assert!(!row["rate"].is_empty(), "the rates in force at the point");
            assert!(!row["observed_at"].is_empty(), "{row:?}");
        }
    }
);
