//! (d) the background sync of N customers linked to both providers, the all-customer totals
//! at that size, and later cycles in which no balance changed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use coffer_sim::{Provider, SimConfig};
use coffer_store::Store;
use sqlx::Connection as _;
use tokio::runtime::Handle;

use crate::customers::bulk_customers;
use crate::harness::{self, Served};
use crate::load::{LoadClient, ms, quantile};
use crate::setup;

#[derive(Debug, Parser)]
pub struct SyncArgs {
    /// Customers, each linked to both providers.
    #[arg(long, default_value_t = 100_000)]
    pub customers: usize,
    /// Accounts per customer at each provider.
    #[arg(long, default_value_t = 5)]
    pub accounts_per_provider: usize,
    /// Simulated latency of both providers, milliseconds.
    #[arg(long, default_value_t = 20)]
    pub latency_ms: u64,
    /// `sync.concurrency`: provider fetches in flight.
    #[arg(long, default_value_t = 1024)]
    pub sync_concurrency: usize,
    /// `sync.batch`: pairs leased per round trip and written per transaction.
    #[arg(long, default_value_t = 1024)]
    pub sync_batch: u32,
    /// The store's connection pool.
    #[arg(long, default_value_t = 32)]
    pub pool: u32,
    /// Sync cycles to measure: the first writes every pair's first snapshot; each later one
    /// makes every pair due again and syncs it against its stored accounts.
    #[arg(long, default_value_t = 2)]
    pub cycles: u32,
    /// All-customer totals requests measured after the first cycle (sequential).
    #[arg(long, default_value_t = 5)]
    pub totals_requests: u64,
}

impl Default for SyncArgs {
    fn default() -> Self {
        Self::parse_from(["sync"])
    }
}

/// (d).
pub async fn sync(url: &str, client: Handle, args: &SyncArgs) -> anyhow::Result<()> {
    let heading = "(d) background sync throughput, then all-customer totals";
    harness::begin(heading, url, Some("sync"))?;
    let n = args.customers;
    let store = harness::database(url, args.pool).await?;
    let t = Instant::now();
    bulk_customers(url, n).await?;
    println!(
        "inserted {n} customers, {} links and sync states in {:.1} s",
        2 * n,
        t.elapsed().as_secs_f64()
    );
    println!(
        "providers at {} ms, {} accounts per customer per provider, sync.concurrency {}, sync.batch {}, pool {}",
        args.latency_ms,
        args.accounts_per_provider,
        args.sync_concurrency,
        args.sync_batch,
        args.pool
    );
    let mut probe = sqlx::PgConnection::connect(url).await?;
    let start = Instant::now();
    let cpu = setup::CpuTicks::now();
    let served = serve(url, &store, args).await?;
    let result = measure(&served, &mut probe, client, args, (start, cpu)).await;
    probe.close().await?;
    served.finish(result).await
}

/// The simulators at the scenario's latency, and the server with the sync worker on.
async fn serve(url: &str, store: &Arc<dyn Store>, args: &SyncArgs) -> anyhow::Result<Served> {
    let latency = Duration::from_millis(args.latency_ms);
    let sim = SimConfig {
        customers: args.customers,
        accounts_per_customer: args.accounts_per_provider,
        latency_p100: latency,
        latency_corebanq: latency,
        ..SimConfig::default()
    };
    harness::serve(url, store, sim, |config| {
        config.sync.enabled = true;
        config.sync.concurrency = args.sync_concurrency;
        config.sync.batch = args.sync_batch;
        // Every pair once: the next cycle is a day away.
        config.sync.interval = Duration::from_secs(24 * 3600);
        config.sync.idle_poll = Duration::from_millis(50);
    })
    .await
}

/// The first cycle (every pair's first snapshot: every account and history row is new), the
/// all-customer totals at this size, then the later cycles.
async fn measure(
    served: &Served,
    probe: &mut sqlx::PgConnection,
    client: Handle,
    args: &SyncArgs,
    (start, cpu): (Instant, setup::CpuTicks),
) -> anyhow::Result<()> {
    let n = args.customers;
    let sim = &served.sim;
    let done = wait_for_pairs(probe, sim, None, i64::try_from(2 * n)?, start).await?;
    let elapsed = start.elapsed();
    let cpu = setup::CpuTicks::now().since(cpu, u64::try_from(2 * n)?, "pair");
    let failures: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sync_state WHERE failures > 0 OR last_error IS NOT NULL",
    )
    .fetch_one(&mut *probe)
    .await?;
    let accounts: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts")
        .fetch_one(&mut *probe)
        .await?;
    let (calls_p, calls_c) = (
        sim.total_calls(Provider::P100),
        sim.total_calls(Provider::Corebanq),
    );
    #[allow(clippy::cast_precision_loss)]
    let per_s = n as f64 / elapsed.as_secs_f64();
    println!(
        "RESULT sync: {n} customers ({} pairs, {accounts} accounts) {} in {:.1} s = {per_s:.0} customers/s (goal >= 2000: {}) | provider calls P100 {calls_p}, Corebanq {calls_c}; pairs with errors {failures}",
        2 * n,
        if done {
            "synced"
        } else {
            "NOT all synced (stalled)"
        },
        elapsed.as_secs_f64(),
        if done && per_s >= 2000.0 {
            "met"
        } else {
            "MISSED"
        },
    );
    println!("  {cpu}");
    totals(&served.url(), client, args).await?;
    for cycle in 2..=args.cycles {
        resync(probe, sim, n, cycle).await?;
    }
    Ok(())
}

/// The all-customer totals at this size: admin, no customer_id, store only.
async fn totals(base: &str, client: Handle, args: &SyncArgs) -> anyhow::Result<()> {
    let lc = LoadClient::new(client, 1)?;
    let totals_url = format!("{base}/v2/accounts/balance");
    let mut lat = Vec::new();
    let mut summary = String::new();
    for i in 0..args.totals_requests {
        let timeout = Duration::from_secs(300);
        let (took, body) = harness::timed_get(&lc.client, &totals_url, timeout).await?;
        if i == 0 {
            summary = totals_summary(&body)?;
        }
        println!("  totals request {}: {}", i + 1, ms(took));
        lat.push(took);
    }
    lat.sort_unstable();
    println!(
        "RESULT totals: GET /v2/accounts/balance (admin, all customers) at {} customers: p50 {} max {} over {} sequential requests | {summary}",
        args.customers,
        ms(quantile(&lat, 0.5)),
        ms(lat.last().copied().unwrap_or_default()),
        lat.len(),
    );
    Ok(())
}

fn totals_summary(body: &[u8]) -> anyhow::Result<String> {
    let v: serde_json::Value = serde_json::from_slice(body)?;
    Ok(format!(
        "total {} {}, {} accounts, coverage {}; {} bytes",
        v["total_balance"].as_str().unwrap_or("?"),
        v["currency"].as_str().unwrap_or("?"),
        v["accounts_count"],
        v["coverage"],
        body.len()
    ))
}

/// Polls once a second until `target` pairs are done (true) or the count stops moving for two
/// minutes (false), printing progress every 5 s. A pair is done when it has a snapshot, or with
/// `since`, when its last success was recorded after it.
async fn wait_for_pairs(
    probe: &mut sqlx::PgConnection,
    sim: &coffer_sim::SimHandle,
    since: Option<chrono::DateTime<chrono::Utc>>,
    target: i64,
    start: Instant,
) -> anyhow::Result<bool> {
    let mut last = (Instant::now(), 0_i64);
    let mut next_print = Instant::now() + Duration::from_secs(5);
    let stall_limit = Duration::from_secs(120);
    let mut last_progress = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let done: i64 = match since {
            None => sqlx::query_scalar("SELECT count(*) FROM snapshots"),
            Some(t) => {
                sqlx::query_scalar("SELECT count(*) FROM sync_state WHERE last_success >= $1")
                    .bind(t)
            }
        }
        .fetch_one(&mut *probe)
        .await?;
        if done > last.1 {
            last_progress = Instant::now();
        }
        if Instant::now() >= next_print {
            let dt = last.0.elapsed().as_secs_f64();
            #[allow(clippy::cast_precision_loss)]
            let rate = (done - last.1) as f64 / dt / 2.0;
            println!(
                "  {:>6.1} s: {done}/{target} pairs done ({rate:.0} customers/s lately); provider calls P100 {}, Corebanq {}",
                start.elapsed().as_secs_f64(),
                sim.total_calls(Provider::P100),
                sim.total_calls(Provider::Corebanq)
            );
            last = (Instant::now(), done);
            next_print = Instant::now() + Duration::from_secs(5);
        }
        if done >= target {
            return Ok(true);
        }
        if last_progress.elapsed() > stall_limit {
            return Ok(false);
        }
    }
}

/// A later cycle: every pair made due now, as its interval ending would, and synced again
/// against stored accounts. The simulators answer what they answered before, so this is the
/// steady state of a cycle in which no balance changed: every account is rewritten (its
/// `fetched_at`), no history row is.
async fn resync(
    probe: &mut sqlx::PgConnection,
    sim: &coffer_sim::SimHandle,
    n: usize,
    cycle: u32,
) -> anyhow::Result<()> {
    let target = i64::try_from(2 * n)?;
    let calls_before = sim.total_calls(Provider::P100) + sim.total_calls(Provider::Corebanq);
    let history_before: i64 = sqlx::query_scalar("SELECT count(*) FROM balance_history")
        .fetch_one(&mut *probe)
        .await?;
    let start = Instant::now();
    let cpu = setup::CpuTicks::now();
    // `now()` of this statement: a pair is done once its success is recorded after it.
    let since: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("WITH due AS (UPDATE sync_state SET next_due = now()) SELECT now()")
            .fetch_one(&mut *probe)
            .await?;
    println!("cycle {cycle}: every pair due again");
    let done = wait_for_pairs(probe, sim, Some(since), target, start).await?;
    let elapsed = start.elapsed();
    let cpu = setup::CpuTicks::now().since(cpu, u64::try_from(2 * n)?, "pair");
    let calls =
        sim.total_calls(Provider::P100) + sim.total_calls(Provider::Corebanq) - calls_before;
    let history: i64 = sqlx::query_scalar("SELECT count(*) FROM balance_history")
        .fetch_one(&mut *probe)
        .await?;
    #[allow(clippy::cast_precision_loss)]
    let per_s = n as f64 / elapsed.as_secs_f64();
    println!(
        "RESULT sync cycle {cycle}: {n} customers {} again in {:.1} s = {per_s:.0} customers/s | provider calls {calls}; new history rows {}",
        if done {
            "synced"
        } else {
            "NOT all synced (stalled)"
        },
        elapsed.as_secs_f64(),
        history - history_before,
    );
    println!("  {cpu}");
    Ok(())
}
