//! Coalescing of concurrent work on the same key: N callers asking for the same key while a
//! load is in flight share that one load. The load runs in its own task, so a caller that goes
//! away (a cancelled request) does not cancel it for the others.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use tracing::Instrument;

type Flight<V> = Shared<BoxFuture<'static, V>>;

pub struct SingleFlight<K, V: Clone> {
    inflight: Arc<Mutex<HashMap<K, Flight<V>>>>,
}

impl<K, V> Default for SingleFlight<K, V>
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn default() -> Self {
        Self {
            inflight: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

/// Whether this caller started the work or joined one in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower,
}

impl<K, V> SingleFlight<K, V>
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Runs `work` for `key` unless a run for `key` is in flight, in which case its result is
    /// shared. `work` is only called by the leader.
    pub async fn run<F>(&self, key: K, work: F) -> (V, Role)
    where
        F: FnOnce() -> BoxFuture<'static, V>,
    {
        let (flight, role) = {
            let mut map = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(f) = map.get(&key) {
                (f.clone(), Role::Follower)
            } else {
                let fut = work();
                let inflight = Arc::clone(&self.inflight);
                let k = key.clone();
                // The work runs in the leader's span, so it stays in the leader's trace.
                let handle = tokio::spawn(
                    async move {
                        let v = fut.await;
                        inflight
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&k);
                        v
                    }
                    .instrument(tracing::Span::current()),
                );
                let shared = async move {
                    match handle.await {
                        Ok(v) => v,
                        // The task only ends without a value if it panicked: re-raise it here.
                        Err(e) => std::panic::resume_unwind(e.into_panic()),
                    }
                }
                .boxed()
                .shared();
                map.insert(key, shared.clone());
                (shared, Role::Leader)
            }
        };
        (flight.await, role)
    }

    /// Keys with work in flight (for tests and metrics).
    pub fn in_flight(&self) -> usize {
        self.inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_callers_share_one_run() {
        let sf: Arc<SingleFlight<&'static str, usize>> = Arc::new(SingleFlight::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let sf = Arc::clone(&sf);
            let runs = Arc::clone(&runs);
            let mut rx = rx.clone();
            tasks.push(tokio::spawn(async move {
                sf.run("k", move || {
                    async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        // Hold the flight open until every caller has joined.
                        let _ = rx.wait_for(|go| *go).await;
                        7
                    }
                    .boxed()
                })
                .await
            }));
        }
        // Wait until all 50 have registered: the leader's run exists and followers joined.
        while sf.in_flight() == 0 {
            tokio::task::yield_now().await;
        }
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        tx.send(true).unwrap();
        let mut leaders = 0;
        for t in tasks {
            let (v, role) = t.await.unwrap();
            assert_eq!(v, 7);
            leaders += usize::from(role == Role::Leader);
        }
        // The test runtime is single-threaded: every caller joined before the flight was let go.
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(leaders, 1);
        assert_eq!(sf.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_finished_run_is_not_reused() {
        let sf: SingleFlight<u8, u32> = SingleFlight::default();
        let (a, _) = sf.run(1, || async { 1 }.boxed()).await;
        let (b, role) = sf.run(1, || async { 2 }.boxed()).await;
        assert_eq!((a, b, role), (1, 2, Role::Leader));
    }
}
