//! All-customer reads go into the audit log (DESIGN.md "Exports, balance types, audit"): an
//! admin's question about every customer, or an export, is appended with the key, the request
//! and the query asked, once it has been answered. Changes are audited by the store, in their
//! own transactions.

use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use coffer_store::NewAudit;

use crate::auth::Caller;
use crate::state::AppState;

/// Whether a request is an export: CSV asked as the handlers decide it (`format=csv`, or
/// `Accept: text/csv` without `format`), so an export asked by header is audited as one too.
/// Only the endpoints that answer CSV export (an `Accept: text/csv` elsewhere gets JSON).
fn is_export(path: &str, query: &str, headers: &http::HeaderMap) -> bool {
    const EXPORTS: [&str; 4] = [
        "/v2/accounts",
        "/v2/accounts/balance",
        "/v2/accounts/balance/history",
        "/v2/audit",
    ];
    if !EXPORTS.contains(&path.trim_end_matches('/')) {
        return false;
    }
    let format = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("format"))
        .map(|(_, v)| v.into_owned());
    crate::routes::csv::wanted(format.as_deref(), headers).unwrap_or(false)
}

/// Whether a request reads across every customer: a `GET` on the account endpoints without
/// `customer_id`, or any export.
fn reads_everyone(path: &str, query: &str, headers: &http::HeaderMap) -> bool {
    let accounts = path == "/v2/accounts" || path.starts_with("/v2/accounts/balance");
    let one = || url::form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == "customer_id");
    is_export(path, query, headers) || (accounts && !one())
}

pub async fn reads(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let query = parts.uri.query().unwrap_or("").to_owned();
    let path = parts.uri.path().to_owned();
    let export = is_export(&path, &query, &parts.headers);
    let audited =
        parts.method == http::Method::GET && reads_everyone(&path, &query, &parts.headers);
    // Resolving the caller here leaves it in the request for the handler (no second lookup).
    let caller = if audited {
        Caller::from_request_parts(&mut parts, &state).await.ok()
    } else {
        None
    };
    let response = next.run(Request::from_parts(parts, body)).await;
    let Some(caller) = caller.filter(|c| c.is_admin()) else {
        return response;
    };
    if response.status().is_success() {
        // The same test as `reads_everyone`'s (a `format=csv` inside another value is no export).
        let action = if export { "export" } else { "read" };
        let target = if query.is_empty() {
            path
        } else {
            format!("{path}?{query}")
        };
        let entry = NewAudit::new(action, &target);
        if let Err(e) = state.store.append_audit(&caller.actor(), entry).await {
            // The answer is already made; a read that could not be logged is logged here.
            tracing::error!(error = %e, target = %target, "all-customer read not appended to the audit log");
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::reads_everyone;

    #[test]
    fn only_questions_about_everyone_are_audited() {
        let none = http::HeaderMap::new();
        assert!(reads_everyone("/v2/accounts", "", &none));
        assert!(reads_everyone(
            "/v2/accounts/balance",
            "currency=EUR",
            &none
        ));
        assert!(reads_everyone(
            "/v2/accounts/balance/history",
            "from=x",
            &none
        ));
        assert!(reads_everyone("/v2/audit", "format=csv", &none));
        assert!(!reads_everyone("/v2/accounts", "customer_id=c1", &none));
        assert!(!reads_everyone("/v2/accounts/p100:a1", "", &none));
        assert!(!reads_everyone("/v2/customers", "", &none));
        let mut csv = http::HeaderMap::new();
        csv.insert(
            http::header::ACCEPT,
            http::HeaderValue::from_static("text/csv"),
        );
        assert!(
            reads_everyone("/v2/accounts", "customer_id=c1", &csv),
            "an export asked by `Accept` is an export"
        );
        assert!(!reads_everyone(
            "/v2/accounts",
            "customer_id=c1&format=json",
            &csv
        ));
        assert!(!reads_everyone("/v2/customers", "", &csv), "no CSV there");
    }
}
