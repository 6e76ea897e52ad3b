//! The list sorted by `balance_in_base` first, from the store: a merge of per-currency walks.
//!
//! A converted value changes with the rates, so no index holds it; but within one currency it
//! grows with the balance (every rate is positive), and there are few currencies. So each
//! convertible currency is walked in balance order (the `(currency, balance)` index, migration
//! 0012), each row converted by the one converter core uses, and the walks are merged by core's
//! own key comparison; accounts that cannot be converted (no rate) sort last in either
//! direction, as core defines, walked by the rest of the sort. A page reads about one page per
//! currency.
//!
//! Exactness, where rounding could make the balance order and the value order differ: two
//! balances may round to one value (core then orders them by the next keys), so a walk goes on
//! past its `k`-th row until the value changes; a cursor's value becomes a balance bound through
//! the rate with a margin that only ever lets more rows in, and every row is compared with the
//! cursor by core's comparison. What cannot be made exact this way (a conversion that overflows
//! a decimal, a cursor on another first key) answers `None`: the caller pages in memory.

use std::cmp::Ordering;

use coffer_core::query::{Filter, KeyValue, SortField, SortKey, SortSpec};
use coffer_core::rates::{Converter, RateTable};
use coffer_core::{Account, Currency};
use rust_decimal::Decimal;

use crate::{Result, Scope, Store};

/// Where the previous page ended, for the first (value) key.
enum Resume<'a> {
    Start,
    /// After an account with this value (its other keys are compared in Rust).
    Value(Decimal),
    /// In the unconverted tail, after these other keys.
    Unconverted(&'a [KeyValue]),
}

/// The first `k` open accounts in `scope` matching `filter` in core's order for `sort`
/// (`balance_in_base` first, into `target` with `table`), strictly after `after`; `currencies`
/// are the currencies that can match (from the totals). `None` when this cannot be exact.
#[allow(clippy::too_many_arguments)] // the list question, spelled out
pub async fn value_page(
    store: &dyn Store,
    scope: &Scope,
    filter: &Filter,
    sort: &SortSpec,
    after: Option<&[KeyValue]>,
    table: &RateTable,
    target: &Currency,
    currencies: &[Currency],
    k: usize,
) -> Result<Option<Vec<Account>>> {
    let Some((first, rest)) = sort.keys().split_first() else {
        return Ok(None);
    };
    if first.field != SortField::BalanceInBase || k == 0 {
        return Ok(None);
    }
    let resume = match after {
        None => Resume::Start,
        Some([KeyValue::Dec(Some(v)), ..]) => Resume::Value(*v),
        Some([KeyValue::Dec(None), tail @ ..]) => Resume::Unconverted(tail),
        Some(_) => return Ok(None),
    };
    let mut conv = table.converter(target);
    let (mut converted, mut unconverted) = (Vec::new(), Vec::new());
    for c in currencies {
        if converted.contains(c) || unconverted.contains(c) {
            continue;
        }
        match conv.convert(Decimal::ONE, c) {
            Ok(one) if one.value > Decimal::ZERO => converted.push(c.clone()),
            Ok(_) => return Ok(None),
            Err(_) => unconverted.push(c.clone()),
        }
    }
    let mut keyed: Vec<(Vec<KeyValue>, Account)> = Vec::new();
    if !matches!(resume, Resume::Unconverted(_)) {
        for c in &converted {
            let walk = Walk {
                store,
                scope,
                sort,
                desc: first.descending,
                rest,
            };
            match walk
                .currency(filter, c, &resume, &mut conv, after, k)
                .await?
            {
                Some(got) => keyed.extend(got),
                None => return Ok(None),
            }
        }
    }
    if !unconverted.is_empty() {
        let f = Filter {
            currencies: unconverted,
            ..filter.clone()
        };
        let rest_sort = SortSpec::new(rest.to_vec());
        let rest_after = match resume {
            Resume::Unconverted(tail) => Some(tail),
            _ => None,
        };
        for a in store
            .list_page(scope, &f, &rest_sort, rest_after, k)
            .await?
        {
            keyed.push((sort.key_of(&a, None), a));
        }
    }
    keyed.retain(|(key, _)| after.is_none_or(|ak| sort.compare(key, ak) == Ordering::Greater));
    keyed.sort_by(|(a, _), (b, _)| sort.compare(a, b));
    Ok(Some(keyed.into_iter().take(k).map(|(_, a)| a).collect()))
}

/// One currency's walk in balance order.
struct Walk<'a> {
    store: &'a dyn Store,
    scope: &'a Scope,
    sort: &'a SortSpec,
    desc: bool,
    rest: &'a [SortKey],
}

impl Walk<'_> {
    /// This currency's first `k` accounts after the cursor in core's order (and any that tie
    /// with the `k`-th on value), keyed; `None` when a conversion fails (overflow).
    async fn currency(
        &self,
        filter: &Filter,
        c: &Currency,
        resume: &Resume<'_>,
        conv: &mut Converter<'_>,
        after: Option<&[KeyValue]>,
        k: usize,
    ) -> Result<Option<Vec<(Vec<KeyValue>, Account)>>> {
        let mut f = Filter {
            currencies: vec![c.clone()],
            ..filter.clone()
        };
        if let Resume::Value(v) = resume
            && let Some(b) = bound(conv, c, *v, self.desc)
        {
            let r = &mut f.balance;
            if self.desc {
                r.lte = Some(r.lte.map_or(b, |x| x.min(b)));
            } else {
                r.gte = Some(r.gte.map_or(b, |x| x.max(b)));
            }
        }
        let mut by_balance = vec![SortKey {
            field: SortField::Balance,
            descending: self.desc,
        }];
        by_balance.extend(self.rest.iter().copied());
        let by_balance = SortSpec::new(by_balance);
        let mut out: Vec<(Vec<KeyValue>, Account)> = Vec::new();
        let mut from: Option<Vec<KeyValue>> = None;
        loop {
            let batch = self
                .store
                .list_page(self.scope, &f, &by_balance, from.as_deref(), k)
                .await?;
            let full = batch.len() >= k;
            let Some(last) = batch.last() else {
                return Ok(Some(out));
            };
            from = Some(by_balance.key_of(last, None));
            let mut last_value = None;
            for a in batch {
                let value = match conv.convert(a.balance, &a.currency) {
                    Ok(v) => v.value,
                    // Only an overflow fails in a convertible currency: core sorts that one
                    // account last, which a balance walk cannot place.
                    Err(_) => return Ok(None),
                };
                last_value = Some(value);
                let key = self.sort.key_of(&a, Some(value));
                if after.is_none_or(|ak| self.sort.compare(&key, ak) == Ordering::Greater) {
                    out.push((key, a));
                }
            }
            // Values only grow (or shrink, descending) along the walk: once `k` are kept and
            // the walk has left the `k`-th one's value, nothing later can come before them.
            let kth = out.get(k - 1).and_then(|(key, _)| match key.first() {
                Some(KeyValue::Dec(v)) => *v,
                _ => None,
            });
            if !full || (kth.is_some() && last_value != kth) {
                return Ok(Some(out));
            }
        }
    }
}

/// A balance of `c` beyond which no account's value can come after `v` in the walk's
/// direction: `(v ∓ a unit of the guard) ÷ rate`, widened by a relative margin far above the
/// conversion's own error, so the bound only ever lets more rows in. `None`: no bound.
fn bound(conv: &mut Converter<'_>, c: &Currency, v: Decimal, desc: bool) -> Option<Decimal> {
    let big = Decimal::from(1_000_000_000_000i64);
    let per_big = conv.convert(big, c).ok()?.value;
    // Below one unit per 10^12 the rounded value says too little about the rate.
    if per_big < Decimal::ONE {
        return None;
    }
    let unit = Decimal::new(
        1,
        conv.target().decimals() + coffer_core::rates::GUARD_DIGITS,
    );
    let edge = if desc {
        v.checked_add(unit)?
    } else {
        v.checked_sub(unit)?
    };
    let b = edge.checked_mul(big)?.checked_div(per_big)?;
    let margin = b
        .abs()
        .checked_mul(Decimal::new(1, 9))?
        .checked_add(Decimal::new(1, 9))?;
    if desc {
        b.checked_add(margin)
    } else {
        b.checked_sub(margin)
    }
}
