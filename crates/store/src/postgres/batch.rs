//! A sync batch in one transaction: every leased pair's snapshot, the covered-customers count,
//! the released leases and the cross-replica announcement, with one set-based statement per
//! table instead of a dozen round trips per pair.
//!
//! The batch writes exactly what `save_snapshot` and `release` would write pair by pair (the
//! same [`plan::plan`] per pair, merged). When the batch cannot be written as one (a customer
//! deleted meanwhile, an account moving in from another pair, a deadlock with a request's
//! write), its pairs are written one by one, so one bad pair costs the others nothing.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, Utc};
use coffer_core::Account;
use sqlx::{Postgres, Transaction};

use super::PgStore;
use super::notify::{CHANNEL, payloads};
use super::write::{NewRows, add_covered, lock_pairs, snapshot_upsert, write_all};
use crate::error::db_err;
use crate::events::{self, NewEvent, PairBefore};
use crate::plan::{self, Existing, Writes};
use crate::{Result, SnapshotMeta, Store, StoreError, SyncOutcome, SyncWrite};

pub(super) type Snap<'a> = (&'a SnapshotMeta, &'a [Account]);

/// One notification per payload.
const NOTIFY_MANY: &str = "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p";

impl PgStore {
    pub(super) async fn finish_syncs_impl(&self, batch: &[SyncWrite]) -> Vec<Result<()>> {
        let mut out: Vec<Option<Result<()>>> = Vec::with_capacity(batch.len());
        let mut valid = Vec::with_capacity(batch.len());
        for w in batch {
            match &w.snapshot {
                Some((meta, accounts)) => match plan::validate(meta, accounts) {
                    Ok(()) => {
                        out.push(None);
                        valid.push(w);
                    }
                    Err(e) => out.push(Some(Err(e))),
                },
                None => {
                    out.push(None);
                    valid.push(w);
                }
            }
        }
        let results = if distinct(&valid) {
            match self.write_batch(&valid).await {
                Ok(()) => valid.iter().map(|_| Ok(())).collect(),
                Err(e) if e.is_retryable() && self.ping().await.is_err() => valid
                    .iter()
                    .map(|_| Err(StoreError::Unavailable(e.to_string())))
                    .collect(),
                Err(e) => {
                    tracing::warn!(error = %e, pairs = valid.len(), "sync batch not written at once; writing its pairs one by one");
                    self.finish_each_announced(&valid).await
                }
            }
        } else {
            // A pair (or an account) twice in one batch: one statement may not write a row
            // twice, and the later write must see the earlier one.
            self.finish_each_announced(&valid).await
        };
        let mut results = results.into_iter();
        out.into_iter()
            .map(|o| {
                o.unwrap_or_else(|| {
                    results
                        .next()
                        .unwrap_or_else(|| Err(StoreError::Other("sync write lost".into())))
                })
            })
            .collect()
    }

    /// Pair by pair, then the other replicas are told which customers changed (the batch
    /// tells them in its transaction).
    async fn finish_each_announced(&self, items: &[&SyncWrite]) -> Vec<Result<()>> {
        let results = crate::finish_each(self, items).await;
        let mut changed: Vec<String> = items
            .iter()
            .zip(&results)
            .filter(|(w, r)| r.is_ok() && w.snapshot.is_some())
            .map(|(w, _)| w.lease.customer_id.clone())
            .collect();
        changed.sort();
        changed.dedup();
        if !changed.is_empty()
            && let Err(e) = sqlx::query(NOTIFY_MANY)
                .bind(CHANNEL)
                .bind(payloads(&self.instance, &changed))
                .execute(&self.pool)
                .await
        {
            tracing::warn!(error = %e, "synced customers not announced to other replicas");
        }
        results
    }

    async fn write_batch(&self, items: &[&SyncWrite]) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        // As for one snapshot: a copy of what providers said, re-fetched if a crash loses it.
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let snaps: Vec<Snap<'_>> = items
            .iter()
            .filter_map(|w| w.snapshot.as_ref().map(|(m, a)| (m, a.as_slice())))
            .collect();
        // The rows no other writer touches first; the shared ones (rates, rollup, covered
        // count) last, so they stay locked only until the commit that follows.
        let events = release_all(&mut tx, items).await.map_err(db_err)?;
        self.save_and_commit(tx, snaps, events).await
    }

    /// The end of every batch (sync or webhook): `snaps` saved in key order, the outbox events
    /// (`events` plus the snapshots' own), the announcement of the changed customers, the
    /// commit, and this replica's event readers woken.
    pub(super) async fn save_and_commit(
        &self,
        mut tx: Transaction<'static, Postgres>,
        mut snaps: Vec<Snap<'_>>,
        mut events: Vec<NewEvent>,
    ) -> Result<()> {
        // Key order: concurrent writers lock snapshot rows in one order.
        snaps.sort_by(|a, b| {
            (&a.0.customer_id, &a.0.provider_id).cmp(&(&b.0.customer_id, &b.0.provider_id))
        });
        let changed = if snaps.is_empty() {
            Vec::new()
        } else {
            save_snapshots(&mut tx, &snaps, &mut events).await?
        };
        // Last: the events lock orders this batch's commit among every events writer's.
        let newest = super::events::write(&mut tx, &events)
            .await
            .map_err(db_err)?;
        if !changed.is_empty() {
            // Delivered at commit, with the data.
            sqlx::query(NOTIFY_MANY)
                .bind(CHANNEL)
                .bind(payloads(&self.instance, &changed))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        self.wake.wrote(newest, &events);
        Ok(())
    }
}

/// Whether every pair, and every account id, appears once in the batch.
fn distinct(items: &[&SyncWrite]) -> bool {
    let mut pairs = HashSet::new();
    let mut ids = HashSet::new();
    items.iter().all(|w| {
        pairs.insert((&w.lease.customer_id, &w.lease.provider_id))
            && w.snapshot.as_ref().is_none_or(|(m, a)| {
                (m.customer_id == w.lease.customer_id && m.provider_id == w.lease.provider_id)
                    && a.iter().all(|a| ids.insert(&a.id))
            })
    })
}

/// Writes the snapshots (sorted by pair); returns the customers whose data changed, and adds
/// their outbox events to `events`.
async fn save_snapshots(
    tx: &mut Transaction<'static, Postgres>,
    snaps: &[Snap<'_>],
    events: &mut Vec<NewEvent>,
) -> Result<Vec<String>> {
    let mut digests = Vec::with_capacity(snaps.len());
    for (_, accounts) in snaps {
        digests.push(plan::digest(accounts)?);
    }
    // A write older than the stored snapshot changes nothing (and comes back without a row).
    let applied: Vec<(String, String, bool, bool)> = sqlx::query_as(concat!(
        "INSERT INTO snapshots (customer_id, provider_id, provider_customer_ref, fetched_at,
             rejected, accounts_digest)
         SELECT c, p, r, f, j, d
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[],
                     $6::bytea[]) AS t(c, p, r, f, j, d)
         ORDER BY c, p",
        snapshot_upsert!()
    ))
    .bind(
        snaps
            .iter()
            .map(|s| s.0.customer_id.clone())
            .collect::<Vec<_>>(),
    )
    .bind(
        snaps
            .iter()
            .map(|s| s.0.provider_id.clone())
            .collect::<Vec<_>>(),
    )
    .bind(
        snaps
            .iter()
            .map(|s| s.0.provider_customer_ref.clone())
            .collect::<Vec<_>>(),
    )
    .bind(snaps.iter().map(|s| s.0.fetched_at).collect::<Vec<_>>())
    .bind(
        snaps
            .iter()
            .map(|s| crate::rows::strings_json(&s.0.rejected))
            .collect::<Vec<_>>(),
    )
    .bind(digests)
    .fetch_all(&mut **tx)
    .await
    .map_err(db_err)?;
    let mut first: BTreeMap<String, i64> = BTreeMap::new();
    // Applied pairs, and whether their stored accounts already are the reported ones.
    let mut live: HashMap<(String, String), bool> = HashMap::with_capacity(applied.len());
    for (c, p, inserted, unchanged) in applied {
        if inserted {
            *first.entry(c.clone()).or_default() += 1;
        }
        live.insert((c, p), unchanged);
    }
    let covered = if first.is_empty() {
        BTreeMap::new()
    } else {
        first_snapshots(tx, &first).await.map_err(db_err)?
    };
    let state = |s: &Snap<'_>| {
        live.get(&(s.0.customer_id.clone(), s.0.provider_id.clone()))
            .copied()
    };
    // Pairs whose accounts did not change are not read: only their observation and provider
    // rates are written.
    let same: Vec<Snap<'_>> = snaps
        .iter()
        .filter(|s| state(s) == Some(true))
        .copied()
        .collect();
    let live: Vec<Snap<'_>> = snaps
        .iter()
        .filter(|s| state(s) == Some(false))
        .copied()
        .collect();
    let mut writes = Writes::default();
    for (meta, accounts) in &same {
        writes.add(meta, plan::unchanged(meta, accounts));
    }
    let existing = if live.is_empty() {
        Vec::new()
    } else {
        lock_pairs(
            tx,
            live.iter().map(|s| s.0.customer_id.clone()).collect(),
            live.iter().map(|s| s.0.provider_id.clone()).collect(),
        )
        .await?
    };
    let mut per_pair = split_by_pair(&live, existing);
    let shard = batch_shard();
    for (i, (meta, accounts)) in live.iter().enumerate() {
        writes.add(
            meta,
            plan::plan(meta, accounts, std::mem::take(&mut per_pair[i]), shard),
        );
    }
    // Accounts the batch's pairs did not hold are inserted plainly: one stored under another
    // pair (it moved between customers) would be planned as new, its old pair's rollup and
    // history left wrong. Rare; the insert refuses it, and the batch is written pair by pair,
    // each pair reading the rows its ids name.
    write_all(tx, &writes, NewRows::Insert)
        .await
        .map_err(db_err)?;
    add_covered(tx, &covered).await.map_err(db_err)?;
    events.append(&mut writes.events);
    // Every applied pair: an unchanged one was observed again, which answers read too.
    let mut changed: Vec<String> = snaps
        .iter()
        .filter(|s| state(s).is_some())
        .map(|s| s.0.customer_id.clone())
        .collect();
    changed.dedup();
    Ok(changed)
}

/// The rollup shard for the new accounts of one batch. A batch's accounts spread over every
/// shard (by customer) touched ~700 `totals_rollup` rows per 1,000 pairs, and concurrent
/// batches waited on each other's; one shard per batch touches a few dozen, and batches
/// written at the same time take different shards. Any shard is right as long as the account
/// row names it (later changes move the sum of the shard it names).
fn batch_shard() -> i16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed) % plan::ROLLUP_SHARDS;
    i16::try_from(n).unwrap_or(0)
}

/// Each stored row goes to its own pair's plan.
fn split_by_pair(live: &[Snap<'_>], existing: Vec<Existing>) -> Vec<Vec<Existing>> {
    let by_pair: HashMap<(&str, &str), usize> = live
        .iter()
        .enumerate()
        .map(|(i, s)| ((s.0.customer_id.as_str(), s.0.provider_id.as_str()), i))
        .collect();
    let mut out: Vec<Vec<Existing>> = live.iter().map(|_| Vec::new()).collect();
    for e in existing {
        if let Some(&i) = by_pair.get(&(
            e.account.customer_id.as_str(),
            e.account.provider_id.as_str(),
        )) {
            out[i].push(e);
        }
    }
    out
}

/// The customers whose first snapshots (of any provider) are in this batch, counted per shard.
/// As for one snapshot, the customer rows are locked (NO KEY UPDATE, in id order) so the first
/// writers of two providers take turns and exactly one of them counts the customer.
async fn first_snapshots(
    tx: &mut Transaction<'static, Postgres>,
    first: &BTreeMap<String, i64>,
) -> std::result::Result<BTreeMap<i16, i64>, sqlx::Error> {
    let ids: Vec<String> = first.keys().cloned().collect();
    sqlx::query("SELECT 1 FROM customers WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE")
        .bind(&ids)
        .execute(&mut **tx)
        .await?;
    let counts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT customer_id, count(*) FROM snapshots WHERE customer_id = ANY($1)
         GROUP BY customer_id",
    )
    .bind(&ids)
    .fetch_all(&mut **tx)
    .await?;
    // Covered now, and by none but this batch's snapshots: newly covered.
    let mut shards: BTreeMap<i16, i64> = BTreeMap::new();
    for (c, n) in counts {
        if first.get(&c) == Some(&n) {
            *shards.entry(plan::shard_of(&c)).or_default() += 1;
        }
    }
    Ok(shards)
}

#[derive(sqlx::FromRow)]
struct Released {
    customer_id: String,
    provider_id: String,
    ok: bool,
    msg: Option<String>,
    kind: Option<String>,
    failures: i32,
    last_success: Option<DateTime<Utc>>,
    last_error_at: Option<DateTime<Utc>>,
}

/// Records every outcome and releases the leases still held, as `release` does for one;
/// returns the pairs' transition events (`sync.failed`, `sync.recovered`). The pairs' state
/// before the update is read in the same statement (a CTE sees the rows as they were); only a
/// lease's holder changes `failures` and `last_success`, so nothing changes them in between.
async fn release_all(
    tx: &mut Transaction<'static, Postgres>,
    items: &[&SyncWrite],
) -> std::result::Result<Vec<NewEvent>, sqlx::Error> {
    let mut c = Vec::with_capacity(items.len());
    let mut p = Vec::with_capacity(items.len());
    let mut owner = Vec::with_capacity(items.len());
    let mut ok = Vec::with_capacity(items.len());
    let mut due = Vec::with_capacity(items.len());
    let mut msg: Vec<Option<String>> = Vec::with_capacity(items.len());
    let mut kind: Vec<Option<&'static str>> = Vec::with_capacity(items.len());
    for w in items {
        c.push(w.lease.customer_id.clone());
        p.push(w.lease.provider_id.clone());
        owner.push(w.lease.owner.clone());
        match &w.outcome {
            SyncOutcome::Success { next_due } => {
                ok.push(true);
                due.push(*next_due);
                msg.push(None);
                kind.push(None);
            }
            SyncOutcome::Failure {
                kind: k,
                message,
                next_due,
            } => {
                ok.push(false);
                due.push(*next_due);
                msg.push(Some(message.clone()));
                kind.push(Some(k.as_str()));
            }
        }
    }
    let now = Utc::now();
    let released: Vec<Released> = sqlx::query_as(
        "WITH t AS (
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bool[],
                                  $5::timestamptz[], $6::text[], $7::text[])
                 AS t(c, p, o, ok, due, msg, kind)),
         old AS (
             SELECT s.customer_id, s.provider_id, s.failures, s.last_success, s.last_error_at
             FROM sync_state s JOIN t ON s.customer_id = t.c AND s.provider_id = t.p)
         UPDATE sync_state s SET lease_owner = NULL, lease_expires = NULL,
             last_success = CASE WHEN t.ok THEN $8 ELSE s.last_success END,
             failures = CASE WHEN t.ok THEN 0 ELSE s.failures + 1 END,
             last_error = CASE WHEN t.ok THEN s.last_error ELSE t.msg END,
             last_error_kind = CASE WHEN t.ok THEN s.last_error_kind ELSE t.kind END,
             last_error_at = CASE WHEN t.ok THEN s.last_error_at ELSE $8 END,
             next_due = t.due
         FROM t JOIN old ON old.customer_id = t.c AND old.provider_id = t.p
         WHERE s.customer_id = t.c AND s.provider_id = t.p AND s.lease_owner = t.o
         RETURNING s.customer_id, s.provider_id, t.ok, t.msg, t.kind, old.failures,
                   old.last_success, old.last_error_at",
    )
    .bind(c)
    .bind(p)
    .bind(owner)
    .bind(ok)
    .bind(due)
    .bind(msg)
    .bind(kind)
    .bind(now)
    .fetch_all(&mut **tx)
    .await?;
    Ok(transitions(released, now))
}

/// The transition events of released pairs, in pair order.
fn transitions(released: Vec<Released>, now: DateTime<Utc>) -> Vec<NewEvent> {
    let mut out: Vec<NewEvent> = released
        .into_iter()
        .filter_map(|r| {
            let failure = (!r.ok).then(|| {
                (
                    r.kind.clone().unwrap_or_default(),
                    r.msg.clone().unwrap_or_default(),
                )
            });
            let before = PairBefore {
                customer_id: r.customer_id,
                provider_id: r.provider_id,
                failures: i64::from(r.failures),
                last_success: r.last_success,
                last_error_at: r.last_error_at,
            };
            events::sync_event(
                &before,
                failure.as_ref().map(|(k, m)| (k.as_str(), m.as_str())),
                now,
            )
        })
        .collect();
    out.sort_by(|a, b| (&a.customer_id, &a.provider_id).cmp(&(&b.customer_id, &b.provider_id)));
    out
}
