//! Subscriptions' types (DESIGN.md "Push", Subscriptions): events fanned out from the outbox
//! into one delivery per (subscription, event), each attempted under a lease by one replica.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::events::{Event, EventType};
use crate::{Result, StoreError};

/// A subscription to create (the server makes its id and secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubscription {
    pub id: String,
    pub url: String,
    /// Empty: every type.
    pub types: Vec<EventType>,
    pub customer_id: Option<String>,
    /// `whsec_<base64>`.
    pub secret: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    pub url: String,
    pub types: Vec<EventType>,
    pub customer_id: Option<String>,
    pub secret: String,
    pub created_at: DateTime<Utc>,
    /// The last event id fanned out into deliveries (it starts at the newest event at creation:
    /// a subscription receives what happens after it was made).
    pub cursor: i64,
    /// Since when its deliveries fail without a success in between.
    pub failing_since: Option<DateTime<Utc>>,
    /// Disabled after failing for the configured time: nothing more is delivered.
    pub disabled_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// To attempt (again) at `next_attempt_at`.
    Pending,
    Delivered,
    /// Given up: its subscription was disabled.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    pub(crate) fn stored(s: &str) -> Result<Self> {
        Ok(match s {
            "pending" => DeliveryState::Pending,
            "delivered" => DeliveryState::Delivered,
            "failed" => DeliveryState::Failed,
            _ => return Err(StoreError::Corrupt(format!("unknown delivery state `{s}`"))),
        })
    }
}

/// One event's delivery to one subscription: the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub subscription_id: String,
    pub event_id: i64,
    pub state: DeliveryState,
    /// Attempts made (counted when leased).
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    /// The receiver's HTTP status of the last attempt, if it answered.
    pub last_status: Option<u16>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A delivery leased for one attempt, with what sending it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct LeasedDelivery {
    pub delivery: Delivery,
    pub url: String,
    pub secret: String,
    pub event: Event,
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptOutcome {
    pub delivered: bool,
    pub status: Option<u16>,
    pub error: Option<String>,
    /// When to try again if it failed.
    pub retry_at: DateTime<Utc>,
    /// A subscription failing for this long is disabled (and this delivery given up).
    pub disable_after: Duration,
}

pub(crate) fn types_json(types: &[EventType]) -> String {
    let v: Vec<String> = types.iter().map(|t| t.as_str().to_owned()).collect();
    crate::rows::strings_json(&v)
}

pub(crate) fn types(s: &str) -> Result<Vec<EventType>> {
    crate::rows::strings(s)?
        .iter()
        .map(|t| EventType::stored(t))
        .collect()
}

/// When a subscription failing since `since` is to be disabled, at `now`.
pub(crate) fn expired(
    since: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    disable_after: Duration,
) -> bool {
    let after = chrono::Duration::from_std(disable_after).unwrap_or(chrono::Duration::MAX);
    since.is_some_and(|s| now.signed_duration_since(s) >= after)
}

/// The subscription as the audit log keeps it: never its secret.
pub(crate) fn audited(s: &Subscription) -> serde_json::Value {
    serde_json::json!({
        "id": s.id,
        "url": s.url,
        "types": s.types.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        "customer_id": s.customer_id,
    })
}
