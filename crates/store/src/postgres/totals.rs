//! Per-currency sums of the matching open accounts on PostgreSQL, exact on NUMERIC, in the
//! cheapest of three forms that give the same numbers:
//! - without a balance range, unscoped: the totals rollup (a few hundred rows);
//! - with a balance range that keeps most accounts, unscoped: the rollup minus the accounts the
//!   range leaves out (`status=suspended&balance_gt=1000` keeps 99 % of its 50,000 accounts
//!   at a million: summing the 1 % left out reads a hundredth of the rows);
//! - otherwise: a `SUM` over the matching accounts.
//!
//! Which side of a range is smaller is estimated from PostgreSQL's own statistics of the
//! balance column (`pg_stats`, what its planner reads); without statistics, the direct sum.
//! Also the rollup's rebuild from the accounts (after a bulk load, or to repair).

use coffer_core::query::{BalanceRange, Filter};
use sqlx::{Postgres, QueryBuilder};

use super::PgStore;
use super::filter::push_filter;
use crate::error::db_err;
use crate::rows;
use crate::{CurrencyTotal, Result, Scope};

#[derive(sqlx::FromRow)]
struct TotalRow {
    currency: String,
    is_crypto: bool,
    balance: String,
    accounts: i64,
    available: i64,
    unspecified: i64,
}

/// How the sums are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Rollup,
    RollupMinusRest,
    Accounts,
}

impl PgStore {
    /// The sums of the open accounts `f` selects in `scope` (no field search or free text:
    /// those are checked in Rust), ordered by currency then crypto.
    pub(super) async fn sums(&self, scope: &Scope, f: &Filter) -> Result<Vec<CurrencyTotal>> {
        let form = if *scope != Scope::All {
            Form::Accounts
        } else if f.balance.is_empty() {
            Form::Rollup
        } else if self.range_keeps_most(&f.balance).await? {
            Form::RollupMinusRest
        } else {
            Form::Accounts
        };
        self.sums_as(scope, f, form).await
    }

    async fn sums_as(&self, scope: &Scope, f: &Filter, form: Form) -> Result<Vec<CurrencyTotal>> {
        // The counts per balance type beside the sum: one row per (currency, kind), its
        // balance summed by SQL once, exactly.
        let mut qb = QueryBuilder::new(
            "SELECT currency, is_crypto, sum(balance)::text AS balance, \
             sum(accounts)::bigint AS accounts, \
             coalesce(sum(accounts) FILTER (WHERE balance_type = 'available'), 0)::bigint \
                 AS available, \
             coalesce(sum(accounts) FILTER (WHERE balance_type = 'unspecified'), 0)::bigint \
                 AS unspecified FROM ",
        );
        push_source(&mut qb, scope, f, form);
        qb.push(
            " GROUP BY currency, is_crypto HAVING sum(accounts) <> 0 ORDER BY currency, is_crypto",
        );
        let rows: Vec<TotalRow> = qb
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.into_iter()
            .map(|r| {
                Ok(CurrencyTotal {
                    balance: rows::decimal(&r.balance, &format!("total of {}", r.currency))?,
                    currency: coffer_core::Currency::new(&r.currency),
                    is_crypto: r.is_crypto,
                    accounts: u64::try_from(r.accounts).unwrap_or(0),
                    balance_types: coffer_core::BalanceTypeCounts {
                        available: u64::try_from(r.available).unwrap_or(0),
                        unspecified: u64::try_from(r.unspecified).unwrap_or(0),
                    },
                })
            })
            .collect()
    }

    /// Whether, by the balance column's statistics, `range` keeps more than half the accounts:
    /// its most common values by their frequencies, the rest by the histogram's buckets (each
    /// bound standing for an equal share of what the common values leave). The estimate only
    /// picks the cheaper form; both give the same sums.
    async fn range_keeps_most(&self, range: &BalanceRange) -> Result<bool> {
        let mut qb = QueryBuilder::<Postgres>::new(
            "WITH st AS (SELECT most_common_vals::text::numeric[] AS mcv, most_common_freqs AS mcf, \
                    histogram_bounds::text::numeric[] AS hist \
                 FROM pg_stats WHERE schemaname = current_schema() \
                   AND tablename = 'accounts' AND attname = 'balance'), \
             common AS (SELECT v, f FROM st, unnest(st.mcv, st.mcf) AS u(v, f)), \
             rest AS (SELECT b AS v, (1 - coalesce((SELECT sum(f) FROM common), 0)) \
                          / nullif(cardinality(st.hist), 0) AS f \
                      FROM st, unnest(st.hist) AS b) \
             SELECT coalesce(sum(f) FILTER (WHERE ",
        );
        push_inside(&mut qb, range, "v");
        qb.push("), 0) > 0.5 FROM (SELECT v, f FROM common UNION ALL SELECT v, f FROM rest) AS e");
        let (most,): (Option<bool>,) = qb
            .build_query_as()
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(most.unwrap_or(false))
    }
}

/// The rows summed: `(currency, is_crypto, balance, balance_type, accounts)` in `form`.
fn push_source(qb: &mut QueryBuilder<Postgres>, scope: &Scope, f: &Filter, form: Form) {
    match form {
        Form::Rollup => {
            qb.push("totals_rollup");
            push_filter(qb, scope, f, false);
        }
        Form::RollupMinusRest => {
            let dims = Filter {
                balance: BalanceRange::default(),
                ..f.clone()
            };
            qb.push(
                "(SELECT currency, is_crypto, balance, balance_type, accounts \
                 FROM totals_rollup",
            );
            push_filter(qb, scope, &dims, false);
            qb.push(
                " UNION ALL SELECT currency, is_crypto, -balance, balance_type, -1 \
                 FROM accounts",
            );
            push_filter(qb, scope, &dims, true);
            qb.push(" AND ");
            push_outside(qb, &f.balance, "balance");
            qb.push(") AS matching");
        }
        Form::Accounts => {
            qb.push(
                "(SELECT currency, is_crypto, balance, balance_type, 1 AS accounts \
                 FROM accounts",
            );
            push_filter(qb, scope, f, true);
            qb.push(") AS matching");
        }
    }
}

fn bounds(
    range: &BalanceRange,
) -> [(&'static str, &'static str, Option<rust_decimal::Decimal>); 4] {
    // (operator, its negation, bound)
    [
        (" > ", " <= ", range.gt),
        (" >= ", " < ", range.gte),
        (" < ", " >= ", range.lt),
        (" <= ", " > ", range.lte),
    ]
}

/// `col` within every bound of `range` (a non-empty range).
fn push_inside(qb: &mut QueryBuilder<Postgres>, range: &BalanceRange, col: &str) {
    let mut sep = "";
    for (op, _, v) in bounds(range) {
        if let Some(v) = v {
            qb.push(sep)
                .push(col)
                .push(op)
                .push_bind(v.to_string())
                .push("::numeric");
            sep = " AND ";
        }
    }
}

/// `col` outside some bound of `range` (a non-empty range): what the range leaves out.
fn push_outside(qb: &mut QueryBuilder<Postgres>, range: &BalanceRange, col: &str) {
    qb.push("(");
    let mut sep = "";
    for (_, not, v) in bounds(range) {
        if let Some(v) = v {
            qb.push(sep)
                .push(col)
                .push(not)
                .push_bind(v.to_string())
                .push("::numeric");
            sep = " OR ";
        }
    }
    qb.push(")");
}

impl PgStore {
    /// Recomputes `totals_rollup` and the covered-customers count from the accounts and
    /// snapshots (after a bulk load, or to repair).
    pub async fn rebuild_totals_rollup(&self) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query("LOCK TABLE accounts, snapshots IN SHARE MODE")
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query("DELETE FROM totals_rollup")
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO totals_rollup
                 (shard, currency, is_crypto, provider_id, status, active, balance_type, balance,
                  accounts)
             SELECT rollup_shard, currency, is_crypto, provider_id, status, active, balance_type,
                    sum(balance), count(*)
             FROM accounts WHERE NOT closed
             GROUP BY rollup_shard, currency, is_crypto, provider_id, status, active, balance_type",
        )
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        // Only the sum of the shards means anything: the whole count goes to shard 0.
        sqlx::query("DELETE FROM snapshot_customers")
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO snapshot_customers (shard, customers)
             SELECT 0, count(DISTINCT customer_id) FROM snapshots",
        )
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }
}
