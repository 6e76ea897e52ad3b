//! Alerts on PostgreSQL: creation and deletion audited in their transaction; an evaluation
//! written by compare-and-set on `version`, its crossing's event in the same transaction.

use chrono::{DateTime, Utc};

use super::PgStore;
use super::audit::append;
use super::events;
use crate::alerts::{self, Alert, AlertUpdate, Direction, NewAlert};
use crate::error::db_err;
use crate::{Actor, NewAudit, Result, StoreError};

macro_rules! columns {
    () => {
        "id, name, query, customer_id, direction, bound, created_at, event_cursor, triggered, \
         last_total, evaluated_at, version"
    };
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    name: String,
    query: String,
    customer_id: Option<String>,
    direction: String,
    bound: String,
    created_at: DateTime<Utc>,
    event_cursor: i64,
    triggered: Option<bool>,
    last_total: Option<String>,
    evaluated_at: Option<DateTime<Utc>>,
    version: i64,
}

impl Row {
    fn into_alert(self) -> Result<Alert> {
        Ok(Alert {
            direction: Direction::stored(&self.direction)?,
            bound: alerts::decimal(&self.bound)?,
            last_total: self
                .last_total
                .as_deref()
                .map(alerts::decimal)
                .transpose()?,
            id: self.id,
            name: self.name,
            query: self.query,
            customer_id: self.customer_id,
            created_at: self.created_at,
            cursor: self.event_cursor,
            triggered: self.triggered,
            evaluated_at: self.evaluated_at,
            version: self.version,
        })
    }
}

fn not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        what: format!("alert {id}"),
    }
}

impl PgStore {
    pub(super) async fn create_alert_impl(&self, a: &NewAlert, by: &Actor) -> Result<Alert> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let row: Row = sqlx::query_as(concat!(
            "INSERT INTO alerts (id, name, query, customer_id, direction, bound, created_at,
                 event_cursor)
             VALUES ($1, $2, $3, $4, $5, $6, $7, (SELECT coalesce(max(id), 0) FROM events))
             RETURNING ",
            columns!()
        ))
        .bind(&a.id)
        .bind(&a.name)
        .bind(&a.query)
        .bind(&a.customer_id)
        .bind(a.direction.as_str())
        .bind(a.bound.to_string())
        .bind(a.created_at)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        let entry = NewAudit::change("alert.create", &a.id, None, Some(alerts::audited(a)));
        append(&mut tx, by, entry).await?;
        tx.commit().await.map_err(db_err)?;
        row.into_alert()
    }

    pub(super) async fn list_alerts_impl(&self) -> Result<Vec<Alert>> {
        let rows: Vec<Row> = sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM alerts ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.into_iter().map(Row::into_alert).collect()
    }

    pub(super) async fn get_alert_impl(&self, id: &str) -> Result<Alert> {
        let row: Option<Row> =
            sqlx::query_as(concat!("SELECT ", columns!(), " FROM alerts WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
        row.ok_or_else(|| not_found(id))?.into_alert()
    }

    pub(super) async fn delete_alert_impl(&self, id: &str, by: &Actor) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let row: Option<Row> = sqlx::query_as(concat!(
            "DELETE FROM alerts WHERE id = $1 RETURNING ",
            columns!()
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let gone = row.ok_or_else(|| not_found(id))?.into_alert()?;
        let entry = NewAudit::change(
            "alert.delete",
            id,
            Some(alerts::audited(&gone.into())),
            None,
        );
        append(&mut tx, by, entry).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(())
    }

    /// `false` (nothing written) when another evaluation was written since `u.version` was read.
    pub(super) async fn record_alert_impl(&self, u: &AlertUpdate) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let done = sqlx::query(
            "UPDATE alerts SET event_cursor = $3, triggered = $4, last_total = $5,
                 evaluated_at = $6, version = version + 1
             WHERE id = $1 AND version = $2",
        )
        .bind(&u.id)
        .bind(u.version)
        .bind(u.cursor)
        .bind(u.triggered)
        .bind(u.total.to_string())
        .bind(u.evaluated_at)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        let written: Vec<_> = u.event.iter().cloned().collect();
        let newest = events::write(&mut tx, &written).await.map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        self.wake.wrote(newest, &written);
        Ok(true)
    }
}
