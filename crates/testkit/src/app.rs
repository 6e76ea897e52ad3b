//! The end-to-end harness: the real server (the same `run::start` as `coffer serve`) on a
//! random port, against both provider simulators over HTTP and a real store (SQLite in memory,
//! or a fresh PostgreSQL database per test).

use crate::pg;
use std::time::Duration;

use coffer_server::config::{Config, ProviderConfig};
use coffer_server::providers::Providers;
use coffer_server::run::{Running, StartOptions, start};
use coffer_sim::{SimConfig, SimHandle};
use serde_json::Value;

pub const P100: &str = coffer_sim::P100_ID;
pub const BANK: &str = coffer_sim::COREBANQ_ID;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How to start the app.
pub struct Options {
    pub sim: SimConfig,
    pub sync: bool,
    pub configure: Box<dyn FnOnce(&mut Config) + Send>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sim: SimConfig {
                customers: 5,
                ..Default::default()
            },
            sync: false,
            configure: Box::new(|_| {}),
        }
    }
}

pub struct TestApp {
    pub url: String,
    pub admin_key: String,
    pub sim: SimHandle,
    pub running: Option<Running>,
    pub client: reqwest::Client,
    pub database_url: String,
    pub db: Option<pg::TestDb>,
}

/// A database URL for `backend`; `None` when PostgreSQL is not available (skipped).
pub async fn database(backend: Backend) -> Option<(String, Option<pg::TestDb>)> {
    match backend {
        Backend::Sqlite => Some(("sqlite::memory:".to_owned(), None)),
        Backend::Postgres => {
            let db = pg::TestDb::create().await?;
            Some((db.url.clone(), Some(db)))
        }
    }
}

/// The providers of [`provider_configs`], built through the registry as `coffer serve` builds
/// them, with the simulators' credentials (and [`WEBHOOK_TOKEN`]) as the secret source.
pub fn providers(sim: &SimHandle) -> Providers {
    let secret = |name: &str| match name {
        WEBHOOK_TOKEN_ENV => Some(WEBHOOK_TOKEN.to_owned()),
        _ => sim.config().secret(name),
    };
    Providers::from_config_with(&provider_configs(sim), &secret).unwrap()
}

/// The name the test configuration gives P100's webhook token ([`providers`] answers it).
const WEBHOOK_TOKEN_ENV: &str = "TEST_P100_WEBHOOK_TOKEN";

/// The P100 webhook token of every test app.
pub const WEBHOOK_TOKEN: &str = "p100-webhook-token-for-tests";

pub fn provider_configs(sim: &SimHandle) -> Vec<ProviderConfig> {
    sim.configured()
        .into_iter()
        .map(|p| ProviderConfig {
            timeout: Duration::from_secs(2),
            retries: 1,
            // P100 delivers webhooks with this token.
            webhook_secret_env: (p.id == P100).then(|| WEBHOOK_TOKEN_ENV.into()),
            ..ProviderConfig::new(p.id, p.kind, &p.base_url, p.key_name)
        })
        .collect()
}

/// Starts simulators and the app; `None` when the backend is not available (skipped).
pub async fn spawn(backend: Backend, opts: Options) -> Option<TestApp> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    if std::env::var("TEST_LOG").is_ok() {
        let _ = coffer_server::telemetry::init(&Default::default(), &Default::default());
    }
    let (database_url, db) = database(backend).await?;
    let sim = coffer_sim::start(opts.sim).await.unwrap();
    let running = start_app(&sim, &database_url, opts.sync, opts.configure).await;
    let url = running.url();
    let app = TestApp {
        url,
        admin_key: ADMIN_KEY.to_owned(),
        sim,
        running: Some(running),
        client: reqwest::Client::new(),
        database_url,
        db,
    };
    app.wait_healthy().await;
    Some(app)
}

pub const ADMIN_KEY: &str = "coffer_test_admin_key_0123456789";

/// Starts one app (a replica) against `database_url` and the simulators.
pub async fn start_app(
    sim: &SimHandle,
    database_url: &str,
    sync: bool,
    configure: Box<dyn FnOnce(&mut Config) + Send>,
) -> Running {
    let mut config = Config::default();
    config.database.url = database_url.to_owned();
    config.sync.enabled = sync;
    config.server.rate_limit_per_key = 0;
    config.providers = provider_configs(sim);
    configure(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let store = coffer_store::connect(database_url).await.unwrap();
    store.migrate().await.unwrap();
    start(
        config,
        StartOptions {
            bootstrap_admin_key: Some(ADMIN_KEY.to_owned()),
            providers: Some(providers(sim)),
            store: Some(store),
            listener: Some(listener),
            instance_id: None,
            extra_routes: None,
        },
        false,
    )
    .await
    .unwrap()
}

pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl TestApp {
    /// Polls `/healthz` instead of sleeping.
    pub async fn wait_healthy(&self) {
        for _ in 0..200 {
            if let Ok(r) = self
                .client
                .get(format!("{}/healthz", self.url))
                .send()
                .await
                && r.status().is_success()
            {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("server did not become healthy");
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut req = self.client.request(method, format!("{}{path}", self.url));
        if let Some(k) = key {
            req = req.header("x-api-key", k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get_as(&self, key: &str, path: &str) -> Resp {
        self.request(reqwest::Method::GET, path, Some(key), None)
            .await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.get_as(&self.admin_key, path).await
    }

    /// GET as admin; panics unless 200.
    pub async fn ok(&self, path: &str) -> Value {
        let r = self.get(path).await;
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        r.body
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.request(
            reqwest::Method::POST,
            path,
            Some(&self.admin_key.clone()),
            Some(body),
        )
        .await
    }

    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.request(
            reqwest::Method::PUT,
            path,
            Some(&self.admin_key.clone()),
            Some(body),
        )
        .await
    }

    /// Creates a customer linked to the given P100 and Corebanq external ids.
    pub async fn customer(&self, id: &str, p100: Option<&str>, bank: Option<&str>) {
        let mut links = Vec::new();
        if let Some(e) = p100 {
            links.push(serde_json::json!({"provider": P100, "external_id": e}));
        }
        if let Some(e) = bank {
            links.push(serde_json::json!({"provider": BANK, "external_id": e}));
        }
        let r = self
            .post(
                "/v2/customers",
                serde_json::json!({"id": id, "name": id, "links": links}),
            )
            .await;
        assert_eq!(r.status, 201, "create customer {id}: {}", r.body);
    }

    /// Creates a reader key for `customers` through the store, as `coffer keys create` does.
    pub async fn reader_key(&self, customers: &[&str]) -> String {
        let store = std::sync::Arc::clone(&self.running.as_ref().unwrap().state.store);
        let (key, _) = coffer_server::auth::create_key(
            store.as_ref(),
            coffer_store::Role::Reader,
            customers.iter().map(|c| (*c).to_owned()).collect(),
            None,
            &coffer_store::Actor::cli(),
        )
        .await
        .unwrap();
        key
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }
}

/// Runs an async test body against both backends: `both!(name, |app| async move { … })`.
#[macro_export]
macro_rules! both {
    ($name:ident, $opts:expr, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(app) = $crate::spawn($crate::Backend::Sqlite, $opts).await {
                    ($body)(app).await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = $crate::spawn($crate::Backend::Postgres, $opts).await {
                    ($body)(app).await;
                }
            }
        }
    };
}
