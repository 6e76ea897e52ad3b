//! The scenarios. Each starts from an empty database and fresh simulators, so runs do not
//! depend on each other or on what ran before.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use coffer_sim::{Provider, SimConfig};
use coffer_store::{Link, NewCustomer, Store};
use futures::{StreamExt, TryStreamExt, stream};
use tokio::runtime::Handle;

use crate::load::{LoadClient, MakeRequest, Stats, Until, ms, quantile};
use crate::setup::{self, ADMIN_KEY, BANK, P100};

fn links(external_id: &str) -> Vec<Link> {
    vec![
        Link {
            provider: P100.into(),
            external_id: external_id.to_owned(),
        },
        Link {
            provider: BANK.into(),
            external_id: external_id.to_owned(),
        },
    ]
}

/// Creates `ids` (customer id, external id at both providers) through the store's own API,
/// `parallel` at a time.
pub(crate) async fn create_customers(
    store: &Arc<dyn Store>,
    ids: Vec<(String, String)>,
    parallel: usize,
) -> anyhow::Result<()> {
    stream::iter(ids)
        .map(|(id, ext)| {
            let store = Arc::clone(store);
            async move {
                store
                    .create_customer(&NewCustomer {
                        id: id.clone(),
                        name: None,
                        links: links(&ext),
                    })
                    .await
                    .with_context(|| format!("creating customer {id}"))
            }
        })
        .buffer_unordered(parallel)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

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
    println!("\n== (a) cached balance vs (b) minimal handler ==");
    println!(
        "load average (1, 5, 15 min) at start: {}",
        setup::load_average()
    );
    setup::recreate_database(url).await?;
    let store = setup::store(url, 16).await?;
    // 5 accounts at each provider: one customer with 10 accounts across both.
    let sim = coffer_sim::start(SimConfig {
        customers: 10,
        accounts_per_customer: 5,
        ..SimConfig::default()
    })
    .await?;
    let mut config = setup::config(&sim, url);
    // The measurement is of the cached path: the entry must not expire mid-run (with the
    // default 30 s it would be reloaded once per 30 s, which is noise, not the path measured).
    config.cache.ttl = Duration::from_secs(3600);
    let running = setup::server(&sim, config, Arc::clone(&store)).await?;
    create_customers(
        &store,
        vec![("bench-cached".into(), "gen-000001".into())],
        1,
    )
    .await?;

    let base = running.url();
    let balance_url = format!("{base}/v2/accounts/balance?customer_id=bench-cached");
    let minimal_url = format!("{base}/v2/minimal");
    let lc = LoadClient::new(client, args.concurrency)?;
    // Warm the cache, and check the answer is what (a) claims to measure.
    let warm: serde_json::Value = lc
        .client
        .get(&balance_url)
        .header("x-api-key", ADMIN_KEY)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let n_accounts = warm["accounts_count"].as_u64().unwrap_or(0);
    anyhow::ensure!(n_accounts == 10, "expected 10 accounts, got {warm}");
    let body_len = serde_json::to_vec(&warm)?.len();
    let calls_before = sim.total_calls(Provider::P100) + sim.total_calls(Provider::Corebanq);
    println!(
        "customer bench-cached: {n_accounts} accounts (5 at each provider), answer {body_len} bytes; \
         concurrency {}, {} s measured after {} s warm-up, {} round(s)",
        args.concurrency, args.duration, args.warmup, args.rounds
    );

    let get = |url: String| -> MakeRequest {
        Arc::new(move |c: &reqwest::Client, _| c.get(&url).header("x-api-key", ADMIN_KEY))
    };
    let warmup = Duration::from_secs(args.warmup);
    let until = Until::Elapsed(Duration::from_secs(args.duration));
    let mut best_a: Option<Stats> = None;
    let mut best_b: Option<Stats> = None;
    let mut ratios = Vec::new();
    if let Some(which) = args.only {
        let (name, url) = if which == 'a' {
            ("(a) GET balance (cached)", balance_url)
        } else {
            ("(b) GET /v2/minimal", minimal_url)
        };
        lc.run(name, args.concurrency, warmup, until, get(url))
            .await
            .print();
        running.stop().await;
        sim.shutdown().await;
        return Ok(());
    }
    for round in 1..=args.rounds.max(1) {
        let b = lc
            .run(
                &format!("(b) GET /v2/minimal #{round}"),
                args.concurrency,
                warmup,
                until,
                get(minimal_url.clone()),
            )
            .await;
        b.print();
        let a = lc
            .run(
                &format!("(a) GET balance (cached) #{round}"),
                args.concurrency,
                warmup,
                until,
                get(balance_url.clone()),
            )
            .await;
        a.print();
        println!(
            "    round {round}: (a)/(b) = {:.1} %",
            100.0 * a.rps() / b.rps()
        );
        ratios.push(a.rps() / b.rps());
        if best_a.as_ref().is_none_or(|x| a.rps() > x.rps()) {
            best_a = Some(a);
        }
        if best_b.as_ref().is_none_or(|x| b.rps() > x.rps()) {
            best_b = Some(b);
        }
    }
    let calls_after = sim.total_calls(Provider::P100) + sim.total_calls(Provider::Corebanq);
    let (a, b) = (best_a.context("no round")?, best_b.context("no round")?);
    let ratio = a.rps() / b.rps();
    // Other work on a shared machine moves single rounds a lot; the median round is the figure
    // least moved by it.
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
        "RESULT cached: (a) {:.0} req/s p50 {} p99 {} p99.9 {} | (b) {:.0} req/s p50 {} p99 {} p99.9 {} | best (a) / best (b) = {:.1} % | provider calls during (a): {}",
        a.rps(),
        ms(a.quantile(0.5)),
        ms(a.quantile(0.99)),
        ms(a.quantile(0.999)),
        b.rps(),
        ms(b.quantile(0.5)),
        ms(b.quantile(0.99)),
        ms(b.quantile(0.999)),
        ratio * 100.0,
        calls_after - calls_before,
    );
    println!(
        "load average (1, 5, 15 min) at end: {}",
        setup::load_average()
    );
    running.stop().await;
    sim.shutdown().await;
    Ok(())
}

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

/// (c).
pub async fn cold(url: &str, client: Handle, args: &ColdArgs) -> anyhow::Result<()> {
    println!("\n== (c) cold requests: fan-out to both providers ==");
    println!(
        "load average (1, 5, 15 min) at start: {}",
        setup::load_average()
    );
    /// Customers used to open connections (server → simulators, server → database) first.
    const WARM: usize = 64;
    /// Customers used afterwards to time the cold path's store work alone.
    const PROBE: usize = 200;
    let n = usize::try_from(args.requests)?;
    setup::recreate_database(url).await?;
    let store = setup::store(url, 32).await?;
    let (lat_p, lat_c) = (
        Duration::from_millis(args.latency_p100_ms),
        Duration::from_millis(args.latency_corebanq_ms),
    );
    let sim = coffer_sim::start(SimConfig {
        customers: n + WARM + PROBE,
        accounts_per_customer: 5,
        latency_p100: lat_p,
        latency_corebanq: lat_c,
        ..SimConfig::default()
    })
    .await?;
    let running = setup::server(&sim, setup::config(&sim, url), Arc::clone(&store)).await?;
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

    let base = running.url();
    let lc = LoadClient::new(client, args.concurrency)?;
    let warm_base = base.clone();
    let warm: MakeRequest = Arc::new(move |c: &reqwest::Client, i| {
        c.get(format!(
            "{warm_base}/v2/accounts/balance?customer_id=cold-{:06}",
            n as u64 + i
        ))
        .header("x-api-key", ADMIN_KEY)
    });
    let w = lc
        .run(
            "(c) warm-up (other customers)",
            args.concurrency,
            Duration::ZERO,
            Until::Requests(WARM as u64),
            warm,
        )
        .await;
    anyhow::ensure!(w.errors == 0, "warm-up failed: {:?}", w.first_error);
    sim.reset_calls();
    let make: MakeRequest = Arc::new(move |c: &reqwest::Client, i| {
        c.get(format!(
            "{base}/v2/accounts/balance?customer_id=cold-{i:06}"
        ))
        .header("x-api-key", ADMIN_KEY)
    });
    let s = lc
        .run(
            "(c) GET balance (cold, fan-out)",
            args.concurrency,
            Duration::ZERO,
            Until::Requests(args.requests),
            make,
        )
        .await;
    s.print();
    let (calls_p, calls_c) = (
        sim.total_calls(Provider::P100),
        sim.total_calls(Provider::Corebanq),
    );
    let goal = lat_p.max(lat_c) + Duration::from_millis(5);
    let p50 = s.quantile(0.5);
    println!(
        "RESULT cold: {} requests at concurrency {}, providers {} ms / {} ms: {:.0} req/s p50 {} p99 {} p99.9 {} (goal p50 <= {}: {}; the sum would be {} ms) | provider calls P100 {calls_p}, Corebanq {calls_c} (expected {} each)",
        s.ok(),
        args.concurrency,
        lat_p.as_millis(),
        lat_c.as_millis(),
        s.rps(),
        ms(p50),
        ms(s.quantile(0.99)),
        ms(s.quantile(0.999)),
        ms(goal),
        if p50 <= goal { "met" } else { "MISSED" },
        (lat_p + lat_c).as_millis(),
        args.requests,
    );
    println!(
        "load average (1, 5, 15 min) at end: {}",
        setup::load_average()
    );
    running.stop().await;
    probe_cold_path(&store, &sim, n + WARM..n + WARM + PROBE).await?;
    sim.shutdown().await;
    Ok(())
}

/// Times the parts of one cold load one at a time, with the simulators answering at once and
/// the server stopped: the two reads the loader makes before fanning out, one provider fetch,
/// and the first snapshot write of one provider's answer (which the request waits for).
/// Whatever a cold request costs beyond its slowest provider is these plus HTTP and queueing.
async fn probe_cold_path(
    store: &Arc<dyn Store>,
    sim: &coffer_sim::SimHandle,
    customers: std::ops::Range<usize>,
) -> anyhow::Result<()> {
    let providers = setup::providers(sim, Duration::from_secs(5))?;
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

/// Inserts `n` customers (`sync-000000` …), their links to `gen-000000` … at both providers, and
/// their sync state (due now), straight into the tables of `migrations/postgres` in three
/// set-based statements: creating 100,000 customers one API call at a time would take longer
/// than the sync it prepares. The rows are exactly what `Store::create_customer` writes.
pub(crate) async fn bulk_customers(url: &str, n: usize) -> anyhow::Result<()> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let n = i64::try_from(n)?;
    // `lpad(…, greatest(6, length(…)))`: the spelling of coffer_sim::generate::customer_id (at
    // least 6 digits).
    let mut tx = conn.begin().await?;
    sqlx::query(
        "INSERT INTO customers (id, name, created_at)
         SELECT 'sync-' || lpad(i::text, greatest(6, length(i::text)), '0'), NULL, now()
         FROM generate_series(0, $1 - 1) AS i",
    )
    .bind(n)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO customer_links (customer_id, provider, external_id)
         SELECT 'sync-' || d, pr, 'gen-' || d
         FROM (SELECT lpad(i::text, greatest(6, length(i::text)), '0') AS d
               FROM generate_series(0, $1 - 1) AS i) AS ids,
              unnest(ARRAY[$2, $3]) AS pr",
    )
    .bind(n)
    .bind(P100)
    .bind(BANK)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO sync_state (customer_id, provider_id, next_due)
         SELECT customer_id, provider, now() FROM customer_links",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    sqlx::query("ANALYZE customers, customer_links, sync_state")
        .execute(&mut conn)
        .await?;
    Ok(())
}

/// (d).
pub async fn sync(url: &str, client: Handle, args: &SyncArgs) -> anyhow::Result<()> {
    use sqlx::Connection as _;
    println!("\n== (d) background sync throughput, then all-customer totals ==");
    println!(
        "load average (1, 5, 15 min) at start: {}",
        setup::load_average()
    );
    anyhow::ensure!(
        url.starts_with("postgres"),
        "the sync scenario needs PostgreSQL"
    );
    let n = args.customers;
    setup::recreate_database(url).await?;
    let store = setup::store(url, args.pool).await?;
    let t = Instant::now();
    bulk_customers(url, n).await?;
    println!(
        "inserted {n} customers, {} links and sync states in {:.1} s",
        2 * n,
        t.elapsed().as_secs_f64()
    );
    let latency = Duration::from_millis(args.latency_ms);
    let sim = coffer_sim::start(SimConfig {
        customers: n,
        accounts_per_customer: args.accounts_per_provider,
        latency_p100: latency,
        latency_corebanq: latency,
        ..SimConfig::default()
    })
    .await?;
    let mut config = setup::config(&sim, url);
    config.sync.enabled = true;
    config.sync.concurrency = args.sync_concurrency;
    config.sync.batch = args.sync_batch;
    // Every pair once: the next cycle is a day away.
    config.sync.interval = Duration::from_secs(24 * 3600);
    config.sync.idle_poll = Duration::from_millis(50);
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
    let running = setup::server(&sim, config, Arc::clone(&store)).await?;
    let target = i64::try_from(2 * n)?;
    // Cycle 1: every pair's first snapshot (every account and history row is new).
    let done = wait_for_pairs(&mut probe, &sim, None, target, start).await?;
    let elapsed = start.elapsed();
    let cpu = setup::CpuTicks::now().since(cpu, u64::try_from(2 * n)?, "pair");
    let failures: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sync_state WHERE failures > 0 OR last_error IS NOT NULL",
    )
    .fetch_one(&mut probe)
    .await?;
    let accounts: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts")
        .fetch_one(&mut probe)
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

    // The all-customer totals at this size: admin, no customer_id, store only.
    let lc = LoadClient::new(client, 1)?;
    let totals_url = format!("{}/v2/accounts/balance", running.url());
    let mut lat = Vec::new();
    let mut summary = String::new();
    for i in 0..args.totals_requests {
        let t0 = Instant::now();
        let resp = lc
            .client
            .get(&totals_url)
            .header("x-api-key", ADMIN_KEY)
            .timeout(Duration::from_secs(300))
            .send()
            .await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        let took = t0.elapsed();
        anyhow::ensure!(
            status.is_success(),
            "totals: HTTP {status}: {}",
            String::from_utf8_lossy(&body)
        );
        if i == 0 {
            let v: serde_json::Value = serde_json::from_slice(&body)?;
            summary = format!(
                "total {} {}, {} accounts, coverage {}; {} bytes",
                v["total_balance"].as_str().unwrap_or("?"),
                v["currency"].as_str().unwrap_or("?"),
                v["accounts_count"],
                v["coverage"],
                body.len()
            );
        }
        println!("  totals request {}: {}", i + 1, ms(took));
        lat.push(took);
    }
    lat.sort_unstable();
    println!(
        "RESULT totals: GET /v2/accounts/balance (admin, all customers) at {n} customers: p50 {} max {} over {} sequential requests | {summary}",
        ms(quantile(&lat, 0.5)),
        ms(lat.last().copied().unwrap_or_default()),
        lat.len(),
    );
    for cycle in 2..=args.cycles {
        resync(&mut probe, &sim, n, cycle).await?;
    }
    probe.close().await?;
    println!(
        "load average (1, 5, 15 min) at end: {}",
        setup::load_average()
    );
    running.stop().await;
    sim.shutdown().await;
    Ok(())
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
