//! The audit log over HTTP, on SQLite and PostgreSQL (issue 17): admin changes appended with
//! the key and the request that made them, all-customer reads appended and one customer's
//! not, admins only, CSV with the same entries as JSON, and keys that expire.

use crate::cluster;
use crate::common;

use serde_json::{Value, json};

fn entries(page: &Value) -> Vec<Value> {
    page["data"].as_array().cloned().unwrap_or_default()
}

both!(
    changes_and_all_customer_reads_are_audited,
    common::Options::default(),
    |app: common::TestApp| async move {
        let made = app
            .post(
                "/v2/customers",
                json!({"id": "au1", "links": [{"provider": common::P100, "external_id": "gen-000001"}]}),
            )
            .await;
        assert_eq!(made.status, 201, "{}", made.body);
        let request_id = made.headers["x-request-id"].to_str().unwrap().to_owned();
        let renamed = app
            .put("/v2/customers/au1", json!({"name": "Renamed", "links": []}))
            .await;
        assert_eq!(renamed.status, 200, "{}", renamed.body);
        let rates = app
            .put("/v2/rates", json!({"rates": {"USD": "0.09872368"}}))
            .await;
        assert_eq!(rates.status, 200, "{}", rates.body);
        app.ok("/v2/accounts/balance?customer_id=au1").await;
        app.ok("/v2/accounts/balance?currency=EUR").await;

        let page = app.ok("/v2/audit").await;
        let log = entries(&page);
        let actions: Vec<&str> = log
            .iter()
            .rev()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(
            actions,
            ["customer.create", "customer.update", "rate.set", "read"],
            "one customer's read is not audited, the all-customer one is: {page}"
        );
        let create = &log[3];
        assert_eq!(create["key_id"], "bootstrap");
        assert_eq!(
            create["request_id"],
            request_id.as_str(),
            "the request that made it"
        );
        assert_eq!(create["after"]["links"][0]["external_id"], "gen-000001");
        assert_eq!(log[2]["before"]["links"][0]["provider"], common::P100);
        assert_eq!(log[2]["after"]["name"], "Renamed");
        assert_eq!(log[1]["after"]["USD"]["rate"], "0.09872368");
        assert_eq!(log[0]["target"], "/v2/accounts/balance?currency=EUR");
        assert_eq!(log[3]["prev_hash"], "0".repeat(64));
        assert_eq!(
            log[2]["prev_hash"], log[3]["hash"],
            "each entry names the one before"
        );

        // Pages and filters.
        let first = app.ok("/v2/audit?limit=3").await;
        assert_eq!(entries(&first).len(), 3);
        let cursor = first["next_cursor"].as_str().unwrap().to_owned();
        let rest = app.ok(&format!("/v2/audit?limit=3&cursor={cursor}")).await;
        assert_eq!(entries(&rest).len(), 1);
        assert!(rest["next_cursor"].is_null());
        let only = app.ok("/v2/audit?action=customer.").await;
        assert_eq!(entries(&only).len(), 2);
        for bad in [
            "limit=0",
            "cursor=nope",
            "format=xml",
            "from=yesterday",
            "bogus=1",
        ] {
            let r = app.get(&format!("/v2/audit?{bad}")).await;
            assert_eq!(r.status, 400, "{bad}: {}", r.body);
        }

        // CSV: the same entries, downloadable.
        let csv = app
            .client
            .get(format!("{}/v2/audit?action=customer.&format=csv", app.url))
            .header("x-api-key", &app.admin_key)
            .send()
            .await
            .unwrap();
        assert_eq!(csv.status(), 200);
        assert!(
            csv.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv")
        );
        let disposition = csv.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(disposition.contains("coffer-audit-"), "{disposition}");
        let text = csv.text().await.unwrap();
        let mut lines = text.split("\r\n");
        assert_eq!(
            lines.next(),
            Some("seq,at,key_id,request_id,action,target,before,after,prev_hash,hash")
        );
        let seqs: Vec<&str> = lines
            .filter(|l| !l.is_empty())
            .map(|l| l.split(',').next().unwrap())
            .collect();
        let json_seqs: Vec<String> = entries(&only)
            .iter()
            .map(|e| e["seq"].to_string())
            .collect();
        assert_eq!(seqs, json_seqs);

        // Admins only.
        let reader = app.reader_key(&["au1"]).await;
        let r = app.get_as(&reader, "/v2/audit").await;
        assert_eq!(r.status, 403, "{}", r.body);
    }
);

both!(
    an_expired_key_is_told_so,
    common::Options::default(),
    |app: common::TestApp| async move {
        app.customer("ex1", Some("gen-000001"), None).await;
        let store = std::sync::Arc::clone(&app.running.as_ref().unwrap().state.store);
        let past = chrono::Utc::now() - chrono::Duration::minutes(1);
        let (expired, _) = coffer_server::auth::create_key(
            store.as_ref(),
            coffer_store::Role::Reader,
            vec!["ex1".into()],
            Some(past),
            &coffer_store::Actor::cli(),
        )
        .await
        .unwrap();
        let r = app
            .get_as(&expired, "/v2/accounts/balance?customer_id=ex1")
            .await;
        assert_eq!(r.status, 401, "{}", r.body);
        assert_eq!(r.body["error"], "key_expired");
        assert!(
            r.body["message"].as_str().unwrap().contains("expired at"),
            "{}",
            r.body
        );
        // A working key's last use is kept (off the request's path, so polled for).
        let (valid, made) = coffer_server::auth::create_key(
            store.as_ref(),
            coffer_store::Role::Reader,
            vec!["ex1".into()],
            None,
            &coffer_store::Actor::cli(),
        )
        .await
        .unwrap();
        assert!(made.last_used_at.is_none());
        let r = app
            .get_as(&valid, "/v2/accounts/balance?customer_id=ex1")
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        cluster::eventually(
            "the key's last use is kept",
            std::time::Duration::from_secs(10),
            || {
                let store = std::sync::Arc::clone(&store);
                let id = made.id.clone();
                async move {
                    let keys = store.list_api_keys().await.unwrap();
                    keys.iter().any(|k| k.id == id && k.last_used_at.is_some())
                }
            },
        )
        .await;
    }
);
