//! State shared by both simulators, the handle and the admin API. No lock is held across an
//! await: counters are sharded `Mutex<HashMap>`s plus an atomic total, faults and data sit
//! behind `RwLock`s read briefly per request.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use bytes::Bytes;
use rust_decimal::Decimal;

use crate::SimConfig;
use crate::fault::{Fault, Provider, Target};
use crate::fixtures;
use crate::generate;
use crate::model::{CorebanqAccount, P100Customer};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
pub(crate) fn read<T>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(PoisonError::into_inner)
}
pub(crate) fn write<T>(m: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(PoisonError::into_inner)
}

const SHARDS: usize = 16;

/// Calls per customer.
pub(crate) struct CallCounter {
    total: AtomicU64,
    hasher: RandomState,
    shards: Vec<Mutex<HashMap<String, u64>>>,
}

impl CallCounter {
    fn new() -> Self {
        Self {
            total: AtomicU64::new(0),
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, customer: &str) -> &Mutex<HashMap<String, u64>> {
        let i = (self.hasher.hash_one(customer) % SHARDS as u64) as usize;
        &self.shards[i]
    }

    pub(crate) fn hit(&self, customer: Option<&str>) {
        self.total.fetch_add(1, Ordering::Relaxed);
        if let Some(c) = customer {
            let mut map = lock(self.shard(c));
            match map.get_mut(c) {
                Some(n) => *n += 1,
                None => {
                    map.insert(c.to_owned(), 1);
                }
            }
        }
    }

    pub(crate) fn get(&self, customer: &str) -> u64 {
        lock(self.shard(customer))
            .get(customer)
            .copied()
            .unwrap_or(0)
    }

    pub(crate) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    pub(crate) fn all(&self) -> HashMap<String, u64> {
        let mut out = HashMap::new();
        for s in &self.shards {
            out.extend(lock(s).iter().map(|(k, v)| (k.clone(), *v)));
        }
        out
    }

    pub(crate) fn reset(&self) {
        for s in &self.shards {
            lock(s).clear();
        }
        self.total.store(0, Ordering::Relaxed);
    }
}

/// A fault and how many more calls it applies to (`None`: until cleared).
pub(crate) struct FaultEntry {
    pub(crate) fault: Fault,
    remaining: Option<AtomicU64>,
}

impl FaultEntry {
    fn take(&self) -> bool {
        match &self.remaining {
            None => true,
            Some(r) => r
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok(),
        }
    }

    pub(crate) fn remaining(&self) -> Option<u64> {
        self.remaining.as_ref().map(|r| r.load(Ordering::Acquire))
    }
}

#[derive(Default)]
pub(crate) struct FaultTable {
    pub(crate) global: Option<Arc<FaultEntry>>,
    pub(crate) customers: HashMap<String, Arc<FaultEntry>>,
}

/// Per-provider controls.
pub(crate) struct ProviderState {
    pub(crate) calls: CallCounter,
    pub(crate) faults: RwLock<FaultTable>,
    latency_nanos: AtomicU64,
    initial_latency: Duration,
}

impl ProviderState {
    fn new(latency: Duration) -> Self {
        let s = Self {
            calls: CallCounter::new(),
            faults: RwLock::new(FaultTable::default()),
            latency_nanos: AtomicU64::new(0),
            initial_latency: latency,
        };
        s.set_latency(latency);
        s
    }

    pub(crate) fn latency(&self) -> Duration {
        Duration::from_nanos(self.latency_nanos.load(Ordering::Relaxed))
    }

    pub(crate) fn set_latency(&self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.latency_nanos.store(nanos, Ordering::Relaxed);
    }

    pub(crate) fn set_fault(&self, target: Target, fault: Option<Fault>, times: Option<u64>) {
        let entry = fault.map(|fault| {
            Arc::new(FaultEntry {
                fault,
                remaining: times.map(AtomicU64::new),
            })
        });
        let mut table = write(&self.faults);
        match (target, entry) {
            (Target::Global, e) => table.global = e,
            (Target::Customer(c), Some(e)) => {
                table.customers.insert(c, e);
            }
            (Target::Customer(c), None) => {
                table.customers.remove(&c);
            }
        }
    }

    pub(crate) fn clear_faults(&self) {
        *write(&self.faults) = FaultTable::default();
    }

    /// The fault for this call, if any (the customer's first, then the global one).
    pub(crate) fn take_fault(&self, customer: Option<&str>) -> Option<Fault> {
        let table = read(&self.faults);
        if table.global.is_none() && table.customers.is_empty() {
            return None;
        }
        if let Some(e) = customer.and_then(|c| table.customers.get(c))
            && e.take()
        {
            return Some(e.fault.clone());
        }
        match &table.global {
            Some(e) if e.take() => Some(e.fault.clone()),
            _ => None,
        }
    }

    fn reset(&self) {
        self.calls.reset();
        self.clear_faults();
        self.set_latency(self.initial_latency);
    }
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

pub(crate) struct Shared {
    pub(crate) config: SimConfig,
    pub(crate) p100: ProviderState,
    pub(crate) corebanq: ProviderState,
    pub(crate) p100_data: RwLock<HashMap<String, Stored<P100Customer>>>,
    pub(crate) corebanq_data: RwLock<HashMap<String, Stored<Vec<CorebanqAccount>>>>,
}

fn scripted_p100() -> HashMap<String, Stored<P100Customer>> {
    HashMap::from([(
        fixtures::P100_SEED_USER.to_owned(),
        Stored::Raw(Bytes::from_static(fixtures::P100_SEED_BODY.as_bytes())),
    )])
}

fn scripted_corebanq() -> HashMap<String, Stored<Vec<CorebanqAccount>>> {
    HashMap::from([(
        fixtures::COREBANQ_SEED_CUSTOMER.to_owned(),
        Stored::Raw(Bytes::from_static(fixtures::COREBANQ_SEED_BODY.as_bytes())),
    )])
}

fn resolve<T>(
    map: &RwLock<HashMap<String, Stored<T>>>,
    id: &str,
    generated: impl FnOnce(usize) -> Option<T>,
) -> Option<Found<T>> {
    match read(map).get(id) {
        Some(Stored::Structured(t)) => return Some(Found::Structured(t.clone())),
        Some(Stored::Raw(b)) => return Some(Found::Raw(b.clone())),
        Some(Stored::Removed) => return None,
        None => {}
    }
    let index = generate::customer_index(id)?;
    generated(index).map(|t| Found::Structured(Arc::new(t)))
}

impl Shared {
    pub(crate) fn new(config: SimConfig) -> Self {
        Self {
            p100: ProviderState::new(config.latency_p100),
            corebanq: ProviderState::new(config.latency_corebanq),
            p100_data: RwLock::new(scripted_p100()),
            corebanq_data: RwLock::new(scripted_corebanq()),
            config,
        }
    }

    pub(crate) fn provider(&self, p: Provider) -> &ProviderState {
        match p {
            Provider::P100 => &self.p100,
            Provider::Corebanq => &self.corebanq,
        }
    }

    fn generated_index(&self, index: usize) -> Option<usize> {
        (index < self.config.customers).then_some(index)
    }

    pub(crate) fn p100_customer(&self, id: &str) -> Option<Found<P100Customer>> {
        let (seed, n) = (self.config.seed, self.config.accounts_per_customer);
        resolve(&self.p100_data, id, |i| {
            self.generated_index(i)
                .map(|i| generate::p100_customer(seed, i, n))
        })
    }

    pub(crate) fn corebanq_customer(&self, id: &str) -> Option<Found<Vec<CorebanqAccount>>> {
        let (seed, n) = (self.config.seed, self.config.accounts_per_customer);
        resolve(&self.corebanq_data, id, |i| {
            self.generated_index(i)
                .map(|i| generate::corebanq_accounts(seed, i, n))
        })
    }

    pub(crate) fn put_p100(&self, id: &str, stored: Stored<P100Customer>) {
        write(&self.p100_data).insert(id.to_owned(), stored);
    }

    pub(crate) fn put_corebanq(&self, id: &str, stored: Stored<Vec<CorebanqAccount>>) {
        write(&self.corebanq_data).insert(id.to_owned(), stored);
    }

    pub(crate) fn remove(&self, provider: Provider, id: &str) {
        match provider {
            Provider::P100 => self.put_p100(id, Stored::Removed),
            Provider::Corebanq => self.put_corebanq(id, Stored::Removed),
        }
    }

    /// Sets a P100 balance's `amount`; `false` if the customer or balance is unknown.
    pub(crate) fn set_p100_balance(&self, id: &str, balance_id: &str, amount: Decimal) -> bool {
        let Some(found) = self.p100_customer(id) else {
            return false;
        };
        let mut map = write(&self.p100_data);
        match found {
            Found::Structured(c) => {
                let mut c = Arc::unwrap_or_clone(c);
                let Some(b) = c.balance_mut(balance_id) else {
                    return false;
                };
                b.amount = amount;
                map.insert(id.to_owned(), Stored::Structured(Arc::new(c)));
                true
            }
            Found::Raw(body) => {
                let edited = edit_raw(
                    &body,
                    &["fiatBalances", "cryptoBalances"],
                    balance_id,
                    |b| {
                        b.insert("amount".into(), amount.to_string().into());
                    },
                );
                edited
                    .map(|b| map.insert(id.to_owned(), Stored::Raw(b)))
                    .is_some()
            }
        }
    }

    /// Sets a Corebanq account's `balance`; `false` if the customer or account is unknown.
    pub(crate) fn set_corebanq_balance(
        &self,
        id: &str,
        account_id: &str,
        balance: Decimal,
    ) -> bool {
        let Some(found) = self.corebanq_customer(id) else {
            return false;
        };
        let mut map = write(&self.corebanq_data);
        match found {
            Found::Structured(accounts) => {
                let mut accounts = Arc::unwrap_or_clone(accounts);
                let Some(a) = accounts.iter_mut().find(|a| a.id == account_id) else {
                    return false;
                };
                a.balance = balance;
                map.insert(id.to_owned(), Stored::Structured(Arc::new(accounts)));
                true
            }
            Found::Raw(body) => {
                let Ok(number) = serde_json::Number::from_str(&balance.to_string()) else {
                    return false;
                };
                let lists = ["details.fiat_accounts", "details.crypto_assets"];
                let edited = edit_raw(&body, &lists, account_id, |a| {
                    a.insert("balance".into(), number.clone().into());
                });
                edited
                    .map(|b| map.insert(id.to_owned(), Stored::Raw(b)))
                    .is_some()
            }
        }
    }

    pub(crate) fn reset(&self, provider: Provider) {
        self.provider(provider).reset();
        match provider {
            Provider::P100 => *write(&self.p100_data) = scripted_p100(),
            Provider::Corebanq => *write(&self.corebanq_data) = scripted_corebanq(),
        }
    }

    pub(crate) fn stored_ids(&self, provider: Provider) -> (Vec<String>, Vec<String>) {
        fn split<T>(map: &HashMap<String, Stored<T>>) -> (Vec<String>, Vec<String>) {
            let mut known = Vec::new();
            let mut removed = Vec::new();
            for (k, v) in map {
                match v {
                    Stored::Removed => removed.push(k.clone()),
                    _ => known.push(k.clone()),
                }
            }
            known.sort();
            removed.sort();
            (known, removed)
        }
        match provider {
            Provider::P100 => split(&read(&self.p100_data)),
            Provider::Corebanq => split(&read(&self.corebanq_data)),
        }
    }
}

/// Finds the object with `"id": id` in one of the arrays at `lists` (dotted paths) of a raw
/// JSON body, edits it and re-serializes the body (numbers keep their text).
fn edit_raw(
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
