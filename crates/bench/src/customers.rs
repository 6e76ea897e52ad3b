//! The customers a scenario links to the simulators' generated ones: through the store's own
//! API when there are few, set-based in SQL when there are a hundred thousand.

use std::sync::Arc;

use anyhow::Context as _;
use coffer_store::{Link, NewCustomer, Store};
use futures::{StreamExt, TryStreamExt, stream};

use crate::setup::{BANK, P100};

fn links(external_id: &str) -> Vec<Link> {
    vec![
        Link {
            provider: P100.into(),
            external_id: external_id.to_owned(),
        },
        Link {
            provider: BANK.into(),
            external_id: external_id.to_owned(),
        },
    ]
}

/// Creates `ids` (customer id, external id at both providers) through the store's own API,
/// `parallel` at a time.
pub(crate) async fn create_customers(
    store: &Arc<dyn Store>,
    ids: Vec<(String, String)>,
    parallel: usize,
) -> anyhow::Result<()> {
    stream::iter(ids)
        .map(|(id, ext)| {
            let store = Arc::clone(store);
            async move {
                store
                    .create_customer(&NewCustomer {
                        id: id.clone(),
                        name: None,
                        links: links(&ext),
                    })
                    .await
                    .with_context(|| format!("creating customer {id}"))
            }
        })
        .buffer_unordered(parallel)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

/// Inserts `n` customers (`sync-000000` …), their links to `gen-000000` … at both providers, and
/// their sync state (due now), straight into the tables of `migrations/postgres` in three
/// set-based statements: creating 100,000 customers one API call at a time would take longer
/// than the sync it prepares. The rows are exactly what `Store::create_customer` writes.
pub(crate) async fn bulk_customers(url: &str, n: usize) -> anyhow::Result<()> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let n = i64::try_from(n)?;
    // `lpad(…, greatest(6, length(…)))`: the spelling of coffer_sim::generate::customer_id (at
    // least 6 digits).
    let mut tx = conn.begin().await?;
    sqlx::query(
        "INSERT INTO customers (id, name, created_at)
         SELECT 'sync-' || lpad(i::text, greatest(6, length(i::text)), '0'), NULL, now()
         FROM generate_series(0, $1 - 1) AS i",
    )
    .bind(n)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO customer_links (customer_id, provider, external_id)
         SELECT 'sync-' || d, pr, 'gen-' || d
         FROM (SELECT lpad(i::text, greatest(6, length(i::text)), '0') AS d
               FROM generate_series(0, $1 - 1) AS i) AS ids,
              unnest(ARRAY[$2, $3]) AS pr",
    )
    .bind(n)
    .bind(P100)
    .bind(BANK)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO sync_state (customer_id, provider_id, next_due)
         SELECT customer_id, provider, now() FROM customer_links",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    sqlx::query("ANALYZE customers, customer_links, sync_state")
        .execute(&mut conn)
        .await?;
    Ok(())
}
