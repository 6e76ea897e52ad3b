//! The parts of what a benchmark measures (`harness.rs` puts them together for a scenario): a
//! fresh database, the providers built against the simulators, and the server in-process
//! through the same `run::start` as `coffer serve` (so the full middleware stack, auth, loader
//! and store are what is measured); and the machine's figures every report prints.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use coffer_server::config::{Config, ProviderConfig};
use coffer_server::providers::Providers;
use coffer_server::run::{Running, StartOptions, start};
use coffer_sim::SimHandle;
use coffer_store::{ConnectOptions, Store};
use sqlx::Connection as _;

pub const P100: &str = coffer_sim::P100_ID;
pub const BANK: &str = coffer_sim::COREBANQ_ID;
/// The bootstrap admin key of the benchmark's server (it only ever listens on loopback).
pub const ADMIN_KEY: &str = "coffer_bench_admin_key_0123456789abcdef";

/// The machine, as the report prints it.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown", |(_, m)| m.trim())
        .to_owned();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024 / 1024);
    format!("nproc {cores}, CPU {model}, RAM {mem_gib} GiB")
}

/// The 1, 5 and 15 minute load averages: on a machine shared with other work, the figures mean
/// little without them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// The machine's CPU counters (`/proc/stat`, in clock ticks), so a run can say how much CPU it
/// used and how much the hypervisor took: on a shared virtual machine the steal time varies
/// from run to run, and CPU per unit of work is steadier than a rate.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuTicks {
    busy: u64,
    idle: u64,
    steal: u64,
    /// This process's own (server, simulators, bench client); the rest is mostly PostgreSQL.
    process: u64,
}

impl CpuTicks {
    pub fn now() -> Self {
        let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
            return Self::default();
        };
        let v: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        // user nice system idle iowait irq softirq steal
        Self {
            busy: at(0) + at(1) + at(2) + at(5) + at(6),
            idle: at(3) + at(4),
            steal: at(7),
            process: process_ticks(),
        }
    }

    /// "CPU busy 41.2 s (…% of the cores' time), stolen …%, … µs of CPU per <unit>".
    #[allow(clippy::cast_precision_loss)] // tick counts are far below 2^52
    pub fn since(self, start: Self, units: u64, unit: &str) -> String {
        // USER_HZ is 100 on every Linux the bench runs on.
        let secs = |t: u64| t as f64 / 100.0;
        let busy = self.busy.saturating_sub(start.busy);
        let total =
            busy + self.idle.saturating_sub(start.idle) + self.steal.saturating_sub(start.steal);
        if total == 0 {
            return "CPU use unknown (no /proc/stat)".into();
        }
        let pct = |t: u64| 100.0 * t as f64 / total as f64;
        let per_unit = |t: u64| secs(t) * 1e6 / units.max(1) as f64;
        let process = self.process.saturating_sub(start.process);
        format!(
            "CPU busy {:.1} s ({:.0} % of the cores' time), stolen by the hypervisor {:.0} %, {:.0} µs of CPU per {unit} ({:.0} in this process: server, simulators, client; {:.0} elsewhere: PostgreSQL)",
            secs(busy),
            pct(busy),
            pct(self.steal.saturating_sub(start.steal)),
            per_unit(busy),
            per_unit(process),
            per_unit(busy.saturating_sub(process)),
        )
    }
}

/// utime + stime of this process, in clock ticks (`/proc/self/stat` fields 14 and 15; the
/// command name before them is in parentheses and may hold spaces).
fn process_ticks() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0;
    };
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    fields.iter().sum()
}

/// Drops and recreates the database named in `url` (PostgreSQL), so every run starts empty.
/// SQLite URLs are left alone (use `sqlite::memory:`).
pub async fn recreate_database(url: &str) -> anyhow::Result<()> {
    if !url.starts_with("postgres") {
        return Ok(());
    }
    let (server, name) = url
        .rsplit_once('/')
        .context("the database URL names no database")?;
    let name = name.split('?').next().unwrap_or(name);
    anyhow::ensure!(
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        "database name `{name}`: letters, digits and _ only"
    );
    let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .with_context(|| format!("connecting to {server}/postgres"))?;
    // `name` was checked above: letters, digits and `_` only.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    Ok(())
}

/// Connects the store with a pool big enough for the scenario, and migrates it.
pub async fn store(url: &str, max_connections: u32) -> anyhow::Result<Arc<dyn Store>> {
    let store = coffer_store::connect_with(
        url,
        &ConnectOptions {
            max_connections,
            acquire_timeout: Duration::from_secs(30),
        },
    )
    .await?;
    store.migrate().await?;
    Ok(store)
}

/// The configured providers, built through the registry as `coffer serve` builds them from the
/// config, the simulators' credentials (and the inbox's webhook token) as the secret source.
pub fn providers(sim: &SimHandle, cfgs: &[ProviderConfig]) -> anyhow::Result<Providers> {
    let secret = |name: &str| match name {
        WEBHOOK_TOKEN_NAME => Some(WEBHOOK_TOKEN.to_owned()),
        _ => sim.config().secret(name),
    };
    Ok(Providers::from_config_with(cfgs, &secret)?)
}

/// The name a scenario's config gives P100's webhook token ([`providers`] answers it with
/// [`WEBHOOK_TOKEN`]): the inbox sets it, and the server then runs its webhook processor.
pub const WEBHOOK_TOKEN_NAME: &str = "COFFER_BENCH_P100_WEBHOOK_TOKEN";
/// The P100 webhook token the inbox's deliveries carry.
pub const WEBHOOK_TOKEN: &str = "coffer-bench-webhook-token";

/// The simulators' providers, as [`config`] configures them.
pub fn provider_configs(sim: &SimHandle) -> Vec<ProviderConfig> {
    sim.configured()
        .into_iter()
        .map(|p| ProviderConfig {
            retries: 1,
            ..ProviderConfig::new(p.id, p.kind, &p.base_url, p.key_name)
        })
        .collect()
}

/// The server's config for a benchmark: no per-key rate limit (it would measure the limiter),
/// sync off unless the scenario turns it on.
pub fn config(sim: &SimHandle, database_url: &str) -> Config {
    let mut config = Config::default();
    config.database.url = database_url.to_owned();
    config.sync.enabled = false;
    config.server.rate_limit_per_key = 0;
    config.providers = provider_configs(sim);
    config
}

/// The baseline the cached scenario compares with: `GET /v2/minimal`, `{"ok":true}` behind
/// the server's whole middleware stack. Mounted by the bench only; the service has no such
/// route.
fn baseline() -> axum::Router {
    async fn minimal() -> axum::Json<serde_json::Value> {
        axum::Json(serde_json::json!({"ok": true}))
    }
    axum::Router::new().route("/v2/minimal", axum::routing::get(minimal))
}

/// Starts the server with these providers on a loopback port, the bench's baseline route
/// mounted beside the API, and waits until it answers `/healthz`.
pub async fn server_with(
    config: Config,
    store: Arc<dyn Store>,
    providers: Providers,
) -> anyhow::Result<Running> {
    // As `coffer serve` binds (its listen backlog).
    let listener = coffer_server::run::bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let running = start(
        config,
        StartOptions {
            bootstrap_admin_key: Some(ADMIN_KEY.to_owned()),
            providers: Some(providers),
            store: Some(store),
            listener: Some(listener),
            instance_id: Some("coffer-bench".into()),
            extra_routes: Some(baseline()),
        },
        false,
    )
    .await?;
    let client = reqwest::Client::new();
    for _ in 0..500 {
        if let Ok(r) = client
            .get(format!("{}/healthz", running.url()))
            .send()
            .await
            && r.status().is_success()
        {
            return Ok(running);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    anyhow::bail!("the server did not become healthy")
}
