//! The outbox's types (DESIGN.md "Push", Out): each change Coffer observes becomes an event,
//! written in the same transaction as the snapshot (or sync outcome) that shows it.
//!
//! What is an event is decided here, once, for both backends: [`account_events`] from a
//! snapshot's plan, [`sync_event`] from a pair's failure counter before and after an outcome.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use coffer_core::Account;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::{Result, Scope, StoreError};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// An open account's balance differs from the last snapshot's.
    BalanceChanged,
    /// An account seen for the first time (or again after it was closed, or under a new pair).
    AccountOpened,
    /// An account absent from its pair's latest snapshot.
    AccountClosed,
    /// A pair's first failure after a success.
    SyncFailed,
    /// A pair's first success after a [`EventType::SyncFailed`].
    SyncRecovered,
    /// An alert's total entered the alerted side of its bound (`crate::alerts`).
    ThresholdCrossed,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        EventType::BalanceChanged,
        EventType::AccountOpened,
        EventType::AccountClosed,
        EventType::SyncFailed,
        EventType::SyncRecovered,
        EventType::ThresholdCrossed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::BalanceChanged => "balance.changed",
            EventType::AccountOpened => "account.opened",
            EventType::AccountClosed => "account.closed",
            EventType::SyncFailed => "sync.failed",
            EventType::SyncRecovered => "sync.recovered",
            EventType::ThresholdCrossed => "threshold.crossed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    pub(crate) fn stored(s: &str) -> Result<Self> {
        Self::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown event type `{s}`")))
    }
}

/// An event to write.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub kind: EventType,
    pub occurred_at: DateTime<Utc>,
    pub customer_id: String,
    pub provider_id: String,
    pub account_id: Option<String>,
    /// Money as JSON strings (exact).
    pub data: Value,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Increasing, in commit order: the cursor.
    pub id: i64,
    pub kind: EventType,
    pub occurred_at: DateTime<Utc>,
    pub customer_id: String,
    pub provider_id: String,
    pub account_id: Option<String>,
    pub data: Value,
}

impl Event {
    pub(crate) fn from_cols(c: EventCols) -> Result<Self> {
        Ok(Event {
            id: c.id,
            kind: EventType::stored(&c.kind)?,
            occurred_at: c.occurred_at,
            customer_id: c.customer_id,
            provider_id: c.provider_id,
            account_id: c.account_id,
            data: serde_json::from_str(&c.data)
                .map_err(|e| StoreError::Corrupt(format!("event {} data: {e}", c.id)))?,
        })
    }
}

/// A stored event's columns, as both backends read them.
pub(crate) struct EventCols {
    pub id: i64,
    pub kind: String,
    pub occurred_at: DateTime<Utc>,
    pub customer_id: String,
    pub provider_id: String,
    pub account_id: Option<String>,
    pub data: String,
}

/// Which events a page holds: ids after `after`, ascending, at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter {
    pub scope: Scope,
    /// Empty: every type.
    pub types: Vec<EventType>,
    pub after: i64,
    pub limit: u32,
}

impl EventFilter {
    pub(crate) fn type_names(&self) -> Option<Vec<String>> {
        (!self.types.is_empty()).then(|| self.types.iter().map(|t| t.as_str().into()).collect())
    }
}

/// Wakes readers waiting for new events: the value is the newest event id this replica knows
/// was committed (a lower bound; readers always query from their own cursor). Bumped after this
/// replica's own commits, and on PostgreSQL also by the change listener when another replica
/// announces events (`NOTIFY coffer_events`). Also counts the events this replica wrote.
#[derive(Debug, Clone)]
pub(crate) struct EventWake(Arc<WakeInner>);

#[derive(Debug)]
struct WakeInner {
    newest: watch::Sender<i64>,
    written: [AtomicU64; EventType::ALL.len()],
}

impl Default for EventWake {
    fn default() -> Self {
        EventWake(Arc::new(WakeInner {
            newest: watch::channel(0).0,
            written: Default::default(),
        }))
    }
}

impl EventWake {
    /// This replica committed `events`, the newest of them `newest` (`None`: none written).
    pub fn wrote(&self, newest: Option<i64>, events: &[NewEvent]) {
        let Some(id) = newest else { return };
        for e in events {
            self.0.written[e.kind as usize].fetch_add(1, Ordering::Relaxed);
        }
        self.committed(id);
    }

    /// Events up to `id` are committed (by any replica).
    pub fn committed(&self, id: i64) {
        self.0.newest.send_if_modified(|v| {
            let newer = id > *v;
            if newer {
                *v = id;
            }
            newer
        });
    }

    /// Anything may have been committed (notifications were lost): wake every reader.
    pub fn anything(&self) {
        self.0.newest.send_modify(|_| {});
    }

    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.0.newest.subscribe()
    }

    /// Events this replica wrote, per type, since it started.
    pub fn written(&self) -> Vec<(EventType, u64)> {
        EventType::ALL
            .into_iter()
            .map(|t| (t, self.0.written[t as usize].load(Ordering::Relaxed)))
            .collect()
    }
}

fn event(kind: EventType, a: &Account, at: DateTime<Utc>, data: Value) -> NewEvent {
    NewEvent {
        kind,
        occurred_at: at,
        customer_id: a.customer_id.clone(),
        provider_id: a.provider_id.clone(),
        account_id: Some(a.id.clone()),
        data,
    }
}

/// An account first seen (or seen again) in a snapshot.
pub(crate) fn opened(a: &Account, at: DateTime<Utc>) -> NewEvent {
    let data = json!({
        "currency": a.currency.code(),
        "balance": a.balance.to_string(),
        "status": a.status.as_str(),
        "observed_at": at,
    });
    event(EventType::AccountOpened, a, at, data)
}

/// An account absent from its pair's snapshot: its last known balance.
pub(crate) fn closed(a: &Account, at: DateTime<Utc>) -> NewEvent {
    let data = json!({
        "currency": a.currency.code(),
        "balance": a.balance.to_string(),
        "observed_at": at,
    });
    event(EventType::AccountClosed, a, at, data)
}

/// `old`'s balance became `new`'s (compared as numbers: a scale change alone is no event, as it
/// writes no history row).
pub(crate) fn balance_changed(old: &Account, new: &Account, at: DateTime<Utc>) -> NewEvent {
    let data = json!({
        "currency": new.currency.code(),
        "before": old.balance.to_string(),
        "after": new.balance.to_string(),
        "observed_at": at,
    });
    event(EventType::BalanceChanged, new, at, data)
}

/// A pair's sync state before an outcome, as its transition event needs it.
#[derive(Debug, Clone)]
pub(crate) struct PairBefore {
    pub customer_id: String,
    pub provider_id: String,
    pub failures: i64,
    pub last_success: Option<DateTime<Utc>>,
    pub last_error_at: Option<DateTime<Utc>>,
}

/// The transition event of one recorded outcome, if it is one: `sync.failed` on the first
/// failure after a success, `sync.recovered` on the first success after such a failure (a pair
/// that never succeeded has nothing to recover from, so its failures are no event either).
pub(crate) fn sync_event(
    before: &PairBefore,
    failure: Option<(&str, &str)>,
    now: DateTime<Utc>,
) -> Option<NewEvent> {
    let last_success = before.last_success?;
    let (kind, data) = match failure {
        Some((kind, message)) if before.failures == 0 => (
            EventType::SyncFailed,
            json!({"error_kind": kind, "error": message, "last_success": last_success}),
        ),
        None if before.failures > 0 => (
            EventType::SyncRecovered,
            json!({"failures": before.failures, "last_error_at": before.last_error_at}),
        ),
        _ => return None,
    };
    Some(NewEvent {
        kind,
        occurred_at: now,
        customer_id: before.customer_id.clone(),
        provider_id: before.provider_id.clone(),
        account_id: None,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn before(failures: i64, success: bool) -> PairBefore {
        PairBefore {
            customer_id: "c".into(),
            provider_id: "p".into(),
            failures,
            last_success: success.then(Utc::now),
            last_error_at: None,
        }
    }

    #[test]
    fn transitions_only() {
        let now = Utc::now();
        let fail = Some(("unavailable", "down"));
        let kind = |b: &PairBefore, f| sync_event(b, f, now).map(|e| e.kind);
        assert_eq!(kind(&before(0, true), fail), Some(EventType::SyncFailed));
        assert_eq!(kind(&before(1, true), fail), None);
        assert_eq!(kind(&before(0, false), fail), None);
        assert_eq!(kind(&before(3, true), None), Some(EventType::SyncRecovered));
        assert_eq!(kind(&before(0, true), None), None);
        assert_eq!(kind(&before(3, false), None), None);
    }

    #[test]
    fn types_round_trip() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::parse("balance"), None);
    }
}
