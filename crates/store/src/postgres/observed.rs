//! Marks of every pair's last observation on PostgreSQL (migration 0021): built at the
//! checkpoints' instants, each from the one before and the observations between, and read
//! back with the observations since for an all-customer answer at an instant
//! (`crate::observed`).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::{PgConnection, Postgres, Transaction};

use super::PgStore;
use crate::error::db_err;
use crate::observed::{self, Mark, MarkProvider, ObservedSummary, Since};
use crate::{Observation, Result, StoreError, rows};

/// At most this many pairs with rejected balances are kept per mark; beyond, answers read
/// every pair.
const REJECTED_CAP: usize = 50_000;

#[derive(sqlx::FromRow)]
struct ObsRow {
    customer_id: String,
    provider_id: String,
    observed_at: DateTime<Utc>,
    rejected: String,
}

impl ObsRow {
    fn into_obs(self) -> Result<Observation> {
        Ok(Observation {
            rejected: rows::strings(&self.rejected)?,
            customer_id: self.customer_id,
            provider_id: self.provider_id,
            observed_at: self.observed_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct SinceRow {
    customer_id: String,
    provider_id: String,
    observed_at: DateTime<Utc>,
    rejected: String,
    pair_seen: bool,
    customer_seen: bool,
}

#[derive(sqlx::FromRow)]
struct MarkRow {
    at: DateTime<Utc>,
    customers: i64,
    newest: Option<DateTime<Utc>>,
    links_gen: i64,
    rejected_complete: bool,
}

/// A mark's own row.
struct Head {
    at: DateTime<Utc>,
    links_gen: i64,
}

impl PgStore {
    pub(super) async fn observed_summary_impl(
        &self,
        at: DateTime<Utc>,
        max_gap: Duration,
    ) -> Result<Option<ObservedSummary>> {
        let max_gap = TimeDelta::from_std(max_gap).unwrap_or(TimeDelta::MAX);
        // One snapshot for the mark and what came since.
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let Some((head, mark)) = read_mark(&mut tx, at).await? else {
            return Ok(None);
        };
        let since = since(&mut tx, Some(head.at), at).await?;
        let (unobserved, _) = unobserved(&mut tx, Some(&head), at, &since).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(observed::from_mark(&mark, &since, unobserved, at, max_gap))
    }

    /// Builds the missing marks on the step's instants up to `until`, forward from the newest.
    pub(super) async fn build_observation_marks(
        &self,
        until: DateTime<Utc>,
        step: TimeDelta,
    ) -> Result<u32> {
        let latest: Option<DateTime<Utc>> =
            sqlx::query_scalar("SELECT max(at) FROM observation_marks WHERE at <= $1")
                .bind(until)
                .fetch_one(&self.pool)
                .await
                .map_err(db_err)?;
        let mut written = 0;
        let mut prev = latest;
        let mut next = match latest {
            Some(c) => c.checked_add_signed(step),
            None => {
                let first: Option<DateTime<Utc>> =
                    sqlx::query_scalar("SELECT min(fetched_at) FROM observations")
                        .fetch_one(&self.pool)
                        .await
                        .map_err(db_err)?;
                first.and_then(|f| crate::checkpoint::floor(f, step).checked_sub_signed(step))
            }
        };
        while let Some(at) = next.filter(|n| *n <= until) {
            if !self.write_observation_mark(prev, at).await? {
                break;
            }
            written += 1;
            prev = Some(at);
            next = at.checked_add_signed(step);
        }
        Ok(written)
    }

    /// Writes the mark at `at` from the one at `prev` (`None`: from before any observation),
    /// in one transaction under the checkpoint lock (no observation is written meanwhile) and
    /// the prune lock shared; `false`, and nothing written, when `prev` is gone.
    async fn write_observation_mark(
        &self,
        prev: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1), pg_advisory_xact_lock_shared($2)")
            .bind(crate::CHECKPOINT_LOCK_KEY)
            .bind(crate::PRUNE_LOCK_KEY)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let (head, mark) = match prev {
            Some(p) => match read_mark(&mut tx, p).await? {
                Some((head, mark)) if head.at == p => (Some(head), mark),
                _ => return Ok(false),
            },
            None => (
                None,
                Mark {
                    rejected_complete: true,
                    ..Mark::default()
                },
            ),
        };
        let since = since(&mut tx, prev, at).await?;
        let mut more = BTreeMap::new();
        for (p, (n, after)) in observed::missing(&mark, &since) {
            let after = after.or(prev);
            more.insert(p.clone(), next_oldest(&mut tx, &p, after, at, n).await?);
        }
        let next = observed::next_mark(&mark, &since, &more, REJECTED_CAP);
        let (unobserved, gen_now) = unobserved(&mut tx, head.as_ref(), at, &since).await?;
        write_mark(&mut tx, at, &next, &unobserved, gen_now).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }
}

/// The newest mark at or before `at`.
async fn read_mark(tx: &mut PgConnection, at: DateTime<Utc>) -> Result<Option<(Head, Mark)>> {
    let head: Option<MarkRow> = sqlx::query_as(
        "SELECT at, customers, newest, links_gen, rejected_complete FROM observation_marks
         WHERE at <= $1 ORDER BY at DESC LIMIT 1",
    )
    .bind(at)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_err)?;
    let Some(MarkRow {
        at: c,
        customers,
        newest,
        links_gen,
        rejected_complete,
    }) = head
    else {
        return Ok(None);
    };
    let providers: Vec<(String, i64, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT provider_id, pairs, listed_to FROM observation_mark_providers WHERE at = $1",
    )
    .bind(c)
    .fetch_all(&mut *tx)
    .await
    .map_err(db_err)?;
    let pairs = |kind: &'static str| {
        sqlx::query_as::<_, ObsRow>(
            "SELECT customer_id, provider_id, observed_at, rejected FROM observation_mark_pairs
             WHERE at = $1 AND kind = $2 ORDER BY provider_id, observed_at, customer_id",
        )
        .bind(c)
        .bind(kind)
    };
    let oldest = pairs("o").fetch_all(&mut *tx).await.map_err(db_err)?;
    let rejected = pairs("r").fetch_all(&mut *tx).await.map_err(db_err)?;
    let mark = Mark {
        customers: u64::try_from(customers).unwrap_or(0),
        newest,
        providers: providers
            .into_iter()
            .map(|(p, n, listed_to)| {
                let pairs = u64::try_from(n).unwrap_or(0);
                (p, MarkProvider { pairs, listed_to })
            })
            .collect(),
        oldest: oldest
            .into_iter()
            .map(ObsRow::into_obs)
            .collect::<Result<_>>()?,
        rejected: rejected
            .into_iter()
            .map(ObsRow::into_obs)
            .collect::<Result<_>>()?,
        rejected_complete,
    };
    Ok(Some((Head { at: c, links_gen }, mark)))
}

/// Per pair observed in `(from, to]` (`from` `None`: up to `to`), its last observation there
/// and whether it and its customer had one at or before `from`.
async fn since(
    tx: &mut PgConnection,
    from: Option<DateTime<Utc>>,
    to: DateTime<Utc>,
) -> Result<Vec<Since>> {
    let rows: Vec<SinceRow> = sqlx::query_as(
        "SELECT d.customer_id, d.provider_id, d.fetched_at AS observed_at, d.rejected,
             ($1::timestamptz IS NOT NULL AND EXISTS (SELECT 1 FROM observations o
                 WHERE o.customer_id = d.customer_id AND o.provider_id = d.provider_id
                   AND o.fetched_at <= $1)) AS pair_seen,
             ($1::timestamptz IS NOT NULL AND EXISTS (SELECT 1 FROM observations o
                 WHERE o.customer_id = d.customer_id AND o.fetched_at <= $1)) AS customer_seen
         FROM (SELECT DISTINCT ON (customer_id, provider_id) customer_id, provider_id,
                   fetched_at, rejected
               FROM observations
               WHERE fetched_at > coalesce($1, '-infinity'::timestamptz) AND fetched_at <= $2
               ORDER BY customer_id, provider_id, fetched_at DESC) d",
    )
    .bind(from)
    .bind(to)
    .fetch_all(&mut *tx)
    .await
    .map_err(db_err)?;
    rows.into_iter()
        .map(|r| {
            Ok(Since {
                obs: Observation {
                    rejected: rows::strings(&r.rejected)?,
                    customer_id: r.customer_id,
                    provider_id: r.provider_id,
                    observed_at: r.observed_at,
                },
                pair_seen: r.pair_seen,
                customer_seen: r.customer_seen || r.pair_seen,
            })
        })
        .collect()
}

/// Up to `n` more of `provider`'s pairs by their last observation at or before `to`, the
/// oldest first, after `after` (every pair tied with the last one too), and the instant up to
/// which every such pair is now listed.
async fn next_oldest(
    tx: &mut PgConnection,
    provider: &str,
    after: Option<DateTime<Utc>>,
    to: DateTime<Utc>,
    n: usize,
) -> Result<(Vec<Observation>, Option<DateTime<Utc>>)> {
    const LAST: &str =
        "SELECT o.customer_id, o.provider_id, o.fetched_at AS observed_at, o.rejected
         FROM observations o
         WHERE o.provider_id = $1 AND NOT EXISTS (SELECT 1 FROM observations l
             WHERE l.customer_id = o.customer_id AND l.provider_id = o.provider_id
               AND l.fetched_at > o.fetched_at AND l.fetched_at <= $3)";
    let limit = i64::try_from(n.max(1)).unwrap_or(i64::MAX);
    let mut rows: Vec<ObsRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{LAST} AND o.fetched_at > coalesce($2, '-infinity'::timestamptz) AND o.fetched_at <= $3
         ORDER BY o.fetched_at LIMIT $4"
    )))
    .bind(provider)
    .bind(after)
    .bind(to)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await
    .map_err(db_err)?;
    if rows.len() < n {
        // Every pair up to `to` is listed now.
        let listed = rows
            .into_iter()
            .map(ObsRow::into_obs)
            .collect::<Result<_>>()?;
        return Ok((listed, Some(to)));
    }
    let Some(last) = rows.last().map(|r| r.observed_at) else {
        return Ok((Vec::new(), after));
    };
    rows.retain(|r| r.observed_at < last);
    let tied: Vec<ObsRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("{LAST} AND o.fetched_at = $2")))
            .bind(provider)
            .bind(last)
            .bind(to)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
    rows.extend(tied);
    let listed = rows
        .into_iter()
        .map(ObsRow::into_obs)
        .collect::<Result<_>>()?;
    Ok((listed, Some(last)))
}

/// The pairs linked now and not observed by `at`: those the mark listed, and those linked
/// after it was built (a larger link generation) that it could not know, less the pairs
/// observed since. With the link generation read first, so a mark written with it has seen
/// every link up to it.
async fn unobserved(
    tx: &mut PgConnection,
    head: Option<&Head>,
    at: DateTime<Utc>,
    since: &[Since],
) -> Result<(Vec<(String, String)>, i64)> {
    let gen_now: i64 = sqlx::query_scalar("SELECT gen FROM link_generation")
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT l.customer_id, l.provider FROM customer_links l
         WHERE l.gen > $2 AND NOT EXISTS (SELECT 1 FROM observations o
             WHERE o.customer_id = l.customer_id AND o.provider_id = l.provider
               AND o.fetched_at <= coalesce($1, '-infinity'::timestamptz))
         UNION
         SELECT l.customer_id, l.provider FROM observation_mark_pairs u
         JOIN customer_links l ON l.customer_id = u.customer_id AND l.provider = u.provider_id
         WHERE u.at = $1 AND u.kind = 'u'",
    )
    .bind(head.map(|h| h.at))
    .bind(head.map_or(-1, |h| h.links_gen))
    .fetch_all(&mut *tx)
    .await
    .map_err(db_err)?;
    let seen: std::collections::BTreeSet<(&str, &str)> = since
        .iter()
        .filter(|s| s.obs.observed_at <= at)
        .map(|s| (s.obs.customer_id.as_str(), s.obs.provider_id.as_str()))
        .collect();
    let mut out: Vec<(String, String)> = rows
        .into_iter()
        .filter(|(c, p)| !seen.contains(&(c.as_str(), p.as_str())))
        .collect();
    out.sort();
    out.dedup();
    Ok((out, gen_now))
}

async fn write_mark(
    tx: &mut Transaction<'static, Postgres>,
    at: DateTime<Utc>,
    m: &Mark,
    unobserved: &[(String, String)],
    links_gen: i64,
) -> Result<()> {
    sqlx::query("DELETE FROM observation_marks WHERE at = $1")
        .bind(at)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    sqlx::query(
        "INSERT INTO observation_marks (at, customers, newest, links_gen, rejected_complete)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(at)
    .bind(i64::try_from(m.customers).unwrap_or(i64::MAX))
    .bind(m.newest)
    .bind(links_gen)
    .bind(m.rejected_complete)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    let providers: Vec<(&String, &MarkProvider)> = m.providers.iter().collect();
    sqlx::query(
        "INSERT INTO observation_mark_providers (at, provider_id, pairs, listed_to)
         SELECT $1, * FROM UNNEST($2::text[], $3::bigint[], $4::timestamptz[])",
    )
    .bind(at)
    .bind(
        providers
            .iter()
            .map(|(p, _)| (*p).clone())
            .collect::<Vec<_>>(),
    )
    .bind(
        providers
            .iter()
            .map(|(_, mp)| i64::try_from(mp.pairs).unwrap_or(i64::MAX))
            .collect::<Vec<_>>(),
    )
    .bind(
        providers
            .iter()
            .map(|(_, mp)| mp.listed_to)
            .collect::<Vec<_>>(),
    )
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    let mut kinds = Vec::new();
    let mut cols: (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    let mut when = Vec::new();
    let mut rejected = Vec::new();
    let listed = m.oldest.iter().map(|o| ("o", o));
    for (kind, o) in listed.chain(m.rejected.iter().map(|o| ("r", o))) {
        kinds.push(kind.to_owned());
        cols.0.push(o.customer_id.clone());
        cols.1.push(o.provider_id.clone());
        when.push(Some(o.observed_at));
        rejected.push(
            serde_json::to_string(&o.rejected)
                .map_err(|e| StoreError::Other(format!("rejected balances: {e}")))?,
        );
    }
    for (c, p) in unobserved {
        kinds.push("u".to_owned());
        cols.0.push(c.clone());
        cols.1.push(p.clone());
        when.push(None);
        rejected.push("[]".to_owned());
    }
    sqlx::query(
        "INSERT INTO observation_mark_pairs (at, kind, customer_id, provider_id, observed_at,
             rejected)
         SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::text[], $5::timestamptz[],
             $6::text[])",
    )
    .bind(at)
    .bind(kinds)
    .bind(cols.0)
    .bind(cols.1)
    .bind(when)
    .bind(rejected)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Drops the marks at or after `from` (`None`: all), inside a write's transaction that holds
/// the checkpoint lock shared: an observation at `from` changes every pair's last observation
/// from then on.
pub(super) async fn invalidate(
    tx: &mut Transaction<'static, Postgres>,
    from: Option<DateTime<Utc>>,
) -> std::result::Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM observation_marks WHERE $1::timestamptz IS NULL OR at >= $1")
        .bind(from)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
