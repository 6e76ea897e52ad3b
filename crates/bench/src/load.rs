//! The load generator: a fixed number of concurrent workers (closed loop: each sends its next
//! request when the previous answer has been read in full), each recording its own latencies,
//! merged at the end. It runs on its own Tokio runtime so its threads compete with the server's
//! the way a separate client process would, and so the server's scheduler never runs client
//! work.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;

/// When the workers stop.
#[derive(Debug, Clone, Copy)]
pub enum Until {
    /// Keep going until this long has passed (after the warm-up).
    Elapsed(Duration),
    /// Send exactly this many requests in all (each one gets its own index).
    Requests(u64),
}

/// What one load run measured.
#[derive(Debug)]
pub struct Stats {
    pub name: String,
    pub concurrency: usize,
    pub elapsed: Duration,
    /// Latencies of the successful (HTTP 200) requests, sorted.
    pub latencies: Vec<Duration>,
    pub errors: u64,
    pub first_error: Option<String>,
}

impl Stats {
    pub fn ok(&self) -> usize {
        self.latencies.len()
    }

    /// Successful requests per second over the measured window.
    pub fn rps(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)] // request counts are far below 2^52
        let n = self.latencies.len() as f64;
        n / self.elapsed.as_secs_f64()
    }

    /// The `q`-quantile (0..=1) by the nearest-rank method.
    pub fn quantile(&self, q: f64) -> Duration {
        quantile(&self.latencies, q)
    }

    /// `12345 req/s p50 … p99 … p99.9 …`, as the `RESULT` lines quote a run.
    pub fn summary(&self) -> String {
        format!(
            "{:.0} req/s p50 {} p99 {} p99.9 {}",
            self.rps(),
            ms(self.quantile(0.5)),
            ms(self.quantile(0.99)),
            ms(self.quantile(0.999)),
        )
    }

    /// Fails unless every request succeeded: a figure over failed requests measures nothing.
    pub fn ensure_ok(&self, what: &str) -> anyhow::Result<()> {
        anyhow::ensure!(self.errors == 0, "{what} failed: {:?}", self.first_error);
        Ok(())
    }

    pub fn print(&self) {
        println!(
            "{:<34} conc {:>3}  {:>9.0} req/s  p50 {:>9}  p99 {:>9}  p99.9 {:>9}  max {:>9}  ok {:>8}  errors {}",
            self.name,
            self.concurrency,
            self.rps(),
            ms(self.quantile(0.50)),
            ms(self.quantile(0.99)),
            ms(self.quantile(0.999)),
            ms(self.latencies.last().copied().unwrap_or_default()),
            self.ok(),
            self.errors,
        );
        if let Some(e) = &self.first_error {
            println!("    first error: {e}");
        }
    }
}

/// Nearest-rank quantile of sorted latencies; zero when there are none.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )] // a rank within a vector's length
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Milliseconds with three decimals, for the tables.
pub fn ms(d: Duration) -> String {
    format!("{:.3}ms", d.as_secs_f64() * 1000.0)
}

/// Builds request number `i` (0, 1, …, shared across workers).
pub type MakeRequest = Arc<dyn Fn(&reqwest::Client, u64) -> reqwest::RequestBuilder + Send + Sync>;

/// The client side of a benchmark: a runtime of its own and one connection pool.
#[derive(Clone)]
pub struct LoadClient {
    pub runtime: Handle,
    pub client: reqwest::Client,
}

impl LoadClient {
    /// A client that keeps one HTTP/1.1 keep-alive connection per worker.
    pub fn new(runtime: Handle, max_connections: usize) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .http1_only()
            .pool_max_idle_per_host(max_connections)
            .tcp_nodelay(true)
            .no_proxy()
            .build()?;
        Ok(Self { runtime, client })
    }

    /// Runs `concurrency` workers: first for `warmup` (not recorded), then until `until`.
    pub async fn run(
        &self,
        name: &str,
        concurrency: usize,
        warmup: Duration,
        until: Until,
        make: MakeRequest,
    ) -> Stats {
        let client = self.client.clone();
        let name = name.to_owned();
        // Everything, including the final merge, runs on the client runtime.
        self.runtime
            .spawn(async move {
                if !warmup.is_zero() {
                    let _ = drive(&client, concurrency, Until::Elapsed(warmup), &make, &name).await;
                }
                drive(&client, concurrency, until, &make, &name).await
            })
            .await
            .expect("load workers panicked")
    }
}

struct Worker {
    latencies: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
}

async fn drive(
    client: &reqwest::Client,
    concurrency: usize,
    until: Until,
    make: &MakeRequest,
    name: &str,
) -> Stats {
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = match until {
        Until::Elapsed(d) => Some(start + d),
        Until::Requests(_) => None,
    };
    let limit = match until {
        Until::Requests(n) => n,
        Until::Elapsed(_) => u64::MAX,
    };
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let client = client.clone();
            let make = Arc::clone(make);
            let next = Arc::clone(&next);
            tokio::spawn(async move {
                let mut w = Worker {
                    latencies: Vec::with_capacity(64 * 1024),
                    errors: 0,
                    first_error: None,
                };
                loop {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= limit {
                        break;
                    }
                    let req = make(&client, i);
                    let t0 = Instant::now();
                    let outcome = match req.send().await {
                        Ok(resp) => {
                            let status = resp.status();
                            match resp.bytes().await {
                                Ok(_) if status.is_success() => Ok(()),
                                Ok(body) => Err(format!(
                                    "HTTP {status}: {}",
                                    String::from_utf8_lossy(&body[..body.len().min(300)])
                                )),
                                Err(e) => Err(format!("reading the body: {e}")),
                            }
                        }
                        Err(e) => Err(format!("sending: {e}")),
                    };
                    let took = t0.elapsed();
                    match outcome {
                        Ok(()) => w.latencies.push(took),
                        Err(e) => {
                            w.errors += 1;
                            w.first_error.get_or_insert(e);
                        }
                    }
                }
                w
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for w in workers {
        let w = w.await.expect("load worker panicked");
        latencies.extend(w.latencies);
        errors += w.errors;
        if first_error.is_none() {
            first_error = w.first_error;
        }
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    Stats {
        name: name.to_owned(),
        concurrency,
        elapsed,
        latencies,
        errors,
        first_error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<Duration> = (1..=1000).map(Duration::from_millis).collect();
        assert_eq!(quantile(&v, 0.5), Duration::from_millis(500));
        assert_eq!(quantile(&v, 0.99), Duration::from_millis(990));
        assert_eq!(quantile(&v, 0.999), Duration::from_millis(999));
        assert_eq!(quantile(&v, 1.0), Duration::from_millis(1000));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }
}
