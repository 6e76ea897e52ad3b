//! Alerts' types (DESIGN.md "Push", Alerts): a balance query and a bound; `threshold.crossed`
//! is written once per crossing. What is a crossing is decided here, once, for both backends
//! ([`evaluate`]); the backends only compare-and-set the alert's state ([`AlertUpdate`]), so
//! two replicas evaluating the same alert at once write one crossing, never two.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::events::{EventType, NewEvent};
use crate::{Result, StoreError};

/// Which side of the bound is the alerted one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The total is strictly below the bound.
    Below,
    /// The total is strictly above the bound.
    Above,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Below => "below",
            Direction::Above => "above",
        }
    }

    pub(crate) fn stored(s: &str) -> Result<Self> {
        match s {
            "below" => Ok(Direction::Below),
            "above" => Ok(Direction::Above),
            _ => Err(StoreError::Corrupt(format!(
                "unknown alert direction `{s}`"
            ))),
        }
    }

    /// Whether `total` is on the alerted side of `bound`.
    pub fn holds(self, total: Decimal, bound: Decimal) -> bool {
        match self {
            Direction::Below => total < bound,
            Direction::Above => total > bound,
        }
    }
}

/// An alert to create (the server makes its id and validates its query).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlert {
    pub id: String,
    pub name: String,
    /// The balance endpoint's parameters, as given (parsed again at each evaluation).
    pub query: String,
    /// The query's `customer_id`; `None`: every customer.
    pub customer_id: Option<String>,
    pub direction: Direction,
    pub bound: Decimal,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub id: String,
    pub name: String,
    pub query: String,
    pub customer_id: Option<String>,
    pub direction: Direction,
    pub bound: Decimal,
    pub created_at: DateTime<Utc>,
    /// The last event id the evaluation has followed.
    pub cursor: i64,
    /// Whether the total was on the alerted side at the last evaluation; `None`: never
    /// evaluated.
    pub triggered: Option<bool>,
    /// The total at the last evaluation (in the query's currency).
    pub last_total: Option<Decimal>,
    pub evaluated_at: Option<DateTime<Utc>>,
    /// Bumped by every evaluation written: the compare-and-set's token.
    pub version: i64,
}

/// An evaluation's result, written only if the alert is still at `version`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertUpdate {
    pub id: String,
    pub version: i64,
    pub cursor: i64,
    pub triggered: bool,
    pub total: Decimal,
    pub evaluated_at: DateTime<Utc>,
    /// `threshold.crossed`, written in the same transaction when the alert crossed.
    pub event: Option<NewEvent>,
}

/// What one evaluation of `alert` with `total` gives: the update to compare-and-set, with the
/// crossing's event when the total entered the alerted side since the last evaluation. The
/// first evaluation records the side without an event (there is no crossing without a before),
/// and leaving the alerted side re-arms the alert silently. `data` is what the event carries
/// besides the alert and bound (the total, its currency, the rates used).
pub fn evaluate(
    alert: &Alert,
    total: Decimal,
    cursor: i64,
    at: DateTime<Utc>,
    data: serde_json::Map<String, Value>,
) -> AlertUpdate {
    let triggered = alert.direction.holds(total, alert.bound);
    let crossed = alert.triggered == Some(false) && triggered;
    let event = crossed.then(|| {
        let mut d = serde_json::Map::new();
        d.insert("alert_id".into(), Value::String(alert.id.clone()));
        d.insert("name".into(), Value::String(alert.name.clone()));
        d.insert("query".into(), Value::String(alert.query.clone()));
        d.insert(
            alert.direction.as_str().into(),
            Value::String(alert.bound.to_string()),
        );
        d.insert("total".into(), Value::String(total.to_string()));
        if let Some(before) = alert.last_total {
            d.insert("before".into(), Value::String(before.to_string()));
        }
        d.extend(data);
        NewEvent {
            kind: EventType::ThresholdCrossed,
            occurred_at: at,
            customer_id: alert.customer_id.clone().unwrap_or_else(|| ALL.into()),
            provider_id: ALL.into(),
            account_id: None,
            data: Value::Object(d),
        }
    });
    AlertUpdate {
        id: alert.id.clone(),
        version: alert.version,
        cursor,
        triggered,
        total,
        evaluated_at: at,
        event,
    }
}

/// The customer and provider of an event about every customer or every provider.
pub const ALL: &str = "*";

impl From<Alert> for NewAlert {
    fn from(a: Alert) -> Self {
        NewAlert {
            id: a.id,
            name: a.name,
            query: a.query,
            customer_id: a.customer_id,
            direction: a.direction,
            bound: a.bound,
            created_at: a.created_at,
        }
    }
}

/// The alert as the audit log keeps it.
pub(crate) fn audited(a: &NewAlert) -> Value {
    serde_json::json!({
        "id": a.id,
        "name": a.name,
        "query": a.query,
        a.direction.as_str(): a.bound.to_string(),
    })
}

pub(crate) fn decimal(s: &str) -> Result<Decimal> {
    s.parse()
        .map_err(|e| StoreError::Corrupt(format!("alert amount `{s}`: {e}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn alert(direction: Direction, triggered: Option<bool>) -> Alert {
        Alert {
            id: "al_1".into(),
            name: "low".into(),
            query: "customer_id=c1".into(),
            customer_id: Some("c1".into()),
            direction,
            bound: "100".parse().unwrap(),
            created_at: Utc::now(),
            cursor: 0,
            triggered,
            last_total: None,
            evaluated_at: None,
            version: 3,
        }
    }

    fn run(a: &Alert, total: &str) -> AlertUpdate {
        evaluate(a, total.parse().unwrap(), 9, Utc::now(), Default::default())
    }

    #[test]
    fn fires_on_entering_the_alerted_side_only() {
        let below = alert(Direction::Below, Some(false));
        let u = run(&below, "99.99");
        assert!(u.triggered);
        let e = u.event.unwrap();
        assert_eq!(e.kind, EventType::ThresholdCrossed);
        assert_eq!(e.data["total"], "99.99");
        assert_eq!(e.data["below"], "100");
        assert_eq!(u.version, 3);
        // Exactly at the bound is not below it.
        assert!(run(&below, "100").event.is_none());
        // Already below: no second event; going back up re-arms silently.
        assert!(
            run(&alert(Direction::Below, Some(true)), "50")
                .event
                .is_none()
        );
        let up = run(&alert(Direction::Below, Some(true)), "150");
        assert!(!up.triggered && up.event.is_none());
        // The first evaluation records the side only.
        let first = run(&alert(Direction::Below, None), "1");
        assert!(first.triggered && first.event.is_none());
    }

    #[test]
    fn above_is_strict() {
        let a = alert(Direction::Above, Some(false));
        assert!(run(&a, "100").event.is_none());
        assert!(run(&a, "100.000001").event.is_some());
        assert_eq!(run(&a, "100.01").event.unwrap().customer_id, "c1");
    }
}
