//! Cache invalidation across replicas through PostgreSQL `LISTEN/NOTIFY`.
//!
//! Payload: `"{instance} {customer_id}"`, or `"{instance} "` for "anything changed". The
//! listener runs in its own task on its own connection, reconnects with backoff, and after a
//! reconnection announces "anything changed", since notifications sent meanwhile are lost.

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::mpsc;

use super::PgStore;
use crate::error::db_err;
use crate::{Change, Result};

pub(crate) const CHANNEL: &str = "coffer_changes";

fn parse(payload: &str, instance: &str) -> Change {
    let (from, customer) = payload.split_once(' ').unwrap_or((payload, ""));
    Change {
        customer_id: (!customer.is_empty()).then(|| customer.to_owned()),
        local: from == instance,
    }
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
        tokio::spawn(run(pool, instance, listener, tx));
        Ok(rx)
    }
}

async fn listen(pool: &sqlx::PgPool) -> std::result::Result<PgListener, sqlx::Error> {
    // Holds one of the pool's connections for as long as it listens; a pool close ends it.
    let mut l = PgListener::connect_with(pool).await?;
    l.listen(CHANNEL).await?;
    Ok(l)
}

async fn run(
    pool: sqlx::PgPool,
    instance: String,
    mut listener: PgListener,
    tx: mpsc::Sender<Change>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let lost = tokio::select! {
            r = listener.try_recv() => r,
            () = tx.closed() => return,
        };
        match lost {
            Ok(Some(n)) => {
                backoff = Duration::from_millis(100);
                if tx.send(parse(n.payload(), &instance)).await.is_err() {
                    return;
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
        // Changes made while we were away are lost: drop everything.
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
    fn payloads() {
        assert_eq!(
            parse("abc c-1", "abc"),
            Change {
                customer_id: Some("c-1".into()),
                local: true
            }
        );
        assert_eq!(
            parse("abc ", "xyz"),
            Change {
                customer_id: None,
                local: false
            }
        );
    }
}
