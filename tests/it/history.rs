//! Series (`GET /v2/accounts/balance/history`) and one account's changes
//! (`GET /v2/accounts/{id}/history`) over HTTP on SQLite and PostgreSQL, on three epochs an
//! hour apart (`timeline`): every point of a series equals the `at=` answer for its instant,
//! with every filter; bad input is 400 naming the parameter; the changes are newest first,
//! keyset-paginated and scope-checked.

use crate::common;
use crate::timeline;

use serde_json::Value;
use timeline::{before, micros, parse, text_as};

/// The fields of an `at=` balance answer that a point repeats.
fn point_of(balance: &Value) -> Value {
    let mut p = serde_json::Map::new();
    for k in [
        "total_balance",
        "fiat_balance",
        "crypto_balance",
        "balance_types",
        "groups",
        "partial",
        "warnings",
    ] {
        if let Some(v) = balance.get(k) {
            p.insert(k.to_owned(), v.clone());
        }
    }
    Value::Object(p)
}

/// Checks every point of the series against `at=` with the same filters, as `key`.
async fn series_matches_at(app: &common::TestApp, key: &str, series: &str, filters: &str) -> Value {
    let s = parse(&text_as(app, key, &format!("{series}&{filters}")).await);
    let points = s["points"].as_array().unwrap();
    assert!(!points.is_empty(), "{s}");
    for p in points {
        let at = p["at"].as_str().unwrap();
        let sep = if filters.is_empty() { "" } else { "&" };
        let path = format!("/v2/accounts/balance?at={at}{sep}{filters}");
        let b = parse(&text_as(app, key, &path).await);
        let mut mine = p.clone();
        mine.as_object_mut().unwrap().remove("at");
        assert_eq!(mine, point_of(&b), "{series}&{filters} at {at}");
        assert_eq!(s["currency"], b["currency"], "{filters}");
    }
    s
}

async fn every_point_is_the_at_answer(backend: common::Backend) {
    let Some(app) = timeline::durable(backend, Box::new(|_| {})).await else {
        return;
    };
    let t = timeline::three_epochs(&app).await;
    let hourly = format!(
        "/v2/accounts/balance/history?from={}&to={}&interval=1h",
        micros(before(&t, 3)),
        micros(t.end)
    );
    let admin = app.admin_key.clone();
    let all = series_matches_at(&app, &admin, &hourly, "").await;
    let points = all["points"].as_array().unwrap();
    assert_eq!(points.len(), 4, "{all}");
    assert_eq!(all["interval"], "1h");
    // Before the first epoch nothing was observed; then each epoch differs from the last.
    assert_eq!(points[0]["partial"], true, "{all}");
    assert_eq!(points[0]["total_balance"], "0.00", "{all}");
    let totals: Vec<&Value> = points[1..].iter().map(|p| &p["total_balance"]).collect();
    assert!(
        totals[0] != totals[1] && totals[1] != totals[2],
        "{totals:?}"
    );
    // USD has a rate from the first epoch on: before it, the series is refused as `at=` is.
    let r = app.get(&format!("{hourly}&currency=USD")).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["details"]["parameter"], "currency", "{}", r.body);
    let usd = format!(
        "/v2/accounts/balance/history?from={}&interval=1h",
        micros(before(&t, 2) + chrono::TimeDelta::minutes(30))
    );
    series_matches_at(
        &app,
        &admin,
        &usd,
        "customer_id=c0&currency=USD&stack=currency",
    )
    .await;
    for filters in [
        "search.is_crypto=true&stack=currency",
        "search.provider=bank",
        "customer_id=c1&search.status=active",
    ] {
        series_matches_at(&app, &admin, &hourly, filters).await;
    }
    // A reader sees its own customers' series, and a 404 for another's.
    let reader = app.reader_key(&["c0"]).await;
    series_matches_at(&app, &reader, &usd, "currency=USD").await;
    series_matches_at(&app, &reader, &hourly, "").await;
    let theirs = app
        .get_as(&reader, &format!("{hourly}&customer_id=c1"))
        .await;
    assert_eq!(theirs.status, 404, "{}", theirs.body);
    // Daily and monthly series start where asked and step as asked.
    let daily = format!(
        "/v2/accounts/balance/history?from={}&interval=1d",
        micros(before(&t, 48))
    );
    let d = series_matches_at(&app, &admin, &daily, "").await;
    assert_eq!(d["points"].as_array().unwrap().len(), 3, "{d}");
    let monthly = format!(
        "/v2/accounts/balance/history?from={}&to={}&interval=1mo",
        micros(before(&t, 24 * 70)),
        micros(before(&t, 1))
    );
    let m = series_matches_at(&app, &admin, &monthly, "customer_id=c0").await;
    assert_eq!(m["points"].as_array().unwrap().len(), 3, "{m}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_point_is_the_at_answer_sqlite() {
    every_point_is_the_at_answer(common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_point_is_the_at_answer_postgres() {
    every_point_is_the_at_answer(common::Backend::Postgres).await;
}

both!(
    bad_series_input_is_400_naming_it,
    common::Options::default(),
    |app: common::TestApp| async move {
        let now = chrono::Utc::now();
        let ago = |h: i64| micros(now - chrono::TimeDelta::hours(h));
        let future = micros(now + chrono::TimeDelta::hours(1));
        let base = "/v2/accounts/balance/history";
        for (query, param) in [
            (format!("from={}&to={}&interval=1h", ago(1), ago(2)), "from"),
            (format!("from={}&to={future}&interval=1h", ago(1)), "to"),
            (format!("from={}&interval=2h", ago(1)), "interval"),
            (format!("from={}", ago(1)), "interval"),
            ("interval=1h".to_owned(), "from"),
            (format!("from={}&interval=1h", ago(1001)), "interval"),
            ("from=yesterday&interval=1h".to_owned(), "from"),
            (format!("from={}&interval=1h&at={}", ago(2), ago(1)), "at"),
            (
                format!("from={}&interval=1h&details=true", ago(2)),
                "details",
            ),
            (format!("from={}&interval=1h&sort=id", ago(2)), "sort"),
        ] {
            let r = app.get(&format!("{base}?{query}")).await;
            assert_eq!(r.status, 400, "{query}: {}", r.body);
            assert_eq!(r.body["details"]["parameter"], param, "{query}: {}", r.body);
        }
        // 1,000 points is the most, and fine.
        let r = app
            .get(&format!(
                "{base}?from={}&to={}&interval=1h",
                ago(1000),
                ago(1)
            ))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["points"].as_array().unwrap().len(), 1000);
        app.stop().await;
    }
);

async fn one_accounts_changes(backend: common::Backend) {
    let Some(app) = timeline::durable(backend, Box::new(|_| {})).await else {
        return;
    };
    let t = timeline::three_epochs(&app).await;
    let path = format!("/v2/accounts/{}/history", t.changing);
    let all = app.ok(&path).await;
    let data = all["data"].as_array().unwrap();
    let balances: Vec<&str> = data
        .iter()
        .map(|c| c["balance"].as_str().unwrap())
        .collect();
    assert_eq!(balances.len(), 3, "{all}");
    assert_eq!(
        &balances[..2],
        ["12.5", "0.09872368"],
        "newest first: {all}"
    );
    assert!(data.iter().all(|c| c["closed"] == false), "{all}");
    assert_eq!(all["next_cursor"], Value::Null);
    // Each change is what `at=` served from its observation on.
    for c in data {
        let at = c["observed_at"].as_str().unwrap();
        let one = app
            .ok(&format!("/v2/accounts/{}?at={at}", t.changing))
            .await;
        assert_eq!(one["balance"], c["balance"], "{one}");
        assert_eq!(one["status"], c["status"], "{one}");
    }
    // The closed account: opened, then closed.
    let closed = app.ok(&format!("/v2/accounts/{}/history", t.closing)).await;
    let flags: Vec<&Value> = closed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["closed"])
        .collect();
    assert_eq!(flags, [true, false], "{closed}");
    // Pages of one, then a window.
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut p = format!("{path}?limit=1");
        if let Some(c) = &cursor {
            p.push_str(&format!("&cursor={c}"));
        }
        let page = app.ok(&p).await;
        paged.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(&paged, data);
    let window = app
        .ok(&format!(
            "{path}?from={}&to={}",
            micros(before(&t, 2) + chrono::TimeDelta::minutes(30)),
            micros(t.end)
        ))
        .await;
    assert_eq!(window["data"].as_array().unwrap(), &data[..2], "{window}");
    // Scope: another customer's reader gets the 404 of an unknown account.
    let reader = app.reader_key(&["c1"]).await;
    for p in [path.clone(), "/v2/accounts/p100:nope/history".to_owned()] {
        let r = app.get_as(&reader, &p).await;
        assert_eq!(r.status, 404, "{p}: {}", r.body);
    }
    assert_eq!(app.get("/v2/accounts/p100:nope/history").await.status, 404);
    let mine = app.reader_key(&["c0"]).await;
    assert_eq!(app.get_as(&mine, &path).await.body, all);
    for bad in ["limit=0", "cursor=xyz", "from=soon", "color=red"] {
        let r = app.get(&format!("{path}?{bad}")).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_accounts_changes_sqlite() {
    one_accounts_changes(common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_accounts_changes_postgres() {
    one_accounts_changes(common::Backend::Postgres).await;
}
