//! The writers' queue, shared by the sync worker and the webhook processor: fetches hand their
//! results over, and each writer takes whatever has accumulated as one batch.

use std::future::Future;

use tokio::sync::{Mutex, mpsc};

/// Hands `write` batches of up to `max` items, until every sender is gone and the queue is
/// empty. Whatever has accumulated is a batch (at least one item): no timer, so a lone item is
/// not delayed. Several writers may share one queue.
pub async fn drain<T, F, Fut>(queue: &Mutex<mpsc::Receiver<T>>, max: usize, mut write: F)
where
    F: FnMut(Vec<T>) -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        let mut batch = Vec::with_capacity(max);
        if queue.lock().await.recv_many(&mut batch, max).await == 0 {
            return;
        }
        write(batch).await;
    }
}
