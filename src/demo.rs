//! `coffer demo`: both simulators on loopback, the service on an embedded SQLite store, three
//! demo customers across both providers, an admin key, and curl lines to try; and push: the P100
//! simulator books a deposit for globex every few seconds and sends P100's webhook, which
//! refreshes the pair, and a printed `curl -N` line streams the `balance.changed` it causes.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use coffer_server::config::{Config, ProviderConfig};
use coffer_server::providers::Providers;
use coffer_server::run::{StartOptions, start};
use coffer_sim::webhook::{WebhookFault, WebhookTarget};
use coffer_store::{Link, NewCustomer};

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where the embedded store lives (default: a fresh file in the system's temp dir).
    #[arg(long)]
    pub database: Option<String>,
}

const P100_ID: &str = coffer_sim::P100_ID;
const BANK_ID: &str = coffer_sim::COREBANQ_ID;
/// The name the demo's config gives P100's webhook token (the demo's secret source answers it).
const WEBHOOK_TOKEN_NAME: &str = "COFFER_DEMO_P100_WEBHOOK_TOKEN";

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
    config.providers = sim
        .configured()
        .into_iter()
        .map(|p| ProviderConfig {
            // P100 delivers the demo's webhooks with this token.
            webhook_secret_env: (p.id == P100_ID).then(|| WEBHOOK_TOKEN_NAME.into()),
            ..ProviderConfig::new(p.id, p.kind, &p.base_url, p.key_name)
        })
        .collect();
    // Built through the registry as `coffer serve` builds them, the simulators' keys and the
    // webhook token in place of the environment: the demo sets no environment.
    let webhook_token = coffer_server::auth::generate_key();
    let secret = |name: &str| match name {
        WEBHOOK_TOKEN_NAME => Some(webhook_token.clone()),
        _ => sim_config.secret(name),
    };
    let providers = Providers::from_config_with(&config.providers, &secret)?;

    let store = coffer_store::connect(&db).await?;
    store.migrate().await?;
    let push_store = store.clone();
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
    print_push(&url, &admin_key);
    println!();
    println!("Press Ctrl-C to stop.");
    let target = WebhookTarget {
        url: format!("{url}/v2/webhooks/{P100_ID}"),
        token: webhook_token,
        retries: coffer_sim::webhook::P100_RETRIES.to_vec(),
    };
    tokio::select! {
        r = running.wait() => r?,
        () = push(&sim, push_store.as_ref(), &target) => {}
    }
    sim.shutdown().await;
    Ok(())
}

/// The customer whose P100 user receives the demo's deposits, and that user.
const PUSH_CUSTOMER: &str = "globex";
const PUSH_USER: &str = "gen-000000";
/// How often the demo books a deposit.
const PUSH_EVERY: Duration = Duration::from_secs(15);

/// The push part of the demo, printed: what happens, and the line that streams it.
fn print_push(url: &str, admin_key: &str) {
    println!();
    println!(
        "Push: every {}s the P100 simulator books a deposit for {PUSH_CUSTOMER} and sends P100's \
         webhook to {url}/v2/webhooks/{P100_ID}; it refreshes the pair, and the change is an event.",
        PUSH_EVERY.as_secs()
    );
    println!("Stream it (Ctrl-C to leave the stream):");
    println!("  {}", stream_line(url, admin_key));
}

/// The `curl -N` line that streams the push customer's balance changes.
pub fn stream_line(url: &str, admin_key: &str) -> String {
    format!(
        "curl -N -H 'x-api-key: {admin_key}' -H 'accept: text/event-stream' \
         '{url}/v2/events?customer_id={PUSH_CUSTOMER}&types=balance.changed'"
    )
}

/// Waits for the first sync of the push customer's P100 pair (so a deposit is a change, not a
/// first sighting), then books a deposit and sends the webhook every [`PUSH_EVERY`]. Runs until
/// the demo stops.
async fn push(
    sim: &coffer_sim::SimHandle,
    store: &dyn coffer_store::Store,
    target: &WebhookTarget,
) {
    loop {
        let synced = store
            .customer_accounts(PUSH_CUSTOMER)
            .await
            .is_ok_and(|c| c.snapshots.iter().any(|s| s.provider_id == P100_ID));
        if synced {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    loop {
        let Some(balance) = sim
            .p100_customer(PUSH_USER)
            .and_then(|c| c.balances().next().cloned())
        else {
            return;
        };
        let step = rust_decimal::Decimal::new(5, 2);
        sim.set_p100_balance(PUSH_USER, &balance.id, balance.amount + step);
        let body = coffer_sim::webhook::crypto_deposit(PUSH_USER, &step.to_string());
        coffer_sim::webhook::send(target, &body, WebhookFault::None).await;
        tokio::time::sleep(PUSH_EVERY).await;
    }
}
