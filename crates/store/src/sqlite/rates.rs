//! Rates on SQLite: the present table (`rates`), the provider rates' history and the manual
//! rates' versions (migration 0004), and the table in force at an instant. Rates are exact
//! decimal text, so "changed" is a text comparison: a different value or scale.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use coffer_core::Currency;
use rust_decimal::Decimal;
use sqlx::{Sqlite, Transaction};

use super::SqliteStore;
use super::audit::append;
use crate::error::db_err;
use crate::rows::{self, RateCols};
use crate::{Actor, ManualRateVersion, NewAudit, Result, SnapshotMeta, StoredRate};

#[derive(sqlx::FromRow)]
struct RateRow {
    source: String,
    provider: String,
    currency: String,
    quote: String,
    rate: String,
    as_of: String,
}

fn into_rates(rows: Vec<RateRow>) -> Result<Vec<StoredRate>> {
    rows.into_iter()
        .map(|r| {
            RateCols {
                as_of: rows::parse_ts(&r.as_of)?,
                source: r.source,
                provider: r.provider,
                currency: r.currency,
                quote: r.quote,
                rate: r.rate,
            }
            .into_rate()
        })
        .collect()
}

#[derive(sqlx::FromRow)]
struct VersionRow {
    currency: String,
    quote: Option<String>,
    rate: Option<String>,
    as_of: String,
    key_id: Option<String>,
}

fn into_version(r: VersionRow) -> Result<ManualRateVersion> {
    let rate = match &r.rate {
        Some(v) => Some(rows::decimal(v, &format!("manual rate of {}", r.currency))?),
        None => None,
    };
    Ok(ManualRateVersion {
        quote: r.quote.as_deref().map(Currency::new),
        rate,
        as_of: rows::parse_ts(&r.as_of)?,
        currency: Currency::new(&r.currency),
        key_id: r.key_id,
    })
}

/// The newest manual version per currency at or before ?1 (removals left out) and the newest
/// provider row per key at or before ?1.
const RATES_AT: &str = "
    SELECT 'manual' AS source, '' AS provider, currency, quote, rate, as_of FROM (
        SELECT currency, quote, rate, as_of,
               ROW_NUMBER() OVER (PARTITION BY currency ORDER BY as_of DESC, id DESC) AS n
        FROM manual_rate_versions WHERE as_of <= ?1)
    WHERE n = 1 AND rate IS NOT NULL
    UNION ALL
    SELECT 'provider', provider, currency, quote, rate, as_of FROM (
        SELECT provider, currency, quote, rate, as_of,
               ROW_NUMBER() OVER (PARTITION BY provider, currency, quote ORDER BY as_of DESC)
                   AS n
        FROM provider_rate_history WHERE as_of <= ?1)
    WHERE n = 1
    ORDER BY currency, source, provider, quote";

impl SqliteStore {
    pub(super) async fn set_manual_rates_impl(
        &self,
        base: &Currency,
        rates: &BTreeMap<Currency, Decimal>,
        as_of: DateTime<Utc>,
        by: &Actor,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        let mut before = Vec::new();
        for (currency, rate) in rates {
            let was: Option<(String, String)> = sqlx::query_as(
                "SELECT quote, rate FROM rates WHERE source = 'manual' AND currency = ?",
            )
            .bind(currency.code())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
            before.extend(was.map(|(q, r)| (currency.code().to_owned(), q, r)));
            sqlx::query("DELETE FROM rates WHERE source = 'manual' AND currency = ?")
                .bind(currency.code())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            sqlx::query(
                "INSERT INTO rates (source, provider, currency, quote, rate, as_of)
                 VALUES ('manual', '', ?, ?, ?, ?)",
            )
            .bind(currency.code())
            .bind(base.code())
            .bind(rate.to_string())
            .bind(rows::ts(as_of))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            // Every set is a version, also one that repeats the value: it says who set it when.
            sqlx::query(
                "INSERT INTO manual_rate_versions (currency, quote, rate, as_of, key_id)
                 VALUES (?, ?, ?, ?, ?)",
            )
            .bind(currency.code())
            .bind(base.code())
            .bind(rate.to_string())
            .bind(rows::ts(as_of))
            .bind(&by.key_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        let after = rates
            .iter()
            .map(|(c, r)| (c.code(), base.code(), r.to_string()));
        let targets: Vec<&str> = rates.keys().map(Currency::code).collect();
        let a = NewAudit::change(
            "rate.set",
            &targets.join(","),
            Some(crate::audit::rates_json(before)),
            Some(crate::audit::rates_json(after)),
        );
        append(&mut tx, by, a).await?;
        tx.commit().await.map_err(db_err)
    }

    pub(super) async fn delete_manual_rate_impl(
        &self,
        currency: &Currency,
        as_of: DateTime<Utc>,
        by: &Actor,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        let gone: Vec<(String, String, String)> = sqlx::query_as(
            "DELETE FROM rates WHERE source = 'manual' AND currency = ?
             RETURNING currency, quote, rate",
        )
        .bind(currency.code())
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        // A removal version only when a rate was removed: removing nothing changes nothing.
        if !gone.is_empty() {
            sqlx::query(
                "INSERT INTO manual_rate_versions (currency, as_of, key_id) VALUES (?, ?, ?)",
            )
            .bind(currency.code())
            .bind(rows::ts(as_of))
            .bind(&by.key_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            let before = Some(crate::audit::rates_json(gone));
            let a = NewAudit::change("rate.remove", currency.code(), before, None);
            append(&mut tx, by, a).await?;
        }
        tx.commit().await.map_err(db_err)
    }

    pub(super) async fn rates_impl(&self) -> Result<Vec<StoredRate>> {
        let rows: Vec<RateRow> = sqlx::query_as(
            "SELECT source, provider, currency, quote, rate, as_of FROM rates
             ORDER BY currency, source, provider, quote",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        into_rates(rows)
    }

    pub(super) async fn rates_at_impl(&self, at: DateTime<Utc>) -> Result<Vec<StoredRate>> {
        let rows: Vec<RateRow> = sqlx::query_as(RATES_AT)
            .bind(rows::ts(at))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        into_rates(rows)
    }

    pub(super) async fn manual_rate_versions_impl(
        &self,
        currency: &Currency,
    ) -> Result<Vec<ManualRateVersion>> {
        let rows: Vec<VersionRow> = sqlx::query_as(
            "SELECT currency, quote, rate, as_of, key_id FROM manual_rate_versions
             WHERE currency = ? ORDER BY as_of, id",
        )
        .bind(currency.code())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.into_iter().map(into_version).collect()
    }
}

/// Writes one snapshot's provider rates to the present table and, when a rate differs from the
/// one in force at its instant, to the history (a late report goes in at its own instant).
pub(super) async fn write_provider_rates(
    tx: &mut Transaction<'static, Sqlite>,
    meta: &SnapshotMeta,
    rates: &[StoredRate],
) -> Result<()> {
    for r in rates {
        sqlx::query(
            "INSERT INTO rates (source, provider, currency, quote, rate, as_of)
             VALUES ('provider', ?, ?, ?, ?, ?)
             ON CONFLICT (source, provider, currency, quote) DO UPDATE
             SET rate = excluded.rate, as_of = excluded.as_of
             WHERE rates.as_of <= excluded.as_of",
        )
        .bind(&meta.provider_id)
        .bind(r.currency.code())
        .bind(r.quote.code())
        .bind(r.rate.to_string())
        .bind(rows::ts(r.as_of))
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO provider_rate_history (provider, currency, quote, as_of, rate)
             SELECT ?1, ?2, ?3, ?4, ?5
             WHERE (SELECT rate FROM provider_rate_history
                    WHERE provider = ?1 AND currency = ?2 AND quote = ?3 AND as_of <= ?4
                    ORDER BY as_of DESC LIMIT 1) IS NOT ?5
             ON CONFLICT DO NOTHING",
        )
        .bind(&meta.provider_id)
        .bind(r.currency.code())
        .bind(r.quote.code())
        .bind(rows::ts(r.as_of))
        .bind(r.rate.to_string())
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    }
    Ok(())
}
