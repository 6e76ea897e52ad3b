//! The audit log's types and its hash chain (DESIGN.md "Exports, balance types, audit").
//!
//! Every admin change is appended in the same transaction as the change; every all-customer
//! read and export on its own. Each entry holds the SHA-256 of its fields and of the entry
//! before it, so an entry edited, removed or inserted behind Coffer's back breaks the chain at
//! that point, and [`verify`] names it. What the chain does not prove (a database
//! administrator can rewrite the whole chain) is in docs/operations.md.

use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who makes a change: the API key's id (never the key) and the request, or a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub key_id: String,
    pub request_id: Option<String>,
}

impl Actor {
    pub fn key(key_id: &str, request_id: Option<&str>) -> Self {
        Actor {
            key_id: key_id.to_owned(),
            request_id: request_id.map(str::to_owned),
        }
    }

    /// Changes made by Coffer itself or through the store directly (tests, benchmarks).
    pub fn system() -> Self {
        Actor::key("system", None)
    }

    /// Changes made by a `coffer` command on the operator's shell.
    pub fn cli() -> Self {
        Actor::key("cli", None)
    }
}

/// What is appended: the action (`customer.create`, `key.revoke`, `read.accounts`, …), its
/// target (an id, or the request's path and query for a read), and for changes the state before
/// and after as JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAudit {
    pub action: String,
    pub target: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

impl NewAudit {
    pub fn new(action: &str, target: &str) -> Self {
        NewAudit {
            action: action.to_owned(),
            target: target.to_owned(),
            before: None,
            after: None,
        }
    }

    pub fn change(
        action: &str,
        target: &str,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) -> Self {
        NewAudit {
            before: before.map(|v| v.to_string()),
            after: after.map(|v| v.to_string()),
            ..NewAudit::new(action, target)
        }
    }
}

/// Manual rates as the audit log keeps them: `{currency: {"rate", "quote"}}`.
pub(crate) fn rates_json<C, Q, R>(rates: impl IntoIterator<Item = (C, Q, R)>) -> serde_json::Value
where
    C: Into<String>,
    Q: Into<String>,
    R: Into<String>,
{
    let map: serde_json::Map<String, serde_json::Value> = rates
        .into_iter()
        .map(|(c, q, r)| {
            let (q, r): (String, String) = (q.into(), r.into());
            (c.into(), serde_json::json!({"rate": r, "quote": q}))
        })
        .collect();
    serde_json::Value::Object(map)
}

/// One entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// 1, 2, 3, … without gaps: a missing number is a removed entry.
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub key_id: String,
    pub request_id: Option<String>,
    pub action: String,
    pub target: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditEntry {
    /// The entry that follows `(prev_seq, prev_hash)`, its hash computed.
    pub fn next(
        prev_seq: i64,
        prev_hash: &str,
        at: DateTime<Utc>,
        by: &Actor,
        a: NewAudit,
    ) -> Self {
        let mut e = AuditEntry {
            seq: prev_seq + 1,
            at,
            key_id: by.key_id.clone(),
            request_id: by.request_id.clone(),
            action: a.action,
            target: a.target,
            before: a.before,
            after: a.after,
            prev_hash: prev_hash.to_owned(),
            hash: String::new(),
        };
        e.hash = e.computed_hash();
        e
    }

    /// SHA-256 (hex) of the entry's fields and its `prev_hash`, as one JSON array: unambiguous
    /// whatever the fields hold.
    pub fn computed_hash(&self) -> String {
        let fields = serde_json::json!([
            self.seq,
            self.at.to_rfc3339_opts(SecondsFormat::Micros, true),
            self.key_id,
            self.request_id,
            self.action,
            self.target,
            self.before,
            self.after,
            self.prev_hash,
        ]);
        hex::encode(Sha256::digest(fields.to_string().as_bytes()))
    }
}

/// Where the chain first breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Broken {
    #[error("entry {seq}: its hash does not match its contents (the entry was edited)")]
    Edited { seq: i64 },
    #[error(
        "entry {seq}: it does not follow entry {prev} (an entry was removed, inserted or edited before it)"
    )]
    Unlinked { seq: i64, prev: i64 },
    #[error("entry {expected} is missing (the log jumps to {found})")]
    Missing { expected: i64, found: i64 },
    #[error(
        "the log ends at entry {last} but its head says {head} (entries were removed from the end, or the head was edited)"
    )]
    Truncated { head: i64, last: i64 },
}

/// Checks a run of entries in `seq` order that follows `(seq, hash)` (`(0, GENESIS)` for the
/// start of the log). Returns the last `(seq, hash)`, to check the next run from.
pub fn verify<'a>(
    entries: impl IntoIterator<Item = &'a AuditEntry>,
    from: (i64, String),
) -> Result<(i64, String), Broken> {
    let (mut seq, mut hash) = from;
    for e in entries {
        if e.seq != seq + 1 {
            return Err(Broken::Missing {
                expected: seq + 1,
                found: e.seq,
            });
        }
        if e.computed_hash() != e.hash {
            return Err(Broken::Edited { seq: e.seq });
        }
        if e.prev_hash != hash {
            return Err(Broken::Unlinked {
                seq: e.seq,
                prev: seq,
            });
        }
        (seq, hash) = (e.seq, e.hash.clone());
    }
    Ok((seq, hash))
}

/// Which entries to list, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only entries older than this `seq` (the cursor).
    pub before_seq: Option<i64>,
    /// An exact action, or a prefix ending in `.` (`customer.`).
    pub action: Option<String>,
    pub key_id: Option<String>,
    pub target: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: u32,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        for i in 0..n {
            let (seq, hash) = out
                .last()
                .map_or((0, GENESIS.to_owned()), |e| (e.seq, e.hash.clone()));
            let at = DateTime::from_timestamp(1_700_000_000 + i, 123_456_000).unwrap();
            let a = NewAudit::change(
                "customer.update",
                &format!("c{i}"),
                Some(serde_json::json!({"name": "before"})),
                Some(serde_json::json!({"name": "after"})),
            );
            out.push(AuditEntry::next(
                seq,
                &hash,
                at,
                &Actor::key("k1", Some("r1")),
                a,
            ));
        }
        out
    }

    #[test]
    fn an_intact_chain_verifies_and_continues() {
        let c = chain(5);
        let head = verify(&c[..3], (0, GENESIS.to_owned())).unwrap();
        assert_eq!(head.0, 3);
        assert_eq!(verify(&c[3..], head).unwrap().0, 5);
    }

    #[test]
    fn each_kind_of_tampering_is_named_at_its_entry() {
        let mut edited = chain(5);
        edited[2].after = Some("{\"name\":\"forged\"}".into());
        assert_eq!(
            verify(&edited, (0, GENESIS.to_owned())),
            Err(Broken::Edited { seq: 3 })
        );

        let mut removed = chain(5);
        removed.remove(1);
        assert_eq!(
            verify(&removed, (0, GENESIS.to_owned())),
            Err(Broken::Missing {
                expected: 2,
                found: 3
            })
        );

        // Rewritten with a fresh hash, but its successor still names the old one.
        let mut rehashed = chain(5);
        rehashed[1].target = "someone else".into();
        rehashed[1].hash = rehashed[1].computed_hash();
        assert_eq!(
            verify(&rehashed, (0, GENESIS.to_owned())),
            Err(Broken::Unlinked { seq: 3, prev: 2 })
        );
    }
}
