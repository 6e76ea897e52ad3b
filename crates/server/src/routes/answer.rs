//! Pieces shared by the answers: freshness (`as_of`, `stale`, `partial`, `warnings`) and the
//! account body.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::fresh::{CustomerView, ProviderState, age};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProviderAsOf {
    pub provider: String,
    /// When the served data was fetched from the provider; null if never.
    pub as_of: Option<DateTime<Utc>>,
    /// `fresh`, `stale` or `missing`.
    pub state: &'static str,
}

/// A reason the answer is not fresh and complete. Names the provider, the error and the age.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Warning {
    /// `stale`, `missing`, `rejected_balance` or `store_unavailable`; at a past instant (`at`)
    /// also `gap` (last observed longer than `history.max_gap` before it), `no_data`, and
    /// `unsettled` (less than `history.settle` ago: the answer may still change).
    pub code: &'static str,
    pub provider: Option<String>,
    pub customer_id: Option<String>,
    /// The provider error's kind (`timeout`, `unavailable`, …).
    pub error: Option<String>,
    pub message: String,
    /// Age in seconds of the data served, when there is data.
    pub age_seconds: Option<i64>,
}

/// Freshness over the views an answer is built from.
#[derive(Debug, Default, Clone)]
pub struct Freshness {
    pub as_of: Vec<ProviderAsOf>,
    pub stale: bool,
    pub partial: bool,
    pub warnings: Vec<Warning>,
}

/// Summarises views: per provider the oldest data served (so `as_of` never overstates
/// freshness), stale/partial flags, and one warning per failing (customer, provider).
pub fn freshness_of(views: &[std::sync::Arc<CustomerView>]) -> Freshness {
    let mut out = Freshness::default();
    let mut per_provider: BTreeMap<String, (Option<DateTime<Utc>>, &'static str)> = BTreeMap::new();
    for v in views {
        if v.store_unavailable {
            out.stale = true;
            out.warnings.push(Warning {
                code: "store_unavailable",
                provider: None,
                customer_id: Some(v.customer_id.clone()),
                error: Some("store_unavailable".into()),
                message: "the database is unavailable; answering from memory".into(),
                age_seconds: Some(
                    i64::try_from(v.loaded_at.elapsed().as_secs()).unwrap_or(i64::MAX),
                ),
            });
        }
        for p in &v.providers {
            let state = match &p.state {
                ProviderState::Fresh => "fresh",
                ProviderState::Stale(_) => "stale",
                ProviderState::Missing(_) => "missing",
            };
            let entry = per_provider
                .entry(p.provider_id.clone())
                .or_insert((p.as_of, state));
            entry.0 = match (entry.0, p.as_of) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if rank(state) > rank(entry.1) {
                entry.1 = state;
            }
            let age_seconds = p
                .as_of
                .map(|t| i64::try_from(age(t).as_secs()).unwrap_or(i64::MAX));
            match &p.state {
                ProviderState::Fresh => {}
                ProviderState::Stale(e) => {
                    out.stale = true;
                    out.warnings.push(Warning {
                        code: "stale",
                        provider: Some(p.provider_id.clone()),
                        customer_id: Some(v.customer_id.clone()),
                        error: Some(e.kind.as_str().into()),
                        message: format!(
                            "provider {} failed ({}); serving data from {}s ago",
                            p.provider_id,
                            e.kind,
                            age_seconds.unwrap_or(0)
                        ),
                        age_seconds,
                    });
                }
                ProviderState::Missing(e) => {
                    out.partial = true;
                    out.warnings.push(Warning {
                        code: "missing",
                        provider: Some(p.provider_id.clone()),
                        customer_id: Some(v.customer_id.clone()),
                        error: Some(e.kind.as_str().into()),
                        message: format!(
                            "provider {} failed ({}) and no recent data is stored; its accounts are left out",
                            p.provider_id, e.kind
                        ),
                        age_seconds,
                    });
                }
            }
            for r in &p.rejected {
                // A balance left out makes the totals incomplete: say so.
                out.partial = true;
                out.warnings.push(Warning {
                    code: "rejected_balance",
                    provider: Some(p.provider_id.clone()),
                    customer_id: Some(v.customer_id.clone()),
                    error: None,
                    message: format!("a balance could not be read and is left out: {r}"),
                    age_seconds,
                });
            }
        }
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

fn rank(state: &str) -> u8 {
    match state {
        "fresh" => 0,
        "stale" => 1,
        _ => 2,
    }
}
