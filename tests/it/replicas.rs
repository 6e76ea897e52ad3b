//! Scale-out on PostgreSQL: three replicas of `coffer serve` (the same `run::start`) on
//! loopback ports, one database, both simulators.
//! - The sync work is shared through leases: each pair is fetched exactly once per cycle (the
//!   simulators' per-customer counters say so).
//! - A killed replica's leases expire and other replicas take its pairs over; the work goes on.
//! - A refresh on one replica is seen by the others within a second (LISTEN/NOTIFY drops the
//!   customer from their L1 caches).

use crate::cluster;
use crate::common;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::{Replica, eventually};
use coffer_sim::{Provider, SimConfig, SimHandle};
use coffer_store::Store;
use rust_decimal::Decimal;
use sqlx::types::chrono::Utc;

const CUSTOMERS: usize = 12;
const DEADLINE: Duration = Duration::from_secs(60);

fn ext(i: usize) -> String {
    coffer_sim::generate::customer_id(i)
}

fn provider_of(p: Provider) -> &'static str {
    match p {
        Provider::P100 => common::P100,
        Provider::Corebanq => common::BANK,
    }
}

/// Simulators, a fresh database, and three replicas configured by `configure`; `None` when
/// PostgreSQL is not available (skipped).
async fn cluster(
    sync: bool,
    configure: fn(&mut coffer_server::config::Config),
) -> Option<(SimHandle, Vec<Replica>, Option<common::pg::TestDb>)> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (url, db) = common::database(common::Backend::Postgres).await?;
    let sim = coffer_sim::start(SimConfig {
        customers: CUSTOMERS,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(Replica::start(&sim, &url, sync, configure).await);
    }
    Some((sim, replicas, db))
}

async fn link_all(r: &Replica) {
    for i in 0..CUSTOMERS {
        r.customer(&format!("c{i}"), Some(&ext(i)), Some(&ext(i)))
            .await;
    }
}

fn pairs() -> Vec<(Provider, String)> {
    (0..CUSTOMERS)
        .flat_map(|i| [(Provider::P100, ext(i)), (Provider::Corebanq, ext(i))])
        .collect()
}

const CYCLE: Duration = Duration::from_secs(3);

fn sync_config(c: &mut coffer_server::config::Config) {
    c.sync.interval = CYCLE;
    c.sync.idle_poll = Duration::from_millis(20);
    c.sync.lease = Duration::from_secs(2);
    // Small batches, so every replica gets a share of each cycle.
    c.sync.batch = 4;
}

/// Watches the simulators' counters and fails as soon as a pair is certainly called twice
/// within one interval: for every new call, the latest it can have happened is the poll that
/// saw it, the earliest the previous poll; two calls are certainly too close when even the
/// widest reading of those windows puts them less than an interval apart.
struct CallWatch {
    /// Per pair: calls seen, and (previous poll, poll) around the latest call.
    seen: BTreeMap<(u8, String), (u64, Instant, Instant)>,
    last_poll: Instant,
}

impl CallWatch {
    fn new() -> Self {
        CallWatch {
            seen: BTreeMap::new(),
            last_poll: Instant::now(),
        }
    }

    fn key(p: Provider, ext: &str) -> (u8, String) {
        (u8::from(p == Provider::Corebanq), ext.to_owned())
    }

    /// Records the counters now; `Err` describes a pair certainly called twice in an interval.
    fn poll(&mut self, sim: &SimHandle, interval: Duration) -> Result<(), String> {
        let now = Instant::now();
        for (p, e) in pairs() {
            let n = sim.calls(p, &e);
            let entry = self
                .seen
                .entry(Self::key(p, &e))
                .or_insert((0, self.last_poll, now));
            let (seen, _, latest) = *entry;
            if n > seen {
                // `n - seen` calls happened in (last_poll, now].
                if n - seen > 1 && now - self.last_poll < interval {
                    return Err(format!(
                        "{} {e}: {} calls within {:?}",
                        provider_of(p),
                        n - seen,
                        now - self.last_poll
                    ));
                }
                if seen > 0 {
                    // Widest gap: from the poll before the previous call to this poll.
                    let widest = now - entry.1;
                    if widest < interval {
                        return Err(format!(
                            "{} {e}: called again at most {widest:?} after the previous call \
                             (interval {interval:?}); previous seen at {:?}, this one at {:?}",
                            provider_of(p),
                            latest,
                            now
                        ));
                    }
                }
                *entry = (n, self.last_poll, now);
            }
        }
        self.last_poll = now;
        Ok(())
    }

    fn calls(&self, p: Provider, ext: &str) -> u64 {
        self.seen.get(&Self::key(p, ext)).map_or(0, |e| e.0)
    }
}

/// Fails with the provider-call and sync metrics, which say whether calls were retried.
async fn violation(r: &Replica, what: &str) -> ! {
    let metrics = reqwest::get(format!("{}/metrics", r.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let relevant: Vec<&str> = metrics
        .lines()
        .filter(|l| {
            l.starts_with("coffer_provider_calls_total") || l.starts_with("coffer_sync_runs_total")
        })
        .collect();
    panic!("{what}\n{}", relevant.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_pair_is_fetched_once_per_cycle() {
    let Some((sim, replicas, _db)) = cluster(true, sync_config).await else {
        return;
    };
    // Watched from before any pair exists, so every call falls in a known window.
    let mut watch = CallWatch::new();
    let start = Instant::now();
    link_all(&replicas[0]).await;

    // First cycle: once every pair has been called, each was called exactly once.
    loop {
        if let Err(e) = watch.poll(&sim, CYCLE) {
            violation(&replicas[0], &e).await;
        }
        if pairs().iter().all(|(p, e)| watch.calls(*p, e) >= 1) {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "first cycle not done: {:?}",
            watch.seen
        );
        tokio::time::sleep(cluster::POLL).await;
    }
    for (p, e) in pairs() {
        assert_eq!(
            sim.calls(p, &e),
            1,
            "{} {e}: not exactly once in the first cycle",
            provider_of(p)
        );
    }

    // Two more cycles, watching that no pair is ever called twice within an interval.
    loop {
        if let Err(e) = watch.poll(&sim, CYCLE) {
            violation(&replicas[0], &e).await;
        }
        if pairs().iter().all(|(p, e)| watch.calls(*p, e) >= 3) {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE * 2,
            "three cycles not done: {:?}",
            watch.seen
        );
        tokio::time::sleep(cluster::POLL).await;
    }

    for r in replicas {
        r.stop().await;
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replicas_pairs_are_taken_over() {
    let Some((sim, mut replicas, _db)) = cluster(true, sync_config).await else {
        return;
    };
    // Fetches take a while, so a replica is killed with fetches in flight and leases held.
    sim.set_latency(Provider::P100, Duration::from_millis(1000));
    sim.set_latency(Provider::Corebanq, Duration::from_millis(1000));
    link_all(&replicas[0]).await;
    let store: Arc<dyn Store> = Arc::clone(&replicas[0].running.as_ref().unwrap().state.store);
    let victim = replicas[2].instance_id.clone();

    let held_by_victim = || {
        let store = Arc::clone(&store);
        let victim = victim.clone();
        async move {
            let mut held = Vec::new();
            for i in 0..CUSTOMERS {
                for s in store.sync_states(&format!("c{i}")).await.unwrap() {
                    if s.lease_owner.as_deref() == Some(victim.as_str())
                        && s.lease_expires.is_some_and(|t| t > Utc::now())
                    {
                        held.push((s.customer_id, s.provider_id, s.lease_expires.unwrap()));
                    }
                }
            }
            held
        }
    };
    eventually("the replica to kill holds leases", DEADLINE, || async {
        !held_by_victim().await.is_empty()
    })
    .await;
    replicas[2].kill();
    let killed_at = Utc::now();
    // Its leases outlive it: nobody else may take them before they expire.
    let orphans = held_by_victim().await;
    assert!(
        !orphans.is_empty(),
        "the killed replica released its leases before it died (fetches too fast?)"
    );

    // Other replicas take the orphaned pairs over once the leases expire…
    for (customer, provider, expires) in &orphans {
        eventually(
            &format!("{customer}/{provider} taken over after the killed replica's lease"),
            DEADLINE,
            || async {
                store
                    .sync_states(customer)
                    .await
                    .unwrap()
                    .into_iter()
                    .find(|s| &s.provider_id == provider)
                    .is_some_and(|s| {
                        s.last_success.is_some_and(|t| t > *expires)
                            && s.lease_owner.as_deref() != Some(victim.as_str())
                    })
            },
        )
        .await;
    }
    // …and every pair keeps being refreshed by the survivors.
    eventually("every pair refreshed after the kill", DEADLINE, || async {
        for i in 0..CUSTOMERS {
            let states = store.sync_states(&format!("c{i}")).await.unwrap();
            if states.len() != 2
                || states
                    .iter()
                    .any(|s| s.last_success.is_none_or(|t| t <= killed_at))
            {
                return false;
            }
        }
        true
    })
    .await;
    // The survivors still answer.
    for r in &replicas[..2] {
        let b = r
            .ok("/v2/accounts/balance?customer_id=c0&max_age=3600")
            .await;
        assert_eq!(b["stale"], false, "{b}");
    }
    for r in replicas.into_iter().take(2) {
        r.stop().await;
    }
    sim.shutdown().await;
}

fn no_sync_long_cache(c: &mut coffer_server::config::Config) {
    // Without notifications the other replicas would serve their L1 for a minute.
    c.cache.ttl = Duration::from_secs(60);
}

/// The balance of `account` in `customer`'s list on `r`.
async fn balance_on(r: &Replica, customer: &str, account: &str) -> Decimal {
    let b = r
        .ok(&format!("/v2/accounts?customer_id={customer}&limit=1000"))
        .await;
    let a = b["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == account)
        .unwrap_or_else(|| panic!("{account} not in {b}"));
    Decimal::from_str(a["balance"].as_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_on_one_replica_is_seen_by_the_others_within_a_second() {
    let Some((sim, replicas, _db)) = cluster(false, no_sync_long_cache).await else {
        return;
    };
    replicas[0]
        .customer("r", Some(&ext(0)), Some(&ext(0)))
        .await;
    let p100 = sim.p100_customer(&ext(0)).unwrap();
    let balance = p100
        .fiat_balances
        .iter()
        .chain(&p100.crypto_balances)
        .next()
        .unwrap()
        .clone();
    let account = format!("{}:{}", common::P100, balance.id);

    // Every replica has the customer in L1.
    for r in &replicas {
        assert_eq!(balance_on(r, "r", &account).await, balance.amount);
    }
    let new_amount = balance.amount + Decimal::new(1234, 2);
    assert!(sim.set_p100_balance(&ext(0), &balance.id, new_amount));
    // Nothing told the replicas yet: they answer from L1.
    for r in &replicas[1..] {
        assert_eq!(balance_on(r, "r", &account).await, balance.amount);
    }

    let (status, body) = replicas[0]
        .post("/v2/customers/r/refresh", serde_json::json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let refreshed = Instant::now();
    assert_eq!(balance_on(&replicas[0], "r", &account).await, new_amount);
    for (i, r) in replicas.iter().enumerate().skip(1) {
        eventually(
            &format!("replica {i} sees the refresh made on replica 0 within 1 s"),
            Duration::from_secs(1).saturating_sub(refreshed.elapsed()),
            || async { balance_on(r, "r", &account).await == new_amount },
        )
        .await;
    }
    assert!(
        refreshed.elapsed() < Duration::from_secs(1),
        "seen everywhere only after {:?}",
        refreshed.elapsed()
    );

    // An admin's link change on one replica is seen by the others too.
    let (status, body) = replicas[1]
        .request(
            reqwest::Method::PUT,
            "/v2/customers/r",
            Some(serde_json::json!({"name": "r", "links": [{"provider": common::P100, "external_id": ext(0)}]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    for r in [&replicas[0], &replicas[2]] {
        eventually(
            "the link change seen within 1 s",
            Duration::from_secs(1),
            || async {
                let b = r.ok("/v2/accounts?customer_id=r&limit=1000").await;
                b["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|a| a["provider"] == common::P100)
            },
        )
        .await;
    }

    for r in replicas {
        r.stop().await;
    }
    sim.shutdown().await;
}
