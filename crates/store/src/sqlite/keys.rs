//! API keys on SQLite: only their SHA-256 is kept. Creating and revoking one is audited in
//! its transaction.

use chrono::{DateTime, Utc};

use super::SqliteStore;
use super::audit::append;
use crate::error::db_err;
use crate::rows::{self, ApiKeyCols};
use crate::{Actor, ApiKey, NewApiKey, NewAudit, Result, StoreError};

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    hash: String,
    role: String,
    customers: String,
    created_at: String,
    revoked_at: Option<String>,
    expires_at: Option<String>,
    last_used_at: Option<String>,
}

/// Every column, in `Row`'s order (a macro, so the queries stay literal strings).
macro_rules! columns {
    () => {
        "id, hash, role, customers, created_at, revoked_at, expires_at, last_used_at"
    };
}

fn key(r: Row) -> Result<ApiKey> {
    ApiKeyCols {
        id: r.id,
        hash: r.hash,
        role: r.role,
        customers: rows::strings(&r.customers)?,
        created_at: rows::parse_ts(&r.created_at)?,
        revoked_at: rows::opt_ts(r.revoked_at.as_deref())?,
        expires_at: rows::opt_ts(r.expires_at.as_deref())?,
        last_used_at: rows::opt_ts(r.last_used_at.as_deref())?,
    }
    .into_key()
}

impl SqliteStore {
    pub(super) async fn insert_api_key_impl(&self, k: &NewApiKey, by: &Actor) -> Result<ApiKey> {
        let mut tx = self.write().await?;
        let row: Row = sqlx::query_as(concat!(
            "INSERT INTO api_keys (id, hash, role, customers, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?) RETURNING ",
            columns!()
        ))
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(&k.hash)
        .bind(k.role.as_str())
        .bind(rows::strings_json(&k.customers))
        .bind(rows::ts(Utc::now()))
        .bind(k.expires_at.map(rows::ts))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match crate::error::violation(&e) {
            Some(crate::error::Violation::Unique) => {
                StoreError::Conflict("an API key with this hash exists".to_owned())
            }
            _ => db_err(e),
        })?;
        let key = key(row)?;
        append(
            &mut tx,
            by,
            NewAudit::change("key.create", &key.id, None, Some(key.audited())),
        )
        .await?;
        tx.commit().await.map_err(db_err)?;
        Ok(key)
    }

    pub(super) async fn api_key_by_hash_impl(&self, hash: &str) -> Result<Option<ApiKey>> {
        let row: Option<Row> = sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM api_keys WHERE hash = ?"
        ))
        .bind(hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.map(key).transpose()
    }

    pub(super) async fn revoke_api_key_impl(&self, id: &str, by: &Actor) -> Result<()> {
        let mut tx = self.write().await?;
        let before: Option<Row> = sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM api_keys WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some(before) = before.map(key).transpose()? else {
            return Err(StoreError::NotFound {
                what: format!("API key {id}"),
            });
        };
        let after: Row = sqlx::query_as(concat!(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1 RETURNING ",
            columns!()
        ))
        .bind(id)
        .bind(rows::ts(Utc::now()))
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        let after = key(after)?;
        let a = NewAudit::change(
            "key.revoke",
            id,
            Some(before.audited()),
            Some(after.audited()),
        );
        append(&mut tx, by, a).await?;
        tx.commit().await.map_err(db_err)
    }

    pub(super) async fn list_api_keys_impl(&self) -> Result<Vec<ApiKey>> {
        let rows: Vec<Row> = sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM api_keys ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.into_iter().map(key).collect()
    }

    pub(super) async fn touch_api_key_impl(&self, id: &str, at: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1
               AND (last_used_at IS NULL OR last_used_at < ?2)",
        )
        .bind(id)
        .bind(rows::ts(at))
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(db_err)
    }
}
