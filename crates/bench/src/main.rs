//! `coffer-bench`: starts the provider simulators and the Coffer server in-process and drives
//! load at them with its own HTTP client, printing requests per second and latency quantiles.
//! Not part of the tests: numbers depend on the machine, so they are recorded, with the
//! machine, in `docs/benchmarks.md` rather than asserted.
//!
//! ```text
//! cargo run --release -p coffer-bench -- cached   # (a) cached balance vs (b) /v2/minimal
//! cargo run --release -p coffer-bench -- cold     # (c) cold fan-out, providers at 50 / 80 ms
//! cargo run --release -p coffer-bench -- sync     # (d) background sync of 100,000 customers
//! cargo run --release -p coffer-bench -- memory   # (e) bytes per cached account, the budget held
//! cargo run --release -p coffer-bench -- history  # (e) at= and series over 30 days of history
//! cargo run --release -p coffer-bench -- list     # (f) the unified list at 1,000,000 accounts
//! cargo run --release -p coffer-bench -- export   # (g) the CSV export of 1,000,000 accounts
//! cargo run --release -p coffer-bench -- inbox    # (h) a burst of 1,000 webhooks, P100 at 500 ms
//! cargo run --release -p coffer-bench -- all
//! ```
#![forbid(unsafe_code)]

mod cached;
mod cold;
mod customers;
mod export;
mod harness;
mod history;
mod inbox;
mod list;
mod load;
mod memory;
mod setup;
mod sync;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "coffer-bench",
    about = "Coffer's benchmarks: the server and the simulators in-process, driven by a built-in HTTP load generator"
)]
struct Cli {
    /// A PostgreSQL URL; the database is dropped and recreated at the start of each scenario.
    #[arg(
        long,
        env = "COFFER_BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/coffer_bench_server",
        global = true
    )]
    database_url: String,
    /// Worker threads of the server's runtime (the server, the simulators and the sync worker).
    /// Default: the number of cores.
    #[arg(long, global = true)]
    server_threads: Option<usize>,
    /// Worker threads of the load generator's own runtime. Default: the number of cores.
    #[arg(long, global = true)]
    client_threads: Option<usize>,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// (a) cached `GET /v2/accounts/balance` for one customer with 10 accounts, and (b)
    /// `GET /v2/minimal` as the baseline, in the same run; prints the (a)/(b) ratio.
    Cached(cached::CachedArgs),
    /// (c) cold requests, each for a never-fetched customer, with the providers at 50 ms (P100)
    /// and 80 ms (Corebanq).
    Cold(cold::ColdArgs),
    /// (d) background sync throughput: N customers linked to both providers, providers at 20 ms;
    /// then the all-customer totals latency at that size.
    Sync(sync::SyncArgs),
    /// (e) memory: resident bytes per cached account, and the caches held to `cache.max_bytes`
    /// while 100,000 customers x 10 accounts are each asked once.
    Memory(memory::MemoryArgs),
    /// (e) answers at past instants and 30-point series over 30 days of history, generated
    /// set-based in SQL.
    History(history::HistoryArgs),
    /// (f) the unified list at a million accounts: p50 per page for pages 1 and 20 of an admin's
    /// `GET /v2/accounts` questions, and the resident memory while paging through everything.
    List(list::ListArgs),
    /// (g) the CSV export of a million accounts from PostgreSQL: rows per second, and the
    /// resident memory sampled while the body streams.
    Export(export::ExportArgs),
    /// (h) the webhook inbox: a burst of 1,000 P100 deliveries with P100 at 500 ms; the time
    /// to each 200, and from the 200 to the pair's fresh snapshot.
    Inbox(inbox::InboxArgs),
    /// (a)+(b), (c) and (d) with their defaults.
    All(AllArgs),
}

#[derive(Debug, Args)]
struct AllArgs {
    /// Customers for the sync scenario.
    #[arg(long, default_value_t = 100_000)]
    customers: usize,
}

// The same allocator as the `coffer` binary, so the figures are the service's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.client_threads.unwrap_or(cores).max(1))
        .thread_name("bench-client")
        .enable_all()
        .build()?;
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.server_threads.unwrap_or(cores).max(1))
        .thread_name("bench-server")
        .enable_all()
        .build()?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    println!("machine: {}", setup::machine());
    println!(
        "runtimes: server {} threads, client {} threads (they share the cores with PostgreSQL)",
        cli.server_threads.unwrap_or(cores),
        cli.client_threads.unwrap_or(cores)
    );
    let client = client_rt.handle().clone();
    let url = cli.database_url.clone();
    let result = server_rt.block_on(async move {
        match cli.scenario {
            Scenario::Cached(a) => cached::cached(&url, client, &a).await,
            Scenario::Cold(a) => cold::cold(&url, client, &a).await,
            Scenario::Sync(a) => sync::sync(&url, client, &a).await,
            Scenario::Memory(a) => memory::memory(&url, client, &a).await,
            Scenario::History(a) => history::history(&url, &a).await,
            Scenario::List(a) => list::list(&url, client, &a).await,
            Scenario::Export(a) => export::export(&url, client, &a).await,
            Scenario::Inbox(a) => inbox::inbox(&url, client, &a).await,
            Scenario::All(all) => {
                cached::cached(&url, client.clone(), &cached::CachedArgs::default()).await?;
                cold::cold(&url, client.clone(), &cold::ColdArgs::default()).await?;
                let args = sync::SyncArgs {
                    customers: all.customers,
                    ..sync::SyncArgs::default()
                };
                sync::sync(&url, client, &args).await
            }
        }
    });
    server_rt.shutdown_background();
    client_rt.shutdown_background();
    result
}
