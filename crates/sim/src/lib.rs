//! Provider simulators: a fake P100 Partner API v1 and a fake Corebanq unified accounts API v2,
//! each an axum server on its own port, with scripted and generated customers and faults that
//! tests change at run time.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use coffer_sim::{Fault, P100Error, Provider, SimConfig, Target};
//! let sim = coffer_sim::start(SimConfig { customers: 100, ..SimConfig::default() }).await?;
//! // GET {p100_url}/v1/user/gen-000007/balances with `x-api-key: sim-p100-key`
//! sim.set_fault(Provider::P100, Target::customer("gen-000007"), Some(Fault::P100(P100Error::P501)));
//! assert_eq!(sim.calls(Provider::P100, "gen-000007"), 0);
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Customers
//! - The seeds' bodies, verbatim: P100 user [`fixtures::P100_SEED_USER`], Corebanq customer
//!   [`fixtures::COREBANQ_SEED_CUSTOMER`].
//! - `config.customers` generated customers `gen-000000`, `gen-000001`, … known to both
//!   simulators, each with its own data built on demand from `(seed, index)`; see [`generate`].
//! - Customers put or removed through [`SimHandle`] or the admin API; they shadow the above.
//!
//! # Admin API (on each simulator, for its own provider)
//! | route | body / answer |
//! | --- | --- |
//! | `GET /_sim/calls?customer=ID` | `{"provider","customer","calls","total"}`; without `customer`: `{"provider","total","customers":{ID:n}}` |
//! | `DELETE /_sim/calls` | reset the counters |
//! | `GET /_sim/faults` | `{"provider","global":{"fault","remaining"}\|null,"customers":{ID:{…}}}` |
//! | `PUT /_sim/faults` | `{"customer": ID\|null, "fault": FAULT\|null, "times": n\|null}` (null fault clears) |
//! | `DELETE /_sim/faults` | clear every fault |
//! | `GET`/`PUT /_sim/latency` | `{"latency": "250ms"}` |
//! | `GET /_sim/customers` | `{"seed","generated","accounts_per_customer","generated_ids":{"first","last"},"id_format","stored":[…],"removed":[…]}` |
//! | `GET /_sim/customers/{id}` | the body the provider serves for it (Corebanq: `?currency=`, details on) |
//! | `PUT /_sim/customers/{id}` | P100: a raw body, served verbatim; Corebanq: a JSON array of [`CorebanqAccount`], or an object served verbatim |
//! | `DELETE /_sim/customers/{id}` | the customer becomes unknown (P412 / 404) |
//! | `PUT /_sim/customers/{id}/balances/{balance_id}` | `{"amount": "1.23"}` |
//! | `POST /_sim/reset` | counters, faults, latency and customers back to the start |
//!
//! `FAULT` is tagged by `kind`: `{"kind":"latency","delay":"250ms"}`,
//! `{"kind":"p100","error":"xo1|xo2|xo3|P412|P459|P403|P500|P501"}`,
//! `{"kind":"corebanq","error":"unauthorized|not_found|internal_error|service_unavailable"}`,
//! `{"kind":"status","status":502,"body":"…"}`,
//! `{"kind":"rate_limited","retry_after_secs":5}` (or `"retry_after_date":"2026-10-21T07:28:00Z"`,
//! or neither: no header), `{"kind":"malformed_json"}`, `{"kind":"truncated_body"}`,
//! `{"kind":"closed_mid_body"}`, `{"kind":"slow_body","duration":"2s"}`,
//! `{"kind":"drop_connection"}`.
//!
//! # Webhooks
//! [`webhook::send`] delivers P100-style webhooks to a URL with the token, P100's retry
//! schedule (configurable) and faults (wrong token, duplicate, burst).
#![forbid(unsafe_code)]

mod admin;
mod conn;
mod corebanq;
pub mod fault;
pub mod fixtures;
pub mod generate;
mod handle;
pub mod model;
mod p100;
mod provider;
mod reply;
mod respond;
mod state;
pub mod webhook;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use fault::{CorebanqError, DenyReason, Fault, P100Error, Provider, RetryAfter, Target};
pub use model::{CorebanqAccount, P100Balance, P100Customer, P100Network, P100Status};

pub use handle::SimHandle;

use conn::{ConnCtl, SimListener};
use corebanq::CorebanqSim;
use handle::{Server, Servers};
use p100::P100Sim;
use provider::{Sim, SimProvider};

/// What the simulators serve.
#[derive(Clone)]
pub struct SimConfig {
    /// Seed of the generator.
    pub seed: u64,
    /// Number of generated customers (`gen-000000` …).
    pub customers: usize,
    /// Accounts of each generated customer.
    pub accounts_per_customer: usize,
    /// The `x-api-key` P100 accepts.
    pub p100_api_key: String,
    /// The bearer token Corebanq accepts.
    pub corebanq_token: String,
    /// Latency added to every P100 balance call.
    pub latency_p100: Duration,
    /// Latency added to every Corebanq balance call.
    pub latency_corebanq: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            customers: 0,
            accounts_per_customer: 10,
            p100_api_key: "sim-p100-key".into(),
            corebanq_token: "sim-corebanq-token".into(),
            latency_p100: Duration::ZERO,
            latency_corebanq: Duration::ZERO,
        }
    }
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("seed", &self.seed)
            .field("customers", &self.customers)
            .field("accounts_per_customer", &self.accounts_per_customer)
            .field("p100_api_key", &"***")
            .field("corebanq_token", &"***")
            .field("latency_p100", &self.latency_p100)
            .field("latency_corebanq", &self.latency_corebanq)
            .finish()
    }
}

/// A simulator as a service's config names it ([`SimHandle::configured`]).
#[derive(Debug, Clone)]
pub struct Configured {
    /// The provider id, which customers' links name: [`P100_ID`], [`COREBANQ_ID`].
    pub id: &'static str,
    /// The adapter that speaks to it.
    pub kind: &'static str,
    pub base_url: String,
    /// The name of its credential (a config's `api_key_env`), which [`SimConfig::secret`]
    /// answers.
    pub key_name: &'static str,
}

/// The provider ids a config against the simulators gives them.
pub const P100_ID: &str = "p100";
/// See [`P100_ID`].
pub const COREBANQ_ID: &str = "bank";

/// The names a config against the simulators gives their credentials (its `api_key_env`);
/// [`SimConfig::secret`] answers them.
pub const P100_KEY_NAME: &str = "COFFER_SIM_P100_API_KEY";
/// See [`P100_KEY_NAME`].
pub const COREBANQ_KEY_NAME: &str = "COFFER_SIM_COREBANQ_TOKEN";

impl SimConfig {
    /// The simulators' credential named `name` ([`P100_KEY_NAME`], [`COREBANQ_KEY_NAME`]): the
    /// secret source of providers built against the simulators (tests, benchmarks and `coffer
    /// demo` build them through the registry as `coffer serve` does, with this in place of the
    /// environment).
    pub fn secret(&self, name: &str) -> Option<String> {
        match name {
            P100_KEY_NAME => Some(self.p100_api_key.clone()),
            COREBANQ_KEY_NAME => Some(self.corebanq_token.clone()),
            _ => None,
        }
    }
}

/// Starts both simulators on `127.0.0.1`, each on a free port.
pub async fn start(config: SimConfig) -> io::Result<SimHandle> {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    start_on(config, any, any).await
}

/// A listener with a deep accept queue (tokio's bind asks for 1,024): a provider under a burst
/// of a thousand new connections from one client queues them rather than drop some, which
/// the client's kernel would retry only after a second.
fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(8192)
}

/// Starts both simulators on the given addresses (port 0: any free port).
pub async fn start_on(
    config: SimConfig,
    p100: SocketAddr,
    corebanq: SocketAddr,
) -> io::Result<SimHandle> {
    let (shutdown, rx) = watch::channel(false);
    let p100 = spawn::<P100Sim>(&config, p100, &rx)?;
    let corebanq = spawn::<CorebanqSim>(&config, corebanq, &rx)?;
    tracing::info!(p100_addr = %p100.addr, corebanq_addr = %corebanq.addr, "provider simulators listening");
    Ok(SimHandle::new(config, Servers { p100, corebanq }, shutdown))
}

/// Binds `addr` and serves `P`'s routes with the admin API under `/_sim`.
fn spawn<P: SimProvider>(
    config: &SimConfig,
    addr: SocketAddr,
    rx: &watch::Receiver<bool>,
) -> io::Result<Server<P>> {
    let listener = bind(addr)?;
    let addr = listener.local_addr()?;
    let sim = Arc::new(Sim::<P>::new(config.clone()));
    let router = P::routes()
        .nest("/_sim", admin::router::<P>())
        .with_state(sim.clone());
    let task = serve(listener, router, rx.clone());
    Ok(Server::new(sim, addr, task))
}

fn serve(
    listener: TcpListener,
    router: axum::Router,
    mut rx: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let app = router.into_make_service_with_connect_info::<ConnCtl>();
        let result = axum::serve(SimListener(listener), app)
            .with_graceful_shutdown(async move {
                let _ = rx.wait_for(|stop| *stop).await;
            })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "simulator stopped");
        }
    })
}

/// Starts both simulators and serves until ctrl-c (for `coffer sim`).
pub async fn run_standalone(
    config: SimConfig,
    p100: SocketAddr,
    corebanq: SocketAddr,
) -> io::Result<()> {
    let sim = start_on(config, p100, corebanq).await?;
    tracing::info!(p100 = %sim.p100_url(), corebanq = %sim.corebanq_url(), "simulators ready; ctrl-c stops");
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await;
    Ok(())
}
