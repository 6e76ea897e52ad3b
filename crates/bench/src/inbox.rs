//! (h) the webhook inbox under a burst (issue 15): `N` P100 deliveries sent at once by the
//! simulator's webhook sender, one per linked user, with P100 answering in 500 ms. Two figures
//! per delivery: the time to its 200 (the delivery kept), and the time from that 200 to the
//! pair's fresh snapshot, seen in the store as its `fetched_at` turning newer than the moment
//! the delivery was sent. Goals: p99 of the 200 < 50 ms; p99 to fresh < 1 s + the provider's
//! latency.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::Parser;
use coffer_sim::webhook::{WebhookFault, WebhookTarget};
use coffer_sim::{Provider, SimConfig};
use futures::StreamExt as _;
use tokio::runtime::Handle;

use crate::customers::create_customers;
use crate::harness;
use crate::load::{LoadClient, MakeRequest, Until, ms, quantile};
use crate::setup::{self, ADMIN_KEY, P100};

#[derive(Debug, Parser)]
pub struct InboxArgs {
    /// Deliveries in the burst, each for its own linked user.
    #[arg(long, default_value_t = 1000)]
    pub deliveries: usize,
    /// Simulated P100 latency during the burst, milliseconds.
    #[arg(long, default_value_t = 500)]
    pub latency_ms: u64,
    /// The store's connection pool (the service's default is 10).
    #[arg(long, default_value_t = 10)]
    pub pool: u32,
    /// `webhooks.concurrency` (default: the service's).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// `webhooks.batch` (default: the service's).
    #[arg(long)]
    pub batch: Option<u32>,
    /// Besides the store's change announcements, how often all snapshots are read for one
    /// missed, milliseconds.
    #[arg(long, default_value_t = 500)]
    pub poll_ms: u64,
}

impl Default for InboxArgs {
    fn default() -> Self {
        Self::parse_from(["inbox"])
    }
}

/// One delivery as the sender saw it.
struct Sent {
    customer: String,
    /// Wall clock just before it was sent: a snapshot fetched after it is fresh.
    sent_at: DateTime<Utc>,
    /// When the 200 arrived, and how long it took.
    answered: Instant,
    took: Duration,
    ok: bool,
}

pub async fn inbox(url: &str, client: Handle, args: &InboxArgs) -> anyhow::Result<()> {
    let heading = format!(
        "(h) webhook inbox: a burst of {} deliveries, P100 at {} ms",
        args.deliveries, args.latency_ms
    );
    harness::begin(&heading, url, Some("inbox"))?;
    let n = args.deliveries;
    let store = harness::database(url, args.pool).await?;
    // Both providers answer at once while every pair gets its first snapshot.
    let sim = SimConfig {
        customers: n,
        accounts_per_customer: 3,
        latency_p100: Duration::ZERO,
        latency_corebanq: Duration::ZERO,
        ..SimConfig::default()
    };
    let (mut batch, mut concurrency) = (0, 0);
    let configure = |config: &mut coffer_server::config::Config| {
        if let Some(c) = args.concurrency {
            config.webhooks.concurrency = c;
        }
        if let Some(b) = args.batch {
            config.webhooks.batch = b;
        }
        (batch, concurrency) = (config.webhooks.batch, config.webhooks.concurrency);
        // P100 signs its webhooks with the bench's token.
        for p in config.providers.iter_mut().filter(|p| p.id == P100) {
            p.webhook_secret_env = Some(setup::WEBHOOK_TOKEN_NAME.into());
        }
    };
    let served = harness::serve(url, &store, sim, configure).await?;
    let ids = (0..n)
        .map(|i| (customer(i), coffer_sim::generate::customer_id(i)))
        .collect();
    create_customers(&store, ids, 32).await?;
    first_snapshots(&served.url(), &client, n).await?;
    let sim = &served.sim;
    sim.set_latency(Provider::P100, Duration::from_millis(args.latency_ms));
    sim.reset_calls();
    println!(
        "{n} customers linked to both providers, each with a snapshot; pool {}, webhooks.batch {}, webhooks.concurrency {}",
        args.pool, batch, concurrency,
    );
    let result = measure(url, &served.url(), &client, sim, args).await;
    served.finish(result).await
}

fn customer(i: usize) -> String {
    format!("hook-{i:06}")
}

/// A cold balance request per customer, so every pair has a snapshot to be made fresh.
async fn first_snapshots(base: &str, client: &Handle, n: usize) -> anyhow::Result<()> {
    let lc = LoadClient::new(client.clone(), 32)?;
    let base = base.to_owned();
    let make: MakeRequest = Arc::new(move |c: &reqwest::Client, i| {
        c.get(format!(
            "{base}/v2/accounts/balance?customer_id={}",
            customer(usize::try_from(i).unwrap_or(0))
        ))
        .header("x-api-key", ADMIN_KEY)
    });
    let s = lc
        .run(
            "first snapshots",
            32,
            Duration::ZERO,
            Until::Requests(n as u64),
            make,
        )
        .await;
    anyhow::ensure!(s.errors == 0, "first snapshots: {:?}", s.first_error);
    Ok(())
}

/// The burst, and the wait for every pair to be fresh.
async fn measure(
    url: &str,
    base: &str,
    client: &Handle,
    sim: &coffer_sim::SimHandle,
    args: &InboxArgs,
) -> anyhow::Result<()> {
    let n = args.deliveries;
    let mut probe = <sqlx::PgConnection as sqlx::Connection>::connect(url).await?;
    let target = WebhookTarget {
        url: format!("{base}/v2/webhooks/{P100}"),
        token: setup::WEBHOOK_TOKEN.into(),
        // No retry: a delivery not answered 200 at once counts as failed here.
        retries: Vec::new(),
    };
    floor(base, client, n).await?;
    let cpu = setup::CpuTicks::now();
    let burst_start = Instant::now();
    let since = Utc::now();
    // Every delivery at once, from the client's runtime (its own threads, as a provider's
    // sender would be another machine).
    let burst = client.spawn(burst(target, n));
    let fresh = wait_fresh(
        url,
        &mut probe,
        since,
        n,
        Duration::from_millis(args.poll_ms),
    )
    .await?;
    let sent = burst.await.context("the burst panicked")?;
    let cpu = setup::CpuTicks::now().since(cpu, n as u64, "delivery");
    report(&sent, &fresh, burst_start, args);
    println!("  {cpu}");
    println!(
        "  provider calls during the burst: P100 {} (one per delivery expected)",
        sim.total_calls(Provider::P100)
    );
    server_side(base).await?;
    inbox_states(&mut probe).await
}

/// The server's own timing of the deliveries (from its first middleware to the answer), from
/// its `/metrics`: what the sender waited beyond it was connecting and queueing for the runtime.
async fn server_side(base: &str) -> anyhow::Result<()> {
    let text = reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .header("x-api-key", ADMIN_KEY)
        .send()
        .await?
        .text()
        .await?;
    let buckets: Vec<String> = text
        .lines()
        .filter(|l| {
            l.starts_with("coffer_http_request_duration_seconds_bucket")
                && l.contains("/v2/webhooks/{provider_id}")
        })
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let n = l.rsplit(' ').next()?;
            Some(format!("≤{le}s: {n}"))
        })
        .collect();
    println!(
        "  server-side time of the deliveries (cumulative): {}",
        buckets.join(", ")
    );
    Ok(())
}

/// The floor of this machine: the same burst, by the same sender (a new connection per
/// delivery), to `/v2/minimal`, which does nothing (a POST there is answered 405 at once).
async fn floor(base: &str, client: &Handle, n: usize) -> anyhow::Result<()> {
    let target = WebhookTarget {
        url: format!("{base}/v2/minimal"),
        token: setup::WEBHOOK_TOKEN.into(),
        retries: Vec::new(),
    };
    let sent = client.spawn(burst(target, n)).await?;
    let mut took: Vec<Duration> = sent.iter().map(|s| s.took).collect();
    took.sort_unstable();
    println!(
        "floor: the same burst of {n} to /v2/minimal (nothing kept, nothing processed): p50 {} p99 {} max {}",
        ms(quantile(&took, 0.5)),
        ms(quantile(&took, 0.99)),
        ms(took.last().copied().unwrap_or_default()),
    );
    Ok(())
}

async fn burst(target: WebhookTarget, n: usize) -> Vec<Sent> {
    let target = Arc::new(target);
    futures::stream::iter(0..n)
        .map(|i| {
            let target = Arc::clone(&target);
            async move {
                let body = coffer_sim::webhook::crypto_deposit(
                    &coffer_sim::generate::customer_id(i),
                    "0.05",
                );
                let sent_at = Utc::now();
                let t0 = Instant::now();
                let d = coffer_sim::webhook::send(&target, &body, WebhookFault::None).await;
                let answered = Instant::now();
                Sent {
                    customer: customer(i),
                    sent_at,
                    answered,
                    took: answered - t0,
                    ok: d.iter().all(coffer_sim::webhook::Delivery::delivered),
                }
            }
        })
        .buffer_unordered(n.max(1))
        .collect()
        .await
}

/// Waits until `n` P100 snapshots have a `fetched_at` after `since`, or a minute passes; the
/// first time each customer's was seen, with its `fetched_at`. Woken by the store's own change
/// announcements (`LISTEN coffer_changes`, sent after each snapshot's commit), reading only the
/// customers they name; every `every` the whole set is read too, for an announcement missed.
async fn wait_fresh(
    url: &str,
    probe: &mut sqlx::PgConnection,
    since: DateTime<Utc>,
    n: usize,
    every: Duration,
) -> anyhow::Result<HashMap<String, (Instant, DateTime<Utc>)>> {
    let mut listener = sqlx::postgres::PgListener::connect(url).await?;
    listener.listen("coffer_changes").await?;
    let mut seen = HashMap::with_capacity(n);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut sweep = tokio::time::interval(every);
    while seen.len() < n {
        let named: Option<Vec<String>> = tokio::select! {
            m = listener.recv() => {
                let m = m?;
                // "{instance} {customer} {customer} …"
                Some(m.payload().split_ascii_whitespace().skip(1).map(str::to_owned).collect())
            }
            _ = sweep.tick() => None,
            () = tokio::time::sleep_until(deadline) => break,
        };
        let rows: Vec<(String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT customer_id, fetched_at FROM snapshots
             WHERE provider_id = $1 AND fetched_at > $2
               AND ($3::text[] IS NULL OR customer_id = ANY($3))",
        )
        .bind(P100)
        .bind(since)
        .bind(named)
        .fetch_all(&mut *probe)
        .await?;
        let now = Instant::now();
        for (c, at) in rows {
            seen.entry(c).or_insert((now, at));
        }
    }
    Ok(seen)
}

fn report(
    sent: &[Sent],
    fresh: &HashMap<String, (Instant, DateTime<Utc>)>,
    burst_start: Instant,
    args: &InboxArgs,
) {
    let mut to_200: Vec<Duration> = sent.iter().filter(|s| s.ok).map(|s| s.took).collect();
    to_200.sort_unstable();
    // Fresh: the pair's snapshot was fetched after its delivery was sent.
    let mut to_fresh: Vec<Duration> = sent
        .iter()
        .filter(|s| s.ok)
        .filter_map(|s| {
            let (seen, at) = fresh.get(&s.customer)?;
            (*at > s.sent_at).then(|| seen.saturating_duration_since(s.answered))
        })
        .collect();
    to_fresh.sort_unstable();
    let last_200 = sent.iter().map(|s| s.answered).max().unwrap_or(burst_start);
    let last_fresh = fresh.values().map(|v| v.0).max().unwrap_or(burst_start);
    let goal_fresh = Duration::from_secs(1) + Duration::from_millis(args.latency_ms);
    let (p99_200, p99_fresh) = (quantile(&to_200, 0.99), quantile(&to_fresh, 0.99));
    let met = |ok: bool| if ok { "met" } else { "MISSED" };
    println!(
        "RESULT inbox 200: {} of {} deliveries answered 200: p50 {} p99 {} max {} (goal p99 < 50 ms: {}); the last 200 {} after the burst began",
        to_200.len(),
        sent.len(),
        ms(quantile(&to_200, 0.5)),
        ms(p99_200),
        ms(to_200.last().copied().unwrap_or_default()),
        met(to_200.len() == sent.len() && p99_200 < Duration::from_millis(50)),
        ms(last_200 - burst_start),
    );
    println!(
        "RESULT inbox fresh: {} of {} pairs fresh: from the 200, p50 {} p99 {} max {} (goal p99 < {}: {}); the last fresh {} after the burst began (seen by the store's change announcements, and a read every {} ms)",
        to_fresh.len(),
        sent.len(),
        ms(quantile(&to_fresh, 0.5)),
        ms(p99_fresh),
        ms(to_fresh.last().copied().unwrap_or_default()),
        ms(goal_fresh),
        met(to_fresh.len() == sent.len() && p99_fresh < goal_fresh),
        ms(last_fresh - burst_start),
        args.poll_ms,
    );
}

async fn inbox_states(probe: &mut sqlx::PgConnection) -> anyhow::Result<()> {
    let states: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, count(*) FROM webhook_inbox GROUP BY state ORDER BY state")
            .fetch_all(&mut *probe)
            .await?;
    let states: Vec<String> = states.iter().map(|(s, c)| format!("{s} {c}")).collect();
    println!("  inbox at the end: {}", states.join(", "));
    Ok(())
}
