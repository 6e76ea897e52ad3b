//! [`SimHandle`]: what tests, the bench and `coffer demo` hold of running simulators. Calls
//! that name a [`Provider`] go through [`AnySim`], so they are written once for every provider;
//! only the typed data calls (`put_p100_data`, `corebanq_accounts`, …) name one.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::corebanq::CorebanqSim;
use crate::fault::{Fault, Provider, Target};
use crate::model::{CorebanqAccount, P100Customer};
use crate::p100::P100Sim;
use crate::provider::{AnySim, Sim, SimProvider, Stored};
use crate::{COREBANQ_ID, COREBANQ_KEY_NAME, Configured, P100_ID, P100_KEY_NAME, SimConfig};

/// One provider's running server.
pub(crate) struct Server<P: SimProvider> {
    sim: Arc<Sim<P>>,
    pub(crate) addr: SocketAddr,
    task: JoinHandle<()>,
}

impl<P: SimProvider> Server<P> {
    pub(crate) fn new(sim: Arc<Sim<P>>, addr: SocketAddr, task: JoinHandle<()>) -> Self {
        Self { sim, addr, task }
    }
}

/// Every provider's server: the one list a new provider joins.
pub(crate) struct Servers {
    pub(crate) p100: Server<P100Sim>,
    pub(crate) corebanq: Server<CorebanqSim>,
}

impl Servers {
    /// The simulator of `provider` (the match fails to compile until a new one is served).
    fn sim(&self, provider: Provider) -> &dyn AnySim {
        match provider {
            Provider::P100 => &*self.p100.sim,
            Provider::Corebanq => &*self.corebanq.sim,
        }
    }

    fn sims(&self) -> [&dyn AnySim; 2] {
        [&*self.p100.sim, &*self.corebanq.sim]
    }

    fn tasks(&mut self) -> [&mut JoinHandle<()>; 2] {
        [&mut self.p100.task, &mut self.corebanq.task]
    }
}

/// Running simulators. Dropping it stops them too (without waiting).
pub struct SimHandle {
    config: SimConfig,
    servers: Servers,
    shutdown: watch::Sender<bool>,
}

impl fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimHandle")
            .field("p100", &self.servers.p100.addr)
            .field("corebanq", &self.servers.corebanq.addr)
            .finish_non_exhaustive()
    }
}

impl SimHandle {
    pub(crate) fn new(config: SimConfig, servers: Servers, shutdown: watch::Sender<bool>) -> Self {
        Self {
            config,
            servers,
            shutdown,
        }
    }

    fn sim(&self, provider: Provider) -> &dyn AnySim {
        self.servers.sim(provider)
    }

    fn p100(&self) -> &Sim<P100Sim> {
        &self.servers.p100.sim
    }

    fn corebanq(&self) -> &Sim<CorebanqSim> {
        &self.servers.corebanq.sim
    }

    /// `http://127.0.0.1:PORT` of the P100 simulator.
    pub fn p100_url(&self) -> String {
        format!("http://{}", self.p100_addr())
    }

    /// `http://127.0.0.1:PORT` of the Corebanq simulator.
    pub fn corebanq_url(&self) -> String {
        format!("http://{}", self.corebanq_addr())
    }

    /// The P100 simulator's address.
    pub fn p100_addr(&self) -> SocketAddr {
        self.servers.p100.addr
    }

    /// The Corebanq simulator's address.
    pub fn corebanq_addr(&self) -> SocketAddr {
        self.servers.corebanq.addr
    }

    /// Each simulator as a service's config names it: what tests, benchmarks and `coffer demo`
    /// configure and build through the registry, so a simulator added here is configured there.
    pub fn configured(&self) -> Vec<Configured> {
        vec![
            Configured {
                id: P100_ID,
                kind: "p100",
                base_url: self.p100_url(),
                key_name: P100_KEY_NAME,
            },
            Configured {
                id: COREBANQ_ID,
                kind: "corebanq",
                base_url: self.corebanq_url(),
                key_name: COREBANQ_KEY_NAME,
            },
        ]
    }

    /// The configuration it started with.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Balance calls received for this customer (faulted and rejected ones included).
    pub fn calls(&self, provider: Provider, customer: &str) -> u64 {
        self.sim(provider).controls().calls.get(customer)
    }

    /// Balance calls received by this provider.
    pub fn total_calls(&self, provider: Provider) -> u64 {
        self.sim(provider).controls().calls.total()
    }

    /// Resets every provider's call counters.
    pub fn reset_calls(&self) {
        for sim in self.servers.sims() {
            sim.controls().calls.reset();
        }
    }

    /// Sets (`Some`) or clears (`None`) a fault; a customer's fault wins over the global one.
    pub fn set_fault(&self, provider: Provider, target: Target, fault: Option<Fault>) {
        self.sim(provider).controls().set_fault(target, fault, None);
    }

    /// Sets a fault for the next `times` calls only; then it clears itself.
    pub fn set_fault_times(&self, provider: Provider, target: Target, fault: Fault, times: u64) {
        let controls = self.sim(provider).controls();
        controls.set_fault(target, Some(fault), Some(times));
    }

    /// Clears every fault of every provider.
    pub fn clear_faults(&self) {
        for sim in self.servers.sims() {
            sim.controls().clear_faults();
        }
    }

    /// Latency added to every balance call of this provider.
    pub fn set_latency(&self, provider: Provider, latency: Duration) {
        self.sim(provider).controls().set_latency(latency);
    }

    /// Serves this body verbatim for `externalUserId` (replacing whatever was there).
    pub fn put_p100_customer(&self, external_user_id: &str, body: serde_json::Value) {
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        self.p100().put(external_user_id, Stored::Raw(bytes.into()));
    }

    /// Serves these bytes verbatim for `externalUserId`.
    pub fn put_p100_raw(&self, external_user_id: &str, body: impl Into<bytes::Bytes>) {
        self.p100().put(external_user_id, Stored::Raw(body.into()));
    }

    /// Serves this structured customer for `externalUserId`.
    pub fn put_p100_data(&self, external_user_id: &str, customer: P100Customer) {
        let stored = Stored::Structured(Arc::new(customer));
        self.p100().put(external_user_id, stored);
    }

    /// Serves these accounts for `customer_id` (converted to the requested `currency`).
    pub fn put_corebanq_customer(&self, customer_id: &str, accounts: Vec<CorebanqAccount>) {
        let stored = Stored::Structured(Arc::new(accounts));
        self.corebanq().put(customer_id, stored);
    }

    /// Serves these bytes verbatim for `customer_id`, whatever the query asks.
    pub fn put_corebanq_raw(&self, customer_id: &str, body: impl Into<bytes::Bytes>) {
        self.corebanq().put(customer_id, Stored::Raw(body.into()));
    }

    /// Makes the customer unknown to this provider (P412 / 404), generated or not.
    pub fn remove_customer(&self, provider: Provider, customer: &str) {
        self.sim(provider).remove(customer);
    }

    /// Sets a P100 balance's `amount` (the next fetch sees it). `false` if the user or balance
    /// is unknown. On a raw body, the body is re-serialized (no longer byte-identical).
    pub fn set_p100_balance(
        &self,
        external_user_id: &str,
        balance_id: &str,
        amount: Decimal,
    ) -> bool {
        self.p100()
            .set_balance(external_user_id, balance_id, amount)
    }

    /// Sets a Corebanq account's `balance`. `false` if the customer or account is unknown. On a
    /// raw body only `balance` changes (not `balance_in_base` or the totals).
    pub fn set_corebanq_balance(
        &self,
        customer_id: &str,
        account_id: &str,
        balance: Decimal,
    ) -> bool {
        self.corebanq()
            .set_balance(customer_id, account_id, balance)
    }

    /// The structured data served for this P100 user now (`None` if unknown or raw).
    pub fn p100_customer(&self, external_user_id: &str) -> Option<P100Customer> {
        self.p100().structured(external_user_id)
    }

    /// The accounts served for this Corebanq customer now (`None` if unknown or raw).
    pub fn corebanq_accounts(&self, customer_id: &str) -> Option<Vec<CorebanqAccount>> {
        self.corebanq().structured(customer_id)
    }

    /// Counters, faults, latency and customers of every provider back to the start.
    pub fn reset(&self) {
        for sim in self.servers.sims() {
            sim.reset();
        }
    }

    /// Stops every server: waits up to 2 s for calls in flight, then aborts them.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for task in self.servers.tasks() {
            if tokio::time::timeout(Duration::from_secs(2), &mut *task)
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
