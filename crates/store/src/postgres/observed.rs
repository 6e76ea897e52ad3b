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
        let since = since(&mut tx, Some(head.at), at, false).await?;
        let new_customers = customers_between(&mut tx, Some(head.at), at).await?;
        let (unobserved, _) = unobserved(&mut tx, Some(&head), &since).await?;
        tx.commit().await.map_err(db_err)?;
        let read = (new_customers, unobserved);
        Ok(observed::from_mark(&mark, &since, read, at, max_gap))
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
            if !self.write_observation_mark(prev, at, step).await? {
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
        step: TimeDelta,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        super::locks::lock_step(&mut tx).await?;
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
        let since = since(&mut tx, prev, at, true).await?;
        let mut more = BTreeMap::new();
        for (p, need) in observed::missing(&mark, prev, &since, step) {
            more.insert(p.clone(), refill(&mut tx, &p, need, at, step).await?);
        }
        let customers = mark.customers + customers_between(&mut tx, prev, at).await?;
        let next = observed::next_mark(&mark, &since, customers, &more, REJECTED_CAP);
        let (unobserved, gen_now) = unobserved(&mut tx, head.as_ref(), &since).await?;
        write_mark(&mut tx, at, &next, &unobserved, gen_now).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }
}

/// What a provider's list gains (see [`observed::Need`]), and its new `listed_to`.
async fn refill(
    tx: &mut PgConnection,
    provider: &str,
    need: observed::Need,
    to: DateTime<Utc>,
    step: TimeDelta,
) -> Result<(Vec<Observation>, Option<DateTime<Utc>>)> {
    let mut listed = Vec::new();
    let mut after = need.after;
    let through = match need.through {
        Some(t) => t,
        None => {
            // None of its listed pairs is left: the first found is the oldest.
            let (first, upto) = next_oldest(tx, provider, after, to, 1).await?;
            let Some(t) = first.first().map(|o| o.observed_at) else {
                return Ok((first, upto));
            };
            listed = first;
            after = upto;
            t.checked_add_signed(step + step).unwrap_or(to)
        }
    };
    let bound = through.min(to);
    if after.is_none_or(|a| a < bound) {
        listed.extend(last_between(tx, provider, after, bound, to).await?);
        after = Some(bound);
    }
    let have = listed.len();
    if have < need.at_least && after.is_none_or(|a| a < to) {
        let (more, upto) = next_oldest(tx, provider, after, to, need.at_least - have).await?;
        listed.extend(more);
        after = upto;
    }
    Ok((listed, after))
}

#[derive(sqlx::FromRow)]
struct ListRow {
    kind: String,
    provider_id: String,
    customers: Vec<String>,
    observed_at: Vec<DateTime<Utc>>,
    rejected: Vec<String>,
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
    let lists: Vec<ListRow> = sqlx::query_as(
        "SELECT kind::text AS kind, provider_id, customers, observed_at, rejected
         FROM observation_mark_lists WHERE at = $1 AND kind IN ('o', 'r')",
    )
    .bind(c)
    .fetch_all(&mut *tx)
    .await
    .map_err(db_err)?;
    let mut mark = Mark {
        customers: u64::try_from(customers).unwrap_or(0),
        newest,
        providers: providers
            .into_iter()
            .map(|(p, n, listed_to)| {
                let pairs = u64::try_from(n).unwrap_or(0);
                (p, MarkProvider { pairs, listed_to })
            })
            .collect(),
        rejected_complete,
        ..Mark::default()
    };
    for l in lists {
        let into = if l.kind == "o" {
            &mut mark.oldest
        } else {
            &mut mark.rejected
        };
        for ((customer_id, observed_at), rejected) in
            l.customers.into_iter().zip(l.observed_at).zip(l.rejected)
        {
            into.push(Observation {
                rejected: rows::strings(&rejected)?,
                customer_id,
                provider_id: l.provider_id.clone(),
                observed_at,
            });
        }
    }
    // Each provider's list ascending, as written.
    mark.oldest
        .sort_by(|a, b| (&a.provider_id, a.observed_at).cmp(&(&b.provider_id, b.observed_at)));
    Ok(Some((Head { at: c, links_gen }, mark)))
}

/// Per pair observed in `(from, to]` (`from` `None`: up to `to`), its last observation there
/// and, with `seen`, whether the pair had one at or before `from` (a probe per pair: the
/// builder's, not an answer's).
async fn since(
    tx: &mut PgConnection,
    from: Option<DateTime<Utc>>,
    to: DateTime<Utc>,
    seen: bool,
) -> Result<Vec<Since>> {
    let rows: Vec<SinceRow> = sqlx::query_as(
        "SELECT d.customer_id, d.provider_id, d.fetched_at AS observed_at, d.rejected,
             ($3 AND $1::timestamptz IS NOT NULL AND EXISTS (SELECT 1 FROM observations o
                 WHERE o.customer_id = d.customer_id AND o.provider_id = d.provider_id
                   AND o.fetched_at <= $1)) AS pair_seen
         FROM (SELECT DISTINCT ON (customer_id, provider_id) customer_id, provider_id,
                   fetched_at, rejected
               FROM observations
               WHERE fetched_at > coalesce($1, '-infinity'::timestamptz) AND fetched_at <= $2
               ORDER BY customer_id, provider_id, fetched_at DESC) d",
    )
    .bind(from)
    .bind(to)
    .bind(seen)
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
            })
        })
        .collect()
}

/// Customers first observed in `(from, to]` (`customer_first_seen`, migration 0021).
async fn customers_between(
    tx: &mut PgConnection,
    from: Option<DateTime<Utc>>,
    to: DateTime<Utc>,
) -> Result<u64> {
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM customer_first_seen
         WHERE first_at > coalesce($1, '-infinity'::timestamptz) AND first_at <= $2",
    )
    .bind(from)
    .bind(to)
    .fetch_one(&mut *tx)
    .await
    .map_err(db_err)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Every pair of `provider` whose last observation at or before `to` is in `(after, through]`.
async fn last_between(
    tx: &mut PgConnection,
    provider: &str,
    after: Option<DateTime<Utc>>,
    through: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Observation>> {
    let rows: Vec<ObsRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{LAST} AND o.fetched_at > coalesce($2, '-infinity'::timestamptz) AND o.fetched_at <= $4
         ORDER BY o.fetched_at"
    )))
    .bind(provider)
    .bind(after)
    .bind(to)
    .bind(through)
    .fetch_all(&mut *tx)
    .await
    .map_err(db_err)?;
    rows.into_iter().map(ObsRow::into_obs).collect()
}

/// A pair's observation that is its last at or before $3, of provider $1.
const LAST: &str = "SELECT o.customer_id, o.provider_id, o.fetched_at AS observed_at, o.rejected
     FROM observations o
     WHERE o.provider_id = $1 AND NOT EXISTS (SELECT 1 FROM observations l
         WHERE l.customer_id = o.customer_id AND l.provider_id = o.provider_id
           AND l.fetched_at > o.fetched_at AND l.fetched_at <= $3)";

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

/// The pairs linked now and not observed by the mark's instant or since: those the mark listed,
/// and those linked after it was built (a larger link generation) that it could not know, less
/// the pairs observed since. With the link generation read first, so a mark written with it has
/// seen every link up to it.
async fn unobserved(
    tx: &mut PgConnection,
    head: Option<&Head>,
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
         SELECT l.customer_id, l.provider
         FROM observation_mark_lists u CROSS JOIN LATERAL unnest(u.customers) AS c(customer_id)
         JOIN customer_links l ON l.customer_id = c.customer_id AND l.provider = u.provider_id
         WHERE u.at = $1 AND u.kind = 'u'",
    )
    .bind(head.map(|h| h.at))
    .bind(head.map_or(-1, |h| h.links_gen))
    .fetch_all(&mut *tx)
    .await
    .map_err(db_err)?;
    let seen: std::collections::BTreeSet<(&str, &str)> = since
        .iter()
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

/// One list row per (kind, provider): its pairs' customers, instants and rejected balances.
type Lists = BTreeMap<(&'static str, String), (Vec<String>, Vec<DateTime<Utc>>, Vec<String>)>;

fn lists(m: &Mark, unobserved: &[(String, String)]) -> Result<Lists> {
    let mut out: Lists = BTreeMap::new();
    let listed = m.oldest.iter().map(|o| ("o", o));
    for (kind, o) in listed.chain(m.rejected.iter().map(|o| ("r", o))) {
        let e = out.entry((kind, o.provider_id.clone())).or_default();
        e.0.push(o.customer_id.clone());
        e.1.push(o.observed_at);
        e.2.push(
            serde_json::to_string(&o.rejected)
                .map_err(|e| StoreError::Other(format!("rejected balances: {e}")))?,
        );
    }
    for (c, p) in unobserved {
        out.entry(("u", p.clone())).or_default().0.push(c.clone());
    }
    Ok(out)
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
    for ((kind, provider), (customers, when, rejected)) in lists(m, unobserved)? {
        sqlx::query(
            "INSERT INTO observation_mark_lists (at, kind, provider_id, customers, observed_at,
                 rejected) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(at)
        .bind(kind)
        .bind(provider)
        .bind(customers)
        .bind(when)
        .bind(rejected)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    }
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
