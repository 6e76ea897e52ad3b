//! Filters pushed into PostgreSQL's WHERE clauses: every constraint it evaluates exactly
//! (NUMERIC compares exactly), for the accounts table and the totals rollup alike.

use coffer_core::query::Filter;
use sqlx::{Postgres, QueryBuilder};

use crate::Scope;

/// Pushes down every constraint PostgreSQL evaluates exactly (NUMERIC compares exactly).
pub(super) fn push_filter(
    qb: &mut QueryBuilder<Postgres>,
    scope: &Scope,
    f: &Filter,
    table_closed: bool,
) {
    qb.push(if table_closed {
        " WHERE NOT closed"
    } else {
        " WHERE accounts <> 0"
    });
    if let Scope::Customers(ids) = scope {
        qb.push(" AND customer_id = ANY(")
            .push_bind(ids.clone())
            .push(")");
    }
    push_dims(qb, f);
    let b = &f.balance;
    for (op, v) in [
        (" > ", b.gt),
        (" >= ", b.gte),
        (" < ", b.lt),
        (" <= ", b.lte),
    ] {
        if let Some(v) = v {
            qb.push(" AND balance")
                .push(op)
                .push_bind(v.to_string())
                .push("::numeric");
        }
    }
}

/// The constraints the totals rollup can answer too.
fn push_dims(qb: &mut QueryBuilder<Postgres>, f: &Filter) {
    if !f.providers.is_empty() {
        qb.push(" AND provider_id = ANY(")
            .push_bind(f.providers.clone())
            .push(")");
    }
    if let [one] = f.currencies.as_slice() {
        // Equality, not `= ANY`, so a walk in (currency, balance) order can use that index.
        qb.push(" AND currency = ").push_bind(one.code().to_owned());
    } else if !f.currencies.is_empty() {
        let codes: Vec<String> = f.currencies.iter().map(|c| c.code().to_owned()).collect();
        qb.push(" AND currency = ANY(").push_bind(codes).push(")");
    }
    if let Some(c) = f.is_crypto {
        qb.push(" AND is_crypto = ").push_bind(c);
    }
    if let Some(a) = f.active {
        qb.push(" AND active = ").push_bind(a);
    }
    if !f.statuses.is_empty() {
        let s: Vec<String> = f.statuses.iter().map(|s| s.as_str().to_owned()).collect();
        qb.push(" AND status = ANY(").push_bind(s).push(")");
    }
    if !f.balance_types.is_empty() {
        let t: Vec<String> = f
            .balance_types
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect();
        qb.push(" AND balance_type = ANY(").push_bind(t).push(")");
    }
}
