//! The commands: `serve`, `migrate`, `keys`, `audit`, `config check`, `sim`, `demo`.

#[cfg(feature = "sim")]
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
#[cfg(feature = "sim")]
use clap::Args;
use clap::{Parser, Subcommand};
use coffer_server::config::Config;
use coffer_server::run::{StartOptions, start};

use crate::admin::{AuditCommand, KeysCommand};
#[cfg(feature = "demo")]
use crate::demo::DemoArgs;

#[derive(Debug, Parser)]
#[command(
    name = "coffer",
    version,
    about = "Account balances from every provider, in one exact account model, behind one REST API"
)]
pub struct Cli {
    /// Configuration file (default: `COFFER_CONFIG`, else built-in defaults).
    #[arg(long, global = true, env = "COFFER_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: the REST API and the background sync.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Check a configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run the provider simulators (fake P100 and Corebanq) until interrupted.
    #[cfg(feature = "sim")]
    Sim(SimArgs),
    /// A working service on the embedded store and both simulators, with demo customers and an
    /// admin key; prints ready-to-paste curl lines.
    #[cfg(feature = "demo")]
    Demo(DemoArgs),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file (default: `--config` / `COFFER_CONFIG`) with the
    /// environment, as `serve` would load it; names every bad key, and fails if there is one.
    Check { path: Option<PathBuf> },
}

#[cfg(feature = "sim")]
#[derive(Debug, Args)]
pub struct SimArgs {
    #[arg(long, default_value = "127.0.0.1:9100")]
    pub p100_listen: SocketAddr,
    #[arg(long, default_value = "127.0.0.1:9200")]
    pub corebanq_listen: SocketAddr,
    /// Generated customers (`gen-000000` …), known to both simulators.
    #[arg(long, default_value_t = 10)]
    pub customers: usize,
    #[arg(long, default_value_t = 10)]
    pub accounts: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve => serve(cli.config).await,
        Command::Migrate => migrate(cli.config).await,
        Command::Keys(k) => crate::admin::keys(load(cli.config)?, k).await,
        Command::Audit(a) => crate::admin::audit(load(cli.config)?, a).await,
        Command::Config(ConfigCommand::Check { path }) => config_check(path.or(cli.config)),
        #[cfg(feature = "sim")]
        Command::Sim(a) => sim(a).await,
        #[cfg(feature = "demo")]
        Command::Demo(a) => crate::demo::run(a).await,
    }
}

pub fn load(path: Option<PathBuf>) -> anyhow::Result<Config> {
    Ok(Config::load(path.as_deref())?)
}

async fn serve(path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = load(path)?;
    let _telemetry = coffer_server::telemetry::init(&config.log, &config.telemetry);
    let opts = StartOptions {
        bootstrap_admin_key: crate::admin::admin_key_from_env(),
        ..Default::default()
    };
    let running = start(config, opts, true).await?;
    running.wait().await.context("server failed")?;
    Ok(())
}

fn config_check(path: Option<PathBuf>) -> anyhow::Result<()> {
    let Some(path) = path else {
        bail!("no file to check: give a PATH, --config or COFFER_CONFIG");
    };
    let problems = coffer_server::config_check::check_file(&path);
    if problems.is_empty() {
        println!("{}: ok", path.display());
        // Valid, but more cache than the container may hold is worth saying before a rollout.
        if let Ok(config) = Config::load(Some(&path)) {
            let limit = coffer_server::cgroup::memory_limit();
            if let Some(w) =
                coffer_server::cgroup::budget_warning(config.cache.max_bytes.as_u64(), limit)
            {
                println!("{}: warning: {w}", path.display());
            }
        }
        return Ok(());
    }
    for p in &problems {
        println!("{}: `{}`: {}", path.display(), p.key, p.message);
    }
    bail!("{} problem(s) in {}", problems.len(), path.display())
}

async fn migrate(path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = load(path)?;
    let store = coffer_store::connect(&config.database.url).await?;
    store.migrate().await?;
    println!("migrations applied ({})", store.backend());
    Ok(())
}

#[cfg(feature = "sim")]
async fn sim(a: SimArgs) -> anyhow::Result<()> {
    let config = coffer_sim::SimConfig {
        seed: a.seed,
        customers: a.customers,
        accounts_per_customer: a.accounts,
        ..Default::default()
    };
    println!(
        "P100 simulator on http://{} (x-api-key: {})",
        a.p100_listen, config.p100_api_key
    );
    println!(
        "Corebanq simulator on http://{} (Bearer {})",
        a.corebanq_listen, config.corebanq_token
    );
    coffer_sim::run_standalone(config, a.p100_listen, a.corebanq_listen).await?;
    Ok(())
}
