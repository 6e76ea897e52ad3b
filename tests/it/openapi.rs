//! `/openapi.json` is an OpenAPI 3.1 document, and real responses validate against the schema
//! it gives for their path, method and status (JSON Schema 2020-12).

use crate::common;

use reqwest::Method;
use serde_json::{Value, json};

/// Now, as an RFC 3339 instant (UTC, microseconds).
fn now_micros() -> String {
    sqlx::types::chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// The schema the document declares for `method path` answering `status` (JSON), wrapped with
/// the document's components so its `$ref`s resolve.
fn response_schema(doc: &Value, path: &str, method: &str, status: u16) -> Value {
    let op = &doc["paths"][path][method];
    assert!(op.is_object(), "no {method} {path} in the document");
    let schema = &op["responses"][status.to_string()]["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "no JSON schema for {method} {path} {status}: {}",
        op["responses"]
    );
    wrap(doc, schema.clone())
}

fn wrap(doc: &Value, schema: Value) -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "allOf": [schema],
        "components": doc["components"].clone(),
    })
}

fn component(doc: &Value, name: &str) -> Value {
    assert!(
        doc["components"]["schemas"][name].is_object(),
        "no component {name}"
    );
    wrap(doc, json!({"$ref": format!("#/components/schemas/{name}")}))
}

/// Validates `instance` against `schema`; panics listing every error.
fn check(schema: &Value, instance: &Value, what: &str) {
    let validator = jsonschema::draft202012::new(schema)
        .unwrap_or_else(|e| panic!("{what}: the schema does not compile: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("at {}: {e}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match its schema:\n{}\n{instance}",
        errors.join("\n")
    );
}

/// The schema really checks something: a body missing a required field fails.
fn rejects_without(schema: &Value, instance: &Value, field: &str, what: &str) {
    let mut broken = instance.clone();
    broken.as_object_mut().unwrap().remove(field);
    let validator = jsonschema::draft202012::new(schema).unwrap();
    assert!(
        !validator.is_valid(&broken),
        "{what}: a body without `{field}` still validates"
    );
}

both!(
    real_responses_match_the_document,
    common::Options::default(),
    |app: common::TestApp| async move {
        let raw = app.request(Method::GET, "/openapi.json", None, None).await;
        assert_eq!(raw.status, 200);
        let doc = raw.body;
        assert!(
            doc["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.1")),
            "{}",
            doc["openapi"]
        );
        for p in [
            "/v2/accounts/balance",
            "/v2/accounts",
            "/v2/accounts/{id}",
            "/v2/customers",
            "/v2/customers/{id}",
            "/v2/customers/{id}/refresh",
            "/v2/rates",
            "/healthz",
            "/readyz",
        ] {
            assert!(doc["paths"][p].is_object(), "{p} missing from the document");
        }
        let params: Vec<&str> = doc["paths"]["/v2/accounts"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        for p in [
            "customer_id",
            "currency",
            "search.is_crypto",
            "search.status",
            "search.balance_type",
            "sort",
            "limit",
            "cursor",
            "search",
            "stack",
        ] {
            assert!(
                params.contains(&p),
                "parameter {p} not documented: {params:?}"
            );
        }

        app.customer(
            "o1",
            Some(coffer_sim::fixtures::P100_SEED_USER),
            Some("gen-000001"),
        )
        .await;
        app.put("/v2/rates", json!({"rates": {"USD": "0.92"}}))
            .await;

        let cases: Vec<(&str, String, &str, &str)> = vec![
            (
                "/v2/accounts/balance",
                "/v2/accounts/balance?customer_id=o1&details=true&stack=currency".into(),
                "get",
                "total_balance",
            ),
            (
                "/v2/accounts/balance",
                "/v2/accounts/balance?customer_id=o1&currency=USD".into(),
                "get",
                "rates",
            ),
            (
                "/v2/accounts/balance",
                "/v2/accounts/balance".into(),
                "get",
                "exact",
            ),
            (
                "/v2/accounts",
                "/v2/accounts?customer_id=o1&limit=5".into(),
                "get",
                "data",
            ),
            (
                "/v2/accounts",
                "/v2/accounts?customer_id=o1&limit=5&stack=currency".into(),
                "get",
                "matched",
            ),
            (
                "/v2/accounts/{id}",
                "/v2/accounts/p100:840770da-996d-4f20-826f-5bc46bfdffd9".into(),
                "get",
                "balance",
            ),
            (
                "/v2/customers/{id}",
                "/v2/customers/o1".into(),
                "get",
                "links",
            ),
            ("/v2/customers", "/v2/customers".into(), "get", "data"),
            (
                "/v2/accounts/balance/history",
                format!(
                    "/v2/accounts/balance/history?customer_id=o1&from={}&interval=1h&stack=currency",
                    now_micros()
                ),
                "get",
                "points",
            ),
            (
                "/v2/accounts/{id}/history",
                "/v2/accounts/p100:840770da-996d-4f20-826f-5bc46bfdffd9/history".into(),
                "get",
                "data",
            ),
            (
                "/v2/sync/status",
                "/v2/sync/status".into(),
                "get",
                "providers",
            ),
            ("/v2/rates", "/v2/rates".into(), "get", "base"),
            (
                "/v2/rates",
                format!("/v2/rates?at={}", now_micros()),
                "get",
                "rates",
            ),
            ("/healthz", "/healthz".into(), "get", "status"),
            ("/readyz", "/readyz".into(), "get", "providers"),
        ];
        let rate_params = &doc["paths"]["/v2/rates"]["get"]["parameters"];
        assert!(
            rate_params
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == "at" && p["in"] == "query")),
            "`at` not documented on GET /v2/rates: {rate_params}"
        );
        let mut bodies = Vec::new();
        for (template, path, method, required) in &cases {
            let body = app.ok(path).await;
            let schema = response_schema(&doc, template, method, 200);
            check(&schema, &body, path);
            rejects_without(&schema, &body, required, path);
            bodies.push(body);
        }
        // Every total says the balance types it adds: required, on the balance answer, its
        // groups and a series' points (a body without them does not validate).
        for (template, path, field) in [
            (
                "/v2/accounts/balance",
                "/v2/accounts/balance?customer_id=o1",
                "balance_types",
            ),
            (
                "/v2/accounts/balance",
                "/v2/accounts/balance",
                "balance_types",
            ),
        ] {
            let body = app.ok(path).await;
            let schema = response_schema(&doc, template, "get", 200);
            rejects_without(&schema, &body, field, path);
            let mut bad = body.clone();
            bad["balance_types"] = json!({"available": 1});
            assert!(
                !jsonschema::draft202012::new(&schema)
                    .unwrap()
                    .is_valid(&bad),
                "{path}: every balance type is required"
            );
        }
        let group = component(&doc, "GroupOut");
        let stacked = app
            .ok("/v2/accounts/balance?customer_id=o1&stack=currency")
            .await;
        let g = &stacked["groups"][0];
        check(&group, g, "a group");
        rejects_without(&group, g, "balance_types", "a group");
        let point = component(&doc, "PointOut");
        let series = bodies.iter().find(|b| b.get("points").is_some()).unwrap();
        rejects_without(&point, &series["points"][0], "balance_types", "a point");
        // The series and the changes validated above are not empty.
        let series = bodies.iter().find(|b| b.get("points").is_some()).unwrap();
        assert_eq!(series["points"].as_array().unwrap().len(), 1, "{series}");
        let changes = bodies
            .iter()
            .find(|b| b.get("next_cursor").is_some() && b.get("matched").is_none())
            .unwrap();
        assert!(!changes["data"].as_array().unwrap().is_empty(), "{changes}");
        // The answers at an instant validate too, and the document requires nothing of `at`
        // or `observed_at` that only they have (present answers validated above without them).
        let at = now_micros();
        let at_cases = [
            (
                "/v2/accounts/balance",
                format!("/v2/accounts/balance?customer_id=o1&details=true&at={at}"),
            ),
            (
                "/v2/accounts/balance",
                format!("/v2/accounts/balance?at={at}"),
            ),
            (
                "/v2/accounts",
                format!("/v2/accounts?customer_id=o1&limit=5&at={at}"),
            ),
            (
                "/v2/accounts/{id}",
                format!("/v2/accounts/p100:840770da-996d-4f20-826f-5bc46bfdffd9?at={at}"),
            ),
        ];
        for (template, path) in &at_cases {
            let body = app.ok(path).await;
            assert_eq!(body["at"], at.as_str(), "{path}: {body}");
            let schema = response_schema(&doc, template, "get", 200);
            check(&schema, &body, path);
            let mut bad = body.clone();
            bad["at"] = json!(12);
            assert!(
                !jsonschema::draft202012::new(&schema)
                    .unwrap()
                    .is_valid(&bad),
                "{path}: a numeric `at` validates"
            );
        }
        let held = app.ok(&at_cases[2].1).await;
        let account = component(&doc, "AccountOut");
        for a in held["data"].as_array().unwrap() {
            assert!(a["observed_at"].is_string(), "{a}");
            check(&account, a, "an account at an instant");
            let mut bad = a.clone();
            bad["observed_at"] = json!(12);
            assert!(
                !jsonschema::draft202012::new(&account)
                    .unwrap()
                    .is_valid(&bad),
                "a numeric `observed_at` validates"
            );
        }
        for p in ["/v2/accounts/balance", "/v2/accounts", "/v2/accounts/{id}"] {
            let documented = doc["paths"][p]["get"]["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|q| q["name"] == "at" && q["in"] == "query"));
            assert!(documented, "`at` not documented on GET {p}");
        }
        // The table at an instant repeats it, as the document says it does.
        let at = &bodies[bodies.len() - 3];
        assert!(at["at"].is_string(), "{at}");
        let mut bad = at.clone();
        bad["at"] = json!(12);
        assert!(
            !jsonschema::draft202012::new(&response_schema(&doc, "/v2/rates", "get", 200))
                .unwrap()
                .is_valid(&bad),
            "a numeric `at` validates"
        );
        // The list's items: accounts, or groups of accounts when stacked.
        let account = component(&doc, "AccountOut");
        for a in bodies[3]["data"].as_array().unwrap() {
            check(&account, a, "a list item");
        }
        // Stacked: the groups validate as a whole (the document gives `data` as accounts or groups),
        // and a group is not mistaken for an account.
        assert!(!bodies[4]["data"].as_array().unwrap().is_empty());
        for g in bodies[4]["data"].as_array().unwrap() {
            assert!(
                !jsonschema::draft202012::new(&account).unwrap().is_valid(g),
                "a group validates as an account"
            );
            for a in g["accounts"].as_array().unwrap() {
                check(&account, a, "an account of a group");
            }
        }
        let list = response_schema(&doc, "/v2/accounts", "get", 200);
        let mut bad = bodies[4].clone();
        bad["data"][0].as_object_mut().unwrap().remove("accounts");
        assert!(
            !jsonschema::draft202012::new(&list).unwrap().is_valid(&bad),
            "a group without accounts validates"
        );

        // Writes and their answers.
        let created = app.post("/v2/customers", json!({"id": "o2", "name": "Two", "links": [{"provider": "bank", "external_id": "gen-000002"}]})).await;
        assert_eq!(created.status, 201);
        check(
            &response_schema(&doc, "/v2/customers", "post", 201),
            &created.body,
            "POST /v2/customers",
        );
        let rates = app
            .put("/v2/rates", json!({"rates": {"GBP": "1.17"}}))
            .await;
        check(
            &response_schema(&doc, "/v2/rates", "put", 200),
            &rates.body,
            "PUT /v2/rates",
        );
        let refresh = app
            .request(
                Method::POST,
                "/v2/customers/o2/refresh",
                Some(&app.admin_key),
                None,
            )
            .await;
        assert_eq!(refresh.status, 200, "{}", refresh.body);
        check(
            &response_schema(&doc, "/v2/customers/{id}/refresh", "post", 200),
            &refresh.body,
            "refresh",
        );

        // Error bodies, each against the status the document declares.
        let errors: Vec<(&str, &str, &str, u16, Option<&str>)> = vec![
            (
                "/v2/accounts/balance",
                "get",
                "/v2/accounts/balance?balance_gt=abc",
                400,
                Some(app.admin_key.as_str()),
            ),
            (
                "/v2/accounts/balance",
                "get",
                "/v2/accounts/balance?customer_id=nobody",
                404,
                Some(app.admin_key.as_str()),
            ),
            (
                "/v2/accounts/balance",
                "get",
                "/v2/accounts/balance",
                401,
                None,
            ),
            (
                "/v2/accounts",
                "get",
                "/v2/accounts?limit=0",
                400,
                Some(app.admin_key.as_str()),
            ),
            (
                "/v2/accounts/{id}",
                "get",
                "/v2/accounts/p100:nothing",
                404,
                Some(app.admin_key.as_str()),
            ),
            (
                "/v2/customers/{id}",
                "get",
                "/v2/customers/nobody",
                404,
                Some(app.admin_key.as_str()),
            ),
            (
                "/v2/rates",
                "get",
                "/v2/rates?at=yesterday",
                400,
                Some(app.admin_key.as_str()),
            ),
            (
                "/v2/accounts/balance/history",
                "get",
                "/v2/accounts/balance/history?from=2026-11-30T00:00:00Z&interval=2h",
                400,
                Some(app.admin_key.as_str()),
            ),
            (
                "/v2/accounts/{id}/history",
                "get",
                "/v2/accounts/p100:nothing/history",
                404,
                Some(app.admin_key.as_str()),
            ),
        ];
        for (template, method, path, status, key) in errors {
            let r = app.request(Method::GET, path, key, None).await;
            assert_eq!(r.status, status, "{path}: {}", r.body);
            let schema = response_schema(&doc, template, method, status);
            check(&schema, &r.body, path);
            rejects_without(&schema, &r.body, "error", path);
        }
        let dup = app.post("/v2/customers", json!({"id": "o2"})).await;
        assert_eq!(dup.status, 409);
        check(
            &response_schema(&doc, "/v2/customers", "post", 409),
            &dup.body,
            "409",
        );

        // A 502 under `strict`.
        app.customer("o3", Some("gen-000003"), None).await;
        app.sim.set_fault(
            coffer_sim::Provider::P100,
            coffer_sim::Target::customer("gen-000003"),
            Some(coffer_sim::Fault::DropConnection),
        );
        let r = app
            .get("/v2/accounts/balance?customer_id=o3&strict=true")
            .await;
        assert_eq!(r.status, 502, "{}", r.body);
        check(
            &response_schema(&doc, "/v2/accounts/balance", "get", 502),
            &r.body,
            "502",
        );
        app.stop().await;
    }
);

/// A P100 webhook delivery, sent as P100 sends it (the token bare in `Authorization`).
async fn deliver(app: &common::TestApp, token: &str, body: String) -> common::Resp {
    let r = app
        .client
        .post(format!("{}/v2/webhooks/{}", app.url, common::P100))
        .header("authorization", token)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.json::<Value>().await.unwrap_or(Value::Null);
    common::Resp {
        status,
        headers,
        body,
    }
}

both!(
    webhook_answers_match_the_document,
    common::Options::default(),
    |app: common::TestApp| async move {
        let doc = app
            .request(Method::GET, "/openapi.json", None, None)
            .await
            .body;
        let receive = "/v2/webhooks/{provider_id}";
        // The provider's token, not a Coffer key.
        assert_eq!(
            doc["paths"][receive]["post"]["security"],
            json!([{"webhook_token": []}]),
            "{}",
            doc["paths"][receive]["post"]
        );
        assert!(doc["components"]["securitySchemes"]["webhook_token"].is_object());

        app.customer("oa", Some("gen-000001"), None).await;
        let body = json!({"externalUserId": "gen-000001", "status": "ACTIVE"}).to_string();
        let r = deliver(&app, common::WEBHOOK_TOKEN, body).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let schema = response_schema(&doc, receive, "post", 200);
        check(&schema, &r.body, "a kept delivery");
        rejects_without(&schema, &r.body, "id", "a kept delivery");
        let id = r.body["id"].as_i64().unwrap();
        let r = deliver(&app, "wrong", "{}".into()).await;
        assert_eq!(r.status, 401);
        check(&response_schema(&doc, receive, "post", 401), &r.body, "401");
        let r = deliver(&app, common::WEBHOOK_TOKEN, "x".repeat((1 << 20) + 1)).await;
        assert_eq!(r.status, 413);
        check(&response_schema(&doc, receive, "post", 413), &r.body, "413");

        let inbox = response_schema(&doc, "/v2/webhooks/inbox", "get", 200);
        cluster_wait(&app, id).await;
        let page = app.ok("/v2/webhooks/inbox").await;
        assert!(!page["data"][0]["pair"].is_null(), "{page}");
        check(&inbox, &page, "the inbox");
        rejects_without(&inbox, &page, "data", "the inbox");
        let replay = "/v2/webhooks/inbox/{id}/replay";
        let r = app
            .post(&format!("/v2/webhooks/inbox/{id}/replay"), json!({}))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        check(
            &response_schema(&doc, replay, "post", 200),
            &r.body,
            "a replayed delivery",
        );
        let r = app
            .post("/v2/webhooks/inbox/424242/replay", json!({}))
            .await;
        assert_eq!(r.status, 404);
        check(&response_schema(&doc, replay, "post", 404), &r.body, "404");
        app.stop().await;
    }
);

/// Polls (with a deadline) until delivery `id` is processed.
async fn cluster_wait(app: &common::TestApp, id: i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let page = app.ok("/v2/webhooks/inbox").await;
        let done = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == id && e["state"] == "processed");
        if done {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not processed: {page}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

both!(
    event_and_subscription_answers_match_the_document,
    common::Options::default(),
    |app: common::TestApp| async move {
        let doc = app
            .request(Method::GET, "/openapi.json", None, None)
            .await
            .body;
        let op = &doc["paths"]["/v2/events"]["get"];
        assert!(
            op["responses"]["200"]["content"]["text/event-stream"].is_object(),
            "the stream is documented: {op}"
        );
        app.customer("oe", Some("gen-000001"), None).await;
        let r = app.post("/v2/customers/oe/refresh", json!({})).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let schema = response_schema(&doc, "/v2/events", "get", 200);
        let page = app.ok("/v2/events").await;
        assert!(!page["data"].as_array().unwrap().is_empty(), "{page}");
        check(&schema, &page, "an event page");
        rejects_without(&schema, &page, "data", "an event page");
        rejects_without(&schema, &page, "next_cursor", "an event page");
        check(&component(&doc, "EventOut"), &page["data"][0], "an event");
        rejects_without(
            &component(&doc, "EventOut"),
            &page["data"][0],
            "type",
            "an event",
        );
        let empty = app.ok("/v2/events?after=999999").await;
        check(&schema, &empty, "an empty page");
        let r = app.get("/v2/events?types=nope").await;
        assert_eq!(r.status, 400);
        check(
            &response_schema(&doc, "/v2/events", "get", 400),
            &r.body,
            "400",
        );

        // Subscriptions.
        let r = app
            .post(
                "/v2/subscriptions",
                json!({"url": "http://127.0.0.1:9/hook"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let created = response_schema(&doc, "/v2/subscriptions", "post", 201);
        check(&created, &r.body, "a subscription");
        rejects_without(&created, &r.body, "url", "a subscription");
        let id = r.body["id"].as_str().unwrap().to_owned();
        let list = app.ok("/v2/subscriptions").await;
        check(
            &response_schema(&doc, "/v2/subscriptions", "get", 200),
            &list,
            "subscriptions",
        );
        let log = app.ok(&format!("/v2/subscriptions/{id}/deliveries")).await;
        let path = "/v2/subscriptions/{id}/deliveries";
        check(&response_schema(&doc, path, "get", 200), &log, "deliveries");
        let r = app.post("/v2/subscriptions", json!({"url": "x"})).await;
        assert_eq!(r.status, 400);
        check(
            &response_schema(&doc, "/v2/subscriptions", "post", 400),
            &r.body,
            "400",
        );
        let r = app.get("/v2/subscriptions/nope/deliveries").await;
        assert_eq!(r.status, 404);
        check(&response_schema(&doc, path, "get", 404), &r.body, "404");
        app.stop().await;
    }
);

both!(
    alert_answers_match_the_document,
    common::Options::default(),
    |app: common::TestApp| async move {
        let doc = app
            .request(Method::GET, "/openapi.json", None, None)
            .await
            .body;
        app.customer("oa", Some("gen-000001"), None).await;
        let r = app
            .post(
                "/v2/alerts",
                json!({"name": "low", "query": "customer_id=oa", "below": "10.5"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let created = response_schema(&doc, "/v2/alerts", "post", 201);
        check(&created, &r.body, "an alert");
        rejects_without(&created, &r.body, "bound", "an alert");
        let id = r.body["id"].as_str().unwrap().to_owned();
        check(
            &response_schema(&doc, "/v2/alerts", "get", 200),
            &app.ok("/v2/alerts").await,
            "alerts",
        );
        let one = "/v2/alerts/{id}";
        check(
            &response_schema(&doc, one, "get", 200),
            &app.ok(&format!("/v2/alerts/{id}")).await,
            "an alert",
        );
        let r = app
            .post(
                "/v2/alerts",
                json!({"name": "x", "query": "currency=NOPE", "above": "1"}),
            )
            .await;
        assert_eq!(r.status, 400);
        check(
            &response_schema(&doc, "/v2/alerts", "post", 400),
            &r.body,
            "400",
        );
        let r = app.get("/v2/alerts/nope").await;
        assert_eq!(r.status, 404);
        check(&response_schema(&doc, one, "get", 404), &r.body, "404");
        let r = app
            .request(
                Method::DELETE,
                &format!("/v2/alerts/{id}"),
                Some(common::ADMIN_KEY),
                None,
            )
            .await;
        assert_eq!(r.status, 204, "{}", r.body);
        app.stop().await;
    }
);

// What holds for every operation, whoever adds it: the probes need no key, every keyed
// operation documents the answers of the shared layers with the error body, and the query
// parameters carry the constraints the parser enforces (so schemathesis, in .ci/contract,
// generates what the server accepts).
both!(
    every_operation_documents_its_auth_and_error_answers,
    common::Options::default(),
    |app: common::TestApp| async move {
        let doc = app
            .request(Method::GET, "/openapi.json", None, None)
            .await
            .body;
        let error = serde_json::json!({"$ref": "#/components/schemas/ErrorBody"});
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let public = ["/healthz", "/readyz", "/metrics"].contains(&path.as_str());
                let what = format!("{method} {path}");
                let responses = op["responses"].as_object().unwrap();
                for (status, r) in responses {
                    assert!(
                        r["description"].is_string(),
                        "{what} {status}: no description"
                    );
                }
                if public {
                    assert_eq!(op["security"], serde_json::json!([]), "{what} needs no key");
                    continue;
                }
                assert_ne!(op["security"], serde_json::json!([]), "{what}");
                for status in ["401", "429", "500", "503"] {
                    assert_eq!(
                        responses[status]["content"]["application/json"]["schema"], error,
                        "{what}: {status} with the error body"
                    );
                }
                // A path parameter is one the path template names.
                for p in op["parameters"].as_array().into_iter().flatten() {
                    if p["in"] == "path" {
                        let name = p["name"].as_str().unwrap();
                        assert!(path.contains(&format!("{{{name}}}")), "{what}: {name}");
                    }
                }
            }
        }
        let list = &doc["paths"]["/v2/accounts"]["get"]["parameters"];
        let param = |name: &str| {
            list.as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .unwrap_or_else(|| panic!("no {name}"))["schema"]
                .clone()
        };
        assert_eq!(param("limit")["maximum"], 1000);
        assert_eq!(
            param("limit")["type"],
            "integer",
            "a query parameter is never null"
        );
        assert!(
            param("currency")["enum"]
                .as_array()
                .unwrap()
                .contains(&"EUR".into())
        );
        assert_eq!(param("search.currency")["minLength"], 1);
        assert_eq!(
            param("search.balance_type")["pattern"],
            "^(available|unspecified)(,(available|unspecified))*$"
        );
        let on_balance = doc["paths"]["/v2/accounts/balance"]["get"]["parameters"]
            .as_array()
            .unwrap();
        assert!(
            on_balance
                .iter()
                .any(|p| p["name"] == "search.balance_type"),
            "search.balance_type on the balance endpoint"
        );
        let providers = &doc["components"]["schemas"]["LinkBody"]["properties"]["provider"]["enum"];
        assert_eq!(providers, &serde_json::json!([common::BANK, common::P100]));
    }
);

both!(
    csv_answers_are_documented,
    common::Options::default(),
    |app: common::TestApp| async move {
        let doc = app
            .request(Method::GET, "/openapi.json", None, None)
            .await
            .body;
        app.customer("o1", None, Some("gen-000001")).await;
        let at = now_micros();
        for (template, path) in [
            ("/v2/accounts", "/v2/accounts?format=csv".to_owned()),
            (
                "/v2/accounts/balance",
                "/v2/accounts/balance?format=csv".into(),
            ),
            (
                "/v2/accounts/balance/history",
                format!("/v2/accounts/balance/history?from={at}&interval=1d&format=csv"),
            ),
            ("/v2/audit", "/v2/audit?format=csv".into()),
        ] {
            let op = &doc["paths"][template]["get"];
            let content = &op["responses"]["200"]["content"];
            assert!(
                content["text/csv"]["schema"]["type"] == "string",
                "{template}: text/csv not documented: {content}"
            );
            assert!(
                content["application/json"].is_object(),
                "{template}: {content}"
            );
            let format = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == "format")
                .unwrap_or_else(|| panic!("{template}: `format` not documented"));
            assert_eq!(format["in"], "query", "{template}");
            let r = app.get(&path).await;
            assert_eq!(r.status, 200, "{path}: {}", r.body);
            let kind = r.headers["content-type"].to_str().unwrap();
            assert!(kind.starts_with("text/csv"), "{path}: {kind}");
            let text = r
                .body
                .as_str()
                .unwrap_or_else(|| panic!("{path}: {}", r.body));
            assert!(text.contains("\r\n"), "{path}: a header line at least");
        }
    }
);

// The server refuses exactly what the document forbids, for a query parameter with a pattern
// (`GET /v2/events` `types`) and a body field with lengths and a pattern (an alert's `name`):
// each value is answered with success if and only if the document's schema admits it.
both!(
    patterns_and_lengths_are_the_servers,
    common::Options::default(),
    |app: common::TestApp| async move {
        let doc = app
            .request(Method::GET, "/openapi.json", None, None)
            .await
            .body;
        let param = doc["paths"]["/v2/events"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "types")
            .expect("a `types` parameter")["schema"]
            .clone();
        let admits = |schema: &Value, v: &Value| {
            jsonschema::draft202012::new(&wrap(&doc, schema.clone()))
                .unwrap()
                .is_valid(v)
        };
        for v in [
            "balance.changed",
            "threshold.crossed",
            "sync.failed,threshold.crossed,account.closed",
            "",
            ",",
            "balance.changed,",
            ",balance.changed",
            " balance.changed",
            "balance.changed,,sync.failed",
            "nope",
        ] {
            let r = app
                .get(&format!("/v2/events?types={}", v.replace(' ', "%20")))
                .await;
            let valid = admits(&param, &json!(v));
            assert_eq!(
                r.status == 200,
                valid,
                "types={v:?}: the document {} it, the server answered {} {}",
                if valid { "admits" } else { "forbids" },
                r.status,
                r.body
            );
        }

        let name = doc["components"]["schemas"]["AlertBody"]["properties"]["name"].clone();
        assert!(name.is_object(), "AlertBody.name in the document");
        for v in [
            "low cash".to_owned(),
            "  padded  ".to_owned(),
            "é".repeat(200),
            "x".repeat(201),
            String::new(),
            " \t ".to_owned(),
        ] {
            let r = app
                .post(
                    "/v2/alerts",
                    json!({"name": v, "query": "", "below": "1000.00"}),
                )
                .await;
            let valid = admits(&name, &json!(v));
            assert_eq!(
                r.status == 201,
                valid,
                "alert name {v:?}: the document {} it, the server answered {} {}",
                if valid { "admits" } else { "forbids" },
                r.status,
                r.body
            );
            if r.status == 201 {
                let id = r.body["id"].as_str().unwrap();
                let gone = app
                    .request(
                        Method::DELETE,
                        &format!("/v2/alerts/{id}"),
                        Some(common::ADMIN_KEY),
                        None,
                    )
                    .await;
                assert_eq!(gone.status, 204, "{}", gone.body);
            }
        }
        app.stop().await;
    }
);
