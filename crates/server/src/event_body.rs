//! An event as Coffer shows it: the body of `GET /v2/events` entries, of each SSE `data:` line
//! and of every webhook delivery. One type, so the API and the subscriptions cannot drift.

use chrono::{DateTime, Utc};
use coffer_store::Event;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// An event.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventOut {
    /// Increasing; also the cursor.
    pub id: i64,
    /// `balance.changed`, `account.opened`, `account.closed`, `sync.failed`, `sync.recovered`,
    /// `threshold.crossed`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When it happened: the snapshot's instant for account events, the outcome's for sync ones.
    pub occurred_at: DateTime<Utc>,
    pub customer_id: String,
    pub provider: String,
    /// For account events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// Per type; money as decimal strings. `balance.changed`: `currency`, `before`, `after`,
    /// `observed_at`.
    #[schema(value_type = Object)]
    pub data: Value,
}

impl From<Event> for EventOut {
    fn from(e: Event) -> Self {
        EventOut {
            id: e.id,
            kind: e.kind.as_str().to_owned(),
            occurred_at: e.occurred_at,
            customer_id: e.customer_id,
            provider: e.provider_id,
            account_id: e.account_id,
            data: e.data,
        }
    }
}
