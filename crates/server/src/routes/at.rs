//! Answers at a past instant (`at=` on `GET /v2/accounts/balance`, `GET /v2/accounts` and
//! `GET /v2/accounts/{id}`): from the store only, never a provider call nor the L1 cache, so
//! the same question about the same past instant always gets the same answer. Each
//! (customer, provider) pair is served from its last observation at or before the instant,
//! converted with the rate table in force then (the one `GET /v2/rates?at=` shows).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use coffer_core::query::Query;
use coffer_core::rates::RateTable;
use coffer_store::{HeldAt, ObservedSummary, Scope};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::routes::answer::{Freshness, ProviderAsOf, Warning};
use crate::routes::dto::{AccountOut, CoverageOut};
use crate::routes::source::Sourced;
use crate::state::AppState;

/// The query's `at`, refused in the future (only what was observed can be answered) and
/// before the history horizon.
pub fn instant(state: &AppState, q: &Query) -> ApiResult<Option<DateTime<Utc>>> {
    match q.at {
        Some(at) if at > Utc::now() => Err(ApiError::param(
            "at",
            "is in the future: only what was observed can be answered",
        )),
        Some(at) => within_retention(state, "at", at).map(|()| Some(at)),
        None => Ok(None),
    }
}

/// Refuses an instant before the horizon of `history.retention` (now − retention): the history
/// before it is pruned, so an answer there could differ from the one given before pruning.
/// A 400 rather than a warning: an answer that may be wrong must not look like one.
pub fn within_retention(state: &AppState, param: &str, t: DateTime<Utc>) -> ApiResult<()> {
    match state.config.history.horizon(Utc::now()) {
        Some(horizon) if t < horizon => Err(ApiError::param(
            param,
            format!(
                "is before the history horizon {} (history.retention): older history is pruned",
                horizon.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        )),
        _ => Ok(()),
    }
}

/// Marks an account of an answer at an instant with the observation it comes from (its
/// `as_of`, which the store set to that observation's instant).
pub fn observed(mut a: AccountOut, at: Option<DateTime<Utc>>) -> AccountOut {
    if at.is_some() {
        a.observed_at = Some(a.as_of);
    }
    a
}

/// The accounts the caller may see as they were at `at`, with the rate table in force then.
/// Scope first: a reader's store read names only its customers.
pub async fn held(
    state: &AppState,
    caller: &Caller,
    q: &Query,
    at: DateTime<Utc>,
) -> ApiResult<(Sourced, RateTable)> {
    if let Some(id) = &q.customer_id {
        // Same answer for "no such customer" and "not yours".
        if !caller.can_see(id) {
            return Err(ApiError::NotFound("customer".into()));
        }
        state.store.get_customer(id).await?;
    }
    let scope = caller.scope(q.customer_id.as_deref());
    let all = matches!(scope, Scope::All);
    let h = state.store.held_at(&scope, at, None).await?;
    let table = state.rates.table_at(state.store.as_ref(), at).await?;
    let mut freshness = freshness_at(&h, at, state.config.max_gap());
    unsettled(&mut freshness, at, state.config.settle());
    let coverage = all.then(|| coverage_at(&h));
    Ok((
        Sourced {
            accounts: h.accounts,
            freshness,
            coverage,
            generation: None,
            scope: None,
        },
        table,
    ))
}

/// One account as it was at `at` (404 when the caller may not see it or nobody held it then),
/// with its customer's freshness at that instant and the rate table in force then.
pub async fn one(
    state: &AppState,
    caller: &Caller,
    id: &str,
    at: DateTime<Utc>,
) -> ApiResult<(coffer_core::Account, Freshness, RateTable)> {
    let scope = caller.scope(None);
    let found = state.store.held_at(&scope, at, Some(id)).await?;
    let account = found
        .accounts
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::NotFound("account".into()))?;
    let customer = Scope::Customers(vec![account.customer_id.clone()]);
    let h = state.store.held_at(&customer, at, None).await?;
    let table = state.rates.table_at(state.store.as_ref(), at).await?;
    let mut freshness = freshness_at(&h, at, state.config.max_gap());
    unsettled(&mut freshness, at, state.config.settle());
    Ok((account, freshness, table))
}

fn seconds(d: chrono::TimeDelta) -> i64 {
    d.num_seconds().max(0)
}

/// An instant less than `history.settle` ago may still gain observations (fetches in flight
/// then, written when they end): its answer says so, and is final from `at + settle` on.
pub(crate) fn unsettled(f: &mut Freshness, at: DateTime<Utc>, settle: std::time::Duration) {
    let settle = chrono::TimeDelta::from_std(settle).unwrap_or(chrono::TimeDelta::MAX);
    let Some(settled) = at.checked_add_signed(settle) else {
        return;
    };
    if Utc::now() < settled {
        f.warnings.push(Warning {
            code: "unsettled",
            provider: None,
            customer_id: None,
            error: None,
            message: format!(
                "`at` is less than history.settle ago: fetches in flight then may still be written, so this answer may change until {}",
                settled.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            ),
            age_seconds: None,
        });
    }
}

/// Freshness at an instant: per provider the oldest observation served; a pair observed longer
/// than `max_gap` before the instant warns `gap`; a linked pair never observed by then is left
/// out (`no_data`, partial); balances its observation could not read warn as they did then.
/// Ages are measured from the instant, not from now, so the answer does not change.
pub(crate) fn freshness_at(
    h: &HeldAt,
    at: DateTime<Utc>,
    max_gap: std::time::Duration,
) -> Freshness {
    freshness_of(&coffer_store::summarize(h, at, gap(max_gap)), at, max_gap)
}

/// `history.max_gap` as the store's gap rule takes it (saturated: no gap when too large).
pub(crate) fn gap(max_gap: std::time::Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(max_gap).unwrap_or(chrono::TimeDelta::MAX)
}

/// [`freshness_at`] from the summary of the observations (every pair's, or a store's marks).
pub(crate) fn freshness_of(
    s: &ObservedSummary,
    at: DateTime<Utc>,
    max_gap: std::time::Duration,
) -> Freshness {
    let max_gap = gap(max_gap);
    let mut out = Freshness::default();
    let mut per_provider: BTreeMap<String, (Option<DateTime<Utc>>, &'static str)> = s
        .providers
        .iter()
        .map(|(p, t)| (p.clone(), (Some(*t), "fresh")))
        .collect();
    for o in &s.notable {
        let age = at - o.observed_at;
        if coffer_store::is_gap(at, o.observed_at, max_gap) {
            if let Some(e) = per_provider.get_mut(&o.provider_id) {
                e.1 = "stale";
            }
            out.warnings.push(Warning {
                code: "gap",
                provider: Some(o.provider_id.clone()),
                customer_id: Some(o.customer_id.clone()),
                error: None,
                message: format!(
                    "provider {} was last observed {}s before `at` (more than history.max_gap): the value may have changed unseen",
                    o.provider_id,
                    seconds(age)
                ),
                age_seconds: Some(seconds(age)),
            });
        }
        for r in &o.rejected {
            out.partial = true;
            out.warnings.push(Warning {
                code: "rejected_balance",
                provider: Some(o.provider_id.clone()),
                customer_id: Some(o.customer_id.clone()),
                error: None,
                message: format!("a balance could not be read and is left out: {r}"),
                age_seconds: Some(seconds(age)),
            });
        }
    }
    for (customer, provider) in &s.unobserved {
        out.partial = true;
        per_provider
            .entry(provider.clone())
            .or_insert((None, "missing"))
            .1 = "missing";
        out.warnings.push(Warning {
            code: "no_data",
            provider: Some(provider.clone()),
            customer_id: Some(customer.clone()),
            error: None,
            message: format!(
                "provider {provider} had not been observed for this customer by `at`; its accounts are left out"
            ),
            age_seconds: None,
        });
    }
    out.as_of = per_provider
        .into_iter()
        .map(|(provider, (as_of, state))| ProviderAsOf {
            provider,
            as_of,
            state,
        })
        .collect();
    out
}

pub(crate) fn coverage_at(h: &HeldAt) -> CoverageOut {
    coverage_of(&coffer_store::summarize(
        h,
        DateTime::<Utc>::MAX_UTC,
        chrono::TimeDelta::MAX,
    ))
}

/// [`coverage_at`] from the summary of the observations.
pub(crate) fn coverage_of(s: &ObservedSummary) -> CoverageOut {
    CoverageOut {
        customers: s.customers,
        oldest_as_of: s.providers.iter().map(|(_, t)| *t).min(),
        newest_as_of: s.newest,
    }
}
