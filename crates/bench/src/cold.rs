//! (c) cold requests, each for a customer never fetched before, fanning out to both providers
//! at their simulated latencies; then the parts of one cold load timed one at a time.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use coffer_sim::{Provider, SimConfig, SimHandle};
use coffer_store::Store;
use tokio::runtime::Handle;

use crate::customers::create_customers;
use crate::harness::{self, Served};
use crate::load::{LoadClient, MakeRequest, Until, ms, quantile};
use crate::setup::{self, ADMIN_KEY, BANK};

/// Customers used to open connections (server → simulators, server → database) first.
const WARM: usize = 64;
/// Customers used afterwards to time the cold path's store work alone.
const PROBE: usize = 200;

#[derive(Debug, Parser)]
pub struct ColdArgs {
    /// Concurrent client workers.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Cold requests in all; each is for a customer never fetched before.
    #[arg(long, default_value_t = 2000)]
    pub requests: u64,
    /// Simulated P100 latency, milliseconds.
    #[arg(long, default_value_t = 50)]
    pub latency_p100_ms: u64,
    /// Simulated Corebanq latency, milliseconds.
    #[arg(long, default_value_t = 80)]
    pub latency_corebanq_ms: u64,
}

impl Default for ColdArgs {
    fn default() -> Self {
        Self::parse_from(["cold"])
    }
}

impl ColdArgs {
    fn latencies(&self) -> (Duration, Duration) {
        (
            Duration::from_millis(self.latency_p100_ms),
            Duration::from_millis(self.latency_corebanq_ms),
        )
    }
}

/// (c).
pub async fn cold(url: &str, client: Handle, args: &ColdArgs) -> anyhow::Result<()> {
    harness::begin("(c) cold requests: fan-out to both providers", url, None)?;
    let n = usize::try_from(args.requests)?;
    let store = harness::database(url, 32).await?;
    let (latency_p100, latency_corebanq) = args.latencies();
    let sim = SimConfig {
        customers: n + WARM + PROBE,
        accounts_per_customer: 5,
        latency_p100,
        latency_corebanq,
        ..SimConfig::default()
    };
    let served = harness::serve(url, &store, sim, |_| {}).await?;
    let t = Instant::now();
    let ids = (0..n + WARM + PROBE)
        .map(|i| (format!("cold-{i:06}"), coffer_sim::generate::customer_id(i)))
        .collect();
    create_customers(&store, ids, 32).await?;
    println!(
        "created {} customers in {:.1} s",
        n + WARM + PROBE,
        t.elapsed().as_secs_f64()
    );
    let measured = measure(&served, client, args).await;
    // The probe runs with the server stopped: nothing else then uses the store.
    let sim = served.end().await;
    let result = match measured {
        Ok(()) => probe_cold_path(&store, &sim, n + WARM..n + WARM + PROBE).await,
        Err(e) => Err(e),
    };
    sim.shutdown().await;
    result
}

/// Opens the connections on other customers, then sends the cold requests and reports them.
async fn measure(served: &Served, client: Handle, args: &ColdArgs) -> anyhow::Result<()> {
    let n = args.requests;
    let lc = LoadClient::new(client, args.concurrency)?;
    let balance = |offset: u64| -> MakeRequest {
        let base = served.url();
        Arc::new(move |c: &reqwest::Client, i| {
            c.get(format!(
                "{base}/v2/accounts/balance?customer_id=cold-{:06}",
                offset + i
            ))
            .header("x-api-key", ADMIN_KEY)
        })
    };
    let (name, conc) = ("(c) warm-up (other customers)", args.concurrency);
    let w = lc
        .run(
            name,
            conc,
            Duration::ZERO,
            Until::Requests(WARM as u64),
            balance(n),
        )
        .await;
    w.ensure_ok("warm-up")?;
    served.sim.reset_calls();
    let name = "(c) GET balance (cold, fan-out)";
    let s = lc
        .run(name, conc, Duration::ZERO, Until::Requests(n), balance(0))
        .await;
    s.print();
    let (calls_p, calls_c) = (
        served.sim.total_calls(Provider::P100),
        served.sim.total_calls(Provider::Corebanq),
    );
    let (lat_p, lat_c) = args.latencies();
    let goal = lat_p.max(lat_c) + Duration::from_millis(5);
    let p50 = s.quantile(0.5);
    println!(
        "RESULT cold: {} requests at concurrency {}, providers {} ms / {} ms: {} (goal p50 <= {}: {}; the sum would be {} ms) | provider calls P100 {calls_p}, Corebanq {calls_c} (expected {} each)",
        s.ok(),
        args.concurrency,
        lat_p.as_millis(),
        lat_c.as_millis(),
        s.summary(),
        ms(goal),
        if p50 <= goal { "met" } else { "MISSED" },
        (lat_p + lat_c).as_millis(),
        args.requests,
    );
    Ok(())
}

/// Times the parts of one cold load one at a time, with the simulators answering at once and
/// the server stopped: the two reads the loader makes before fanning out, one provider fetch,
/// and the first snapshot write of one provider's answer (which the request waits for).
/// Whatever a cold request costs beyond its slowest provider is these plus HTTP and queueing.
async fn probe_cold_path(
    store: &Arc<dyn Store>,
    sim: &SimHandle,
    customers: Range<usize>,
) -> anyhow::Result<()> {
    let providers = setup::providers(sim, &setup::provider_configs(sim))?;
    let bank = providers.get(BANK).context("no bank provider")?;
    // First, the slowest provider alone at its configured latency: the floor of a cold request.
    let mut slow = Vec::new();
    for i in customers.clone().take(50) {
        let ext = coffer_sim::generate::customer_id(i);
        let t = Instant::now();
        bank.fetch(&ext, None)
            .await
            .map_err(|e| anyhow::anyhow!("fetch {ext}: {e}"))?;
        slow.push(t.elapsed());
    }
    slow.sort_unstable();
    println!(
        "cold path floor: one Corebanq fetch at its simulated latency, sequential: p50 {} p99 {}",
        ms(quantile(&slow, 0.5)),
        ms(quantile(&slow, 0.99))
    );
    sim.set_latency(Provider::P100, Duration::ZERO);
    sim.set_latency(Provider::Corebanq, Duration::ZERO);
    let (mut reads, mut fetches, mut saves) = (Vec::new(), Vec::new(), Vec::new());
    for i in customers {
        let id = format!("cold-{i:06}");
        let ext = coffer_sim::generate::customer_id(i);
        let t0 = Instant::now();
        store.get_customer(&id).await?;
        store.customer_accounts(&id).await?;
        reads.push(t0.elapsed());
        let t1 = Instant::now();
        let snap = bank
            .fetch(&ext, None)
            .await
            .map_err(|e| anyhow::anyhow!("fetch {ext}: {e}"))?;
        fetches.push(t1.elapsed());
        let accounts = snap.to_accounts(&id, BANK);
        let meta = coffer_store::SnapshotMeta {
            customer_id: id.clone(),
            provider_id: BANK.into(),
            provider_customer_ref: snap.provider_customer_ref.clone(),
            fetched_at: snap.fetched_at,
            rejected: Vec::new(),
        };
        let t2 = Instant::now();
        store.save_snapshot(&meta, &accounts).await?;
        saves.push(t2.elapsed());
    }
    for v in [&mut reads, &mut fetches, &mut saves] {
        v.sort_unstable();
    }
    println!(
        "cold path parts, one at a time (p50 / p99 over {}): reads before the fan-out (get_customer + customer_accounts) {} / {}; \
         one Corebanq fetch at 0 ms simulated latency (HTTP + parse + map) {} / {}; first snapshot write (5 accounts) {} / {}",
        reads.len(),
        ms(quantile(&reads, 0.5)),
        ms(quantile(&reads, 0.99)),
        ms(quantile(&fetches, 0.5)),
        ms(quantile(&fetches, 0.99)),
        ms(quantile(&saves, 0.5)),
        ms(quantile(&saves, 0.99)),
    );
    Ok(())
}
