//! `coffer demo`: both simulators on loopback, the service on an embedded SQLite store, three
//! demo customers across both providers, an admin key, and curl lines to try.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use coffer_server::config::{Config, ProviderConfig};
use coffer_server::providers::Providers;
use coffer_server::run::{StartOptions, start};
use coffer_store::{Link, NewCustomer};

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where the embedded store lives (default: a fresh file in the system's temp dir).
    #[arg(long)]
    pub database: Option<String>,
}

const P100_ID: &str = "p100";
const BANK_ID: &str = "bank";

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let mut config = Config::default();
    let _telemetry = coffer_server::telemetry::init(&config.log, &config.telemetry);
    let sim_config = coffer_sim::SimConfig {
        customers: 3,
        accounts_per_customer: 10,
        ..Default::default()
    };
    let sim = coffer_sim::start(sim_config.clone())
        .await
        .context("starting the simulators")?;

    let db = args.database.unwrap_or_else(|| {
        let path = std::env::temp_dir().join(format!("coffer-demo-{}.db", std::process::id()));
        format!("sqlite://{}", path.display())
    });
    config.database.url = db.clone();
    config.server.listen = args.listen;
    config.rates.manual.insert("USD".into(), "0.92".into());
    config.sync.interval = Duration::from_secs(60);
    config.providers = vec![
        provider_config(P100_ID, coffer_provider_p100::KIND, &sim.p100_url()),
        provider_config(BANK_ID, coffer_provider_corebanq::KIND, &sim.corebanq_url()),
    ];
    // The simulators' keys are handed to the adapters directly: the demo sets no environment.
    let mut providers = Providers::default();
    providers.insert(
        coffer_provider_p100::build(
            P100_ID,
            &sim.p100_url(),
            sim_config.p100_api_key.clone(),
            Duration::from_secs(5),
        )?,
        Duration::from_secs(5),
        2,
    );
    providers.insert(
        coffer_provider_corebanq::build(
            BANK_ID,
            &sim.corebanq_url(),
            sim_config.corebanq_token.clone(),
            Duration::from_secs(5),
            None,
        )?,
        Duration::from_secs(5),
        2,
    );

    let store = coffer_store::connect(&db).await?;
    store.migrate().await?;
    for (id, name, p100, bank) in [
        (
            "acme",
            "ACME (the providers' documented examples)",
            coffer_sim::fixtures::P100_SEED_USER,
            coffer_sim::fixtures::COREBANQ_SEED_CUSTOMER,
        ),
        ("globex", "Globex", "gen-000000", "gen-000000"),
        ("initech", "Initech", "gen-000001", "gen-000001"),
    ] {
        let c = NewCustomer {
            id: id.into(),
            name: Some(name.into()),
            links: vec![
                Link {
                    provider: P100_ID.into(),
                    external_id: p100.into(),
                },
                Link {
                    provider: BANK_ID.into(),
                    external_id: bank.into(),
                },
            ],
        };
        match store.create_customer(&c).await {
            Ok(_) | Err(coffer_store::StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // `COFFER_ADMIN_KEY` when set (the contract check in .ci/ needs to know the key).
    let admin_key =
        crate::admin::admin_key_from_env().unwrap_or_else(coffer_server::auth::generate_key);
    let running = start(
        config,
        StartOptions {
            bootstrap_admin_key: Some(admin_key.clone()),
            providers: Some(providers),
            store: Some(store),
            ..Default::default()
        },
        true,
    )
    .await?;
    let url = running.url();
    println!();
    println!("Coffer demo is running on {url}");
    println!("  store:      {db}");
    println!(
        "  P100 sim:   {}   Corebanq sim: {}",
        sim.p100_url(),
        sim.corebanq_url()
    );
    println!("  customers:  acme, globex, initech (each linked to both providers)");
    println!("  admin key:  {admin_key}");
    // For the console tour: a reader key that sees acme only.
    let store = running.state.store.as_ref();
    let (reader, _) = coffer_server::auth::create_key(
        store,
        coffer_store::Role::Reader,
        vec!["acme".into()],
        None,
        &coffer_store::Actor::cli(),
    )
    .await?;
    println!("  reader key: {reader}   (sees acme only)");
    println!("  console:    {url}/console   (sign in with either key)");
    println!();
    println!("Try:");
    println!(
        "  curl -s -H 'x-api-key: {admin_key}' '{url}/v2/accounts/balance?customer_id=acme&details=true'"
    );
    println!(
        "  curl -s -H 'x-api-key: {admin_key}' '{url}/v2/accounts/balance?customer_id=globex&currency=USD&stack=currency'"
    );
    println!(
        "  curl -s -H 'x-api-key: {admin_key}' '{url}/v2/accounts?customer_id=initech&is_crypto=true&sort=-balance_in_base&limit=5'"
    );
    println!();
    println!("Press Ctrl-C to stop.");
    running.wait().await?;
    sim.shutdown().await;
    Ok(())
}

fn provider_config(id: &str, kind: &str, url: &str) -> ProviderConfig {
    ProviderConfig {
        id: id.into(),
        kind: kind.into(),
        base_url: url.into(),
        api_key_env: format!("{}_API_KEY", id.to_uppercase()),
        timeout: Duration::from_secs(5),
        rate_limit: 0,
        retries: 2,
        quote_currency: None,
        max_retry_after: coffer_server::provider::DEFAULT_MAX_RETRY_AFTER,
        webhook_secret_env: None,
    }
}
