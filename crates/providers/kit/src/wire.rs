//! The wire helpers every adapter's `wire.rs` builds on: numbers kept as the exact text the
//! provider sent ([`DecimalText`], read by [`exact`]), and list elements that may fail alone
//! ([`Lenient`]). Nothing here goes through floating point.

use coffer_core::money::parse_decimal;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde::de::{self, Deserializer};
use serde_json::Value;

/// A number as the exact text the provider sent, whether a JSON number (`0.09872368`,
/// `9.872368e-2`, `12345678901234.12345678`) or a JSON string (`"3.000000"`). Relies on
/// `serde_json/arbitrary_precision`, which keeps a number's digits instead of going through
/// floating point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecimalText {
    pub text: String,
    /// Whether it came as a JSON string.
    pub quoted: bool,
}

impl<'de> Deserialize<'de> for DecimalText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Number(n) => Ok(DecimalText {
                text: n.to_string(),
                quoted: false,
            }),
            Value::String(s) => Ok(DecimalText {
                text: s,
                quoted: true,
            }),
            other => Err(de::Error::invalid_type(
                unexpected(&other),
                &"a decimal number or string",
            )),
        }
    }
}

fn unexpected(v: &Value) -> de::Unexpected<'_> {
    match v {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
        Value::Number(_) => de::Unexpected::Other("number"),
        Value::String(s) => de::Unexpected::Str(s),
    }
}

/// The exact decimal a provider's number text means, or why it has none. Core's one exact
/// parser: plain or scientific notation, scale kept, never rounded.
pub fn exact(d: &DecimalText) -> Result<Decimal, String> {
    parse_decimal(&d.text).map_err(|e| e.to_string())
}

/// One element of a list that may be malformed on its own: a bad balance must not fail the
/// whole answer (issue 3), so it is kept with its error instead.
#[derive(Debug, Clone)]
pub enum Lenient<T> {
    Ok(T),
    Err {
        /// The element as sent, to read its `id` for the report.
        raw: Value,
        /// What was wrong, starting with the path of the field at fault.
        error: String,
    },
}

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // The element's text, parsed straight into `T`: the sync worker parses thousands of
        // balances a second, and building a `Value` tree (and tracking paths) for each cost
        // more than the rest of the parse. Only an element that fails that way takes the
        // slow path below, which decides (and words the error) exactly as before.
        let text = Box::<serde_json::value::RawValue>::deserialize(d)?;
        if let Ok(v) = serde_json::from_str::<T>(text.get()) {
            return Ok(Lenient::Ok(v));
        }
        let raw: Value = serde_json::from_str(text.get()).map_err(de::Error::custom)?;
        match serde_path_to_error::deserialize::<_, T>(&raw) {
            Ok(v) => Ok(Lenient::Ok(v)),
            Err(e) => {
                let path = e.path().to_string();
                let inner = e.into_inner();
                let error = if path == "." {
                    inner.to_string()
                } else {
                    format!("{path}: {inner}")
                };
                Ok(Lenient::Err { raw, error })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(json: &str) -> Vec<DecimalText> {
        serde_json::from_str(json).expect("parses")
    }

    #[test]
    fn numbers_keep_their_text() {
        let v = texts(
            r#"[0.09872368, 9.872368e-2, "3.000000", 1, 0, 12345678901234.12345678, "1.50"]"#,
        );
        let got: Vec<_> = v.iter().map(|d| d.text.as_str()).collect();
        assert_eq!(
            got,
            [
                "0.09872368",
                "9.872368e-2",
                "3.000000",
                "1",
                "0",
                "12345678901234.12345678",
                "1.50"
            ]
        );
        assert!(v[2].quoted && !v[0].quoted);
    }

    #[test]
    fn scientific_notation_is_exact_and_shifts_the_scale() {
        let v = texts(r#"[9.872368e-2, "9.872368e-2", 1.5E+3]"#);
        let d = exact(&v[0]).expect("exact");
        assert_eq!(d.to_string(), "0.09872368");
        assert_eq!(d.scale(), 8);
        assert_eq!(exact(&v[1]), Ok(d));
        assert_eq!(exact(&v[2]).expect("exact"), Decimal::new(1500, 0));
    }

    #[test]
    fn twenty_eight_digits_survive_as_json_numbers() {
        // 28 significant digits: the most a Decimal holds; a binary float would keep about 16.
        let v = texts("[12345678901234.12345678901234, 1234567890123456789012345678]");
        assert_eq!(v[0].text, "12345678901234.12345678901234");
        assert_eq!(
            exact(&v[0]).expect("exact").to_string(),
            "12345678901234.12345678901234"
        );
        assert_eq!(
            exact(&v[1]).expect("exact").to_string(),
            "1234567890123456789012345678"
        );
    }

    #[test]
    fn what_is_not_a_decimal_is_refused() {
        let e = serde_json::from_str::<DecimalText>("true").expect_err("bool");
        assert!(e.to_string().contains("a decimal number or string"), "{e}");
        assert!(serde_json::from_str::<DecimalText>("null").is_err());
        assert!(exact(&texts(r#"["12,50"]"#)[0]).is_err());
        assert!(exact(&texts(r#"["fast"]"#)[0]).is_err());
    }

    #[derive(Debug, Deserialize)]
    struct Item {
        id: String,
        amount: DecimalText,
    }

    #[test]
    fn lenient_keeps_bad_elements_with_the_field_named() {
        let v: Vec<Lenient<Item>> = serde_json::from_str(
            r#"[{"id":"a","amount":1},{"id":"b","amount":[]},{"amount":2},7]"#,
        )
        .expect("one bad element never fails the list");
        assert!(matches!(v[0], Lenient::Ok(_)));
        let errors: Vec<_> = v[1..]
            .iter()
            .map(|l| match l {
                Lenient::Err { error, .. } => error.clone(),
                Lenient::Ok(_) => String::new(),
            })
            .collect();
        assert!(
            errors[0].starts_with("amount: invalid type: sequence"),
            "{}",
            errors[0]
        );
        assert!(errors[1].contains("missing field `id`"), "{}", errors[1]);
        assert!(errors[2].starts_with("invalid type"), "{}", errors[2]);
        let Lenient::Err { raw, .. } = &v[1] else {
            panic!("an error")
        };
        assert_eq!(raw["id"], "b");
    }

    /// The fast path (straight from the text) and the `Value` path it replaced accept the same
    /// elements, keep the same digits, and word errors the same way.
    #[test]
    fn lenient_fast_path_agrees_with_the_value_path() {
        let elements = [
            r#"{"id":"a","amount":0.09872368}"#,
            r#"{"id":"a","amount":"1e-7"}"#,
            r#"{"id":"a","amount":1234567890123456789.012345678}"#,
            r#"{"id":"a","amount":1,"id":"b"}"#,
            r#"{"id":"a","amount":1,"extra":{"x":[1,2]}}"#,
            r#"{"id":"a","amount":null}"#,
            r#"{"id":7,"amount":1}"#,
            r#""text""#,
        ];
        for e in elements {
            let fast: Lenient<Item> = serde_json::from_str(e).expect("an element never fails");
            let value: Value = serde_json::from_str(e).expect("json");
            let slow = serde_path_to_error::deserialize::<_, Item>(&value);
            match (fast, slow) {
                (Lenient::Ok(f), Ok(s)) => {
                    assert_eq!((f.id, f.amount), (s.id, s.amount), "{e}");
                }
                (Lenient::Err { error, .. }, Err(s)) => {
                    assert!(error.ends_with(&s.into_inner().to_string()), "{e}: {error}");
                }
                (f, s) => panic!("{e}: fast {f:?}, value path {s:?}"),
            }
        }
    }
}
