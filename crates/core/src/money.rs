//! Exact money: parsing decimals from text and JSON numbers, rounding for presentation.
//!
//! Why a parser of our own: `Decimal::from_str` refuses scientific notation and
//! `Decimal::from_scientific` has its own limits and error texts; going through a binary float (what most
//! JSON libraries do) turns `0.09872368` into `0.09872367999999999…`. [`parse_decimal`] reads the
//! digits themselves, so every value a provider can send that fits a `Decimal` survives exactly,
//! and every value that does not is an error that says why — never a silently rounded number.

use rust_decimal::{Decimal, RoundingStrategy};

use crate::currency::Currency;

/// The most digits a `Decimal` mantissa can hold (its 96-bit integer is below 10^29).
const MAX_DIGITS: usize = 29;
/// The most decimal places a `Decimal` can hold.
const MAX_SCALE: i64 = 28;

/// Why a text is not an exact decimal. Each variant names the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("empty value: expected a decimal number such as `2.58` or `1E-7`")]
    Empty,
    #[error("`{input}` is not a decimal number: {reason}")]
    Invalid { input: String, reason: &'static str },
    #[error(
        "`{input}` needs more than 28 decimal places (or 28 significant digits) to be held exactly"
    )]
    TooPrecise { input: String },
    #[error("`{input}` is too large: the largest amount is about 7.9e28")]
    TooLarge { input: String },
}

impl MoneyError {
    fn invalid(input: &str, reason: &'static str) -> Self {
        MoneyError::Invalid {
            input: shorten(input),
            reason,
        }
    }
}

/// Error texts quote the input; a hostile input must not make them huge.
fn shorten(input: &str) -> String {
    const MAX: usize = 64;
    if input.chars().count() <= MAX {
        input.to_owned()
    } else {
        let head: String = input.chars().take(MAX).collect();
        format!("{head}…")
    }
}

/// Parses a decimal exactly, in plain (`0.09872368`, `-12.50`) or scientific notation
/// (`9.872368e-2`, `1E-7`, `1.5E+3`), without ever going through a float.
///
/// The scale is kept where it means something: `3.000000` stays at scale 6, as the provider sent
/// it; an exponent moves the point (`1.5E+3` is `1500`, `9.872368e-2` is `0.09872368`). Leading
/// and trailing ASCII whitespace is ignored, a leading `+` or `-` is accepted, nothing else is
/// (no `_`, `,`, `NaN`, `inf`, hex). Values that need more than 28 decimal places are accepted
/// only if the extra places are zeros; anything that would need rounding is an error.
pub fn parse_decimal(input: &str) -> Result<Decimal, MoneyError> {
    let s = input.trim_ascii();
    if s.is_empty() {
        return Err(MoneyError::Empty);
    }
    let (negative, rest) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
        None => (mantissa, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(MoneyError::invalid(input, "expected digits"));
    }
    if !int_part
        .bytes()
        .chain(frac_part.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return Err(MoneyError::invalid(
            input,
            "expected only digits, one `.`, a sign and an exponent",
        ));
    }
    let exp = match exponent {
        None => 0,
        Some(e) => parse_exponent(e).ok_or_else(|| {
            MoneyError::invalid(input, "expected a whole exponent after `e`, such as `e-7`")
        })?,
    };

    // The number is digits × 10^-scale, digits = int_part ++ frac_part.
    let mut digits: Vec<u8> = int_part.bytes().chain(frac_part.bytes()).collect();
    // frac_part is shorter than the input, so this cannot overflow an i64.
    let mut scale = i64::try_from(frac_part.len())
        .unwrap_or(i64::MAX)
        .saturating_sub(exp);

    let first_non_zero = digits.iter().position(|&d| d != b'0');
    let Some(first) = first_non_zero else {
        // Zero: keep the scale the sender meant, within what a Decimal holds.
        let scale = u32::try_from(scale.clamp(0, MAX_SCALE)).unwrap_or(0);
        return Ok(Decimal::new(0, scale));
    };
    digits.drain(..first);
    // Too many places: drop trailing zeros, which changes nothing but the scale.
    while scale > MAX_SCALE && digits.last() == Some(&b'0') {
        digits.pop();
        scale -= 1;
    }
    if scale > MAX_SCALE {
        return Err(MoneyError::TooPrecise {
            input: shorten(input),
        });
    }
    if scale < 0 {
        // A positive exponent: append zeros, if they fit.
        let zeros = usize::try_from(-scale).unwrap_or(usize::MAX);
        if digits.len().saturating_add(zeros) > MAX_DIGITS {
            return Err(MoneyError::TooLarge {
                input: shorten(input),
            });
        }
        digits.resize(digits.len() + zeros, b'0');
        scale = 0;
    }
    if digits.len() > MAX_DIGITS {
        // Many digits before the point is "too large"; many after it is "too precise".
        let int_digits = digits
            .len()
            .saturating_sub(usize::try_from(scale).unwrap_or(0));
        return Err(if int_digits > MAX_DIGITS {
            MoneyError::TooLarge {
                input: shorten(input),
            }
        } else {
            MoneyError::TooPrecise {
                input: shorten(input),
            }
        });
    }
    let mut n: i128 = 0;
    for d in &digits {
        // At most 29 digits: below 10^29, far inside i128.
        n = n * 10 + i128::from(d - b'0');
    }
    if negative {
        n = -n;
    }
    let scale = u32::try_from(scale).unwrap_or(0);
    Decimal::try_from_i128_with_scale(n, scale).map_err(|_| {
        let int_digits = digits.len().saturating_sub(scale as usize);
        if int_digits >= MAX_DIGITS {
            MoneyError::TooLarge {
                input: shorten(input),
            }
        } else {
            MoneyError::TooPrecise {
                input: shorten(input),
            }
        }
    })
}

/// An exponent: optional sign, then 1 to 6 digits (anything bigger cannot fit a `Decimal`
/// unless the mantissa is zero, and `0e1000000` is not a value anyone sends).
fn parse_exponent(e: &str) -> Option<i64> {
    let (neg, digits) = match e.as_bytes().first()? {
        b'-' => (true, &e[1..]),
        b'+' => (false, &e[1..]),
        _ => (false, e),
    };
    if digits.is_empty() || digits.len() > 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: i64 = digits.parse().ok()?;
    Some(if neg { -v } else { v })
}

/// Rounds `value` half-even (banker's rounding) to the currency's minor units, with exactly that
/// many decimal places (`2.5` EUR presents as `2.50`).
///
/// Used only when presenting a total: sums are computed on exact values and rounded once, so
/// rounding errors never accumulate. Half-even, because it is unbiased over many totals and is
/// what accounting systems expect.
pub fn round_for(currency: &Currency, value: Decimal) -> Decimal {
    round_to(value, currency.decimals())
}

/// Half-even rounding to `dp` places, then padded to exactly `dp` places when the value allows.
pub fn round_to(value: Decimal, dp: u32) -> Decimal {
    let mut v = value.round_dp_with_strategy(dp, RoundingStrategy::MidpointNearestEven);
    // `rescale` never fails: when a huge value cannot carry `dp` places it keeps fewer, which
    // only affects trailing zeros.
    v.rescale(dp);
    v
}

/// Serde helpers: `#[serde(with = "coffer_core::money::decimal_str")]`.
///
/// Serialises as a JSON string holding the exact decimal (`"2.58"`), as the API promises.
/// Deserialises from a JSON string or a JSON number (exactly: serde_json's `arbitrary_precision`
/// is on workspace-wide, so the number's text reaches [`parse_decimal`] untouched); a float from
/// another format is refused rather than rounded.
pub mod decimal_str {
    use rust_decimal::Decimal;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(value)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        d.deserialize_any(super::de::DecimalVisitor)
    }
}

/// Like [`decimal_str`], for `Option<Decimal>` (`null` is `None`).
pub mod decimal_str_opt {
    use rust_decimal::Decimal;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => s.collect_str(v),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        d.deserialize_option(super::de::OptionVisitor)
    }
}

mod de {
    use std::fmt;

    use rust_decimal::Decimal;
    use serde::de::{self, Deserializer, MapAccess, Visitor};

    /// The key serde_json (with `arbitrary_precision`) uses to hand over a number's text.
    const NUMBER_TOKEN: &str = "$serde_json::private::Number";

    pub(super) struct DecimalVisitor;

    impl<'de> Visitor<'de> for DecimalVisitor {
        type Value = Decimal;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an exact decimal as a JSON number or string")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Decimal, E> {
            super::parse_decimal(v).map_err(E::custom)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Decimal, E> {
            Ok(Decimal::from(v))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Decimal, E> {
            Ok(Decimal::from(v))
        }

        fn visit_i128<E: de::Error>(self, v: i128) -> Result<Decimal, E> {
            Decimal::try_from_i128_with_scale(v, 0).map_err(E::custom)
        }

        fn visit_u128<E: de::Error>(self, v: u128) -> Result<Decimal, E> {
            let v = i128::try_from(v).map_err(E::custom)?;
            self.visit_i128(v)
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Decimal, A::Error> {
            match map.next_key::<String>()? {
                Some(k) if k == NUMBER_TOKEN => {
                    let text: String = map.next_value()?;
                    super::parse_decimal(&text).map_err(de::Error::custom)
                }
                _ => Err(de::Error::invalid_type(de::Unexpected::Map, &self)),
            }
        }
    }

    pub(super) struct OptionVisitor;

    impl<'de> Visitor<'de> for OptionVisitor {
        type Value = Option<Decimal>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an exact decimal as a JSON number or string, or null")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(DecimalVisitor).map(Some)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn plain_and_scientific_parse_exactly() {
        let cases = [
            ("0.09872368", "0.09872368"),
            ("9.872368e-2", "0.09872368"),
            ("1E-7", "0.0000001"),
            ("1e-7", "0.0000001"),
            ("1.5E+3", "1500"),
            ("12345678901234.12345678", "12345678901234.12345678"),
            (
                "1234567890123456789012345678",
                "1234567890123456789012345678",
            ),
            (
                "0.1234567890123456789012345678",
                "0.1234567890123456789012345678",
            ),
            ("3.000000", "3.000000"),
            ("-12.50", "-12.50"),
            ("+7", "7"),
            (" 2.58 ", "2.58"),
            (".5", "0.5"),
            ("5.", "5"),
            ("0", "0"),
            ("0.00", "0.00"),
            ("-0", "0"),
            ("69258.93415658", "69258.93415658"),
            (
                "1.0000000000000000000000000000000",
                "1.0000000000000000000000000000",
            ),
            (
                "79228162514264337593543950335",
                "79228162514264337593543950335",
            ),
        ];
        for (input, want) in cases {
            let got = parse_decimal(input).unwrap();
            assert_eq!(got.to_string(), want, "{input}");
            assert_eq!(got, d(want), "{input}");
        }
        assert_eq!(parse_decimal("3.000000").unwrap().scale(), 6);
    }

    #[test]
    fn errors_say_what_was_wrong() {
        assert_eq!(parse_decimal("  "), Err(MoneyError::Empty));
        for bad in [
            "abc", "1.2.3", "1,5", "1_000", "NaN", "inf", "--1", "0x10", "e5", ".", "-", "1e",
            "1e+", "1e5.5",
        ] {
            let err = parse_decimal(bad).unwrap_err();
            assert!(matches!(err, MoneyError::Invalid { .. }), "{bad}: {err}");
            assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
        }
        assert!(matches!(
            parse_decimal("1e-29"),
            Err(MoneyError::TooPrecise { .. })
        ));
        assert!(matches!(
            parse_decimal("0.12345678901234567890123456789"),
            Err(MoneyError::TooPrecise { .. })
        ));
        assert!(matches!(
            parse_decimal("1e29"),
            Err(MoneyError::TooLarge { .. })
        ));
        assert!(matches!(
            parse_decimal("79228162514264337593543950336"),
            Err(MoneyError::TooLarge { .. })
        ));
        assert!(matches!(
            parse_decimal("1e999999"),
            Err(MoneyError::TooLarge { .. })
        ));
        assert!(matches!(
            parse_decimal("1e9999999"),
            Err(MoneyError::Invalid { .. })
        ));
        // A huge input is quoted shortened.
        let long = "x".repeat(10_000);
        assert!(parse_decimal(&long).unwrap_err().to_string().len() < 200);
    }

    #[test]
    fn zero_with_exponent_keeps_a_sensible_scale() {
        assert_eq!(parse_decimal("0e5").unwrap(), Decimal::ZERO);
        assert_eq!(parse_decimal("0.0e-40").unwrap(), Decimal::ZERO);
    }

    #[derive(serde::Deserialize, serde::Serialize)]
    struct Amount {
        #[serde(with = "decimal_str")]
        v: Decimal,
        #[serde(with = "decimal_str_opt", default)]
        o: Option<Decimal>,
    }

    #[test]
    fn json_numbers_deserialise_exactly() {
        for (json, want) in [
            ("0.09872368", "0.09872368"),
            ("9.872368e-2", "0.09872368"),
            ("1E-7", "0.0000001"),
            ("1.5E+3", "1500"),
            ("12345678901234.12345678", "12345678901234.12345678"),
            (
                "1234567890123456789012345678",
                "1234567890123456789012345678",
            ),
            ("\"2.58\"", "2.58"),
            ("\"1e-7\"", "0.0000001"),
            ("-3", "-3"),
            ("3.000000", "3.000000"),
        ] {
            let a: Amount =
                serde_json::from_str(&format!(r#"{{"v": {json}, "o": {json}}}"#)).unwrap();
            assert_eq!(a.v.to_string(), want, "{json}");
            assert_eq!(a.o.map(|o| o.to_string()).as_deref(), Some(want), "{json}");
        }
        let a: Amount = serde_json::from_str(r#"{"v": 1, "o": null}"#).unwrap();
        assert_eq!(a.o, None);
        let a: Amount = serde_json::from_str(r#"{"v": 1}"#).unwrap();
        assert_eq!(a.o, None);
        assert!(serde_json::from_str::<Amount>(r#"{"v": "abc"}"#).is_err());
        assert!(serde_json::from_str::<Amount>(r#"{"v": true}"#).is_err());
        assert!(serde_json::from_str::<Amount>(r#"{"v": 1e-40}"#).is_err());
    }

    #[test]
    fn money_serialises_as_a_string_keeping_scale() {
        let a = Amount {
            v: d("2.580"),
            o: None,
        };
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"v":"2.580","o":null}"#
        );
        let a = Amount {
            v: d("0.0000001"),
            o: Some(d("-1")),
        };
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"v":"0.0000001","o":"-1"}"#
        );
    }

    #[test]
    fn rounding_is_half_even_to_minor_units() {
        let eur = Currency::new("EUR");
        assert_eq!(round_for(&eur, d("2.585")).to_string(), "2.58");
        assert_eq!(round_for(&eur, d("2.575")).to_string(), "2.58");
        assert_eq!(round_for(&eur, d("2.5851")).to_string(), "2.59");
        assert_eq!(round_for(&eur, d("2.5")).to_string(), "2.50");
        assert_eq!(round_for(&eur, d("-2.585")).to_string(), "-2.58");
        assert_eq!(round_for(&Currency::new("JPY"), d("2.5")).to_string(), "2");
        assert_eq!(round_for(&Currency::new("JPY"), d("3.5")).to_string(), "4");
        assert_eq!(
            round_for(&Currency::new("BTC"), d("0.000000015")).to_string(),
            "0.00000002"
        );
        // Huge values do not panic.
        let _ = round_for(&Currency::new("BTC"), Decimal::MAX);
        let _ = round_for(&Currency::new("BTC"), Decimal::MIN);
    }
}
