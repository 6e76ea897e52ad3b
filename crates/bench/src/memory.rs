//! (e) memory: what a cached account costs, and the caches held to `cache.max_bytes`.
//!
//! Phase 1 asks `--measure` customers (10 accounts each: 5 per provider) once each with a
//! budget that holds them all, and divides the growth of the process's resident memory by the
//! accounts now cached: the bytes per cached account. Phase 2 asks `--customers` customers once
//! each with `--max-bytes`: the resident memory must stay under the budget plus the fixed
//! overhead measured before the pass, no request may fail, and a working set that fits is then
//! served from memory (its hit ratio).

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use coffer_sim::SimConfig;
use tokio::runtime::Handle;

use crate::customers::create_customers;
use crate::harness::{self, Served};
use crate::load::{LoadClient, MakeRequest, Until};
use crate::setup::ADMIN_KEY;

#[derive(Debug, Parser)]
pub struct MemoryArgs {
    /// Customers asked once each in phase 1, with a budget that holds them all.
    #[arg(long, default_value_t = 10_000)]
    pub measure: usize,
    /// Customers asked once each in phase 2, under `--max-bytes`.
    #[arg(long, default_value_t = 100_000)]
    pub customers: usize,
    /// `cache.max_bytes` in phase 2.
    #[arg(long, default_value = "256 MiB")]
    pub max_bytes: bytesize::ByteSize,
    /// Customers of the working set asked twice after phase 2.
    #[arg(long, default_value_t = 1_000)]
    pub working_set: usize,
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
}

/// The process's resident memory, from the kernel.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// A server over a fresh database whose caches get `max_bytes` and never expire during the run.
async fn serve(
    url: &str,
    customers: usize,
    max_bytes: bytesize::ByteSize,
) -> anyhow::Result<Served> {
    let store = harness::database(url, 32).await?;
    let sim = SimConfig {
        customers,
        accounts_per_customer: 5,
        latency_p100: Duration::ZERO,
        latency_corebanq: Duration::ZERO,
        ..SimConfig::default()
    };
    let served = harness::serve(url, &store, sim, |config| {
        config.cache.max_bytes = max_bytes;
        config.cache.ttl = Duration::from_secs(3600);
    })
    .await?;
    let t = Instant::now();
    let ids = (0..customers)
        .map(|i| (format!("mem-{i:06}"), coffer_sim::generate::customer_id(i)))
        .collect();
    create_customers(&store, ids, 32).await?;
    println!(
        "created {customers} customers in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Ok(served)
}

/// Asks customers `from..from + n` once each; fails on any error.
async fn ask(
    lc: &LoadClient,
    base: &str,
    from: usize,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    let base = base.to_owned();
    let make: MakeRequest = Arc::new(move |c: &reqwest::Client, i| {
        c.get(format!(
            "{base}/v2/accounts/balance?customer_id=mem-{:06}",
            from as u64 + i
        ))
        .header("x-api-key", ADMIN_KEY)
    });
    let s = lc
        .run(
            "(e) GET balance, each customer once",
            concurrency,
            Duration::ZERO,
            Until::Requests(n as u64),
            make,
        )
        .await;
    s.print();
    s.ensure_ok("requests")
}

fn weighed(served: &Served) -> String {
    served
        .running
        .state
        .cache_bytes()
        .iter()
        .map(|(c, b)| format!("{c} {}", mib(*b)))
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn memory(url: &str, client: Handle, args: &MemoryArgs) -> anyhow::Result<()> {
    let heading = "(e) memory: bytes per cached account, and the byte budget held";
    harness::begin(heading, url, None)?;
    let lc = LoadClient::new(client, args.concurrency)?;
    let served = serve(url, args.measure, bytesize::ByteSize::gib(4)).await?;
    let result = per_account(&served, &lc, args).await;
    served.stop().await;
    result?;
    let served = serve(url, args.customers, args.max_bytes).await?;
    let result = bound(&served, &lc, args).await;
    served.finish(result).await
}

/// Phase 1: the growth of the resident memory per cached account.
async fn per_account(served: &Served, lc: &LoadClient, args: &MemoryArgs) -> anyhow::Result<()> {
    let state = &served.running.state;
    let before = rss();
    ask(lc, &served.url(), 0, args.measure, args.concurrency).await?;
    state.settle_caches().await;
    let grown = rss().saturating_sub(before);
    let accounts = (args.measure * 10) as u64;
    let views = state.cache_bytes()[0].1;
    println!(
        "RESULT memory per account: {} customers x 10 accounts asked once: resident +{} = {} bytes per cached account; weighed (views) {} bytes per account; caches: {}",
        args.measure,
        mib(grown),
        grown / accounts,
        views / accounts,
        weighed(served)
    );
    Ok(())
}

/// Phase 2: the resident memory under the budget, and a working set's hit ratio.
async fn bound(served: &Served, lc: &LoadClient, args: &MemoryArgs) -> anyhow::Result<()> {
    let (state, base) = (&served.running.state, served.url());
    let overhead = rss();
    ask(lc, &base, 0, args.customers, args.concurrency).await?;
    state.settle_caches().await;
    let peak = rss();
    let hits = |text: &str, outcome: &str| -> u64 {
        text.lines()
            .filter(|l| {
                l.starts_with("coffer_cache_requests_total")
                    && l.contains(&format!("outcome=\"{outcome}\""))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let start = args.customers - args.working_set;
    ask(lc, &base, start, args.working_set, args.concurrency).await?;
    let text = state.metrics.render();
    let (h0, m0) = (hits(&text, "hit"), hits(&text, "miss"));
    ask(lc, &base, start, args.working_set, args.concurrency).await?;
    let text = state.metrics.render();
    let (h1, m1) = (hits(&text, "hit") - h0, hits(&text, "miss") - m0);
    let budget = args.max_bytes.as_u64();
    println!(
        "RESULT memory bound: {} customers x 10 accounts asked once with cache.max_bytes {}: resident {} before the pass (fixed overhead), {} after (budget + overhead = {}: {}); caches: {}; working set of {}: {} hits, {} misses on the second pass ({:.1} %)",
        args.customers,
        mib(budget),
        mib(overhead),
        mib(peak),
        mib(budget + overhead),
        if peak <= budget + overhead {
            "within"
        } else {
            "OVER"
        },
        weighed(served),
        args.working_set,
        h1,
        m1,
        100.0 * h1 as f64 / (h1 + m1).max(1) as f64,
    );
    Ok(())
}
