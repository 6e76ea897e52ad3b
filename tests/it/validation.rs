//! Bad input gets a 400 naming the parameter, in the one error body; conflicts, missing things,
//! authentication and roles get their status and code.

use crate::common;
use crate::support;

use reqwest::Method;
use serde_json::{Value, json};

/// URL-safe base64 without padding, as Coffer's cursors are written.
fn b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// Asserts a 400 `invalid_parameter` naming `param`, with a message that names it too.
fn assert_param(r: &common::Resp, param: &str, what: &str) {
    assert_eq!(r.status, 400, "{what}: {}", r.body);
    assert_eq!(r.body["error"], "invalid_parameter", "{what}: {}", r.body);
    assert_eq!(r.body["details"]["parameter"], param, "{what}: {}", r.body);
    let message = r.body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(param),
        "{what}: the message does not name `{param}`: {message}"
    );
    assert_eq!(r.body.as_object().unwrap().len(), 3, "{what}: {}", r.body);
}

both!(
    bad_parameters_are_named,
    common::Options::default(),
    |app: common::TestApp| async move {
        app.customer("v1", Some("gen-000001"), None).await;
        let b = "/v2/accounts/balance?customer_id=v1";
        let l = "/v2/accounts?customer_id=v1";
        let cases: &[(&str, &str)] = &[
            (&format!("{b}&balance_gt=abc"), "balance_gt"),
            (&format!("{b}&search.balance.gt=abc"), "search.balance.gt"),
            (&format!("{b}&currency=XXX"), "currency"),
            (&format!("{l}&limit=0"), "limit"),
            (&format!("{l}&limit=100000"), "limit"),
            (&format!("{l}&limit=ten"), "limit"),
            (&format!("{b}&status=frozen"), "status"),
            (&format!("{l}&search.status=frozen"), "search.status"),
            (
                &format!("{b}&search.balance.gt=10&search.balance.lt=5"),
                "search.balance.gt",
            ),
            (&format!("{b}&balance_gte=5&balance_lt=5"), "balance_gte"),
            (&format!("{l}&cursor=Zm9yZ2VkLWN1cnNvcg"), "cursor"),
            (&format!("{l}&cursor=%25%25not-base64"), "cursor"),
            (&format!("{b}&stauts=active"), "stauts"),
            (&format!("{l}&stauts=active"), "stauts"),
            (&format!("{b}&is_crypto=maybe"), "is_crypto"),
            (&format!("{b}&stack=provider"), "stack"),
            (&format!("{b}&max_age=-1"), "max_age"),
            (&format!("{l}&sort=colour"), "sort"),
            (&format!("{l}&search.id.between=a"), "search.id.between"),
            (&format!("{b}&sort=currency"), "sort"),
            (
                &format!("{b}&status=active&search.status=pending"),
                "search.status",
            ),
            ("/v2/accounts/balance?customer_id=bad%20id", "customer_id"),
        ];
        for (path, param) in cases {
            let r = app.get(path).await;
            assert_param(&r, param, path);
        }
        // The same value twice in both spellings is fine.
        app.ok(&format!("{b}&status=active&search.status=active"))
            .await;

        // Cursors that decode but were not made by Coffer (it does not sign them: a hand-made
        // position can skip accounts but never reveal any, see core's cursor module).
        let real = app.ok(&format!("{l}&limit=2")).await;
        let cursor = real["next_cursor"].as_str().unwrap().to_owned();
        assert_eq!(b64(br#"{"v":1}"#), "eyJ2IjoxfQ");
        for forged in [
            json!({"v": 2, "s": "id", "c": "EUR", "k": ["p100:a"]}),
            json!({"v": 1, "s": "id", "c": "EUR", "k": [5]}),
            json!({"v": 1, "s": "id", "c": "EUR", "k": ["p100:a", "extra"]}),
            json!({"v": 1, "s": "id", "c": "EUR"}),
            json!(["p100:a"]),
        ] {
            let text = b64(forged.to_string().as_bytes());
            let r = app.get(&format!("{l}&limit=2&cursor={text}")).await;
            assert_param(&r, "cursor", &format!("forged cursor {forged}"));
            assert!(
                !r.body["message"].as_str().unwrap().contains(&text),
                "the cursor is echoed back"
            );
        }
        // A cursor issued for another target currency is refused too.
        app.put("/v2/rates", json!({"rates": {"USD": "0.92"}}))
            .await;
        let r = app
            .get(&format!(
                "{l}&limit=2&currency=USD&cursor={}",
                support::enc(&cursor)
            ))
            .await;
        assert_param(&r, "cursor", "a cursor of another currency");
        // The real one still works and resumes after the first page.
        let next = app
            .ok(&format!("{l}&limit=2&cursor={}", support::enc(&cursor)))
            .await;
        let first = support::ids(real["data"].as_array().unwrap());
        assert!(
            next["data"]
                .as_array()
                .unwrap()
                .iter()
                .all(|a| !first.contains(a["id"].as_str().unwrap()))
        );
        app.stop().await;
    }
);

both!(
    customer_bodies,
    common::Options::default(),
    |app: common::TestApp| async move {
        let link = json!([{"provider": "p100", "external_id": "gen-000001"}]);
        let r = app
            .post("/v2/customers", json!({"id": "bad id!", "links": link}))
            .await;
        assert_param(&r, "id", "bad id");
        let r = app
            .post("/v2/customers", json!({"id": "x".repeat(65)}))
            .await;
        assert_param(&r, "id", "id too long");
        let r = app
            .post(
                "/v2/customers",
                json!({"id": "ok1", "links": [{"provider": "nope", "external_id": "e"}]}),
            )
            .await;
        assert_param(&r, "links[0].provider", "unknown provider");
        assert!(r.body["message"].as_str().unwrap().contains("nope"));
        let r = app
            .post(
                "/v2/customers",
                json!({"id": "ok1", "links": [{"provider": "p100", "external_id": "  "}]}),
            )
            .await;
        assert_param(&r, "links[0].external_id", "empty external id");
        let twice = json!([{"provider": "p100", "external_id": "a"}, {"provider": "p100", "external_id": "b"}]);
        let r = app
            .post("/v2/customers", json!({"id": "ok1", "links": twice}))
            .await;
        assert_param(&r, "links[1].provider", "provider linked twice");

        // Not JSON, wrong types, unknown fields: 400 in the same body shape.
        let raw = app
            .client
            .post(format!("{}/v2/customers", app.url))
            .header("x-api-key", &app.admin_key)
            .header("content-type", "application/json")
            .body("{\"id\": \"ok1\", ")
            .send()
            .await
            .unwrap();
        assert_eq!(raw.status().as_u16(), 400);
        let body: Value = raw.json().await.unwrap();
        assert_eq!(body["error"], "invalid_body", "{body}");
        assert!(
            body["message"].is_string() && body["details"].is_object(),
            "{body}"
        );
        for bad in [
            json!({"id": 5}),
            json!({"id": "ok1", "links": "p100"}),
            json!({"id": "ok1", "colour": "red"}),
        ] {
            let r = app.post("/v2/customers", bad.clone()).await;
            assert_eq!(r.status, 400, "{bad}: {}", r.body);
            assert_eq!(r.body["error"], "invalid_body", "{bad}: {}", r.body);
        }
        // A body must be an object: serde once read `[null, null]` as a customer's fields in
        // order, creating one (POST) or removing every link (PUT).
        for (bad, says) in [
            (json!([null, null]), "an array"),
            (json!(["ok1", "One"]), "an array"),
            (json!("ok1"), "a string"),
            (json!(7), "a number"),
            (json!(null), "null"),
        ] {
            let r = app.post("/v2/customers", bad.clone()).await;
            assert_eq!(r.status, 400, "{bad}: {}", r.body);
            assert_eq!(r.body["error"], "invalid_body", "{bad}: {}", r.body);
            let message = r.body["message"].as_str().unwrap_or_default();
            assert!(
                message.contains("must be a JSON object") && message.contains(says),
                "{bad}: {message}"
            );
        }
        // A wrong type is named by its path.
        let r = app
            .post(
                "/v2/customers",
                json!({"id": "ok1", "links": [{"provider": 5, "external_id": "e"}]}),
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(
            r.body["message"]
                .as_str()
                .unwrap_or_default()
                .contains("links[0].provider"),
            "{}",
            r.body
        );
        // Nothing was created by any of the above.
        assert_eq!(app.ok("/v2/customers").await["data"], json!([]));

        // Created, then a duplicate: 409. A generated id when none is given.
        let r = app
            .post(
                "/v2/customers",
                json!({"id": "ok1", "name": "One", "links": link}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.body["id"], "ok1");
        assert_eq!(r.body["links"], link);
        // PUT with a non-object body changes nothing.
        for bad in [json!([null, null]), json!([]), json!("x")] {
            let r = app.put("/v2/customers/ok1", bad.clone()).await;
            assert_eq!(r.status, 400, "{bad}: {}", r.body);
            assert_eq!(r.body["error"], "invalid_body", "{bad}: {}", r.body);
        }
        assert_eq!(app.ok("/v2/customers/ok1").await["links"], link);
        let r = app
            .post("/v2/customers", json!({"id": "ok1", "links": []}))
            .await;
        assert_eq!(r.status, 409, "{}", r.body);
        assert_eq!(r.body["error"], "conflict");
        let r = app
            .post("/v2/customers", json!({"name": "anonymous"}))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.body["id"].as_str().unwrap().len(), 36, "{}", r.body);

        // Unknown customers: 404 everywhere, one body.
        let missing = app.get("/v2/customers/nobody").await;
        assert_eq!(missing.status, 404);
        assert_eq!(missing.body["error"], "not_found");
        for (method, path) in [
            (Method::GET, "/v2/accounts/balance?customer_id=nobody"),
            (Method::GET, "/v2/accounts?customer_id=nobody"),
            (Method::POST, "/v2/customers/nobody/refresh"),
            (Method::DELETE, "/v2/customers/nobody"),
        ] {
            let r = app
                .request(method.clone(), path, Some(&app.admin_key), None)
                .await;
            assert_eq!(r.status, 404, "{method} {path}: {}", r.body);
            assert_eq!(r.body["error"], "not_found", "{method} {path}");
        }
        let r = app.get("/v2/accounts/p100:no-such-account").await;
        assert_eq!(r.status, 404);
        assert_eq!(r.body["error"], "not_found");
        app.stop().await;
    }
);

both!(
    authentication_and_roles,
    common::Options::default(),
    |app: common::TestApp| async move {
        app.customer("a1", Some("gen-000001"), Some("gen-000001"))
            .await;
        let path = "/v2/accounts/balance?customer_id=a1";

        let none = app.request(Method::GET, path, None, None).await;
        assert_eq!(none.status, 401);
        assert_eq!(none.body["error"], "unauthorized");
        assert!(
            none.body["message"].as_str().unwrap().contains("x-api-key"),
            "{}",
            none.body
        );
        let wrong = app
            .get_as(
                "coffer_0000000000000000000000000000000000000000000000000000000000000000",
                path,
            )
            .await;
        assert_eq!(wrong.status, 401);
        assert_eq!(
            wrong.body, none.body,
            "a wrong key and no key look the same"
        );
        let empty = app.get_as("", path).await;
        assert_eq!(empty.status, 401);

        // `Authorization: Bearer KEY` works like `x-api-key`, for admins and readers.
        let by_header = app.ok(path).await;
        let bearer = |key: String, scheme: &'static str| {
            let req = app
                .client
                .get(format!("{}{path}", app.url))
                .header("authorization", format!("{scheme} {key}"));
            async move { req.send().await.unwrap() }
        };
        let r = bearer(app.admin_key.clone(), "Bearer").await;
        assert_eq!(r.status().as_u16(), 200);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["total_balance"], by_header["total_balance"]);
        let reader = app.reader_key(&["a1"]).await;
        assert_eq!(
            bearer(reader.clone(), "bearer").await.status().as_u16(),
            200
        );
        assert_eq!(bearer(reader.clone(), "Basic").await.status().as_u16(), 401);
        assert_eq!(bearer("nope".into(), "Bearer").await.status().as_u16(), 401);

        // A reader may read, but not manage: 403 on every admin endpoint.
        let reader_body = app.get_as(&reader, path).await;
        assert_eq!(reader_body.status, 200);
        assert_eq!(
            reader_body.body["total_balance"],
            by_header["total_balance"]
        );
        let admin_only: &[(Method, &str, Option<Value>)] = &[
            (Method::POST, "/v2/customers", Some(json!({"id": "r1"}))),
            (Method::GET, "/v2/customers", None),
            (
                Method::PUT,
                "/v2/customers/a1",
                Some(json!({"id": "a1", "links": []})),
            ),
            (Method::DELETE, "/v2/customers/a1", None),
            (
                Method::PUT,
                "/v2/rates",
                Some(json!({"rates": {"USD": "0.5"}})),
            ),
        ];
        for (method, p, body) in admin_only {
            let r = app
                .request(method.clone(), p, Some(&reader), body.clone())
                .await;
            assert_eq!(r.status, 403, "{method} {p}: {}", r.body);
            assert_eq!(r.body["error"], "forbidden");
        }
        // None of them did anything.
        let c = app.ok("/v2/customers/a1").await;
        assert_eq!(c["links"].as_array().unwrap().len(), 2);
        assert!(
            !app.ok("/v2/rates").await["rates"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["source"] == "manual")
        );
        let r = app.get("/v2/customers/r1").await;
        assert_eq!(r.status, 404);
        // Health needs no key.
        assert_eq!(
            app.request(Method::GET, "/healthz", None, None).await.body["status"],
            "ok"
        );
        app.stop().await;
    }
);

both!(
    the_benchmarks_baseline_is_not_served,
    common::Options::default(),
    |app: common::TestApp| async move {
        // `coffer-bench` serves `/v2/minimal` as its baseline; the service never does.
        assert_eq!(app.get("/v2/minimal").await.status, 404);
        assert_eq!(app.get("/healthz").await.status, 200);
    }
);

both!(
    a_total_past_a_decimal_in_the_asked_currency_names_currency,
    common::Options::default(),
    |app: common::TestApp| async move {
        use coffer_sim::{P100Balance, P100Customer, P100Status};
        // Two balances that each fit a decimal once converted, and whose sum does not.
        let fiat = |id: &str, name: &str| P100Balance {
            id: id.into(),
            amount: "5".parse().unwrap(),
            name: name.into(),
            rate: 1.into(),
            status: Some(P100Status::Active),
            ..Default::default()
        };
        app.sim.put_p100_data(
            "gen-000001",
            P100Customer {
                user_id: "p100-internal-1".into(),
                fiat_balances: vec![fiat("bal-eur", "eur"), fiat("bal-usd", "usd")],
                crypto_balances: vec![],
            },
        );
        app.customer("big", Some("gen-000001"), None).await;
        // An admin may set any positive rate: one JPY worth 1e-28 EUR.
        let put = app
            .put(
                "/v2/rates",
                json!({"rates": {"JPY": "0.0000000000000000000000000001"}}),
            )
            .await;
        assert_eq!(put.status, 200, "{}", put.body);
        let fits = app.ok("/v2/accounts/balance?customer_id=big").await;
        assert_eq!(fits["total_balance"], "10.00", "{fits}");
        let r = app
            .get("/v2/accounts/balance?customer_id=big&currency=JPY")
            .await;
        assert_param(&r, "currency", "the present total");
        assert!(
            r.body["message"].as_str().unwrap().contains("overflows"),
            "{}",
            r.body
        );
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let r = app
            .get(&format!(
                "/v2/accounts/balance/history?customer_id=big&currency=JPY&interval=1d&from={now}"
            ))
            .await;
        assert_param(&r, "currency", "a series point");
        app.stop().await;
    }
);
