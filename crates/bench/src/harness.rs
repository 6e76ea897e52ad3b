//! What every scenario does around what it measures, written once. A scenario is
//!
//! 1. [`begin`]: its heading, the load average, and a check that the database is one it can
//!    run on;
//! 2. [`database`]: a fresh, migrated database (then whatever the scenario inserts directly);
//! 3. [`serve`]: the simulators and the server over that database;
//! 4. its own check, measurement and `RESULT` lines, on the [`Served`];
//! 5. [`Served::finish`]: the load average at the end, the server and the simulators stopped,
//!    and the measurement's result handed back (also when it failed, so nothing is left
//!    running behind an error).

use std::sync::Arc;
use std::time::{Duration, Instant};

use coffer_server::config::Config;
use coffer_server::run::Running;
use coffer_sim::{Provider, SimConfig, SimHandle};
use coffer_store::Store;

use crate::setup::{self, ADMIN_KEY};

/// Prints the scenario's heading and the load average before it (on a machine shared with
/// other work the figures mean little without it). `postgres_only` names a scenario that
/// needs PostgreSQL (it inserts or reads with PostgreSQL's SQL).
pub fn begin(heading: &str, url: &str, postgres_only: Option<&str>) -> anyhow::Result<()> {
    println!("\n== {heading} ==");
    println!(
        "load average (1, 5, 15 min) at start: {}",
        setup::load_average()
    );
    if let Some(name) = postgres_only {
        anyhow::ensure!(
            url.starts_with("postgres"),
            "the {name} scenario needs PostgreSQL"
        );
    }
    Ok(())
}

/// Drops and recreates the database, so every run starts empty, and connects a pool of
/// `pool` to it, migrated.
pub async fn database(url: &str, pool: u32) -> anyhow::Result<Arc<dyn Store>> {
    setup::recreate_database(url).await?;
    setup::store(url, pool).await
}

/// The simulators and the server of one scenario.
pub struct Served {
    pub sim: SimHandle,
    pub running: Running,
}

impl Served {
    /// The server's base URL.
    pub fn url(&self) -> String {
        self.running.url()
    }

    /// Balance calls both simulated providers have received.
    pub fn provider_calls(&self) -> u64 {
        self.sim.total_calls(Provider::P100) + self.sim.total_calls(Provider::Corebanq)
    }

    /// Stops the server, then the simulators.
    pub async fn stop(self) {
        self.running.stop().await;
        self.sim.shutdown().await;
    }

    /// Prints the load average at the end and stops the server, leaving the simulators up for
    /// what the scenario does without the server.
    pub async fn end(self) -> SimHandle {
        println!(
            "load average (1, 5, 15 min) at end: {}",
            setup::load_average()
        );
        self.running.stop().await;
        self.sim
    }

    /// [`Served::end`], then the simulators stopped too; returns `result`.
    pub async fn finish<T>(self, result: anyhow::Result<T>) -> anyhow::Result<T> {
        self.end().await.shutdown().await;
        result
    }
}

/// Starts the simulators with `sim`, then the server over `store` with the bench's config
/// changed by `configure`, its providers built from that config against the simulators.
pub async fn serve(
    url: &str,
    store: &Arc<dyn Store>,
    sim: SimConfig,
    configure: impl FnOnce(&mut Config),
) -> anyhow::Result<Served> {
    let sim = coffer_sim::start(sim).await?;
    let mut config = setup::config(&sim, url);
    configure(&mut config);
    let providers = setup::providers(&sim, &config.providers)?;
    let running = setup::server_with(config, Arc::clone(store), providers).await?;
    Ok(Served { sim, running })
}

/// One GET as the admin, timed until its whole body has arrived: the step of the sequential
/// measurements. Fails on an answer other than 2xx, quoting the start of its body.
pub async fn timed_get(
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
) -> anyhow::Result<(Duration, Vec<u8>)> {
    let t0 = Instant::now();
    let resp = client
        .get(url)
        .header("x-api-key", ADMIN_KEY)
        .timeout(timeout)
        .send()
        .await?;
    let status = resp.status();
    let body = resp.bytes().await?;
    let took = t0.elapsed();
    anyhow::ensure!(
        status.is_success(),
        "{url}: HTTP {status}: {}",
        String::from_utf8_lossy(&body[..body.len().min(400)])
    );
    Ok((took, body.to_vec()))
}
