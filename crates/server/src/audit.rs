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

/// Whether a request is an export (`format=csv`).
fn is_export(query: &str) -> bool {
    url::form_urlencoded::parse(query.as_bytes()).any(|(k, v)| k == "format" && v == "csv")
}

/// Whether a request reads across every customer: a `GET` on the account endpoints without
/// `customer_id`, or any export.
fn reads_everyone(path: &str, query: &str) -> bool {
    let accounts = path == "/v2/accounts" || path.starts_with("/v2/accounts/balance");
    let one = || url::form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == "customer_id");
    is_export(query) || (accounts && !one())
}

pub async fn reads(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let query = parts.uri.query().unwrap_or("").to_owned();
    let path = parts.uri.path().to_owned();
    let audited = parts.method == http::Method::GET && reads_everyone(&path, &query);
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
        let action = if is_export(&query) { "export" } else { "read" };
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
        assert!(reads_everyone("/v2/accounts", ""));
        assert!(reads_everyone("/v2/accounts/balance", "currency=EUR"));
        assert!(reads_everyone("/v2/accounts/balance/history", "from=x"));
        assert!(reads_everyone("/v2/audit", "format=csv"));
        assert!(!reads_everyone("/v2/accounts", "customer_id=c1"));
        assert!(!reads_everyone("/v2/accounts/p100:a1", ""));
        assert!(!reads_everyone("/v2/customers", ""));
    }
}
