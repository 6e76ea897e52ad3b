//! Freshness end to end: stale answers with a warning when a provider fails, partial answers
//! when it never answered, `strict`, recovery, coalesced cold loads, and refresh.

use crate::common;
use crate::support;

use std::time::Duration;

use coffer_sim::{CorebanqError, Fault, P100Error, Provider, Target};
use reqwest::Method;
use rust_decimal::Decimal;
use serde_json::Value;
use support::{dec, detail_accounts};

/// An RFC 3339 time to microseconds: the stores keep microseconds, so data served from a
/// snapshot reports its `as_of` at that precision.
fn micros(v: &Value) -> String {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    let (head, frac) = s
        .trim_end_matches('Z')
        .split_once('.')
        .unwrap_or((s.trim_end_matches('Z'), ""));
    format!("{head}.{:0<6.6}Z", frac)
}

/// Same accounts with the same balances (totals may move in the last digits when the rate
/// table picks a currency's rate from the other provider).
fn same_balances(a: &Value, b: &Value) {
    let key = |v: &Value| -> Vec<(String, String)> {
        let mut out: Vec<_> = detail_accounts(v)
            .iter()
            .map(|a| {
                (
                    a["id"].as_str().unwrap().to_owned(),
                    a["balance"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        out.sort();
        out
    };
    assert_eq!(key(a), key(b));
    let d = dec(&a["exact"]["total_balance"]) - dec(&b["exact"]["total_balance"]);
    assert!(d.abs() < Decimal::new(1, 2), "totals differ by {d}");
}

fn warnings(b: &Value) -> &Vec<Value> {
    b["warnings"].as_array().unwrap()
}

both!(
    stale_when_a_provider_fails_then_fresh_again,
    common::Options::default(),
    |app: common::TestApp| async move {
        app.customer("s1", Some("gen-000001"), Some("gen-000001"))
            .await;
        let path = "/v2/accounts/balance?customer_id=s1&details=true&max_age=0";
        let fresh = app.ok(path).await;
        assert_eq!(
            (fresh["stale"].clone(), fresh["partial"].clone()),
            (false.into(), false.into()),
            "{fresh}"
        );
        assert!(warnings(&fresh).is_empty());
        let p100_as_of = fresh["as_of"]["p100"].clone();
        assert!(p100_as_of.is_string());
        let calls = app.sim.calls(Provider::P100, "gen-000001");
        assert_eq!(calls, 1);

        app.sim.set_fault(
            Provider::P100,
            Target::customer("gen-000001"),
            Some(Fault::P100(P100Error::P500)),
        );
        let stale = app.ok(path).await;
        assert!(
            app.sim.calls(Provider::P100, "gen-000001") > calls,
            "max_age=0 must ask the provider"
        );
        assert_eq!(stale["stale"], true, "{stale}");
        assert_eq!(stale["partial"], false, "{stale}");
        // The last snapshot is served: same accounts, same amounts, the old as_of.
        same_balances(&stale, &fresh);
        assert_eq!(micros(&stale["as_of"]["p100"]), micros(&p100_as_of));
        assert_ne!(
            stale["as_of"]["bank"], fresh["as_of"]["bank"],
            "Corebanq was fetched again"
        );
        let w = warnings(&stale);
        assert_eq!(w.len(), 1, "{stale}");
        assert_eq!(w[0]["code"], "stale");
        assert_eq!(w[0]["provider"], "p100");
        assert_eq!(w[0]["customer_id"], "s1");
        assert_eq!(w[0]["error"], "unavailable");
        assert!(
            w[0]["age_seconds"]
                .as_i64()
                .is_some_and(|a| (0..60).contains(&a)),
            "{}",
            w[0]
        );
        let message = w[0]["message"].as_str().unwrap();
        assert!(
            message.contains("p100") && message.contains("ago"),
            "{message}"
        );

        // strict: the same failure is a 502 naming the provider (served from the cached view: no
        // more provider calls, so the circuit breaker stays closed).
        let strict = app
            .get("/v2/accounts/balance?customer_id=s1&strict=true")
            .await;
        assert_eq!(strict.status, 502, "{}", strict.body);
        assert_eq!(strict.body["error"], "provider_error");
        assert_eq!(
            strict.body["details"]["warnings"][0]["provider"], "p100",
            "{}",
            strict.body
        );

        // The list and one account say the same.
        let l = app.ok("/v2/accounts?customer_id=s1").await;
        assert_eq!(l["stale"], true);
        assert_eq!(l["data"].as_array().unwrap().len(), 20);

        assert_eq!(app.ok("/readyz").await["providers"]["p100"], "closed");

        // Fault cleared: the next request is fresh again, with new data.
        app.sim
            .set_fault(Provider::P100, Target::customer("gen-000001"), None);
        let again = app.ok(path).await;
        assert_eq!(again["stale"], false, "{again}");
        assert!(warnings(&again).is_empty(), "{again}");
        assert!(micros(&again["as_of"]["p100"]) > micros(&p100_as_of));
        same_balances(&again, &fresh);
        app.stop().await;
    }
);

both!(
    partial_when_a_provider_never_answered,
    common::Options::default(),
    |app: common::TestApp| async move {
        app.customer("p1", Some("gen-000002"), Some("gen-000002"))
            .await;
        app.sim.set_fault(
            Provider::Corebanq,
            Target::customer("gen-000002"),
            Some(Fault::Corebanq(CorebanqError::Unavailable)),
        );
        let b = app
            .ok("/v2/accounts/balance?customer_id=p1&details=true")
            .await;
        assert_eq!(b["partial"], true, "{b}");
        assert_eq!(b["stale"], false, "{b}");
        let accounts = detail_accounts(&b);
        assert_eq!(accounts.len(), 10, "P100's accounts only");
        assert!(accounts.iter().all(|a| a["provider"] == "p100"));
        assert!(b["as_of"]["bank"].is_null(), "{b}");
        let w = warnings(&b);
        assert_eq!(w.len(), 1, "{b}");
        assert_eq!(
            (w[0]["code"].as_str(), w[0]["provider"].as_str()),
            (Some("missing"), Some("bank"))
        );
        assert!(w[0]["error"].is_string(), "{}", w[0]);
        assert!(w[0]["message"].as_str().unwrap().contains("left out"));

        let strict = app
            .get("/v2/accounts/balance?customer_id=p1&strict=true")
            .await;
        assert_eq!(strict.status, 502, "{}", strict.body);
        assert_eq!(strict.body["error"], "provider_error");

        // A dropped connection on P100 for another customer: partial the same way.
        app.customer("p2", Some("gen-000003"), None).await;
        app.sim.set_fault(
            Provider::P100,
            Target::customer("gen-000003"),
            Some(Fault::DropConnection),
        );
        let b = app
            .ok("/v2/accounts/balance?customer_id=p2&details=true")
            .await;
        assert_eq!(b["partial"], true, "{b}");
        assert!(detail_accounts(&b).is_empty());
        assert_eq!(b["accounts_count"], 0);
        assert_eq!(b["total_balance"], "0.00");
        assert_eq!(warnings(&b)[0]["provider"], "p100");

        // Recovery: the provider answers again, everything is there.
        app.sim.clear_faults();
        let b = app
            .ok("/v2/accounts/balance?customer_id=p1&details=true&max_age=0")
            .await;
        assert_eq!(b["partial"], false, "{b}");
        assert_eq!(detail_accounts(&b).len(), 20);
        app.stop().await;
    }
);

both!(
    concurrent_cold_requests_are_coalesced,
    common::Options::default(),
    |app: common::TestApp| async move {
        app.customer("co1", Some("gen-000004"), Some("gen-000004"))
            .await;
        // Slow providers, so the 100 requests really overlap.
        app.sim
            .set_latency(Provider::P100, Duration::from_millis(200));
        app.sim
            .set_latency(Provider::Corebanq, Duration::from_millis(150));
        let reader = app.reader_key(&["co1"]).await;
        let requests = (0..100).map(|i| {
            let (key, path) = if i % 2 == 0 {
                (
                    app.admin_key.clone(),
                    "/v2/accounts/balance?customer_id=co1",
                )
            } else {
                (reader.clone(), "/v2/accounts?customer_id=co1&limit=5")
            };
            let app = &app;
            async move { app.get_as(&key, path).await }
        });
        let answers = futures::future::join_all(requests).await;
        for r in &answers {
            assert_eq!(r.status, 200, "{}", r.body);
            assert_eq!(r.body["stale"], false);
        }
        assert_eq!(app.sim.calls(Provider::P100, "gen-000004"), 1);
        assert_eq!(app.sim.calls(Provider::Corebanq, "gen-000004"), 1);
        let totals: std::collections::BTreeSet<String> = answers
            .iter()
            .step_by(2)
            .map(|r| {
                r.body["exact"]["total_balance"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(totals.len(), 1, "{totals:?}");
        // Warm: no more calls.
        app.ok("/v2/accounts/balance?customer_id=co1").await;
        assert_eq!(app.sim.total_calls(Provider::P100), 1);
        app.stop().await;
    }
);

both!(
    refresh_shows_a_changed_balance,
    common::Options::default(),
    |app: common::TestApp| async move {
        app.customer("r1", Some("gen-000001"), Some("gen-000001"))
            .await;
        let path = "/v2/accounts/balance?customer_id=r1&details=true";
        let before = app.ok(path).await;
        let target = detail_accounts(&before)
            .into_iter()
            .find(|a| a["provider"] == "p100" && a["currency"] != "EUR")
            .unwrap();
        let id = target["id"].as_str().unwrap().to_owned();
        let old = dec(&target["balance"]);
        let new = old + Decimal::new(123_456, 2);
        assert!(app.sim.set_p100_balance(
            "gen-000001",
            target["provider_account_id"].as_str().unwrap(),
            new
        ));

        // Within the cache's ttl the old value is served without calling P100.
        let cached = app.ok(path).await;
        let find = |b: &Value| {
            detail_accounts(b)
                .into_iter()
                .find(|a| a["id"] == id.as_str())
                .unwrap()
        };
        assert_eq!(dec(&find(&cached)["balance"]), old);
        assert_eq!(app.sim.calls(Provider::P100, "gen-000001"), 1);

        let r = app
            .request(
                Method::POST,
                "/v2/customers/r1/refresh",
                Some(&app.admin_key),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["customer_id"], "r1");
        assert_eq!(r.body["stale"], false);
        assert_eq!(app.sim.calls(Provider::P100, "gen-000001"), 2);
        assert_eq!(app.sim.calls(Provider::Corebanq, "gen-000001"), 2);

        let after = app.ok(path).await;
        let account = find(&after);
        assert_eq!(dec(&account["balance"]), new);
        assert_eq!(
            account["balance"].as_str().unwrap(),
            new.to_string(),
            "scale kept"
        );
        let delta = dec(&after["exact"]["total_balance"]) - dec(&before["exact"]["total_balance"]);
        let rate = dec(&account["provider_rate"]["rate"]);
        assert!(
            (delta - Decimal::new(123_456, 2) * rate).abs() < Decimal::new(1, 2),
            "{delta}"
        );
        // One account endpoint agrees.
        let one = app.ok(&format!("/v2/accounts/{}", support::enc(&id))).await;
        assert_eq!(dec(&one["balance"]), new);
        app.stop().await;
    }
);

/// Waits (polling the simulator's counter) until a call for `customer` has reached it.
async fn call_reached(app: &common::TestApp, provider: Provider, customer: &str, before: u64) {
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while app.sim.calls(provider, customer) == before {
        assert!(
            std::time::Instant::now() < until,
            "no call reached the simulator"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

// A provider's `Retry-After: 18446744073709551615` once overflowed `Instant` arithmetic and
// panicked the request's worker: the client's connection closed with no answer.
both!(
    a_retry_after_beyond_any_clock_is_an_answer_not_a_panic,
    common::Options::default(),
    |app: common::TestApp| async move {
        app.customer("ra1", Some("gen-000001"), Some("gen-000001"))
            .await;
        app.sim.set_fault(
            Provider::P100,
            Target::customer("gen-000001"),
            Some(Fault::RateLimited {
                retry_after: coffer_sim::RetryAfter::Seconds(u64::MAX),
            }),
        );
        let path = "/v2/accounts/balance?customer_id=ra1&details=true";
        for _ in 0..2 {
            let r = app.get(path).await;
            assert_eq!(r.status, 200, "{}", r.body);
            assert_eq!(r.body["partial"], true, "{}", r.body);
            let w = warnings(&r.body);
            assert!(
                w.iter()
                    .any(|w| w["provider"] == "p100" && w["error"] == "rate_limited"),
                "{}",
                r.body
            );
            assert!(
                detail_accounts(&r.body)
                    .iter()
                    .any(|a| a["provider"] == common::BANK),
                "the other provider's accounts are served: {}",
                r.body
            );
        }
        app.stop().await;
    }
);

// `max_age=0` and refresh need data fetched after they asked: they once joined an ordinary
// load already in flight and got data fetched before.
both!(
    max_age_zero_and_refresh_never_join_an_older_load,
    common::Options::default(),
    |app: common::TestApp| async move {
        app.sim
            .set_latency(Provider::P100, Duration::from_millis(600));
        for (customer, external, newer) in [
            (
                "mz",
                "gen-000003",
                "/v2/accounts/balance?customer_id=mz&max_age=0",
            ),
            ("mr", "gen-000004", "/v2/customers/mr/refresh"),
        ] {
            app.customer(customer, Some(external), None).await;
            let before = app.sim.calls(Provider::P100, external);
            let asked = std::sync::Mutex::new(None);
            let ordinary_path = format!("/v2/accounts/balance?customer_id={customer}");
            let (ordinary, forced) = tokio::join!(app.get(&ordinary_path), async {
                call_reached(&app, Provider::P100, external, before).await;
                *asked.lock().unwrap() = Some(chrono::Utc::now());
                if newer.ends_with("refresh") {
                    app.post(newer, serde_json::json!({})).await
                } else {
                    app.get(newer).await
                }
            });
            assert_eq!(ordinary.status, 200, "{}", ordinary.body);
            assert_eq!(forced.status, 200, "{newer}: {}", forced.body);
            assert_eq!(
                app.sim.calls(Provider::P100, external) - before,
                2,
                "{newer} joined the load that was in flight when it asked"
            );
            // What the forced caller got was fetched after it asked.
            let asked = micros(&Value::String(
                asked.lock().unwrap().expect("asked").to_rfc3339(),
            ));
            // The balance answer keys `as_of` by provider; refresh lists them.
            let got = match &forced.body["as_of"] {
                Value::Array(list) => list
                    .iter()
                    .find(|p| p["provider"] == "p100")
                    .map_or(Value::Null, |p| p["as_of"].clone()),
                by_provider => by_provider["p100"].clone(),
            };
            assert!(got.is_string(), "{newer}: {}", forced.body);
            assert!(
                micros(&got) >= asked,
                "{newer}: {got} is older than its ask, {asked}"
            );
        }
        app.sim.set_latency(Provider::P100, Duration::ZERO);
        app.stop().await;
    }
);

// A provider slower than the request's deadline: the answer comes in time, with the other
// provider's accounts and a warning naming the slow one (it was an empty 503 once, and the
// accounts already fetched were lost).
both!(
    a_slow_provider_does_not_cost_the_answer,
    common::Options {
        configure: Box::new(|c| c.server.request_timeout = Duration::from_millis(1500)),
        ..Default::default()
    },
    |app: common::TestApp| async move {
        app.customer("sl", Some("gen-000002"), Some("gen-000002"))
            .await;
        // Slower than the request's whole deadline (an attempt times out after 2 s).
        app.sim
            .set_latency(Provider::P100, Duration::from_millis(1900));
        let started = std::time::Instant::now();
        let r = app
            .get("/v2/accounts/balance?customer_id=sl&details=true")
            .await;
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["partial"], true, "{}", r.body);
        let w = warnings(&r.body);
        assert!(
            w.iter()
                .any(|w| w["provider"] == "p100" && w["error"] == "timeout"),
            "{}",
            r.body
        );
        assert!(
            detail_accounts(&r.body)
                .iter()
                .any(|a| a["provider"] == common::BANK),
            "{}",
            r.body
        );
        app.sim.set_latency(Provider::P100, Duration::ZERO);
        app.stop().await;
    }
);
