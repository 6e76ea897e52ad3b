//! (g) the account export at a million accounts (issue 17): an admin's
//! `GET /v2/accounts?format=csv` streamed from PostgreSQL, rows per second, and the process's
//! resident memory sampled as the body arrives (flat: the server holds one store batch of
//! `server.max_page_size` accounts, never the set). The accounts are the list scenario's
//! (`list::fill`, set-based), with its manual rates, so every row is converted.

use std::time::Instant;

use clap::Parser;
use coffer_sim::SimConfig;
use tokio::runtime::Handle;

use crate::harness;
use crate::list::{fill, mib, rss, set_rates};
use crate::setup::{self, ADMIN_KEY};

#[derive(Debug, Parser)]
pub struct ExportArgs {
    /// Accounts (ten per customer).
    #[arg(long, default_value_t = 1_000_000)]
    pub accounts: u64,
    /// The export's query besides `format=csv` (e.g. `sort=-balance_in_base`).
    #[arg(long, default_value = "")]
    pub query: String,
    /// Resident-memory samples printed over the export (at even row counts).
    #[arg(long, default_value_t = 10)]
    pub samples: u64,
}

pub async fn export(url: &str, _client: Handle, args: &ExportArgs) -> anyhow::Result<()> {
    let heading = format!("(g) the account export at {} accounts", args.accounts);
    harness::begin(&heading, url, Some("export"))?;
    let store = harness::database(url, 16).await?;
    let t = Instant::now();
    fill(url, args.accounts).await?;
    set_rates(store.as_ref()).await?;
    println!(
        "filled {} accounts in {:.1} s",
        args.accounts,
        t.elapsed().as_secs_f64()
    );
    let served = harness::serve(url, &store, SimConfig::default(), |_| {}).await?;
    println!("load average before the export: {}", setup::load_average());
    let result = download(&served.url(), args).await;
    served.finish(result).await
}

/// Reads the export chunk by chunk (never holding it), counting rows and sampling memory.
async fn download(base: &str, args: &ExportArgs) -> anyhow::Result<()> {
    let query = if args.query.is_empty() {
        "format=csv".to_owned()
    } else {
        format!("format=csv&{}", args.query)
    };
    let url = format!("{base}/v2/accounts?{query}");
    let before = rss();
    let t = Instant::now();
    let mut r = reqwest::Client::new()
        .get(&url)
        .header("x-api-key", ADMIN_KEY)
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "GET {url}: {}", r.status());
    let first_byte = t.elapsed();
    let (mut lines, mut bytes, mut peak) = (0u64, 0u64, before);
    let every = (args.accounts / args.samples.max(1)).max(1);
    let mut next_sample = every;
    let mut samples = Vec::new();
    while let Some(chunk) = r.chunk().await? {
        bytes += chunk.len() as u64;
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        let now = rss();
        peak = peak.max(now);
        if lines >= next_sample {
            samples.push(format!("{}k rows {}", lines / 1000, mib(now)));
            next_sample += every;
        }
    }
    let took = t.elapsed().as_secs_f64();
    // Rows holding a newline inside a quoted cell would count twice: none here (no such text).
    let rows = lines.saturating_sub(1);
    anyhow::ensure!(
        rows == args.accounts,
        "exported {rows} rows, expected {}",
        args.accounts
    );
    println!("resident while exporting: {}", samples.join(", "));
    println!(
        "RESULT export `{query}`: {rows} rows, {:.0} MB in {took:.1} s = {:.0} rows/s (first byte after {} ms); resident {} before, peak {}, {} after",
        bytes as f64 / 1e6,
        rows as f64 / took,
        first_byte.as_millis(),
        mib(before),
        mib(peak),
        mib(rss())
    );
    Ok(())
}
