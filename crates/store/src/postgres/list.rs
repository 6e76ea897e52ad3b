//! The unified list's pages on PostgreSQL: filters, sort and the keyset cursor as SQL, `LIMIT`
//! a batch (see `crate::list`). Text keys compare `COLLATE "C"` (by bytes, as Rust compares
//! strings), whatever the database's collation; migration 0012 indexes those orders.

use coffer_core::Account;
use coffer_core::query::{FieldOp, Filter, KeyValue, SearchField, SortSpec};
use sqlx::{Postgres, QueryBuilder};

use super::PgStore;
use super::account_rows::{ACCOUNT_COLS, AccountRow, FROM_ACCOUNTS, accounts};
use super::filter::push_filter;
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
        let mut qb = QueryBuilder::new(format!("SELECT {ACCOUNT_COLS}{FROM_ACCOUNTS}"));
        push_filter(&mut qb, scope, f, true);
        push_search(&mut qb, f);
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

/// Narrows field searches (`like`) and free text with ILIKE on the folded columns that migration
/// 0012 indexes with trigrams. Only ever a superset of what `Filter::matches` keeps (see the
/// migration), and only for needles that are plain printable ASCII without `"` or `\` (a
/// wallet address is searched inside the wallets' JSON text); others are left to Rust.
fn push_search(qb: &mut QueryBuilder<Postgres>, f: &Filter) {
    for s in &f.fields {
        let FieldOp::Like(needle) = &s.op else {
            continue;
        };
        let (expr, needle) = match s.field {
            SearchField::Id => ("coffer_fold(accounts.id)", needle.clone()),
            SearchField::MainWalletAddress => (
                "coffer_fold(coffer_wallet_addresses(accounts.wallets))",
                needle.clone(),
            ),
            SearchField::Iban => ("coffer_fold_compact(accounts.iban)", compact(needle)),
            SearchField::CustomerId => ("coffer_fold(accounts.customer_id)", needle.clone()),
            _ => continue,
        };
        if let Some(p) = pattern(&needle) {
            qb.push(" AND ").push(expr).push(" ILIKE ").push_bind(p);
        }
    }
    if let Some(text) = f.text.as_deref().map(str::trim)
        && let (Some(p), Some(compact)) = (pattern(text), pattern(&compact(text)))
    {
        qb.push(" AND (coffer_fold(accounts.id) ILIKE ")
            .push_bind(p.clone())
            .push(" OR coffer_fold(coffer_wallet_addresses(accounts.wallets)) ILIKE ")
            .push_bind(p)
            .push(" OR coffer_fold_compact(accounts.iban) ILIKE ")
            .push_bind(compact)
            .push(")");
    }
}

/// `%needle%` with LIKE's wildcards escaped, or `None` when the needle cannot be narrowed.
fn pattern(needle: &str) -> Option<String> {
    let plain = !needle.is_empty()
        && needle
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\');
    if !plain {
        return None;
    }
    let mut p = String::with_capacity(needle.len() + 2);
    p.push('%');
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    Some(p)
}

/// Without the characters Rust counts as whitespace (as the free text compares IBANs).
fn compact(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
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
