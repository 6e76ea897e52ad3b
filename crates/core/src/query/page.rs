//! The unified list (`GET /v2/accounts`): filter, sort, keyset pagination, optional stacking.
//!
//! Pagination is keyset, not offset: the cursor holds the sort key of the last account of the
//! page (see [`super::cursor`]), and the next page starts strictly after it. Because the order
//! is total (id is always the last key), every account is visited exactly once as long as the
//! data does not change, and changes between pages never shift the others.

use super::cursor::Cursor;
use super::group::{Group, group_by_currency};
use super::params::{ParamError, Query, Stack};
use super::select::{ConvertedAccount, QueryError, Selection, Unconverted};
use crate::account::Account;
use crate::currency::Currency;
use crate::rates::{Rate, RateTable};

/// One page of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage<'a> {
    /// The target currency of `value_in_target` (`balance_in_base`).
    pub currency: Currency,
    pub data: ListData<'a>,
    /// The cursor of the next page; `None` on the last page.
    pub next_cursor: Option<String>,
    /// The rates used by this page's values.
    pub rates: Vec<Rate>,
    /// This page's accounts that could not be converted, and why.
    pub unconverted: Vec<Unconverted>,
    /// How many accounts match the query in all (every page).
    pub matched: usize,
}

/// The page's content: accounts, or (with `stack=currency`) groups of accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListData<'a> {
    Accounts(Vec<ConvertedAccount<'a>>),
    Groups(Vec<ListGroup<'a>>),
}

impl<'a> ListData<'a> {
    /// The page's accounts in order, whether stacked or not.
    pub fn accounts(&self) -> Vec<&ConvertedAccount<'a>> {
        match self {
            ListData::Accounts(a) => a.iter().collect(),
            ListData::Groups(gs) => gs.iter().flat_map(|g| g.accounts.iter()).collect(),
        }
    }
}

/// A currency group of the stacked list.
///
/// `group` sums **every** matching account of the currency (all pages), so the numbers do not
/// depend on the page size; `accounts` holds this page's share of them. A currency whose
/// accounts span two pages appears on both, with the same `group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListGroup<'a> {
    pub group: Group,
    pub accounts: Vec<ConvertedAccount<'a>>,
}

/// Answers `GET /v2/accounts`.
///
/// Selects as [`balance`](super::balance) does, sorts by [`Query::effective_sort`], starts after
/// `q.cursor` and returns `q.limit` accounts (with `stack=currency`, the limit still counts
/// accounts, not groups). Errors: a cursor issued for another target currency
/// ([`QueryError::Param`] on `cursor`), a group sum beyond a decimal's range.
pub fn list<'a>(
    accounts: &'a [Account],
    q: &Query,
    rates: &RateTable,
) -> Result<ListPage<'a>, QueryError> {
    let sel = Selection::new(accounts, q, rates);
    let spec = q.effective_sort();
    if let Some(c) = &q.cursor
        && c.currency() != sel.target.code()
    {
        return Err(ParamError::new(
            "cursor",
            format!(
                "this cursor was issued for currency `{}`, but this request converts into `{}`: \
                 keep the currency of the first page, or start again without a cursor",
                super::param_error::quote(c.currency()),
                sel.target
            ),
        )
        .into());
    }
    let mut keyed: Vec<_> = sel
        .items
        .iter()
        .map(|i| (spec.key_of(i.account, i.value_in_target), i))
        .collect();
    keyed.sort_by(|(a, _), (b, _)| spec.compare(a, b));
    let start = match &q.cursor {
        Some(c) => {
            keyed.partition_point(|(k, _)| spec.compare(k, &c.key) != std::cmp::Ordering::Greater)
        }
        None => 0,
    };
    let limit = usize::try_from(q.limit.max(1)).unwrap_or(usize::MAX);
    let end = start.saturating_add(limit).min(keyed.len());
    let page = &keyed[start..end];
    let next_cursor = match page.last() {
        Some((key, _)) if end < keyed.len() => {
            Some(Cursor::new(&spec, sel.target.code(), key.clone()).encode())
        }
        _ => None,
    };
    let page_items: Vec<ConvertedAccount<'a>> = page.iter().map(|(_, i)| (*i).clone()).collect();
    let data = match q.stack {
        None => ListData::Accounts(page_items.clone()),
        Some(Stack::Currency) => ListData::Groups(stack(&sel, &page_items)?),
    };
    Ok(ListPage {
        rates: sel.rates_of(&page_items),
        unconverted: sel.unconverted(&page_items),
        matched: sel.items.len(),
        currency: sel.target.clone(),
        data,
        next_cursor,
    })
}

/// Splits a page (sorted currency first) into groups; each group's sums cover every matching
/// account of its currency.
fn stack<'a>(
    sel: &Selection<'a>,
    page: &[ConvertedAccount<'a>],
) -> Result<Vec<ListGroup<'a>>, QueryError> {
    let all = group_by_currency(&sel.target, &sel.items)?;
    let mut out: Vec<ListGroup<'a>> = Vec::new();
    for item in page {
        let currency = &item.account.currency;
        match out.last_mut() {
            Some(g) if g.group.currency == *currency => g.accounts.push(item.clone()),
            _ => {
                // Every page item is among the selected items, so its group exists; the
                // fallback (the page's share) only keeps this free of panics.
                let group = match all.iter().find(|g| g.currency == *currency) {
                    Some(g) => g.clone(),
                    None => {
                        let mine: Vec<_> = page
                            .iter()
                            .filter(|i| i.account.currency == *currency)
                            .cloned()
                            .collect();
                        group_by_currency(&sel.target, &mine)?
                            .into_iter()
                            .next()
                            .unwrap_or_else(|| Group {
                                currency: currency.clone(),
                                is_crypto: item.account.is_crypto,
                                balance: item.account.balance,
                                value: None,
                                accounts: 1,
                                unconverted: 1,
                                balance_types: crate::account::BalanceTypeCounts::one(
                                    item.account.balance_type,
                                ),
                            })
                    }
                };
                out.push(ListGroup {
                    group,
                    accounts: vec![item.clone()],
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "page_tests.rs"]
#[allow(clippy::unwrap_used)]
mod tests;
