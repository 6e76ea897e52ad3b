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
pub mod model;
mod p100;
mod respond;
mod state;
pub mod webhook;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use fault::{CorebanqError, DenyReason, Fault, P100Error, Provider, RetryAfter, Target};
pub use model::{CorebanqAccount, P100Balance, P100Customer, P100Network, P100Status};

use conn::{ConnCtl, SimListener};
use state::{Found, Shared, Stored};

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

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) shared: Arc<Shared>,
    pub(crate) provider: Provider,
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
    let p100_listener = bind(p100)?;
    let corebanq_listener = bind(corebanq)?;
    let p100_addr = p100_listener.local_addr()?;
    let corebanq_addr = corebanq_listener.local_addr()?;
    let shared = Arc::new(Shared::new(config));
    let (shutdown, rx) = watch::channel(false);
    let state = |provider| AppState {
        shared: shared.clone(),
        provider,
    };
    let tasks = vec![
        serve(
            p100_listener,
            p100::routes()
                .nest("/_sim", admin::router())
                .with_state(state(Provider::P100)),
            rx.clone(),
        ),
        serve(
            corebanq_listener,
            corebanq::routes()
                .nest("/_sim", admin::router())
                .with_state(state(Provider::Corebanq)),
            rx,
        ),
    ];
    tracing::info!(%p100_addr, %corebanq_addr, "provider simulators listening");
    Ok(SimHandle {
        shared,
        p100_addr,
        corebanq_addr,
        shutdown,
        tasks,
    })
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

/// Running simulators. Dropping it stops them too (without waiting).
pub struct SimHandle {
    shared: Arc<Shared>,
    p100_addr: SocketAddr,
    corebanq_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimHandle")
            .field("p100", &self.p100_addr)
            .field("corebanq", &self.corebanq_addr)
            .finish_non_exhaustive()
    }
}

impl SimHandle {
    /// `http://127.0.0.1:PORT` of the P100 simulator.
    pub fn p100_url(&self) -> String {
        format!("http://{}", self.p100_addr)
    }

    /// `http://127.0.0.1:PORT` of the Corebanq simulator.
    pub fn corebanq_url(&self) -> String {
        format!("http://{}", self.corebanq_addr)
    }

    /// The P100 simulator's address.
    pub fn p100_addr(&self) -> SocketAddr {
        self.p100_addr
    }

    /// The Corebanq simulator's address.
    pub fn corebanq_addr(&self) -> SocketAddr {
        self.corebanq_addr
    }

    /// The configuration it started with.
    pub fn config(&self) -> &SimConfig {
        &self.shared.config
    }

    /// Balance calls received for this customer (faulted and rejected ones included).
    pub fn calls(&self, provider: Provider, customer: &str) -> u64 {
        self.shared.provider(provider).calls.get(customer)
    }

    /// Balance calls received by this provider.
    pub fn total_calls(&self, provider: Provider) -> u64 {
        self.shared.provider(provider).calls.total()
    }

    /// Resets both providers' call counters.
    pub fn reset_calls(&self) {
        self.shared.p100.calls.reset();
        self.shared.corebanq.calls.reset();
    }

    /// Sets (`Some`) or clears (`None`) a fault; a customer's fault wins over the global one.
    pub fn set_fault(&self, provider: Provider, target: Target, fault: Option<Fault>) {
        self.shared
            .provider(provider)
            .set_fault(target, fault, None);
    }

    /// Sets a fault for the next `times` calls only; then it clears itself.
    pub fn set_fault_times(&self, provider: Provider, target: Target, fault: Fault, times: u64) {
        self.shared
            .provider(provider)
            .set_fault(target, Some(fault), Some(times));
    }

    /// Clears every fault of every provider.
    pub fn clear_faults(&self) {
        self.shared.p100.clear_faults();
        self.shared.corebanq.clear_faults();
    }

    /// Latency added to every balance call of this provider.
    pub fn set_latency(&self, provider: Provider, latency: Duration) {
        self.shared.provider(provider).set_latency(latency);
    }

    /// Serves this body verbatim for `externalUserId` (replacing whatever was there).
    pub fn put_p100_customer(&self, external_user_id: &str, body: serde_json::Value) {
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        self.shared
            .put_p100(external_user_id, Stored::Raw(bytes.into()));
    }

    /// Serves these bytes verbatim for `externalUserId`.
    pub fn put_p100_raw(&self, external_user_id: &str, body: impl Into<bytes::Bytes>) {
        self.shared
            .put_p100(external_user_id, Stored::Raw(body.into()));
    }

    /// Serves this structured customer for `externalUserId`.
    pub fn put_p100_data(&self, external_user_id: &str, customer: P100Customer) {
        self.shared
            .put_p100(external_user_id, Stored::Structured(Arc::new(customer)));
    }

    /// Serves these accounts for `customer_id` (converted to the requested `currency`).
    pub fn put_corebanq_customer(&self, customer_id: &str, accounts: Vec<CorebanqAccount>) {
        self.shared
            .put_corebanq(customer_id, Stored::Structured(Arc::new(accounts)));
    }

    /// Serves these bytes verbatim for `customer_id`, whatever the query asks.
    pub fn put_corebanq_raw(&self, customer_id: &str, body: impl Into<bytes::Bytes>) {
        self.shared
            .put_corebanq(customer_id, Stored::Raw(body.into()));
    }

    /// Makes the customer unknown to this provider (P412 / 404), generated or not.
    pub fn remove_customer(&self, provider: Provider, customer: &str) {
        self.shared.remove(provider, customer);
    }

    /// Sets a P100 balance's `amount` (the next fetch sees it). `false` if the user or balance
    /// is unknown. On a raw body, the body is re-serialized (no longer byte-identical).
    pub fn set_p100_balance(
        &self,
        external_user_id: &str,
        balance_id: &str,
        amount: Decimal,
    ) -> bool {
        self.shared
            .set_p100_balance(external_user_id, balance_id, amount)
    }

    /// Sets a Corebanq account's `balance`. `false` if the customer or account is unknown. On a
    /// raw body only `balance` changes (not `balance_in_base` or the totals).
    pub fn set_corebanq_balance(
        &self,
        customer_id: &str,
        account_id: &str,
        balance: Decimal,
    ) -> bool {
        self.shared
            .set_corebanq_balance(customer_id, account_id, balance)
    }

    /// The structured data served for this P100 user now (`None` if unknown or raw).
    pub fn p100_customer(&self, external_user_id: &str) -> Option<P100Customer> {
        match self.shared.p100_customer(external_user_id)? {
            Found::Structured(c) => Some((*c).clone()),
            Found::Raw(_) => None,
        }
    }

    /// The accounts served for this Corebanq customer now (`None` if unknown or raw).
    pub fn corebanq_accounts(&self, customer_id: &str) -> Option<Vec<CorebanqAccount>> {
        match self.shared.corebanq_customer(customer_id)? {
            Found::Structured(a) => Some((*a).clone()),
            Found::Raw(_) => None,
        }
    }

    /// Counters, faults, latency and customers of both providers back to the start.
    pub fn reset(&self) {
        self.shared.reset(Provider::P100);
        self.shared.reset(Provider::Corebanq);
    }

    /// Stops both servers: waits up to 2 s for calls in flight, then aborts them.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for mut task in std::mem::take(&mut self.tasks) {
            if tokio::time::timeout(Duration::from_secs(2), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}
