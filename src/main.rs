//! `coffer`: the binary. Thin: parses the command line and calls into the crates.
#![forbid(unsafe_code)]

mod admin;
mod cli;
#[cfg(feature = "demo")]
mod demo;

use clap::Parser;

// glibc's malloc was about a quarter of the process's CPU in the sync benchmark (many small,
// short-lived allocations across threads: JSON, HTTP, accounts); mimalloc serves them from
// per-thread pages (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(cli::run(cli));
    // Past `server.shutdown_grace` the requests still in flight are cut: their tasks are
    // dropped here rather than waited for.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
