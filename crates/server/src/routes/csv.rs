//! CSV answers (RFC 4180, through the `csv` crate): exact text as the JSON has it, cells a
//! spreadsheet would run as a formula defused, and a file name that says what and when.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use crate::error::ApiError;
use crate::routes::rates::RateOut;

/// Whether the caller asked for CSV: `format=csv`, or `Accept: text/csv` without `format`.
pub fn wanted(format: Option<&str>, headers: &HeaderMap) -> Result<bool, ApiError> {
    match format {
        Some("csv") => Ok(true),
        Some("json") => Ok(false),
        Some(_) => Err(ApiError::param("format", "`json` or `csv`")),
        None => Ok(headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.split(',').any(|t| t.trim().starts_with("text/csv")))),
    }
}

/// A cell a spreadsheet would read as a formula (`=`, `+`, `-`, `@`, a tab or a carriage
/// return first) gets a leading `'`, the escape spreadsheets show as text (OWASP's advice).
pub fn cell(value: &str) -> std::borrow::Cow<'_, str> {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}").into(),
        _ => value.into(),
    }
}

/// Raw query pairs, in order.
pub type Pairs = Vec<(String, String)>;

/// Takes `format` out of the query pairs: the form of the answer is the server's business, and
/// core's parser (which refuses names it does not know) never sees it. Matched like core's
/// names, case-insensitively; given twice with different values is refused as core refuses it.
pub fn take_format(pairs: Vec<(String, String)>) -> Result<(Option<String>, Pairs), ApiError> {
    let mut format: Option<String> = None;
    let mut rest = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        if !k.trim().eq_ignore_ascii_case("format") {
            rest.push((k, v));
            continue;
        }
        if format.as_ref().is_some_and(|f| *f != v) {
            return Err(ApiError::param(k, "given twice with different values"));
        }
        format = Some(v);
    }
    Ok((format, rest))
}

/// An instant as the JSON answers write it (chrono's serde form), so CSV and JSON compare.
pub fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// The rate columns of a row: the rates used to convert it (usually one; two when neither the
/// row's currency nor the target is the base), each column `;`-separated in the same order.
pub const RATE_COLUMNS: [&str; 4] = ["rate_currency", "rate", "rate_source", "rate_as_of"];

/// The [`RATE_COLUMNS`] cells of `rates` (as the JSON's `rates` show them); a provider's rate
/// says which provider (`provider:p100`).
pub fn rate_cells(rates: &[RateOut]) -> [String; 4] {
    let join = |f: &dyn Fn(&RateOut) -> String| rates.iter().map(f).collect::<Vec<_>>().join(";");
    [
        join(&|r| r.currency.clone()),
        join(&|r| r.rate.clone()),
        join(&|r| match &r.provider {
            Some(p) => format!("{}:{p}", r.source),
            None => r.source.clone(),
        }),
        join(&|r| instant(r.as_of)),
    ]
}

/// [`cell`], except that a plain decimal (`-12.50`) stays a number: a spreadsheet reads it as
/// one and runs nothing, and a negative balance must not become text.
fn defuse(value: &str) -> std::borrow::Cow<'_, str> {
    let digits = value.strip_prefix('-').unwrap_or(value);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, "0"));
    let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if plain(int) && plain(frac) {
        value.into()
    } else {
        cell(value)
    }
}

/// Builds a CSV body from a header and rows of cells (each defused by [`cell`]).
pub fn body(
    columns: &[&str],
    rows: impl IntoIterator<Item = Vec<String>>,
) -> Result<Vec<u8>, ApiError> {
    write(Some(columns), rows)
}

/// Rows of cells (each defused by [`cell`]) without a header: a later chunk of a streamed body.
pub fn rows(rows: impl IntoIterator<Item = Vec<String>>) -> Result<Vec<u8>, ApiError> {
    write(None, rows)
}

fn write(
    columns: Option<&[&str]>,
    rows: impl IntoIterator<Item = Vec<String>>,
) -> Result<Vec<u8>, ApiError> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let internal = |e: csv::Error| ApiError::Internal(format!("writing CSV: {e}"));
    if let Some(columns) = columns {
        w.write_record(columns).map_err(internal)?;
    }
    for row in rows {
        w.write_record(row.iter().map(|c| defuse(c).into_owned()))
            .map_err(internal)?;
    }
    w.into_inner()
        .map_err(|e| ApiError::Internal(format!("writing CSV: {e}")))
}

/// The response: `text/csv`, downloaded as `coffer-{what}-{when}.csv`.
pub fn response(what: &str, at: DateTime<Utc>, bytes: Vec<u8>) -> Response {
    streamed(what, at, Body::from(bytes))
}

/// [`response`] with any body, e.g. one streamed a page at a time.
pub fn streamed(what: &str, at: DateTime<Utc>, body: Body) -> Response {
    let name = format!("coffer-{what}-{}.csv", at.format("%Y%m%dT%H%M%SZ"));
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8; header=present"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_defused_and_others_kept() {
        for bad in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(cell(bad), format!("'{bad}"));
        }
        assert_eq!(cell("0.09872368"), "0.09872368");
        assert_eq!(cell(""), "");
    }

    #[test]
    fn bodies_are_rfc_4180() {
        let b = body(
            &["a", "b"],
            [vec!["x,y".into(), "say \"hi\"\nthere".into()]],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(b).unwrap(),
            "a,b\r\n\"x,y\",\"say \"\"hi\"\"\nthere\"\r\n"
        );
    }

    #[test]
    fn negative_numbers_stay_numbers_and_formulas_do_not() {
        let b = body(
            &["a"],
            [vec!["-5.00".into()], vec!["-1+1".into()], vec!["-".into()]],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(b).unwrap(),
            "a\r\n-5.00\r\n'-1+1\r\n'-\r\n"
        );
    }

    #[test]
    fn format_is_taken_out_of_the_pairs() {
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter().map(|(a, b)| ((*a).into(), (*b).into())).collect()
        };
        let (f, rest) = take_format(pairs(&[("Format", "csv"), ("currency", "EUR")])).unwrap();
        assert_eq!(f.as_deref(), Some("csv"));
        assert_eq!(rest, pairs(&[("currency", "EUR")]));
        assert!(take_format(pairs(&[("format", "csv"), ("format", "json")])).is_err());
    }

    #[test]
    fn the_format_is_asked_by_parameter_or_accept() {
        let mut h = HeaderMap::new();
        assert!(!wanted(None, &h).unwrap());
        h.insert(header::ACCEPT, HeaderValue::from_static("text/csv"));
        assert!(wanted(None, &h).unwrap());
        assert!(!wanted(Some("json"), &h).unwrap());
        assert!(wanted(Some("csv"), &HeaderMap::new()).unwrap());
        assert!(wanted(Some("xml"), &h).is_err());
    }
}
