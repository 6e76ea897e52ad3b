//! `coffer keys …` and `coffer audit …`: what an operator does on the store directly. Every
//! change is audited as the `cli` actor.

use anyhow::{Context, bail};
use chrono::{SecondsFormat, Utc};
use clap::{Subcommand, ValueEnum};
use coffer_server::config::Config;
use coffer_store::{Actor, ApiKey, Role, Store};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; prints it alone on the last line of stdout. It is shown only once.
    Create {
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Customers a reader may read, comma-separated.
        #[arg(long, value_delimiter = ',')]
        customers: Vec<String>,
        /// The key stops working this long from now (`90d`, `12h`); without it, never.
        #[arg(long, value_parser = humantime::parse_duration)]
        expires: Option<std::time::Duration>,
    },
    /// List every key: id, role, scope, created, expiry, last use, revoked.
    List,
    /// Revoke a key by its id.
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the whole hash chain; exits non-zero naming the first broken entry.
    Verify,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Admin,
    Reader,
}

/// `COFFER_ADMIN_KEY`, if set and non-empty.
pub fn admin_key_from_env() -> Option<String> {
    std::env::var("COFFER_ADMIN_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty())
}

async fn store(config: &Config) -> anyhow::Result<std::sync::Arc<dyn Store>> {
    let store = coffer_store::connect(&config.database.url).await?;
    store.migrate().await?;
    Ok(store)
}

pub async fn keys(config: Config, cmd: KeysCommand) -> anyhow::Result<()> {
    let store = store(&config).await?;
    match cmd {
        KeysCommand::Create {
            role,
            customers,
            expires,
        } => create(store.as_ref(), role, customers, expires).await?,
        KeysCommand::List => {
            println!("id\trole\tcustomers\tcreated\texpires\tlast_used\trevoked");
            for k in store.list_api_keys().await? {
                println!("{}", row(&k));
            }
        }
        KeysCommand::Revoke { id } => {
            store.revoke_api_key_by(&id, &Actor::cli()).await?;
            println!("revoked {id}");
        }
    }
    Ok(())
}

async fn create(
    store: &dyn Store,
    role: RoleArg,
    customers: Vec<String>,
    expires: Option<std::time::Duration>,
) -> anyhow::Result<()> {
    let role = match role {
        RoleArg::Admin => Role::Admin,
        RoleArg::Reader => Role::Reader,
    };
    let customers: Vec<String> = customers
        .into_iter()
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .collect();
    if role == Role::Reader && customers.is_empty() {
        bail!("a reader key needs --customers ID[,ID…]");
    }
    for c in &customers {
        store
            .get_customer(c)
            .await
            .with_context(|| format!("customer `{c}`"))?;
    }
    let expires_at = expires
        .map(|d| {
            chrono::Duration::from_std(d)
                .ok()
                .and_then(|d| Utc::now().checked_add_signed(d))
        })
        .map(|at| at.context("--expires is too far in the future"))
        .transpose()?;
    let (key, stored) =
        coffer_server::auth::create_key(store, role, customers, expires_at, &Actor::cli()).await?;
    let until = stored.expires_at.map_or_else(
        || "never expires".to_owned(),
        |at| format!("expires {}", at.to_rfc3339_opts(SecondsFormat::Secs, true)),
    );
    println!(
        "created {} key {} ({until}; shown once; store it now)",
        role.as_str(),
        stored.id
    );
    println!("{key}");
    Ok(())
}

/// One line of `coffer keys list`, tab-separated; `-` for what is not set.
fn row(k: &ApiKey) -> String {
    let ts = |t: Option<chrono::DateTime<Utc>>| {
        t.map_or_else(
            || "-".to_owned(),
            |t| t.to_rfc3339_opts(SecondsFormat::Secs, true),
        )
    };
    let customers = if k.customers.is_empty() {
        "-".to_owned()
    } else {
        k.customers.join(",")
    };
    [
        k.id.clone(),
        k.role.as_str().to_owned(),
        customers,
        ts(Some(k.created_at)),
        ts(k.expires_at),
        ts(k.last_used_at),
        ts(k.revoked_at),
    ]
    .join("\t")
}

pub async fn audit(config: Config, cmd: AuditCommand) -> anyhow::Result<()> {
    let store = store(&config).await?;
    match cmd {
        AuditCommand::Verify => match store.verify_audit().await? {
            Ok(n) => {
                let (_, head) = store.audit_head().await?;
                println!("audit log intact: {n} entries, head {head}");
                Ok(())
            }
            Err(broken) => bail!("audit log broken: {broken}"),
        },
    }
}
