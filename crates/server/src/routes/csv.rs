//! CSV answers (RFC 4180, through the `csv` crate): exact text as the JSON has it, cells a
//! spreadsheet would run as a formula defused, and a file name that says what and when.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use crate::error::ApiError;

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

/// Builds a CSV body from a header and rows of cells (each defused by [`cell`]).
pub fn body(
    columns: &[&str],
    rows: impl IntoIterator<Item = Vec<String>>,
) -> Result<Vec<u8>, ApiError> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let internal = |e: csv::Error| ApiError::Internal(format!("writing CSV: {e}"));
    w.write_record(columns).map_err(internal)?;
    for row in rows {
        w.write_record(row.iter().map(|c| cell(c).into_owned()))
            .map_err(internal)?;
    }
    w.into_inner()
        .map_err(|e| ApiError::Internal(format!("writing CSV: {e}")))
}

/// The response: `text/csv`, downloaded as `coffer-{what}-{when}.csv`.
pub fn response(what: &str, at: DateTime<Utc>, bytes: Vec<u8>) -> Response {
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
        Body::from(bytes),
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
