//! The controls every simulated provider has, whatever it serves: call counters, faults and
//! latency, shared by its server, the handle and the admin API. No lock is held across an
//! await: counters are sharded `Mutex<HashMap>`s plus an atomic total, faults sit behind an
//! `RwLock` read briefly per request.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use crate::fault::{Fault, Target};

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

/// One provider's controls.
pub(crate) struct Controls {
    pub(crate) calls: CallCounter,
    pub(crate) faults: RwLock<FaultTable>,
    latency_nanos: AtomicU64,
    initial_latency: Duration,
}

impl Controls {
    pub(crate) fn new(latency: Duration) -> Self {
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

    pub(crate) fn reset(&self) {
        self.calls.reset();
        self.clear_faults();
        self.set_latency(self.initial_latency);
    }
}
