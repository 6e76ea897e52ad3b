//! The seam between what every simulated provider shares and what is its own.
//!
//! A provider is one module with a unit type implementing [`SimProvider`]: its routes and
//! authentication, the data it serves for one customer, its seed customers and generated ones,
//! how the admin API reads and writes that data, and its 429. Everything else is written once
//! on the trait: [`Sim`] (its customers and [`Controls`]), the admin API (`admin.rs`), the
//! fault path (`respond.rs`) and the handle (`handle.rs`, through [`AnySim`]).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use rust_decimal::Decimal;

use crate::SimConfig;
use crate::fault::Provider;
use crate::generate;
use crate::reply::Reply;
use crate::state::{Controls, read, write};

/// The admin API's query string (`GET /_sim/customers/{id}?currency=USD`).
pub(crate) type AdminQuery = HashMap<String, String>;

/// What one simulated provider is: see the module docs.
pub(crate) trait SimProvider: Sized + Send + Sync + 'static {
    /// The structured data of one customer (what the generator builds and tests put).
    type Data: Clone + Send + Sync + 'static;
    /// Its name in the handle's calls and the admin API's answers.
    const PROVIDER: Provider;

    /// Its own routes; the caller nests the admin API under `/_sim` beside them. Each balance
    /// handler answers through [`crate::respond::serve_call`], which counts and faults it.
    fn routes() -> Router<Arc<Sim<Self>>>;
    /// The latency it starts with.
    fn latency(config: &SimConfig) -> Duration;
    /// The customers it knows from the start (the seed's bodies, verbatim).
    fn scripted() -> HashMap<String, Stored<Self::Data>>;
    /// The data of generated customer `index`, the same for the same arguments.
    fn generate(seed: u64, index: usize, accounts: usize) -> Self::Data;
    /// The 200 body `GET /_sim/customers/{id}` shows for this data.
    fn admin_body(customer: &str, data: &Self::Data, query: &AdminQuery) -> Vec<u8>;
    /// What `PUT /_sim/customers/{id}` stores for this body (already known to be JSON, parsed
    /// as `value`), or why it is refused.
    fn parse_put(body: Bytes, value: serde_json::Value) -> Result<Stored<Self::Data>, String>;
    /// Sets one balance's amount; `false` if the data has no such balance.
    fn set_balance(data: &mut Self::Data, balance_id: &str, amount: Decimal) -> bool;
    /// The same in a raw body; `None` if it has no such balance.
    fn set_raw_balance(body: &[u8], balance_id: &str, amount: Decimal) -> Option<Bytes>;
    /// Its 429 (the caller adds `Retry-After`).
    fn rate_limited() -> Reply;
}

/// A customer stored explicitly (scripted, overridden or removed), shadowing the generator.
#[derive(Clone)]
pub(crate) enum Stored<T> {
    Structured(Arc<T>),
    /// Served verbatim.
    Raw(Bytes),
    /// Unknown to the provider, even if the generator knows the id.
    Removed,
}

/// What a customer id resolves to.
pub(crate) enum Found<T> {
    Structured(Arc<T>),
    Raw(Bytes),
}

/// One simulated provider's state: its controls and its customers.
pub(crate) struct Sim<P: SimProvider> {
    pub(crate) config: SimConfig,
    pub(crate) controls: Controls,
    stored: RwLock<HashMap<String, Stored<P::Data>>>,
}

impl<P: SimProvider> Sim<P> {
    pub(crate) fn new(config: SimConfig) -> Self {
        Self {
            controls: Controls::new(P::latency(&config)),
            stored: RwLock::new(P::scripted()),
            config,
        }
    }

    /// The customer's data: a stored one first, else a generated one, else unknown.
    pub(crate) fn customer(&self, id: &str) -> Option<Found<P::Data>> {
        match read(&self.stored).get(id) {
            Some(Stored::Structured(t)) => return Some(Found::Structured(t.clone())),
            Some(Stored::Raw(b)) => return Some(Found::Raw(b.clone())),
            Some(Stored::Removed) => return None,
            None => {}
        }
        let cfg = &self.config;
        let index = generate::customer_index(id).filter(|&i| i < cfg.customers)?;
        let data = P::generate(cfg.seed, index, cfg.accounts_per_customer);
        Some(Found::Structured(Arc::new(data)))
    }

    /// The structured data served for this customer now (`None` if unknown or raw).
    pub(crate) fn structured(&self, id: &str) -> Option<P::Data> {
        match self.customer(id)? {
            Found::Structured(d) => Some(Arc::unwrap_or_clone(d)),
            Found::Raw(_) => None,
        }
    }

    /// The 200 answer for this customer, if known: a raw body verbatim, else `body(data)`.
    pub(crate) fn answer(&self, id: &str, body: impl FnOnce(&P::Data) -> Vec<u8>) -> Option<Reply> {
        Some(match self.customer(id)? {
            Found::Raw(b) => Reply::json(200, b),
            Found::Structured(d) => Reply::json(200, body(&d)),
        })
    }

    pub(crate) fn put(&self, id: &str, stored: Stored<P::Data>) {
        write(&self.stored).insert(id.to_owned(), stored);
    }

    /// Sets a balance's amount; `false` if the customer or balance is unknown. A raw body is
    /// re-serialized (no longer byte-identical).
    pub(crate) fn set_balance(&self, id: &str, balance_id: &str, amount: Decimal) -> bool {
        let stored = match self.customer(id) {
            None => return false,
            Some(Found::Structured(d)) => {
                let mut d = Arc::unwrap_or_clone(d);
                if !P::set_balance(&mut d, balance_id, amount) {
                    return false;
                }
                Stored::Structured(Arc::new(d))
            }
            Some(Found::Raw(body)) => match P::set_raw_balance(&body, balance_id, amount) {
                Some(b) => Stored::Raw(b),
                None => return false,
            },
        };
        self.put(id, stored);
        true
    }

    /// The ids stored, and those removed, each sorted.
    pub(crate) fn stored_ids(&self) -> (Vec<String>, Vec<String>) {
        let mut known = Vec::new();
        let mut removed = Vec::new();
        for (k, v) in read(&self.stored).iter() {
            match v {
                Stored::Removed => removed.push(k.clone()),
                _ => known.push(k.clone()),
            }
        }
        known.sort();
        removed.sort();
        (known, removed)
    }
}

/// What the handle does to any provider, whatever its data: one object per server, so the
/// handle's provider-wide calls are one loop rather than one match arm per provider.
pub(crate) trait AnySim: Send + Sync {
    fn controls(&self) -> &Controls;
    /// The customer becomes unknown (P412 / 404), generated or not.
    fn remove(&self, id: &str);
    /// Controls and customers back to the start.
    fn reset(&self);
}

impl<P: SimProvider> AnySim for Sim<P> {
    fn controls(&self) -> &Controls {
        &self.controls
    }

    fn remove(&self, id: &str) {
        self.put(id, Stored::Removed);
    }

    fn reset(&self) {
        self.controls.reset();
        *write(&self.stored) = P::scripted();
    }
}

/// Finds the object with `"id": id` in one of the arrays at `lists` (dotted paths) of a raw
/// JSON body, edits it and re-serializes the body (numbers keep their text).
pub(crate) fn edit_raw(
    body: &[u8],
    lists: &[&str],
    id: &str,
    edit: impl Fn(&mut serde_json::Map<String, serde_json::Value>),
) -> Option<Bytes> {
    let mut value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let mut found = false;
    for path in lists {
        let pointer = format!("/{}", path.replace('.', "/"));
        let Some(serde_json::Value::Array(items)) = value.pointer_mut(&pointer) else {
            continue;
        };
        for item in items {
            if let Some(obj) = item.as_object_mut()
                && obj.get("id").and_then(|v| v.as_str()) == Some(id)
            {
                edit(obj);
                found = true;
            }
        }
    }
    found.then(|| serde_json::to_vec_pretty(&value).ok().map(Bytes::from))?
}
