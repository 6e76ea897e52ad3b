//! Cache invalidation across replicas through PostgreSQL `LISTEN/NOTIFY`.
//!
//! Payload: `"{instance} {customer_id}"` (a sync batch sends several ids, space-separated: ids
//! hold no spaces), or `"{instance} "` for "anything changed". The
//! listener runs in its own task on its own connection, reconnects with backoff, and after a
//! reconnection announces "anything changed", since notifications sent meanwhile are lost.
//! The same listener hears `coffer_events` (the outbox's commits) and wakes the event streams.

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::mpsc;

use super::PgStore;
use super::events::EVENTS_CHANNEL;
use crate::error::db_err;
use crate::events::EventWake;
use crate::{Change, Result};

pub(crate) const CHANNEL: &str = "coffer_changes";

/// PostgreSQL refuses payloads of 8,000 bytes or more.
const PAYLOAD_MAX: usize = 7_900;

fn parse(payload: &str, instance: &str) -> Vec<Change> {
    let (from, customers) = payload.split_once(' ').unwrap_or((payload, ""));
    let local = from == instance;
    let mut out: Vec<Change> = customers
        .split_ascii_whitespace()
        .map(|c| Change {
            customer_id: Some(c.to_owned()),
            local,
        })
        .collect();
    if out.is_empty() {
        out.push(Change {
            customer_id: None,
            local,
        });
    }
    out
}

/// The payloads announcing that `customers` changed, as few as fit.
pub(super) fn payloads(instance: &str, customers: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in customers {
        if !cur.is_empty() && cur.len() + 1 + c.len() > PAYLOAD_MAX {
            out.push(std::mem::take(&mut cur));
        }
        if cur.is_empty() {
            cur.push_str(instance);
        }
        cur.push(' ');
        cur.push_str(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

impl PgStore {
    pub(super) async fn notify_changed_impl(&self, customer_id: Option<&str>) -> Result<()> {
        let payload = format!("{} {}", self.instance, customer_id.unwrap_or(""));
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(payload)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(db_err)
    }

    pub(super) async fn subscribe_changes_impl(&self) -> Result<mpsc::Receiver<Change>> {
        // The first connection is made here, so a caller learns at once if it cannot listen.
        let listener = listen(&self.pool).await.map_err(db_err)?;
        let (tx, rx) = mpsc::channel(1024);
        let pool = self.pool.clone();
        let instance = self.instance.clone();
        tokio::spawn(run(pool, instance, listener, tx, self.wake.clone()));
        Ok(rx)
    }
}

async fn listen(pool: &sqlx::PgPool) -> std::result::Result<PgListener, sqlx::Error> {
    // Holds one of the pool's connections for as long as it listens; a pool close ends it.
    let mut l = PgListener::connect_with(pool).await?;
    // Committed events (the outbox) too: they wake this replica's event streams.
    l.listen_all([CHANNEL, EVENTS_CHANNEL]).await?;
    Ok(l)
}

async fn run(
    pool: sqlx::PgPool,
    instance: String,
    mut listener: PgListener,
    tx: mpsc::Sender<Change>,
    wake: EventWake,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let lost = tokio::select! {
            r = listener.try_recv() => r,
            () = tx.closed() => return,
        };
        match lost {
            Ok(Some(n)) if n.channel() == EVENTS_CHANNEL => {
                backoff = Duration::from_millis(100);
                match n.payload().parse() {
                    Ok(id) => wake.committed(id),
                    Err(_) => wake.anything(),
                }
                continue;
            }
            Ok(Some(n)) => {
                backoff = Duration::from_millis(100);
                for change in parse(n.payload(), &instance) {
                    if tx.send(change).await.is_err() {
                        return;
                    }
                }
                continue;
            }
            Ok(None) => tracing::warn!("change listener lost its connection; reconnecting"),
            Err(sqlx::Error::PoolClosed) => return,
            Err(e) => tracing::warn!(error = %e, "change listener failed; reconnecting"),
        }
        // Reconnect on a fresh listener until it works (or nobody listens any more).
        loop {
            tokio::select! {
                () = tokio::time::sleep(backoff) => {},
                () = tx.closed() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
            match listen(&pool).await {
                Ok(l) => {
                    listener = l;
                    break;
                }
                Err(sqlx::Error::PoolClosed) => return,
                Err(e) => tracing::warn!(error = %e, "change listener cannot reconnect yet"),
            }
        }
        // Changes made while we were away are lost: drop everything, and let every stream
        // look for events it may have missed.
        wake.anything();
        let all = Change {
            customer_id: None,
            local: false,
        };
        if tx.send(all).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse() {
        assert_eq!(
            parse("abc c-1", "abc"),
            vec![Change {
                customer_id: Some("c-1".into()),
                local: true
            }]
        );
        assert_eq!(
            parse("abc ", "xyz"),
            vec![Change {
                customer_id: None,
                local: false
            }]
        );
        let both: Vec<_> = parse("abc c-1 c-2", "xyz")
            .into_iter()
            .map(|c| c.customer_id.unwrap())
            .collect();
        assert_eq!(both, ["c-1", "c-2"]);
    }

    #[test]
    fn many_customers_split_into_payloads_under_the_limit() {
        let ids: Vec<String> = (0..2_000).map(|i| format!("customer-{i:06}")).collect();
        let p = payloads("inst", &ids);
        assert!(p.len() > 1, "{}", p.len());
        assert!(p.iter().all(|x| x.len() < 8_000));
        let back: Vec<String> = p
            .iter()
            .flat_map(|x| parse(x, "inst"))
            .map(|c| {
                assert!(c.local);
                c.customer_id.unwrap()
            })
            .collect();
        assert_eq!(back, ids);
    }
}
