//! Customers, their provider links, and the sync pairs the links imply.

use std::collections::HashMap;

use chrono::Utc;
use sqlx::{Sqlite, Transaction};

use super::SqliteStore;
use super::audit::append;
use crate::error::{Violation, db_err, violation};
use crate::plan::check_links;
use crate::rows;
use crate::{Actor, Customer, Link, NewAudit, NewCustomer, Result, StoreError};

#[derive(sqlx::FromRow)]
struct CustomerRow {
    id: String,
    name: Option<String>,
    created_at: String,
}

#[derive(sqlx::FromRow)]
struct LinkRow {
    customer_id: String,
    provider: String,
    external_id: String,
}

fn customer(row: CustomerRow, mut links: Vec<Link>) -> Result<Customer> {
    links.sort();
    Ok(Customer {
        created_at: rows::parse_ts(&row.created_at)?,
        id: row.id,
        name: row.name,
        links,
    })
}

impl SqliteStore {
    pub(super) async fn create_customer_impl(
        &self,
        c: &NewCustomer,
        by: &Actor,
    ) -> Result<Customer> {
        check_links(&c.links)?;
        let mut tx = self.write().await?;
        let row: CustomerRow = sqlx::query_as(
            "INSERT INTO customers (id, name, created_at) VALUES (?, ?, ?)
             RETURNING id, name, created_at",
        )
        .bind(&c.id)
        .bind(&c.name)
        .bind(rows::ts(Utc::now()))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match violation(&e) {
            Some(Violation::Unique) => StoreError::Conflict(format!("customer {} exists", c.id)),
            _ => db_err(e),
        })?;
        if let Err(e) = add_links(&mut tx, &c.id, &c.links).await {
            tx.rollback().await.map_err(db_err)?;
            return Err(self.link_conflict(e, &c.id, &c.links).await);
        }
        let created = customer(row, c.links.clone())?;
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
        let mut tx = self.write().await?;
        let before = current(&mut tx, &c.id).await?;
        let row: Option<CustomerRow> = sqlx::query_as(
            "UPDATE customers SET name = ? WHERE id = ? RETURNING id, name, created_at",
        )
        .bind(&c.name)
        .bind(&c.id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some(row) = row else {
            return Err(StoreError::NotFound {
                what: format!("customer {}", c.id),
            });
        };
        let current: Vec<LinkRow> = sqlx::query_as(
            "SELECT customer_id, provider, external_id FROM customer_links WHERE customer_id = ?",
        )
        .bind(&c.id)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        // Links that are not kept go, and their sync state with them (cascade).
        for l in current {
            let kept = c
                .links
                .iter()
                .any(|n| n.provider == l.provider && n.external_id == l.external_id);
            if !kept {
                sqlx::query("DELETE FROM customer_links WHERE customer_id = ? AND provider = ?")
                    .bind(&c.id)
                    .bind(&l.provider)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            }
        }
        if let Err(e) = add_links(&mut tx, &c.id, &c.links).await {
            tx.rollback().await.map_err(db_err)?;
            return Err(self.link_conflict(e, &c.id, &c.links).await);
        }
        let updated = customer(row, c.links.clone())?;
        let a = NewAudit::change("customer.update", &c.id, before, Some(updated.audited()));
        append(&mut tx, by, a).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(updated)
    }

    /// Deletes the customer; links, snapshots, accounts, history and sync state go with it
    /// by cascade.
    pub(super) async fn delete_customer_impl(&self, id: &str, by: &Actor) -> Result<()> {
        let mut tx = self.write().await?;
        let Some(before) = current(&mut tx, id).await? else {
            return Err(StoreError::NotFound {
                what: format!("customer {id}"),
            });
        };
        sqlx::query("DELETE FROM customers WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        // Its past goes from every total: the checkpoints are rebuilt without it.
        super::checkpoint::invalidate(&mut tx, None).await?;
        append(
            &mut tx,
            by,
            NewAudit::change("customer.delete", id, Some(before), None),
        )
        .await?;
        tx.commit().await.map_err(db_err)
    }

    /// Turns a failed link insert into a Conflict naming the link and its owner.
    async fn link_conflict(&self, e: sqlx::Error, id: &str, links: &[Link]) -> StoreError {
        if violation(&e) != Some(Violation::Unique) {
            return db_err(e);
        }
        for l in links {
            let owner: Option<String> = sqlx::query_scalar(
                "SELECT customer_id FROM customer_links
                 WHERE provider = ? AND external_id = ? AND customer_id <> ?",
            )
            .bind(&l.provider)
            .bind(&l.external_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .ok()
            .flatten();
            if let Some(owner) = owner {
                return StoreError::Conflict(format!(
                    "link {}/{} belongs to customer {owner}",
                    l.provider, l.external_id
                ));
            }
        }
        StoreError::Conflict("a link belongs to another customer".to_owned())
    }

    pub(super) async fn get_customer_impl(&self, id: &str) -> Result<Customer> {
        let row: Option<CustomerRow> =
            sqlx::query_as("SELECT id, name, created_at FROM customers WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
        let row = row.ok_or_else(|| StoreError::NotFound {
            what: format!("customer {id}"),
        })?;
        let mut links = self.links_of(std::slice::from_ref(&row.id)).await?;
        customer(row, links.remove(id).unwrap_or_default())
    }

    pub(super) async fn list_customers_impl(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Customer>> {
        let rows: Vec<CustomerRow> = sqlx::query_as(
            "SELECT id, name, created_at FROM customers
             WHERE ?1 IS NULL OR id > ?1 ORDER BY id LIMIT ?2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let mut links = self.links_of(&ids).await?;
        rows.into_iter()
            .map(|r| {
                let l = links.remove(&r.id).unwrap_or_default();
                customer(r, l)
            })
            .collect()
    }

    async fn links_of(&self, ids: &[String]) -> Result<HashMap<String, Vec<Link>>> {
        let rows: Vec<LinkRow> = sqlx::query_as(
            "SELECT customer_id, provider, external_id FROM customer_links
             WHERE customer_id IN (SELECT value FROM json_each(?))",
        )
        .bind(rows::strings_json(ids))
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
}

/// Inserts the links not yet present and a sync pair due now for each new link.
async fn add_links(
    tx: &mut Transaction<'static, Sqlite>,
    id: &str,
    links: &[Link],
) -> std::result::Result<(), sqlx::Error> {
    let now = rows::ts(Utc::now());
    for l in links {
        sqlx::query(
            "INSERT INTO customer_links (customer_id, provider, external_id) VALUES (?, ?, ?)
             ON CONFLICT (customer_id, provider) DO NOTHING",
        )
        .bind(id)
        .bind(&l.provider)
        .bind(&l.external_id)
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "INSERT INTO sync_state (customer_id, provider_id, next_due) VALUES (?, ?, ?)
             ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(&l.provider)
        .bind(&now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// The customer as the audit log keeps it; `None` when there is no such customer.
async fn current(tx: &mut Transaction<'_, Sqlite>, id: &str) -> Result<Option<serde_json::Value>> {
    let row: Option<CustomerRow> =
        sqlx::query_as("SELECT id, name, created_at FROM customers WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await
            .map_err(db_err)?;
    let Some(row) = row else { return Ok(None) };
    let links: Vec<(String, String)> = sqlx::query_as(
        "SELECT provider, external_id FROM customer_links WHERE customer_id = ? ORDER BY provider",
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
    Ok(Some(customer(row, links)?.audited()))
}
