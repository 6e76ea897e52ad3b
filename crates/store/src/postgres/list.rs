//! The unified list's pages on PostgreSQL: filters, sort and the keyset cursor as SQL, `LIMIT`
//! a batch (see `crate::list`). Text keys compare `COLLATE "C"` (by bytes, as Rust compares
//! strings), whatever the database's collation; migration 0012 indexes those orders.

use coffer_core::Account;
use coffer_core::query::{Filter, KeyValue, SortSpec};
use sqlx::{Postgres, QueryBuilder};

use super::PgStore;
use super::accounts::{ACCOUNT_COLS, AccountRow, accounts, push_filter};
use crate::error::db_err;
use crate::list::{self, column, unsupported};
use crate::{Result, Scope, StoreError};

const COLLATE: &str = " COLLATE \"C\"";

impl PgStore {
    pub(super) async fn list_page_impl(
        &self,
        scope: &Scope,
        f: &Filter,
        sort: &SortSpec,
        after: Option<&[KeyValue]>,
        limit: usize,
    ) -> Result<Vec<Account>> {
        // Field searches and free text are checked in Rust on each batch.
        let checked = !f.fields.is_empty() || f.text.is_some();
        list::walk(
            sort,
            after,
            limit,
            checked,
            |a| crate::keep(f, a, true),
            |after, n| self.sorted(scope, f, sort, after, n),
        )
        .await
    }

    /// The next `n` open accounts SQL selects (scope, dimensions, balance range), strictly after
    /// `after` in `sort`'s order.
    async fn sorted(
        &self,
        scope: &Scope,
        f: &Filter,
        sort: &SortSpec,
        after: Option<Vec<KeyValue>>,
        n: usize,
    ) -> Result<Vec<Account>> {
        let mut qb = QueryBuilder::new(format!("SELECT {ACCOUNT_COLS} FROM accounts"));
        push_filter(&mut qb, scope, f, true);
        if let Some(after) = &after {
            qb.push(" AND ");
            push_after(&mut qb, sort, after, 0)?;
        }
        qb.push(" ORDER BY ");
        for (i, k) in sort.keys().iter().enumerate() {
            let col = column(k.field, COLLATE).ok_or_else(|| unsupported(sort))?;
            qb.push(if i == 0 { "" } else { ", " })
                .push(col)
                .push(if k.descending { " DESC" } else { " ASC" });
        }
        qb.push(" LIMIT ")
            .push_bind(i64::try_from(n).unwrap_or(i64::MAX));
        let rows: Vec<AccountRow> = qb
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        accounts(rows)
    }
}

/// `key > after` in the spec's order, from key `i` on: `(k_i > v_i) OR (k_i = v_i AND …)`, with
/// `<` for a descending key. Nothing is after a missing decimal (it sorts last both ways and no
/// stored balance is missing), and nothing is after an equal key.
fn push_after(
    qb: &mut QueryBuilder<Postgres>,
    sort: &SortSpec,
    after: &[KeyValue],
    i: usize,
) -> Result<()> {
    let (Some(k), Some(v)) = (sort.keys().get(i), after.get(i)) else {
        qb.push("FALSE");
        return Ok(());
    };
    let col = column(k.field, COLLATE).ok_or_else(|| unsupported(sort))?;
    if matches!(v, KeyValue::Dec(None)) {
        qb.push("FALSE");
        return Ok(());
    }
    qb.push("(")
        .push(&col)
        .push(if k.descending { " < " } else { " > " });
    push_value(qb, v)?;
    qb.push(" OR (").push(&col).push(" = ");
    push_value(qb, v)?;
    qb.push(" AND ");
    push_after(qb, sort, after, i + 1)?;
    qb.push("))");
    Ok(())
}

fn push_value(qb: &mut QueryBuilder<Postgres>, v: &KeyValue) -> Result<()> {
    match v {
        KeyValue::Text(s) => qb.push_bind(s.clone()),
        KeyValue::Bool(b) => qb.push_bind(*b),
        KeyValue::Dec(Some(d)) => qb.push_bind(d.to_string()).push("::numeric"),
        KeyValue::Dec(None) => {
            return Err(StoreError::Other(
                "a missing decimal has no SQL value".into(),
            ));
        }
    };
    Ok(())
}
