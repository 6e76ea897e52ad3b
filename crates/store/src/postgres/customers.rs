//! Customers, their provider links, and the sync pairs the links imply.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};

use super::PgStore;
use super::audit::append;
use crate::error::{Violation, db_err, violation};
use crate::plan::check_links;
use crate::{Actor, Customer, Link, NewAudit, NewCustomer, Result, StoreError};

#[derive(sqlx::FromRow)]
struct CustomerRow {
    id: String,
    name: Option<String>,
    created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct LinkRow {
    customer_id: String,
    provider: String,
    external_id: String,
}

fn columns(links: &[Link]) -> (Vec<String>, Vec<String>) {
    links
        .iter()
        .map(|l| (l.provider.clone(), l.external_id.clone()))
        .unzip()
}

fn customer(row: CustomerRow, mut links: Vec<Link>) -> Customer {
    links.sort();
    Customer {
        id: row.id,
        name: row.name,
        links,
        created_at: row.created_at,
    }
}

impl PgStore {
    pub(super) async fn create_customer_impl(
        &self,
        c: &NewCustomer,
        by: &Actor,
    ) -> Result<Customer> {
        check_links(&c.links)?;
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let row: CustomerRow = sqlx::query_as(
            "INSERT INTO customers (id, name, created_at) VALUES ($1, $2, $3)
             RETURNING id, name, created_at",
        )
        .bind(&c.id)
        .bind(&c.name)
        .bind(Utc::now())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match violation(&e) {
            Some(Violation::Unique) => StoreError::Conflict(format!("customer {} exists", c.id)),
            _ => db_err(e),
        })?;
        if let Err(e) = add_links(&mut tx, &c.id, &c.links).await {
            drop(tx);
            return Err(self.link_conflict(e, &c.id, &c.links).await);
        }
        let created = customer(row, c.links.clone());
        let a = NewAudit::change("customer.create", &c.id, None, Some(created.audited()));
        append(&mut tx, by, a).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(created)
    }

    pub(super) async fn update_customer_impl(
        &self,
        c: &NewCustomer,
        by: &Actor,
    ) -> Result<Customer> {
        check_links(&c.links)?;
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let before = current(&mut tx, &c.id).await?;
        let row: Option<CustomerRow> = sqlx::query_as(
            "UPDATE customers SET name = $2 WHERE id = $1 RETURNING id, name, created_at",
        )
        .bind(&c.id)
        .bind(&c.name)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some(row) = row else {
            return Err(StoreError::NotFound {
                what: format!("customer {}", c.id),
            });
        };
        let (providers, externals) = columns(&c.links);
        // Links that are not kept go, and their sync state with them (cascade).
        sqlx::query(
            "DELETE FROM customer_links WHERE customer_id = $1
               AND (provider, external_id) NOT IN
                   (SELECT * FROM UNNEST($2::text[], $3::text[]))",
        )
        .bind(&c.id)
        .bind(&providers)
        .bind(&externals)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if let Err(e) = add_links(&mut tx, &c.id, &c.links).await {
            drop(tx);
            return Err(self.link_conflict(e, &c.id, &c.links).await);
        }
        let updated = customer(row, c.links.clone());
        let a = NewAudit::change("customer.update", &c.id, before, Some(updated.audited()));
        append(&mut tx, by, a).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(updated)
    }

    /// Turns a failed link insert into a Conflict naming the link and its owner.
    async fn link_conflict(&self, e: sqlx::Error, id: &str, links: &[Link]) -> StoreError {
        if violation(&e) != Some(Violation::Unique) {
            return db_err(e);
        }
        let (providers, externals) = columns(links);
        let owner: Option<LinkRow> = sqlx::query_as(
            "SELECT customer_id, provider, external_id FROM customer_links
             WHERE (provider, external_id) IN (SELECT * FROM UNNEST($1::text[], $2::text[]))
               AND customer_id <> $3
             ORDER BY provider LIMIT 1",
        )
        .bind(&providers)
        .bind(&externals)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .ok()
        .flatten();
        match owner {
            Some(o) => StoreError::Conflict(format!(
                "link {}/{} belongs to customer {}",
                o.provider, o.external_id, o.customer_id
            )),
            None => StoreError::Conflict("a link belongs to another customer".to_owned()),
        }
    }

    pub(super) async fn get_customer_impl(&self, id: &str) -> Result<Customer> {
        let row: Option<CustomerRow> =
            sqlx::query_as("SELECT id, name, created_at FROM customers WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
        let row = row.ok_or_else(|| StoreError::NotFound {
            what: format!("customer {id}"),
        })?;
        let mut links = self.links_of(std::slice::from_ref(&row.id)).await?;
        Ok(customer(row, links.remove(id).unwrap_or_default()))
    }

    pub(super) async fn list_customers_impl(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Customer>> {
        let rows: Vec<CustomerRow> = sqlx::query_as(
            "SELECT id, name, created_at FROM customers
             WHERE $1::text IS NULL OR id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let mut links = self.links_of(&ids).await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let l = links.remove(&r.id).unwrap_or_default();
                customer(r, l)
            })
            .collect())
    }

    async fn links_of(&self, ids: &[String]) -> Result<HashMap<String, Vec<Link>>> {
        let rows: Vec<LinkRow> = sqlx::query_as(
            "SELECT customer_id, provider, external_id FROM customer_links
             WHERE customer_id = ANY($1)",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let mut map: HashMap<String, Vec<Link>> = HashMap::new();
        for r in rows {
            map.entry(r.customer_id).or_default().push(Link {
                provider: r.provider,
                external_id: r.external_id,
            });
        }
        Ok(map)
    }

    pub(super) async fn delete_customer_impl(&self, id: &str, by: &Actor) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        // Lock the customer first (`current`), then take its open accounts out of the rollup.
        let Some(before) = current(&mut tx, id).await? else {
            return Err(StoreError::NotFound {
                what: format!("customer {id}"),
            });
        };
        // Then its snapshot rows: a snapshot write in flight (which holds its row) finishes
        // first, so the rollup below sees its accounts; a later one waits, then finds no
        // customer.
        sqlx::query("SELECT 1 FROM snapshots WHERE customer_id = $1 FOR UPDATE")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO totals_rollup
                 (shard, currency, is_crypto, provider_id, status, active, balance_type, balance,
                  accounts)
             SELECT rollup_shard, currency, is_crypto, provider_id, status, active, balance_type,
                    -sum(balance), -count(*)
             FROM accounts WHERE customer_id = $1 AND NOT closed
             GROUP BY rollup_shard, currency, is_crypto, provider_id, status, active, balance_type
             ORDER BY rollup_shard, currency, is_crypto, provider_id, status, active, balance_type
             ON CONFLICT (shard, currency, is_crypto, provider_id, status, active, balance_type)
             DO UPDATE
             SET balance = totals_rollup.balance + excluded.balance,
                 accounts = totals_rollup.accounts + excluded.accounts",
        )
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query(
            "UPDATE snapshot_customers SET customers = customers - 1
             WHERE shard = $2 AND EXISTS (SELECT 1 FROM snapshots WHERE customer_id = $1)",
        )
        .bind(id)
        .bind(crate::plan::shard_of(id))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        // Links, snapshots and sync state go by cascade; accounts and history (observations and
        // account versions too, 0008) have no foreign key (0004: a trigger per written row).
        sqlx::query("DELETE FROM customers WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        for table in [
            "accounts",
            "balance_history",
            "observations",
            "account_versions",
            "customer_first_seen",
        ] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE customer_id = $1"
            )))
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        // Its past goes from every total: the checkpoints are rebuilt without it.
        super::checkpoint::invalidate(&mut tx, None)
            .await
            .map_err(db_err)?;
        append(
            &mut tx,
            by,
            NewAudit::change("customer.delete", id, Some(before), None),
        )
        .await?;
        tx.commit().await.map_err(db_err)
    }
}

/// The customer as the audit log keeps it, locked for the change that follows; `None` when
/// there is no such customer.
async fn current(
    tx: &mut Transaction<'_, Postgres>,
    id: &str,
) -> Result<Option<serde_json::Value>> {
    let row: Option<CustomerRow> =
        sqlx::query_as("SELECT id, name, created_at FROM customers WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await
            .map_err(db_err)?;
    let Some(row) = row else { return Ok(None) };
    let links: Vec<(String, String)> = sqlx::query_as(
        "SELECT provider, external_id FROM customer_links WHERE customer_id = $1 ORDER BY provider",
    )
    .bind(id)
    .fetch_all(&mut **tx)
    .await
    .map_err(db_err)?;
    let links = links
        .into_iter()
        .map(|(provider, external_id)| Link {
            provider,
            external_id,
        })
        .collect();
    Ok(Some(customer(row, links).audited()))
}

/// Inserts the links not yet present and a sync pair due now for each new link.
async fn add_links(
    tx: &mut Transaction<'static, Postgres>,
    id: &str,
    links: &[Link],
) -> std::result::Result<(), sqlx::Error> {
    if links.is_empty() {
        return Ok(());
    }
    let (providers, externals) = columns(links);
    sqlx::query(
        // A new generation for these links (writes of links serialise on its one row, so
        // generations are committed in order: what an observation mark read of them).
        "WITH g AS (UPDATE link_generation SET gen = gen + 1 RETURNING gen)
         INSERT INTO customer_links (customer_id, provider, external_id, gen)
         SELECT $1, p, e, (SELECT gen FROM g) FROM UNNEST($2::text[], $3::text[]) AS t(p, e)
         ON CONFLICT ON CONSTRAINT customer_links_pkey DO NOTHING",
    )
    .bind(id)
    .bind(&providers)
    .bind(&externals)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO sync_state (customer_id, provider_id, next_due)
         SELECT $1, p, $3 FROM UNNEST($2::text[]) AS t(p)
         ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(&providers)
    .bind(Utc::now())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
