//! The unified list's pages on SQLite: filters, sort and the keyset cursor as SQL, `LIMIT` a
//! batch (see `crate::list`). Text compares by bytes (SQLite's BINARY collation), as Rust
//! compares strings. Money is text here, so a sort by `balance` is done in Rust over the
//! filtered accounts, and balance ranges, field searches and free text are checked in Rust on
//! each batch.

use coffer_core::Account;
use coffer_core::query::{Filter, KeyValue, SortField, SortSpec};
use sqlx::{QueryBuilder, Sqlite};

use super::SqliteStore;
use super::accounts::{ACCOUNT_COLS, AccountRow, FROM_ACCOUNTS, accounts, push_filter};
use crate::error::db_err;
use crate::list::{self, column, unsupported};
use crate::{Result, Scope, StoreError};

impl SqliteStore {
    pub(super) async fn list_page_impl(
        &self,
        scope: &Scope,
        f: &Filter,
        sort: &SortSpec,
        after: Option<&[KeyValue]>,
        limit: usize,
    ) -> Result<Vec<Account>> {
        if sort.keys().iter().any(|k| k.field == SortField::Balance) {
            let all = self.list_accounts_impl(scope, f).await?;
            return list::sort_in_memory(sort, all, after, limit);
        }
        let checked = !f.fields.is_empty() || f.text.is_some() || !f.balance.is_empty();
        list::walk(
            sort,
            after,
            limit,
            checked,
            |a| crate::keep(f, a, false),
            |after, n| self.sorted(scope, f, sort, after, n),
        )
        .await
    }

    /// The next `n` open accounts SQL selects (scope, dimensions), strictly after `after` in
    /// `sort`'s order.
    async fn sorted(
        &self,
        scope: &Scope,
        f: &Filter,
        sort: &SortSpec,
        after: Option<Vec<KeyValue>>,
        n: usize,
    ) -> Result<Vec<Account>> {
        let mut qb = QueryBuilder::new(format!("SELECT {ACCOUNT_COLS}{FROM_ACCOUNTS}"));
        push_filter(&mut qb, scope, f);
        if let Some(after) = &after {
            qb.push(" AND ");
            push_after(&mut qb, sort, after, 0)?;
        }
        qb.push(" ORDER BY ");
        for (i, k) in sort.keys().iter().enumerate() {
            let col = column(k.field, "").ok_or_else(|| unsupported(sort))?;
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

/// `key > after` in the spec's order, from key `i` on (see the PostgreSQL twin).
fn push_after(
    qb: &mut QueryBuilder<Sqlite>,
    sort: &SortSpec,
    after: &[KeyValue],
    i: usize,
) -> Result<()> {
    let (Some(k), Some(v)) = (sort.keys().get(i), after.get(i)) else {
        qb.push("0");
        return Ok(());
    };
    let col = column(k.field, "").ok_or_else(|| unsupported(sort))?;
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

fn push_value(qb: &mut QueryBuilder<Sqlite>, v: &KeyValue) -> Result<()> {
    match v {
        KeyValue::Text(s) => qb.push_bind(s.clone()),
        KeyValue::Bool(b) => qb.push_bind(*b),
        KeyValue::Dec(_) => {
            return Err(StoreError::Other(
                "SQLite orders money in Rust, not in SQL".into(),
            ));
        }
    };
    Ok(())
}
