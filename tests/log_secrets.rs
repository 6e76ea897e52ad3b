//! Secrets never reach a log line or an error body: API keys (admin, reader, a wrong one sent
//! by a client), provider keys (right and wrong), and the database password. The logs of a
//! whole run, at debug level, are captured and searched.

use coffer_testkit as common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coffer_server::config::Config;
use coffer_server::providers::Providers;
use coffer_server::run::{StartOptions, start};
use coffer_sim::SimConfig;
use tracing_subscriber::prelude::*;

const P100_KEY: &str = "p100-key-SECRET-4f1c2a";
const BANK_TOKEN: &str = "bank-token-SECRET-9b7e3d";
const WRONG_PROVIDER_KEY: &str = "wrong-provider-key-SECRET-77aa";
const WRONG_CLIENT_KEY: &str = "coffer_wrongclientkeySECRET0000";
const DB_PASSWORD: &str = "dbpassSECRET5521";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_logs_or_error_bodies() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let capture = Capture::default();
    tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("debug"))
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(capture.clone()),
        )
        .with(tracing_subscriber::fmt::layer().with_writer(capture.clone()))
        .init();

    // PostgreSQL when it is there (the URL then carries a password); SQLite otherwise.
    let (database_url, _db) = match common::database(common::Backend::Postgres).await {
        Some((url, db)) => (
            url.replacen("postgres@", &format!("postgres:{DB_PASSWORD}@"), 1),
            db,
        ),
        None => (
            format!(
                "sqlite://{}/secrets-{}.db",
                std::env::temp_dir().display(),
                std::process::id()
            ),
            None,
        ),
    };
    let sim = coffer_sim::start(SimConfig {
        customers: 2,
        p100_api_key: P100_KEY.into(),
        corebanq_token: BANK_TOKEN.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let t = Duration::from_secs(2);
    let mut providers = Providers::default();
    providers.insert(
        coffer_provider_p100::build("p100", &sim.p100_url(), P100_KEY, t).unwrap(),
        t,
        0,
    );
    providers.insert(
        coffer_provider_corebanq::build("bank", &sim.corebanq_url(), BANK_TOKEN, t, None).unwrap(),
        t,
        0,
    );
    providers.insert(
        coffer_provider_p100::build("p100bad", &sim.p100_url(), WRONG_PROVIDER_KEY, t).unwrap(),
        t,
        0,
    );
    let mut config = Config::default();
    config.database.url = database_url.clone();
    config.sync.enabled = true;
    config.sync.idle_poll = Duration::from_millis(20);
    let running = start(
        config,
        StartOptions {
            bootstrap_admin_key: Some(common::ADMIN_KEY.into()),
            providers: Some(providers),
            store: None, // connected (and logged) by `start` itself
            listener: Some(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()),
            instance_id: None,
            extra_routes: None,
        },
        false,
    )
    .await
    .unwrap();
    let url = running.url();
    let client = reqwest::Client::new();
    let mut bodies = String::new();
    let r = client
        .post(format!("{url}/v2/customers"))
        .header("x-api-key", common::ADMIN_KEY)
        .json(&serde_json::json!({"id": "c1", "links": [
            {"provider": "p100", "external_id": "gen-000000"},
            {"provider": "bank", "external_id": "gen-000000"},
            {"provider": "p100bad", "external_id": "gen-000001"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (reader, _) = coffer_server::auth::create_key(
        running.state.store.as_ref(),
        coffer_store::Role::Reader,
        vec!["c1".into()],
        None,
        &coffer_store::Actor::cli(),
    )
    .await
    .unwrap();
    for (key, path) in [
        (
            common::ADMIN_KEY,
            "/v2/accounts/balance?customer_id=c1&details=true",
        ),
        (reader.as_str(), "/v2/accounts?customer_id=c1"),
        (reader.as_str(), "/v2/accounts/balance?customer_id=nope"),
        (WRONG_CLIENT_KEY, "/v2/accounts/balance?customer_id=c1"),
        (
            common::ADMIN_KEY,
            "/v2/accounts/balance?customer_id=c1&strict=true",
        ),
    ] {
        let r = client
            .get(format!("{url}{path}"))
            .header("x-api-key", key)
            .send()
            .await
            .unwrap();
        bodies.push_str(&r.text().await.unwrap());
    }
    let r = client
        .get(format!(
            "{url}/v2/accounts/balance?customer_id=c1&max_age=0"
        ))
        .header("authorization", format!("Bearer {WRONG_CLIENT_KEY}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    bodies.push_str(&r.text().await.unwrap());
    // The wrong provider key was really used and rejected: the answer says so.
    assert!(bodies.contains("p100bad"), "{bodies}");
    running.stop().await;

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("request"), "logs were captured");
    assert!(
        logs.contains("connecting to the store"),
        "the database URL was logged (redacted)"
    );
    assert!(
        logs.contains("provider.fetch") || logs.contains("p100bad"),
        "provider calls were logged"
    );
    for secret in [
        common::ADMIN_KEY,
        reader.as_str(),
        WRONG_CLIENT_KEY,
        P100_KEY,
        BANK_TOKEN,
        WRONG_PROVIDER_KEY,
        DB_PASSWORD,
    ] {
        assert!(!logs.contains(secret), "a secret is in the logs: {secret}");
        assert!(
            !bodies.contains(secret),
            "a secret is in an answer: {secret}"
        );
    }
}
