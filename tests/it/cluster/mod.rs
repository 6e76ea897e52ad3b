//! Support for the sync, replica and outage tests: replicas started on one database, polling
//! with a deadline (never a fixed sleep as synchronization), and a TCP proxy in front of
//! PostgreSQL that can "restart" it (drop every connection and refuse new ones) without
//! touching the shared server.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coffer_server::config::Config;
use coffer_server::run::Running;
use coffer_sim::SimHandle;
use serde_json::Value;
use sqlx::types::chrono::{DateTime, Utc};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::common;

/// How often conditions are polled.
pub const POLL: Duration = Duration::from_millis(20);

/// Polls `cond` every [`POLL`] until it holds; panics with `what` after `timeout`. Returns how
/// long it took.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut cond: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if cond().await {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Parses an RFC 3339 timestamp of an answer.
pub fn ts(v: &Value) -> DateTime<Utc> {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("expected a timestamp, got {v}"));
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("`{s}` is not RFC 3339: {e}"))
        .with_timezone(&Utc)
}

/// One replica of the service (the same `run::start` as `coffer serve`) and an HTTP client.
pub struct Replica {
    pub running: Option<Running>,
    pub url: String,
    pub instance_id: String,
    client: reqwest::Client,
}

impl Replica {
    pub async fn start(
        sim: &SimHandle,
        database_url: &str,
        sync: bool,
        configure: impl FnOnce(&mut Config) + Send + 'static,
    ) -> Replica {
        let running = common::start_app(sim, database_url, sync, Box::new(configure)).await;
        let r = Replica {
            url: running.url(),
            instance_id: running.state.instance_id.clone(),
            running: Some(running),
            // A new connection per request: a killed replica's kept-alive connections must not
            // answer for it.
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        };
        eventually(
            "replica answers /healthz",
            Duration::from_secs(10),
            || async {
                r.client
                    .get(format!("{}/healthz", r.url))
                    .send()
                    .await
                    .is_ok_and(|x| x.status().is_success())
            },
        )
        .await;
        r
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.url))
            .header("x-api-key", common::ADMIN_KEY);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.request(reqwest::Method::GET, path, None).await
    }

    /// GET; panics unless 200.
    pub async fn ok(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path} on {}: {body}", self.url);
        body
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.request(reqwest::Method::POST, path, Some(body)).await
    }

    /// Creates a customer linked to the given P100 and Corebanq external ids.
    pub async fn customer(&self, id: &str, p100: Option<&str>, bank: Option<&str>) {
        let mut links = Vec::new();
        if let Some(e) = p100 {
            links.push(serde_json::json!({"provider": common::P100, "external_id": e}));
        }
        if let Some(e) = bank {
            links.push(serde_json::json!({"provider": common::BANK, "external_id": e}));
        }
        let (status, body) = self
            .post(
                "/v2/customers",
                serde_json::json!({"id": id, "name": id, "links": links}),
            )
            .await;
        assert_eq!(status, 201, "create customer {id}: {body}");
    }

    /// Aborts the replica like a killed process.
    pub fn kill(&mut self) {
        if let Some(r) = self.running.take() {
            r.kill();
        }
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }
}

/// A TCP proxy in front of PostgreSQL. [`PgProxy::down`] drops every connection and closes
/// the port (connections are refused, as by a stopped server); [`PgProxy::up`] listens again
/// on the same port.
pub struct PgProxy {
    pub port: u16,
    target: String,
    /// Bumped to drop every proxied connection.
    generation: watch::Sender<u64>,
    acceptor: Mutex<Option<JoinHandle<()>>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl PgProxy {
    /// A proxy to the server of `database_url`; returns it and the same URL through it.
    pub async fn start(database_url: &str) -> (PgProxy, String) {
        let mut url = reqwest::Url::parse(database_url).unwrap();
        let host = url.host_str().unwrap().to_owned();
        let target = format!("{host}:{}", url.port().unwrap_or(5432));
        let listener = bind(0).await;
        let port = listener.local_addr().unwrap().port();
        let (generation, _) = watch::channel(0);
        let proxy = PgProxy {
            port,
            target,
            generation,
            acceptor: Mutex::new(None),
            conns: Arc::new(Mutex::new(Vec::new())),
        };
        proxy.accept_on(listener);
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(port)).unwrap();
        (proxy, url.to_string())
    }

    fn accept_on(&self, listener: TcpListener) {
        let target = self.target.clone();
        let generation = self.generation.clone();
        let conns = Arc::clone(&self.conns);
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let target = target.clone();
                let mut gen_rx = generation.subscribe();
                let conn = tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {},
                        _ = gen_rx.changed() => {},
                    }
                    // Both sockets are dropped here: the connection is gone on both sides.
                });
                let mut c = conns.lock().unwrap();
                c.retain(|h| !h.is_finished());
                c.push(conn);
            }
        });
        *self.acceptor.lock().unwrap() = Some(task);
    }

    /// "PostgreSQL stops": every connection is dropped and new ones are refused.
    pub async fn down(&self) {
        let acceptor = self.acceptor.lock().unwrap().take();
        if let Some(a) = acceptor {
            a.abort();
            let _ = a.await;
        }
        self.generation.send_modify(|g| *g += 1);
        let conns: Vec<_> = std::mem::take(&mut *self.conns.lock().unwrap());
        for c in conns {
            c.abort();
            let _ = c.await;
        }
        // The listener was dropped with the acceptor: connecting is refused now.
        eventually(
            "the proxy port refuses connections",
            Duration::from_secs(10),
            || async { TcpStream::connect(("127.0.0.1", self.port)).await.is_err() },
        )
        .await;
    }

    /// "PostgreSQL is back": listens on the same port again.
    pub async fn up(&self) {
        let listener = bind(self.port).await;
        self.accept_on(listener);
    }
}

async fn bind(port: u16) -> TcpListener {
    let mut last = None;
    for _ in 0..100 {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        match socket.bind(([127, 0, 0, 1], port).into()) {
            Ok(()) => return socket.listen(128).unwrap(),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("cannot listen on port {port} again: {last:?}");
}
