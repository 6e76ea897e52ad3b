//! The opaque keyset cursor of the list endpoint.
//!
//! Format: URL-safe base64 (no padding) of a small JSON object
//! `{"v":1,"s":"<sort spec>","c":"<target currency>","k":[<key values>]}` holding the sort key of
//! the last account of the page. The next page starts strictly after that key, so accounts
//! added or removed between calls never cause a skip or a repeat of the others.
//!
//! Why it records the sort spec and target: a key only means something under the order that made
//! it (and `balance_in_base` depends on the target currency). A cursor used with another sort or
//! currency is rejected rather than silently yielding a wrong page. The cursor is not signed: it
//! only says where to resume, and every filter and access rule still applies to what follows,
//! so a hand-made cursor can skip accounts but never reveal any.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::sort::{KeyKind, KeyValue, SortSpec};
use crate::money::parse_decimal;

const VERSION: u64 = 1;
/// Cursors are short; refuse to decode anything that could not be one.
const MAX_LEN: usize = 4096;

/// A decoded cursor: where the previous page ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub(crate) sort: String,
    pub(crate) currency: String,
    pub(crate) key: Vec<KeyValue>,
}

impl Cursor {
    pub(crate) fn new(sort: &SortSpec, currency: &str, key: Vec<KeyValue>) -> Self {
        Cursor {
            sort: sort.to_string(),
            currency: currency.to_owned(),
            key,
        }
    }

    /// The sort key of the last account of the previous page, under the sort it was issued for:
    /// the next page holds the accounts that compare strictly after it.
    pub fn key(&self) -> &[KeyValue] {
        &self.key
    }

    /// The target currency the cursor was issued for.
    pub fn currency(&self) -> &str {
        &self.currency
    }

    /// The opaque text handed to clients as `next_cursor`.
    pub fn encode(&self) -> String {
        let key: Vec<Value> = self
            .key
            .iter()
            .map(|k| match k {
                KeyValue::Text(s) => Value::String(s.clone()),
                KeyValue::Dec(Some(d)) => Value::String(d.to_string()),
                KeyValue::Dec(None) => Value::Null,
                KeyValue::Bool(b) => Value::Bool(*b),
            })
            .collect();
        let mut obj = Map::new();
        obj.insert("v".into(), Value::from(VERSION));
        obj.insert("s".into(), Value::String(self.sort.clone()));
        obj.insert("c".into(), Value::String(self.currency.clone()));
        obj.insert("k".into(), Value::Array(key));
        URL_SAFE_NO_PAD.encode(Value::Object(obj).to_string())
    }

    /// Decodes a cursor for a request sorted by `sort`. The error message says what is wrong
    /// without echoing the cursor back.
    pub fn decode(text: &str, sort: &SortSpec) -> Result<Cursor, String> {
        const FORGED: &str =
            "not a cursor this service issued: pass `next_cursor` from the previous page unchanged";
        if text.len() > MAX_LEN {
            return Err(FORGED.into());
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|_| FORGED.to_owned())?;
        let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(&bytes) else {
            return Err(FORGED.into());
        };
        if obj.get("v").and_then(Value::as_u64) != Some(VERSION) {
            return Err(FORGED.into());
        }
        let (Some(s), Some(c), Some(Value::Array(k))) = (
            obj.get("s").and_then(Value::as_str),
            obj.get("c").and_then(Value::as_str),
            obj.get("k"),
        ) else {
            return Err(FORGED.into());
        };
        let want = sort.to_string();
        if s != want {
            return Err(format!(
                "this cursor was issued for sort `{}`, but this request sorts by `{want}`: \
                 keep the sort (and stack) of the first page, or start again without a cursor",
                super::param_error::quote(s)
            ));
        }
        if k.len() != sort.keys().len() {
            return Err(FORGED.into());
        }
        let key = sort
            .keys()
            .iter()
            .zip(k)
            .map(|(sk, v)| match (sk.field.kind(), v) {
                (KeyKind::Text, Value::String(s)) => Some(KeyValue::Text(s.clone())),
                (KeyKind::Bool, Value::Bool(b)) => Some(KeyValue::Bool(*b)),
                (KeyKind::Decimal, Value::Null) => Some(KeyValue::Dec(None)),
                (KeyKind::Decimal, Value::String(s)) => {
                    parse_decimal(s).ok().map(|d| KeyValue::Dec(Some(d)))
                }
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| FORGED.to_owned())?;
        Ok(Cursor {
            sort: want,
            currency: c.to_owned(),
            key,
        })
    }
}

/// The cursor of one account's changes (`GET /v2/accounts/{id}/history`), opaque like
/// [`Cursor`]: URL-safe base64 of `{"v":1,"t":"<observed_at>","c":"<customer_id>"}`, the key of
/// the previous page's last change. The next page starts strictly after (older than) it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeCursor {
    pub observed_at: chrono::DateTime<chrono::Utc>,
    pub customer_id: String,
}

impl ChangeCursor {
    pub fn encode(&self) -> String {
        let mut obj = Map::new();
        obj.insert("v".into(), Value::from(VERSION));
        obj.insert(
            "t".into(),
            Value::String(
                self.observed_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            ),
        );
        obj.insert("c".into(), Value::String(self.customer_id.clone()));
        URL_SAFE_NO_PAD.encode(Value::Object(obj).to_string())
    }

    /// Decodes a cursor this service issued; the error says so without echoing it back.
    pub fn decode(text: &str) -> Result<ChangeCursor, String> {
        let forged = || {
            "not a cursor this service issued: pass `next_cursor` from the previous page unchanged"
                .to_owned()
        };
        if text.len() > MAX_LEN {
            return Err(forged());
        }
        let bytes = URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| forged())?;
        let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(&bytes) else {
            return Err(forged());
        };
        let (Some(Value::Number(v)), Some(Value::String(t)), Some(Value::String(c))) =
            (obj.get("v"), obj.get("t"), obj.get("c"))
        else {
            return Err(forged());
        };
        if v.as_u64() != Some(VERSION) {
            return Err(forged());
        }
        let observed_at = chrono::DateTime::parse_from_rfc3339(t)
            .map_err(|_| forged())?
            .with_timezone(&chrono::Utc);
        Ok(ChangeCursor {
            observed_at,
            customer_id: c.clone(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use rust_decimal::Decimal;

    use super::*;

    #[test]
    fn round_trips() {
        let spec = SortSpec::parse("-balance_in_base,active").unwrap();
        let c = Cursor::new(
            &spec,
            "EUR",
            vec![
                KeyValue::Dec(Some(Decimal::new(258, 2))),
                KeyValue::Bool(true),
                KeyValue::Text("p:1".into()),
            ],
        );
        let text = c.encode();
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(Cursor::decode(&text, &spec).unwrap(), c);
    }

    #[test]
    fn rejects_forged_and_mismatched() {
        let spec = SortSpec::default();
        for bad in [
            "",
            "!!!",
            "abc",
            &URL_SAFE_NO_PAD.encode("{}"),
            &URL_SAFE_NO_PAD.encode(r#"{"v":1,"s":"id","c":"EUR","k":[1]}"#),
        ] {
            assert!(
                Cursor::decode(bad, &spec)
                    .unwrap_err()
                    .contains("not a cursor"),
                "{bad}"
            );
        }
        let other = Cursor::new(
            &SortSpec::parse("-id").unwrap(),
            "EUR",
            vec![KeyValue::Text("x".into())],
        );
        let err = Cursor::decode(&other.encode(), &spec).unwrap_err();
        assert!(err.contains("`-id`") && err.contains("`id`"), "{err}");
    }

    #[test]
    fn change_cursor_round_trips_and_refuses_forgeries() {
        let c = super::ChangeCursor {
            observed_at: chrono::DateTime::parse_from_rfc3339("2026-11-30T23:59:59.123456Z")
                .unwrap()
                .with_timezone(&chrono::Utc),
            customer_id: "c-1".into(),
        };
        assert_eq!(super::ChangeCursor::decode(&c.encode()).unwrap(), c);
        assert!(super::ChangeCursor::decode("bm90IGpzb24").is_err());
        assert!(super::ChangeCursor::decode("!!").is_err());
    }
}
