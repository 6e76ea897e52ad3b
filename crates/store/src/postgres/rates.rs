//! Rates on PostgreSQL: the present table (`rates`), the provider rates' history and the manual
//! rates' versions (migration 0007), and the table in force at an instant.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use coffer_core::Currency;
use rust_decimal::Decimal;
use sqlx::{Postgres, Transaction};

use super::PgStore;
use super::audit::append;
use crate::error::db_err;
use crate::rows::{self, RateCols};
use crate::{Actor, ManualRateVersion, NewAudit, Result, StoredRate};

#[derive(sqlx::FromRow)]
struct RateRow {
    source: String,
    provider: String,
    currency: String,
    quote: String,
    rate: String,
    as_of: DateTime<Utc>,
}

fn into_rates(rows: Vec<RateRow>) -> Result<Vec<StoredRate>> {
    rows.into_iter()
        .map(|r| {
            RateCols {
                source: r.source,
                provider: r.provider,
                currency: r.currency,
                quote: r.quote,
                rate: r.rate,
                as_of: r.as_of,
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
    as_of: DateTime<Utc>,
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
        as_of: r.as_of,
        currency: Currency::new(&r.currency),
        key_id: r.key_id,
    })
}

/// Latest manual version per currency at or before $1, removals left out; and per provider key
/// (every key is in `rates`, which never loses a provider row) the newest row at or before $1,
/// one backward probe of the history's primary key each.
const RATES_AT: &str = "
    SELECT 'manual' AS source, '' AS provider, v.currency, v.quote, v.rate::text AS rate, v.as_of
    FROM (SELECT DISTINCT currency FROM manual_rate_versions) k
    CROSS JOIN LATERAL (
        SELECT m.currency, m.quote, m.rate, m.as_of FROM manual_rate_versions m
        WHERE m.currency = k.currency AND m.as_of <= $1
        ORDER BY m.as_of DESC, m.id DESC LIMIT 1) v
    WHERE v.rate IS NOT NULL
    UNION ALL
    SELECT 'provider', k.provider, k.currency, k.quote, h.rate::text, h.as_of
    FROM rates k
    CROSS JOIN LATERAL (
        SELECT h.rate, h.as_of FROM provider_rate_history h
        WHERE h.provider = k.provider AND h.currency = k.currency AND h.quote = k.quote
          AND h.as_of <= $1
        ORDER BY h.as_of DESC LIMIT 1) h
    WHERE k.source = 'provider'
    ORDER BY currency, source, provider, quote";

impl PgStore {
    pub(super) async fn set_manual_rates_impl(
        &self,
        base: &Currency,
        rates: &BTreeMap<Currency, Decimal>,
        as_of: DateTime<Utc>,
        by: &Actor,
    ) -> Result<()> {
        let currencies: Vec<String> = rates.keys().map(|c| c.code().to_owned()).collect();
        let values: Vec<String> = rates.values().map(Decimal::to_string).collect();
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let before: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT currency, quote, rate::text FROM rates
             WHERE source = 'manual' AND currency = ANY($1) ORDER BY currency FOR UPDATE",
        )
        .bind(&currencies)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        // One manual rate per currency: a new base replaces the old quote.
        sqlx::query("DELETE FROM rates WHERE source = 'manual' AND currency = ANY($1)")
            .bind(&currencies)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO rates (source, provider, currency, quote, rate, as_of)
             SELECT 'manual', '', c, $3, r::numeric, $4
             FROM UNNEST($1::text[], $2::text[]) AS t(c, r)",
        )
        .bind(&currencies)
        .bind(&values)
        .bind(base.code())
        .bind(as_of)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        // Every set is a version, also one that repeats the value: it says who set it when.
        sqlx::query(
            "INSERT INTO manual_rate_versions (currency, quote, rate, as_of, key_id)
             SELECT c, $3, r::numeric, $4, $5
             FROM UNNEST($1::text[], $2::text[]) AS t(c, r) ORDER BY c",
        )
        .bind(&currencies)
        .bind(&values)
        .bind(base.code())
        .bind(as_of)
        .bind(&by.key_id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        let after = rates
            .iter()
            .map(|(c, r)| (c.code(), base.code(), r.to_string()));
        let a = NewAudit::change(
            "rate.set",
            &currencies.join(","),
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
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        // A removal version only when a rate was removed: removing nothing changes nothing.
        let gone: Vec<(String, String, String)> = sqlx::query_as(
            "WITH gone AS (
                 DELETE FROM rates WHERE source = 'manual' AND currency = $1
                 RETURNING currency, quote, rate::text AS rate),
             kept AS (
                 INSERT INTO manual_rate_versions (currency, as_of, key_id)
                 SELECT currency, $2, $3 FROM gone)
             SELECT currency, quote, rate FROM gone",
        )
        .bind(currency.code())
        .bind(as_of)
        .bind(&by.key_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        if !gone.is_empty() {
            let before = Some(crate::audit::rates_json(gone));
            let a = NewAudit::change("rate.remove", currency.code(), before, None);
            append(&mut tx, by, a).await?;
        }
        tx.commit().await.map_err(db_err)
    }

    pub(super) async fn rates_impl(&self) -> Result<Vec<StoredRate>> {
        let rows: Vec<RateRow> = sqlx::query_as(
            "SELECT source, provider, currency, quote, rate::text AS rate, as_of FROM rates
             ORDER BY currency, source, provider, quote",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        into_rates(rows)
    }

    pub(super) async fn rates_at_impl(&self, at: DateTime<Utc>) -> Result<Vec<StoredRate>> {
        let rows: Vec<RateRow> = sqlx::query_as(RATES_AT)
            .bind(at)
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
            "SELECT currency, quote, rate::text AS rate, as_of, key_id FROM manual_rate_versions
             WHERE currency = $1 ORDER BY as_of, id",
        )
        .bind(currency.code())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.into_iter().map(into_version).collect()
    }
}

/// Writes provider rates to the present table (`latest`: one per (provider, currency, quote),
/// in key order) and to the history (`observed`: [`crate::plan::Writes::rate_history`]) the
/// rows that change the rate in force at their instant. One statement each for a whole sync
/// batch; the history's costs an index probe per row, a few per key.
pub(super) async fn write_provider_rates(
    tx: &mut Transaction<'static, Postgres>,
    latest: &[&StoredRate],
    observed: &[&StoredRate],
) -> std::result::Result<(), sqlx::Error> {
    if latest.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO rates (source, provider, currency, quote, rate, as_of)
         SELECT 'provider', p, c, q, v::numeric, t
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
              AS t(p, c, q, v, t)
         ON CONFLICT (source, provider, currency, quote) DO UPDATE
         SET rate = excluded.rate, as_of = excluded.as_of
         WHERE rates.as_of <= excluded.as_of",
    )
    .bind(column(latest, |x| x.provider.clone().unwrap_or_default()))
    .bind(column(latest, |x| x.currency.code().to_owned()))
    .bind(column(latest, |x| x.quote.code().to_owned()))
    .bind(column(latest, |x| x.rate.to_string()))
    .bind(column(latest, |x| x.as_of))
    .execute(&mut **tx)
    .await?;
    // A change is a different value or scale (the rate is served as reported), compared with
    // what was in force just before the row: the previous row of the same key in this batch
    // (`lag`) or the newest stored at or before the row, whichever is later. A late report
    // (older than the newest row) so goes in at its own instant, if it changed what was in
    // force then. Two reports of one key at one microsecond: the first stored stays.
    sqlx::query(
        "INSERT INTO provider_rate_history (provider, currency, quote, as_of, rate)
         SELECT p, c, q, t, v FROM (
             SELECT n.p, n.c, n.q, n.t, n.v,
                    CASE WHEN n.bt IS NOT NULL AND (s.as_of IS NULL OR s.as_of < n.bt)
                         THEN n.bv ELSE s.rate END AS prev
             FROM (SELECT p, c, q, t, v::numeric AS v,
                          lag(v::numeric) OVER w AS bv, lag(t) OVER w AS bt
                   FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[],
                               $5::timestamptz[]) AS u(p, c, q, v, t)
                   WINDOW w AS (PARTITION BY p, c, q ORDER BY t)) n
             LEFT JOIN LATERAL (
                 SELECT h.rate, h.as_of FROM provider_rate_history h
                 WHERE h.provider = n.p AND h.currency = n.c AND h.quote = n.q
                   AND h.as_of <= n.t
                 ORDER BY h.as_of DESC LIMIT 1) s ON true) x
         WHERE prev IS NULL OR prev <> v OR scale(prev) <> scale(v)
         ORDER BY p, c, q, t
         ON CONFLICT DO NOTHING",
    )
    .bind(column(observed, |x| x.provider.clone().unwrap_or_default()))
    .bind(column(observed, |x| x.currency.code().to_owned()))
    .bind(column(observed, |x| x.quote.code().to_owned()))
    .bind(column(observed, |x| x.rate.to_string()))
    .bind(column(observed, |x| x.as_of))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn column<T>(rates: &[&StoredRate], f: impl Fn(&StoredRate) -> T) -> Vec<T> {
    rates.iter().map(|r| f(r)).collect()
}
