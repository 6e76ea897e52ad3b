//! The audit log on SQLite: appends run inside the caller's write transaction (`BEGIN
//! IMMEDIATE`, one writer at a time), so a change and its entry commit or roll back together.

use chrono::{SubsecRound, Utc};
use sqlx::{Sqlite, Transaction};

use super::SqliteStore;
use crate::error::db_err;
use crate::rows;
use crate::{Actor, AuditEntry, AuditFilter, NewAudit, Result};

#[derive(sqlx::FromRow)]
struct Row {
    seq: i64,
    at: String,
    key_id: String,
    request_id: Option<String>,
    action: String,
    target: String,
    before: Option<String>,
    after: Option<String>,
    prev_hash: String,
    hash: String,
}

impl Row {
    fn entry(self) -> Result<AuditEntry> {
        let r = self;
        Ok(AuditEntry {
            seq: r.seq,
            at: rows::parse_ts(&r.at)?,
            key_id: r.key_id,
            request_id: r.request_id,
            action: r.action,
            target: r.target,
            before: r.before,
            after: r.after,
            prev_hash: r.prev_hash,
            hash: r.hash,
        })
    }
}

/// Every column, in `Row`'s order (a macro, so the queries stay literal strings).
macro_rules! columns {
    () => {
        "seq, at, key_id, request_id, action, target, before, after, prev_hash, hash"
    };
}

/// Appends `a` by `by` in `tx`.
pub(super) async fn append(
    tx: &mut Transaction<'_, Sqlite>,
    by: &Actor,
    a: NewAudit,
) -> Result<AuditEntry> {
    let (seq, hash): (i64, String) =
        sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&mut **tx)
            .await
            .map_err(db_err)?;
    let e = AuditEntry::next(seq, &hash, Utc::now().trunc_subsecs(6), by, a);
    sqlx::query(
        "INSERT INTO audit_log (seq, at, key_id, request_id, action, target, before, after, prev_hash, hash)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(e.seq)
    .bind(rows::ts(e.at))
    .bind(&e.key_id)
    .bind(&e.request_id)
    .bind(&e.action)
    .bind(&e.target)
    .bind(&e.before)
    .bind(&e.after)
    .bind(&e.prev_hash)
    .bind(&e.hash)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    sqlx::query("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1")
        .bind(e.seq)
        .bind(&e.hash)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    Ok(e)
}

impl SqliteStore {
    pub(super) async fn append_audit_impl(&self, by: &Actor, a: NewAudit) -> Result<AuditEntry> {
        let mut tx = self.write().await?;
        let e = append(&mut tx, by, a).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(e)
    }

    pub(super) async fn list_audit_impl(&self, f: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let prefix = f.action.as_deref().filter(|a| a.ends_with('.'));
        let exact = f.action.as_deref().filter(|a| !a.ends_with('.'));
        let found: Vec<Row> = sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM audit_log
             WHERE (?1 IS NULL OR seq < ?1)
               AND (?2 IS NULL OR action = ?2)
               AND (?3 IS NULL OR substr(action, 1, length(?3)) = ?3)
               AND (?4 IS NULL OR key_id = ?4)
               AND (?5 IS NULL OR target = ?5)
               AND (?6 IS NULL OR at >= ?6)
               AND (?7 IS NULL OR at <= ?7)
             ORDER BY seq DESC LIMIT ?8"
        ))
        .bind(f.before_seq)
        .bind(exact)
        .bind(prefix)
        .bind(&f.key_id)
        .bind(&f.target)
        .bind(f.from.map(rows::ts))
        .bind(f.to.map(rows::ts))
        .bind(i64::from(f.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        found.into_iter().map(Row::entry).collect()
    }

    pub(super) async fn audit_run_impl(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>> {
        let found: Vec<Row> = sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?"
        ))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        found.into_iter().map(Row::entry).collect()
    }

    pub(super) async fn audit_head_impl(&self) -> Result<(i64, String)> {
        sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)
    }
}
