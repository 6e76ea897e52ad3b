//! `coffer serve` as a process, as a platform runs it. Stopped by SIGTERM: `/readyz` answers 503
//! from the signal on, the listener keeps accepting for `server.shutdown_delay`, a request in
//! flight finishes inside `server.shutdown_grace`, and one that would outlast the grace is cut at
//! it (a real signal, a slow simulated provider). Observed: its JSON log has an access line per
//! request carrying the caller's trace id, and `/metrics` on `server.metrics_listen` has the build
//! and pool gauges.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use coffer_sim::{Fault, Provider, SimConfig, Target};

pub(crate) const ADMIN_KEY: &str = "coffer_shutdown_test_admin_key_0123456789";
const GRACE: Duration = Duration::from_secs(6);
const DELAY: Duration = Duration::from_secs(2);
/// Longer than the delay (still in flight when the listener closes), shorter than the grace.
const QUICK: Duration = Duration::from_secs(3);
/// Far longer than the grace.
const SLOW: Duration = Duration::from_secs(120);

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
    /// The JSON log lines, parsed, as they come.
    log: std::sync::mpsc::Receiver<serde_json::Value>,
    _dir: TempDir,
}

impl Server {
    /// The next log line for which `pick` holds (lines before it are dropped).
    fn log_line(&self, what: &str, pick: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        loop {
            let line = self
                .log
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("no log line {what}: {e}"));
            if pick(&line) {
                return line;
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts `coffer serve` on port 0 and reads the address it bound from its JSON log; `extra` is
/// more of `[server]` (and may open further tables).
pub(crate) fn serve(p100_url: &str, p100_key: &str, extra: &str) -> Server {
    let dir = std::env::temp_dir().join(format!(
        "coffer-shutdown-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("coffer.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[server]
listen = "127.0.0.1:0"
request_timeout = "300s"
shutdown_grace = "{grace}s"
shutdown_delay = "{delay}s"
rate_limit_per_key = 0
{extra}
[database]
url = "sqlite://{db}"
[sync]
enabled = false
[log]
format = "json"
level = "info"
[[providers]]
id = "p100"
kind = "p100"
base_url = "{p100_url}"
api_key_env = "SHUTDOWN_TEST_P100_KEY"
timeout = "300s"
retries = 0
"#,
            grace = GRACE.as_secs(),
            delay = DELAY.as_secs(),
            db = dir.join("coffer.db").display(),
        ),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_coffer"));
    for (k, _) in std::env::vars() {
        if k.starts_with("COFFER_") || k.starts_with("OTEL_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .env("COFFER_ADMIN_KEY", ADMIN_KEY)
        .env("SHUTDOWN_TEST_P100_KEY", p100_key)
        .args(["--config", config.to_str().unwrap(), "serve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // Every log line goes to the test through a channel, read by a thread so the process never
    // blocks on a full pipe. Lines before the one naming the address stay in the channel.
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (tx, log) = std::sync::mpsc::channel();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if v["fields"]["message"] == "coffer is listening" {
                let _ = addr_tx.send(v["fields"]["addr"].as_str().unwrap_or_default().to_owned());
            }
            let _ = tx.send(v);
        }
    });
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("coffer exited before listening")
        .parse()
        .unwrap();
    Server {
        child,
        addr,
        log,
        _dir: TempDir(dir),
    }
}

/// Polls `cond` until it holds, for at most `limit`.
async fn until(limit: Duration, what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !cond().await {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_within_the_grace_and_cuts_at_it() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = coffer_sim::start(SimConfig {
        customers: 2,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut server = serve(&sim.p100_url(), &sim.config().p100_api_key, "");
    let base = format!("http://{}", server.addr);
    let client = reqwest::Client::new();
    let admin = |req: reqwest::RequestBuilder| req.header("x-api-key", ADMIN_KEY);

    for (id, ext) in [("quick", "gen-000000"), ("slow", "gen-000001")] {
        let r = admin(client.post(format!("{base}/v2/customers")))
            .json(
                &serde_json::json!({"id": id, "links": [{"provider": "p100", "external_id": ext}]}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }
    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);

    sim.set_fault(
        Provider::P100,
        Target::customer("gen-000000"),
        Some(Fault::Latency(QUICK)),
    );
    sim.set_fault(
        Provider::P100,
        Target::customer("gen-000001"),
        Some(Fault::Latency(SLOW)),
    );
    let refresh = |id: &str| {
        // Its own connection: graceful shutdown closes idle keep-alive connections.
        let req = admin(reqwest::Client::new().post(format!("{base}/v2/customers/{id}/refresh")));
        tokio::spawn(async move {
            let started = Instant::now();
            let r = req.send().await;
            let status = match r {
                Ok(r) => r.status().as_u16().to_string(),
                Err(e) => format!("error: {e}"),
            };
            (status, started.elapsed())
        })
    };
    let quick = refresh("quick");
    let slow = refresh("slow");
    // Both are in flight once the simulator has been called for both.
    until(
        Duration::from_secs(10),
        "both refreshes reach the provider",
        async || {
            sim.calls(Provider::P100, "gen-000000") >= 1
                && sim.calls(Provider::P100, "gen-000001") >= 1
        },
    )
    .await;

    let signalled = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());

    // Not ready from the signal on, while the listener still accepts (the delay).
    let readyz = format!("{base}/readyz");
    until(DELAY, "/readyz turns 503", async || {
        let r = client.get(&readyz).send().await.unwrap();
        r.status() == 503
    })
    .await;
    let body: serde_json::Value = client
        .get(&readyz)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "not_ready", "{body}");
    assert_eq!(body["draining"], true, "{body}");

    // The request in flight finishes, after the listener has closed and inside the grace.
    let (status, _) = quick.await.unwrap();
    assert_eq!(
        status, "200",
        "the request in flight was not allowed to finish"
    );
    let finished = signalled.elapsed();
    assert!(finished > DELAY && finished < GRACE, "{finished:?}");
    // The listener is closed by now; the process is still draining the slow request.
    let fresh = reqwest::Client::new().get(&readyz).send().await;
    assert!(
        fresh.is_err(),
        "a new connection was accepted after the delay: {fresh:?}"
    );
    assert!(server.child.try_wait().unwrap().is_none());

    // The slow one is cut at the grace, and the process exits then, cleanly.
    let (status, _) = slow.await.unwrap();
    assert!(status.starts_with("error"), "the slow request got {status}");
    let cut = signalled.elapsed();
    assert!(
        cut >= GRACE - Duration::from_millis(200),
        "cut early: {cut:?}"
    );
    let exit = tokio::task::spawn_blocking(move || {
        let status = server.child.wait().unwrap();
        (status, server)
    })
    .await
    .unwrap()
    .0;
    let exited = signalled.elapsed();
    assert!(exit.success(), "{exit:?}");
    assert!(
        exited < GRACE + Duration::from_secs(3),
        "exited {exited:?} after SIGTERM"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_an_access_line_with_the_trace_id_and_metrics_have_their_own_port() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = coffer_sim::start(SimConfig::default()).await.unwrap();
    let server = serve(
        &sim.p100_url(),
        &sim.config().p100_api_key,
        r#"metrics_listen = "127.0.0.1:0""#,
    );
    let metrics_addr = server.log_line("naming the metrics listener", |l| {
        l["fields"]["message"] == "metrics are served on their own listener"
    })["fields"]["addr"]
        .as_str()
        .unwrap()
        .trim_start_matches("Some(")
        .trim_end_matches(')')
        .to_owned();
    let base = format!("http://{}", server.addr);
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let r = reqwest::Client::new()
        .get(format!("{base}/v2/customers?limit=5"))
        .header("x-api-key", ADMIN_KEY)
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let access = server.log_line("of access", |l| l["target"] == "coffer::access");
    assert_eq!(access["level"], "INFO", "{access}");
    assert_eq!(access["fields"]["route"], "/v2/customers", "{access}");
    assert_eq!(access["fields"]["status"], 200, "{access}");
    assert!(access["fields"]["duration_ms"].is_number(), "{access}");
    assert_eq!(access["span"]["trace_id"], trace, "{access}");
    assert!(access["span"]["request_id"].is_string(), "{access}");

    let text = reqwest::get(format!("http://{metrics_addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        text.contains(&format!("coffer_build_info{{version=\"{version}\"}} 1")),
        "{text}"
    );
    for series in [
        "coffer_db_pool_connections{backend=\"sqlite\",state=\"idle\"}",
        "coffer_db_pool_connections{backend=\"sqlite\",state=\"in_use\"}",
        "coffer_db_pool_max_connections{backend=\"sqlite\"}",
        "coffer_http_requests_total{route=\"/v2/customers\"",
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_threads ",
        "process_start_time_seconds ",
    ] {
        assert!(text.contains(series), "{series} missing:\n{text}");
    }
    // The process series are this process's: a server holds more than a few MiB resident.
    let resident: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no resident memory figure:\n{text}"));
    assert!(resident > 4.0 * 1024.0 * 1024.0, "{resident}");
    sim.shutdown().await;
}
