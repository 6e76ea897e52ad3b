//! `GET /v2/sync/status` (admin): per provider its breaker, quota headroom, linked pairs by
//! sync state, the age of their observations and the last webhook received; then the failing
//! pairs, worst first. What an operator (and the console's sync health page) looks at first.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use coffer_store::{FailingPair, PairStats, SyncStatus};
use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiResult, ErrorBody};
use crate::provider::{BreakerState, Headroom};
use crate::state::AppState;

/// The failing pairs listed, at most (the counts per provider cover them all).
pub const FAILING_SHOWN: u32 = 100;

#[derive(Debug, Serialize, ToSchema)]
pub struct SyncStatusOut {
    /// The instant the ages are measured from.
    pub now: DateTime<Utc>,
    /// Configured providers by id, then any provider the store still has pairs of.
    pub providers: Vec<ProviderStatusOut>,
    /// Failing pairs, worst first: most consecutive failures, then never succeeded, then the
    /// longest since a success. At most 100.
    pub failing: Vec<FailingOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderStatusOut {
    pub provider: String,
    /// The provider's kind; null when it is not configured (pairs left in the store).
    pub kind: Option<String>,
    /// `closed`, `open` or `half_open` on this replica; null when not configured.
    #[schema(pattern = "^(closed|open|half_open)$")]
    pub breaker: Option<String>,
    /// The provider's quota on this replica; null when not configured.
    pub quota: Option<QuotaOut>,
    pub pairs: PairsOut,
    /// Age of each linked pair's latest observation; null when none was observed.
    pub lag: Option<LagOut>,
    /// When the newest webhook delivery from this provider was kept; null if none ever was.
    pub last_webhook_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QuotaOut {
    /// `rate_limit`: calls per second for the whole deployment; 0 = unlimited.
    pub rate_limit: u32,
    /// This replica's share, calls per second (exact decimal); null when unlimited.
    #[schema(value_type = Option<String>, example = "2.5")]
    pub share_per_second: Option<String>,
    /// Calls' worth available now (at most 1: the share is spread evenly); null when
    /// unlimited.
    #[schema(value_type = Option<String>, example = "1")]
    pub available: Option<String>,
    /// Milliseconds until the next call may go; 0 when it may go now.
    pub ready_in_ms: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PairsOut {
    /// Linked (customer, provider) pairs.
    pub total: u64,
    /// Due now and not leased.
    pub due: u64,
    /// Being fetched (a live lease).
    pub leased: u64,
    /// Whose last sync failed.
    pub failing: u64,
    /// Linked but never observed.
    pub never_observed: u64,
}

/// Ages in whole seconds, at the nearest rank (rank ⌈p·n⌉ of the ages in ascending order).
#[derive(Debug, Serialize, ToSchema)]
pub struct LagOut {
    pub p50_seconds: i64,
    pub p99_seconds: i64,
    pub max_seconds: i64,
    /// The oldest latest observation.
    pub oldest_observation: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FailingOut {
    pub customer_id: String,
    pub provider: String,
    /// Consecutive failures.
    pub failures: u32,
    /// The last error's kind (`unavailable`, `timeout`, `unknown_customer`, …).
    pub last_error_kind: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    /// Null: it never succeeded.
    pub last_success: Option<DateTime<Utc>>,
    /// Its first failure after its last success; null when it never succeeded (failing since
    /// it was linked) or that event was pruned.
    pub failing_since: Option<DateTime<Utc>>,
}

/// The sync health of every provider, and the failing pairs.
#[utoipa::path(get, path = "/v2/sync/status", tag = "ops",
    responses((status = 200, body = SyncStatusOut), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn status(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<SyncStatusOut>> {
    caller.require_admin()?;
    let now = Utc::now();
    let stored = state.store.sync_status(now, FAILING_SHOWN).await?;
    let mut providers = Vec::new();
    let mut ids: Vec<&str> = state.providers.ids().collect();
    ids.sort_unstable();
    for id in ids {
        let Some(stack) = state.providers.get(id) else {
            continue;
        };
        let mut out = provider_out(id, &stored, now);
        out.kind = Some(stack.kind().to_owned());
        out.breaker = Some(breaker(stack.breaker_state()).to_owned());
        out.quota = Some(quota(stack.quota().headroom().await));
        providers.push(out);
    }
    for p in &stored.providers {
        if !state.providers.contains(&p.provider_id) {
            providers.push(provider_out(&p.provider_id, &stored, now));
        }
    }
    Ok(Json(SyncStatusOut {
        now,
        providers,
        failing: stored.failing.into_iter().map(failing).collect(),
    }))
}

fn breaker(s: BreakerState) -> &'static str {
    match s {
        BreakerState::Closed => "closed",
        BreakerState::Open => "open",
        BreakerState::HalfOpen => "half_open",
    }
}

fn quota(h: Headroom) -> QuotaOut {
    let calls = |milli: u64| Decimal::new(i64::try_from(milli).unwrap_or(i64::MAX), 3).normalize();
    QuotaOut {
        rate_limit: h.rate_limit,
        share_per_second: h.share_milli.map(|m| calls(m).to_string()),
        available: h.available_milli.map(|m| calls(m).to_string()),
        ready_in_ms: h
            .ready_in
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    }
}

/// The store's part of one provider's status (zeros when it has no pairs).
fn provider_out(id: &str, stored: &SyncStatus, now: DateTime<Utc>) -> ProviderStatusOut {
    let stats = stored.providers.iter().find(|p| p.provider_id == id);
    let age = |t: DateTime<Utc>| (now - t).num_seconds().max(0);
    let pairs = stats.map_or(
        PairsOut {
            total: 0,
            due: 0,
            leased: 0,
            failing: 0,
            never_observed: 0,
        },
        |s: &PairStats| PairsOut {
            total: s.total,
            due: s.due,
            leased: s.leased,
            failing: s.failing,
            never_observed: s.never_observed,
        },
    );
    ProviderStatusOut {
        provider: id.to_owned(),
        kind: None,
        breaker: None,
        quota: None,
        pairs,
        lag: stats.and_then(|s| s.lag).map(|l| LagOut {
            p50_seconds: age(l.p50),
            p99_seconds: age(l.p99),
            max_seconds: age(l.oldest),
            oldest_observation: l.oldest,
        }),
        last_webhook_at: stored
            .last_webhooks
            .iter()
            .find(|(p, _)| p == id)
            .map(|(_, at)| *at),
    }
}

fn failing(f: FailingPair) -> FailingOut {
    FailingOut {
        customer_id: f.customer_id,
        provider: f.provider_id,
        failures: f.failures,
        last_error_kind: f.last_error_kind,
        last_error_at: f.last_error_at,
        last_success: f.last_success,
        failing_since: f.failing_since,
    }
}
