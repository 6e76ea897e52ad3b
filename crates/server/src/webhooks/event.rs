//! What a P100 delivery says, read from its raw body. P100's documentation (DESIGN.md "What the
//! providers really do") gives two shapes: the user-status webhook
//! `{"externalUserId", "status"}` and events `{"event_type", "data": {…}}`. An event names a
//! user by the partner's id, `externalUserId` (the one Coffer links), in `data` or at the top
//! level; P100's own `userId` is not a link's id and names no link. Amounts in `data` are
//! hints and are never read.

use serde_json::Value;

/// A delivery, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The user-status webhook.
    UserStatus { external_id: String, status: String },
    /// An event naming a user: the pair is refreshed.
    ForUser {
        event_type: String,
        external_id: String,
    },
    /// Kept and ignored, with the reason.
    Ignored(String),
}

pub fn classify(body: &[u8]) -> Event {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Event::Ignored("malformed JSON".into());
    };
    let Some(obj) = v.as_object() else {
        return Event::Ignored("not a JSON object".into());
    };
    let user = |o: &serde_json::Map<String, Value>| {
        o.get("externalUserId")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    if let Some(event_type) = obj.get("event_type").and_then(Value::as_str) {
        let named = obj
            .get("data")
            .and_then(Value::as_object)
            .and_then(user)
            .or_else(|| user(obj));
        return match named {
            Some(external_id) => Event::ForUser {
                event_type: event_type.to_owned(),
                external_id,
            },
            None => Event::Ignored(format!("event `{event_type}` names no user")),
        };
    }
    match (user(obj), obj.get("status").and_then(Value::as_str)) {
        (Some(external_id), Some(status)) => Event::UserStatus {
            external_id,
            status: status.to_owned(),
        },
        _ => Event::Ignored("unknown event".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p100_shapes_are_recognised() {
        assert_eq!(
            classify(br#"{"externalUserId": "u1", "status": "ACTIVE"}"#),
            Event::UserStatus {
                external_id: "u1".into(),
                status: "ACTIVE".into()
            }
        );
        assert_eq!(
            classify(
                br#"{"event_type": "crypto_deposit.status_changed",
                     "data": {"externalUserId": "u2", "amount": "0.05", "currency": "btc"}}"#
            ),
            Event::ForUser {
                event_type: "crypto_deposit.status_changed".into(),
                external_id: "u2".into()
            }
        );
    }

    #[test]
    fn anything_else_is_ignored_with_a_reason() {
        let reason = |b: &[u8]| match classify(b) {
            Event::Ignored(r) => r,
            other => panic!("{other:?}"),
        };
        assert_eq!(reason(b"{not json"), "malformed JSON");
        assert_eq!(reason(b"[1]"), "not a JSON object");
        assert_eq!(reason(br#"{"hello": 1}"#), "unknown event");
        assert!(
            reason(br#"{"event_type": "card.x", "data": {"userId": "p100-internal"}}"#)
                .contains("names no user")
        );
    }
}
