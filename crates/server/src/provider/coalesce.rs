//! Coalescing of concurrent work on the same key: N callers asking for the same key while a
//! load is in flight share that one load, when it gives them what they need.
//!
//! Each flight says how old the data it gives may be (`covers_from`: nothing in its result
//! was fetched before that instant; `None`: it may serve data of any age its own caller
//! accepted). A caller that needs data fetched after instant `t` (`fresh_after`: a refresh, a
//! `max_age`) joins only a flight whose `covers_from` is at or after `t`; otherwise it starts
//! its own, which becomes the key's flight for later callers. A caller with no such need joins
//! whatever is in flight.
//!
//! The load runs in its own task, so a caller that goes away (a cancelled request, a request's
//! deadline) does not cancel it for the others. A load that panics gives every caller
//! [`Panicked`], not the panic: one bad answer must not take down every request waiting on it.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use tracing::Instrument;

type Flight<V> = Shared<BoxFuture<'static, Result<V, Panicked>>>;

/// The shared load panicked (logged once, where it happened).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the shared load panicked")]
pub struct Panicked;

struct Entry<V> {
    id: u64,
    covers_from: Option<Instant>,
    flight: Flight<V>,
}

pub struct SingleFlight<K, V: Clone> {
    inflight: Arc<Mutex<HashMap<K, Entry<V>>>>,
    next_id: AtomicU64,
}

impl<K, V> Default for SingleFlight<K, V>
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn default() -> Self {
        Self {
            inflight: Arc::new(Mutex::new(HashMap::new())),
            next_id: AtomicU64::new(1),
        }
    }
}

/// Whether this caller started the work or joined one in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower,
}

/// Whether a flight covering data from `covers_from` gives a caller what it needs.
fn satisfies(covers_from: Option<Instant>, fresh_after: Option<Instant>) -> bool {
    match fresh_after {
        None => true,
        Some(need) => covers_from.is_some_and(|c| c >= need),
    }
}

impl<K, V> SingleFlight<K, V>
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Runs `work` for `key` unless a run for `key` in flight satisfies `fresh_after`, in which
    /// case its result is shared. `work` is only called by the leader; `covers_from` is what
    /// the leader's run will cover.
    pub async fn run<F>(
        &self,
        key: K,
        fresh_after: Option<Instant>,
        covers_from: Option<Instant>,
        work: F,
    ) -> (Result<V, Panicked>, Role)
    where
        F: FnOnce() -> BoxFuture<'static, V>,
    {
        let (flight, role) = {
            let mut map = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            match map.get(&key) {
                Some(e) if satisfies(e.covers_from, fresh_after) => {
                    (e.flight.clone(), Role::Follower)
                }
                _ => {
                    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    let flight = self.spawn(key.clone(), id, work());
                    map.insert(
                        key,
                        Entry {
                            id,
                            covers_from,
                            flight: flight.clone(),
                        },
                    );
                    (flight, Role::Leader)
                }
            }
        };
        (flight.await, role)
    }

    fn spawn(&self, key: K, id: u64, fut: BoxFuture<'static, V>) -> Flight<V> {
        // Dropped when the task ends, by returning or by panicking.
        let forget = Forget {
            inflight: Arc::clone(&self.inflight),
            key,
            id,
        };
        // The work runs in the leader's span, so it stays in the leader's trace.
        let handle = tokio::spawn(
            async move {
                let _forget = forget;
                fut.await
            }
            .instrument(tracing::Span::current()),
        );
        async move {
            // The task ends without a value only if it panicked (the runtime printed it).
            handle.await.map_err(|_| {
                tracing::error!("a shared load panicked; its callers get an error");
                Panicked
            })
        }
        .boxed()
        .shared()
    }

    /// Keys with work in flight (for tests and metrics).
    pub fn in_flight(&self) -> usize {
        self.inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

/// Removes the key's entry when its task ends, if it is still that flight (a newer flight
/// may have replaced it).
struct Forget<K: Eq + Hash, V> {
    inflight: Arc<Mutex<HashMap<K, Entry<V>>>>,
    key: K,
    id: u64,
}

impl<K: Eq + Hash, V> Drop for Forget<K, V> {
    fn drop(&mut self) {
        let mut map = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(&self.key).is_some_and(|e| e.id == self.id) {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests;
