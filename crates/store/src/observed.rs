//! What an answer at a past instant says of the observations behind it, without the accounts:
//! per provider the oldest of its pairs' last observations, the pairs that warn, how many
//! customers are covered ([`ObservedSummary`], [`crate::Store::observed_summary`]).
//!
//! [`summarize`] computes it from every pair's last observation ([`crate::Store::observed_at`]),
//! the definition. A backend may keep marks of it at fixed instants ([`Mark`]) and answer with
//! [`from_mark`]: the mark plus the observations since, which the PostgreSQL test
//! `observation_marks_answer_as_every_pair` compares with [`summarize`] at many instants.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, Utc};

use crate::{HeldAt, Observation};

/// Oldest pairs listed per provider in a mark (more when more are older than a gap).
pub(crate) const LISTED: usize = 1000;

/// The observations behind an answer at an instant, as its freshness and coverage need them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedSummary {
    /// Per provider with a pair observed by then: the oldest of its pairs' last observations.
    pub providers: Vec<(String, DateTime<Utc>)>,
    /// Customers with an observation at or before the instant.
    pub customers: u64,
    /// The newest observation at or before the instant.
    pub newest: Option<DateTime<Utc>>,
    /// The pairs whose last observation is a gap ([`is_gap`]) or rejected balances, ordered by
    /// (customer, provider).
    pub notable: Vec<Observation>,
    /// Pairs linked now with no observation at or before the instant, ordered.
    pub unobserved: Vec<(String, String)>,
}

/// Whether a pair last observed at `observed` is a gap at `at`: observed longer than `max_gap`
/// before it.
pub fn is_gap(at: DateTime<Utc>, observed: DateTime<Utc>, max_gap: TimeDelta) -> bool {
    at - observed > max_gap
}

/// The summary of [`crate::Store::observed_at`]`(scope, at)`'s answer.
pub fn summarize(h: &HeldAt, at: DateTime<Utc>, max_gap: TimeDelta) -> ObservedSummary {
    let mut providers: BTreeMap<&str, DateTime<Utc>> = BTreeMap::new();
    let mut customers: BTreeSet<&str> = BTreeSet::new();
    let mut notable: BTreeMap<(&str, &str), &Observation> = BTreeMap::new();
    for o in &h.observations {
        let e = providers.entry(&o.provider_id).or_insert(o.observed_at);
        *e = (*e).min(o.observed_at);
        customers.insert(&o.customer_id);
        if is_gap(at, o.observed_at, max_gap) || !o.rejected.is_empty() {
            notable.insert((&o.customer_id, &o.provider_id), o);
        }
    }
    let mut unobserved = h.unobserved.clone();
    unobserved.sort();
    ObservedSummary {
        providers: providers
            .into_iter()
            .map(|(p, t)| (p.to_owned(), t))
            .collect(),
        customers: u64::try_from(customers.len()).unwrap_or(u64::MAX),
        newest: h.observations.iter().map(|o| o.observed_at).max(),
        notable: notable.into_values().cloned().collect(),
        unobserved,
    }
}

/// A mark: what every pair's last observation at `at` was, in summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Mark {
    pub customers: u64,
    pub newest: Option<DateTime<Utc>>,
    pub providers: BTreeMap<String, MarkProvider>,
    /// Per provider, its pairs with the oldest last observations, ascending: at least
    /// [`LISTED`] (or all), and every pair whose last observation is at or before `listed_to`.
    pub oldest: Vec<Observation>,
    /// The pairs whose last observation rejected balances (all of them when
    /// `rejected_complete`).
    pub rejected: Vec<Observation>,
    pub rejected_complete: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MarkProvider {
    /// Its pairs observed by the mark.
    pub pairs: u64,
    /// Every pair of it whose last observation is at or before this is in `oldest`.
    pub listed_to: Option<DateTime<Utc>>,
}

/// One pair observed since a mark: its last observation since, and (when building the next
/// mark) whether the pair had one at or before the mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Since {
    pub obs: Observation,
    pub pair_seen: bool,
}

/// The summary at `at` from the mark before it and the pairs observed since (`since`, one per
/// pair), with the customers first observed since and the unobserved pairs read for it; `None` when the mark cannot tell (a provider's
/// listed pairs all observed since, or more pairs gap than it lists), and the caller reads
/// every pair instead.
pub(crate) fn from_mark(
    m: &Mark,
    since: &[Since],
    (new_customers, unobserved): (u64, Vec<(String, String)>),
    at: DateTime<Utc>,
    max_gap: TimeDelta,
) -> Option<ObservedSummary> {
    if !m.rejected_complete {
        return None;
    }
    let moved = moved(since);
    let stays =
        |o: &&Observation| !moved.contains(&(o.customer_id.as_str(), o.provider_id.as_str()));
    let mut providers: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    let mut notable: BTreeMap<(String, String), Observation> = BTreeMap::new();
    for (p, mp) in &m.providers {
        let listed: Vec<&Observation> = m.oldest.iter().filter(|o| o.provider_id == *p).collect();
        let complete = u64::try_from(listed.len()).ok() == Some(mp.pairs);
        let kept: Vec<&Observation> = listed.iter().copied().filter(stays).collect();
        match kept.first() {
            Some(first) => {
                providers.insert(p.clone(), first.observed_at);
            }
            None if !complete => return None,
            None => {}
        }
        // A pair not listed was last observed after `listed_to`: no gap if that is none.
        if !complete && mp.listed_to.is_none_or(|t| is_gap(at, t, max_gap)) {
            return None;
        }
        for o in kept
            .into_iter()
            .filter(|o| is_gap(at, o.observed_at, max_gap))
        {
            notable.insert(key(o), o.clone());
        }
    }
    for o in m.rejected.iter().filter(stays) {
        notable.insert(key(o), o.clone());
    }
    for s in since {
        let o = &s.obs;
        let e = providers
            .entry(o.provider_id.clone())
            .or_insert(o.observed_at);
        *e = (*e).min(o.observed_at);
        if is_gap(at, o.observed_at, max_gap) || !o.rejected.is_empty() {
            notable.insert(key(o), o.clone());
        }
    }
    let mut unobserved = unobserved;
    unobserved.sort();
    Some(ObservedSummary {
        providers: providers.into_iter().collect(),
        customers: m.customers + new_customers,
        newest: since
            .iter()
            .map(|s| s.obs.observed_at)
            .chain(m.newest)
            .max(),
        notable: notable.into_values().collect(),
        unobserved,
    })
}

/// The pairs observed since the mark: their listed observations are no longer their last.
fn moved(since: &[Since]) -> BTreeSet<(&str, &str)> {
    since
        .iter()
        .map(|s| (s.obs.customer_id.as_str(), s.obs.provider_id.as_str()))
        .collect()
}

fn key(o: &Observation) -> (String, String) {
    (o.customer_id.clone(), o.provider_id.clone())
}

/// The mark after `m` given the pairs observed since (`since`, one per pair, up to the new
/// mark's instant), the customers observed by then, and the next-oldest pairs per provider
/// after its `listed_to` (`more`, read by the caller once it knows what is missing:
/// [`missing`]).
pub(crate) fn next_mark(
    m: &Mark,
    since: &[Since],
    customers: u64,
    more: &BTreeMap<String, (Vec<Observation>, Option<DateTime<Utc>>)>,
    rejected_cap: usize,
) -> Mark {
    let moved = moved(since);
    let stays =
        |o: &&Observation| !moved.contains(&(o.customer_id.as_str(), o.provider_id.as_str()));
    let mut providers = m.providers.clone();
    for s in since.iter().filter(|s| !s.pair_seen) {
        providers
            .entry(s.obs.provider_id.clone())
            .or_default()
            .pairs += 1;
    }
    let mut oldest: Vec<Observation> = m.oldest.iter().filter(stays).cloned().collect();
    for (p, (extra, listed_to)) in more {
        oldest.extend(extra.iter().cloned());
        if let Some(mp) = providers.get_mut(p) {
            mp.listed_to = *listed_to;
        }
    }
    oldest.sort_by(|a, b| {
        (&a.provider_id, a.observed_at, &a.customer_id).cmp(&(
            &b.provider_id,
            b.observed_at,
            &b.customer_id,
        ))
    });
    let mut rejected: Vec<Observation> = m.rejected.iter().filter(stays).cloned().collect();
    rejected.extend(
        since
            .iter()
            .filter(|s| !s.obs.rejected.is_empty())
            .map(|s| s.obs.clone()),
    );
    rejected.sort_by_key(key);
    let rejected_complete = m.rejected_complete && rejected.len() <= rejected_cap;
    if !rejected_complete {
        rejected.clear();
    }
    Mark {
        customers,
        newest: since
            .iter()
            .map(|s| s.obs.observed_at)
            .chain(m.newest)
            .max(),
        providers,
        oldest,
        rejected,
        rejected_complete,
    }
}

/// What the mark after `m` must add to a provider's list of oldest pairs (after those observed
/// since are dropped from it): pairs last observed after `after`, at least `at_least` of them,
/// and every one up to `through` (two steps after the oldest left; `None`: none is left, so two
/// steps after the first found).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Need {
    pub after: Option<DateTime<Utc>>,
    pub at_least: usize,
    pub through: Option<DateTime<Utc>>,
}

/// Per provider, what the mark after `m` (at `m_at`, `None` for none) must add to its list;
/// providers whose list still holds enough are left out.
pub(crate) fn missing(
    m: &Mark,
    m_at: Option<DateTime<Utc>>,
    since: &[Since],
    step: TimeDelta,
) -> BTreeMap<String, Need> {
    let moved = moved(since);
    let mut kept: BTreeMap<&str, (usize, DateTime<Utc>)> = BTreeMap::new();
    for o in &m.oldest {
        if !moved.contains(&(o.customer_id.as_str(), o.provider_id.as_str())) {
            let e = kept.entry(&o.provider_id).or_insert((0, o.observed_at));
            e.0 += 1;
            e.1 = e.1.min(o.observed_at);
        }
    }
    let mut providers: BTreeSet<&str> = m.providers.keys().map(String::as_str).collect();
    providers.extend(since.iter().map(|s| s.obs.provider_id.as_str()));
    let twice = step + step;
    providers
        .into_iter()
        .filter_map(|p| {
            let (n, first) = kept.get(p).map_or((0, None), |(n, f)| (*n, Some(*f)));
            // With no pair of the provider by the mark, its pairs were first observed after it.
            let after = m.providers.get(p).and_then(|mp| mp.listed_to).or(m_at);
            let through = first.and_then(|f| f.checked_add_signed(twice));
            let enough = n >= LISTED && through.is_some_and(|t| after.is_some_and(|a| a >= t));
            (!enough).then(|| {
                let need = Need {
                    after,
                    at_least: LISTED.saturating_sub(n),
                    through,
                };
                (p.to_owned(), need)
            })
        })
        .collect()
}
