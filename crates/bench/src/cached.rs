//! (a) a cached `GET /v2/accounts/balance` for one customer with 10 accounts, against (b) the
//! bench's own `GET /v2/minimal` behind the same middleware, in the same run.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use coffer_sim::SimConfig;
use tokio::runtime::Handle;

use crate::customers::create_customers;
use crate::harness::{self, Served};
use crate::load::{LoadClient, MakeRequest, Stats, Until};
use crate::setup::ADMIN_KEY;

#[derive(Debug, Parser)]
pub struct CachedArgs {
    /// Concurrent client workers (one keep-alive connection each).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Measured seconds per endpoint.
    #[arg(long, default_value_t = 15)]
    pub duration: u64,
    /// Unmeasured seconds before each measurement.
    #[arg(long, default_value_t = 3)]
    pub warmup: u64,
    /// Measure (b), (a), (b), (a), … this many times each and report each round and the best.
    #[arg(long, default_value_t = 2)]
    pub rounds: usize,
    /// Measure only `a` (balance) or only `b` (minimal), e.g. under a profiler.
    #[arg(long)]
    pub only: Option<char>,
}

impl Default for CachedArgs {
    fn default() -> Self {
        Self::parse_from(["cached"])
    }
}

/// (a) and (b).
pub async fn cached(url: &str, client: Handle, args: &CachedArgs) -> anyhow::Result<()> {
    harness::begin("(a) cached balance vs (b) minimal handler", url, None)?;
    let store = harness::database(url, 16).await?;
    // 5 accounts at each provider: one customer with 10 accounts across both.
    let sim = SimConfig {
        customers: 10,
        accounts_per_customer: 5,
        ..SimConfig::default()
    };
    let served = harness::serve(url, &store, sim, |config| {
        // The measurement is of the cached path: the entry must not expire mid-run (with the
        // default 30 s it would be reloaded once per 30 s, which is noise, not the path
        // measured).
        config.cache.ttl = Duration::from_secs(3600);
    })
    .await?;
    let customer = vec![("bench-cached".into(), "gen-000001".into())];
    create_customers(&store, customer, 1).await?;
    let result = measure(&served, client, args).await;
    match args.only {
        // A profiler's run: no figures to compare, so no closing load average either.
        Some(_) => {
            served.stop().await;
            result
        }
        None => served.finish(result).await,
    }
}

/// The two URLs measured and the load client measuring them.
struct Endpoints {
    lc: LoadClient,
    balance: String,
    minimal: String,
}

impl Endpoints {
    /// One measurement of `url`: the warm-up, then the measured seconds.
    async fn run(&self, name: &str, url: &str, args: &CachedArgs) -> Stats {
        let warmup = Duration::from_secs(args.warmup);
        let until = Until::Elapsed(Duration::from_secs(args.duration));
        self.lc
            .run(name, args.concurrency, warmup, until, get(url))
            .await
    }
}

async fn measure(served: &Served, client: Handle, args: &CachedArgs) -> anyhow::Result<()> {
    let base = served.url();
    let e = Endpoints {
        lc: LoadClient::new(client, args.concurrency)?,
        balance: format!("{base}/v2/accounts/balance?customer_id=bench-cached"),
        minimal: format!("{base}/v2/minimal"),
    };
    check(&e, args).await?;
    if let Some(which) = args.only {
        let (name, url) = if which == 'a' {
            ("(a) GET balance (cached)", &e.balance)
        } else {
            ("(b) GET /v2/minimal", &e.minimal)
        };
        e.run(name, url, args).await.print();
        return Ok(());
    }
    let calls_before = served.provider_calls();
    let mut rounds = Vec::new();
    for round in 1..=args.rounds.max(1) {
        let b = e
            .run(&format!("(b) GET /v2/minimal #{round}"), &e.minimal, args)
            .await;
        b.print();
        let a = e
            .run(
                &format!("(a) GET balance (cached) #{round}"),
                &e.balance,
                args,
            )
            .await;
        a.print();
        println!(
            "    round {round}: (a)/(b) = {:.1} %",
            100.0 * a.rps() / b.rps()
        );
        rounds.push((a, b));
    }
    report(rounds, served.provider_calls() - calls_before)
}

fn get(url: &str) -> MakeRequest {
    let url = url.to_owned();
    Arc::new(move |c: &reqwest::Client, _| c.get(&url).header("x-api-key", ADMIN_KEY))
}

/// Warms the cache, and checks the answer is what (a) claims to measure.
async fn check(e: &Endpoints, args: &CachedArgs) -> anyhow::Result<()> {
    let warm: serde_json::Value =
        e.lc.client
            .get(&e.balance)
            .header("x-api-key", ADMIN_KEY)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
    let n_accounts = warm["accounts_count"].as_u64().unwrap_or(0);
    anyhow::ensure!(n_accounts == 10, "expected 10 accounts, got {warm}");
    let body_len = serde_json::to_vec(&warm)?.len();
    println!(
        "customer bench-cached: {n_accounts} accounts (5 at each provider), answer {body_len} bytes; \
         concurrency {}, {} s measured after {} s warm-up, {} round(s)",
        args.concurrency, args.duration, args.warmup, args.rounds
    );
    Ok(())
}

/// The per-round ratios, their median against the goal, and the best round of each.
fn report(rounds: Vec<(Stats, Stats)>, calls: u64) -> anyhow::Result<()> {
    // Other work on a shared machine moves single rounds a lot; the median round is the figure
    // least moved by it.
    let mut ratios: Vec<f64> = rounds.iter().map(|(a, b)| a.rps() / b.rps()).collect();
    let (mut best_a, mut best_b): (Option<Stats>, Option<Stats>) = (None, None);
    for (a, b) in rounds {
        if best_a.as_ref().is_none_or(|x| a.rps() > x.rps()) {
            best_a = Some(a);
        }
        if best_b.as_ref().is_none_or(|x| b.rps() > x.rps()) {
            best_b = Some(b);
        }
    }
    let (a, b) = (best_a.context("no round")?, best_b.context("no round")?);
    let ratio = a.rps() / b.rps();
    ratios.sort_by(f64::total_cmp);
    let median = ratios.get(ratios.len() / 2).copied().unwrap_or(ratio);
    println!(
        "per-round (a)/(b): {} | median {:.1} % (goal >= 60 %: {})",
        ratios
            .iter()
            .map(|r| format!("{:.1} %", r * 100.0))
            .collect::<Vec<_>>()
            .join(", "),
        median * 100.0,
        if median >= 0.6 { "met" } else { "MISSED" },
    );
    println!(
        "RESULT cached: (a) {} | (b) {} | best (a) / best (b) = {:.1} % | provider calls during (a): {calls}",
        a.summary(),
        b.summary(),
        ratio * 100.0,
    );
    Ok(())
}
