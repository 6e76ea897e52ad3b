//! Keeping webhook deliveries with a group commit (outside `webhooks/`: the state holds it, and
//! `webhooks/` reads the state). Each delivery must be durable before its 200, and a
//! commit costs a WAL flush (2–4 ms on the benchmark's disk): one transaction per delivery
//! through a pool of 10 connections answered a burst of 1,000 in 1.3 s at the median
//! (docs/benchmarks.md, "Webhook inbox"). Here the deliveries that arrive while a write is in
//! flight wait for it to end, and the next write keeps all of them in one transaction
//! ([`Store::insert_webhooks`]): one commit per round, whatever the burst.

use std::sync::{Arc, Mutex};

use coffer_store::{NewWebhook, Store, StoreError, WebhookEntry};
use tokio::sync::oneshot;

type Answer = Result<(WebhookEntry, bool), StoreError>;

/// The most deliveries kept in one transaction.
const MAX_BATCH: usize = 512;

/// Deliveries waiting for the next write, and the right to write.
#[derive(Default)]
pub struct Keeper {
    queue: Mutex<Vec<(NewWebhook, oneshot::Sender<Answer>)>>,
    writing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Keeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keeper").finish_non_exhaustive()
    }
}

impl Keeper {
    /// Keeps `w` (with whatever else is waiting), as [`Store::insert_webhook`] answers.
    pub async fn keep(&self, store: &Arc<dyn Store>, w: NewWebhook) -> Answer {
        let (tx, mut rx) = oneshot::channel();
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((w, tx));
        loop {
            let turn = self.writing.lock().await;
            match rx.try_recv() {
                Ok(answer) => return answer,
                Err(oneshot::error::TryRecvError::Closed) => {
                    return Err(StoreError::Unavailable("the inbox write ended".into()));
                }
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
            let batch = self.take();
            if batch.is_empty() {
                // Ours was taken by a write still running (its caller went away): wait for it.
                drop(turn);
                return rx.await.unwrap_or_else(|_| {
                    Err(StoreError::Unavailable("the inbox write ended".into()))
                });
            }
            // Spawned, so a caller that goes away (its client hung up) does not cancel the
            // write the others wait for.
            let store = Arc::clone(store);
            let _ = tokio::spawn(write(store, batch)).await;
        }
    }

    fn take(&self) -> Vec<(NewWebhook, oneshot::Sender<Answer>)> {
        let mut q = self
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = q.len().min(MAX_BATCH);
        q.drain(..n).collect()
    }
}

async fn write(store: Arc<dyn Store>, batch: Vec<(NewWebhook, oneshot::Sender<Answer>)>) {
    let (ws, senders): (Vec<NewWebhook>, Vec<_>) = batch.into_iter().unzip();
    match store.insert_webhooks(&ws).await {
        Ok(answers) => {
            for (tx, a) in senders.into_iter().zip(answers) {
                let _ = tx.send(Ok(a));
            }
        }
        Err(e) => {
            for tx in senders {
                let _ = tx.send(Err(e.clone()));
            }
        }
    }
}
