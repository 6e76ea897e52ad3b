//! The query parameters as the OpenAPI document shows them. Parsing itself is done once, in
//! `coffer_core::query::parse_query`, which also accepts the aliases listed in each description
//! and rejects unknown parameters with a 400 naming them.
#![allow(dead_code)] // documentation-only structs: never constructed

use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BalanceParams {
    /// One customer; omitted: every customer in the caller's scope.
    customer_id: Option<String>,
    /// Target currency of conversion (default: the base currency).
    currency: Option<String>,
    /// `true` crypto only, `false` fiat only. Alias: `is_crypto`.
    #[serde(rename = "search.is_crypto")]
    #[param(rename = "search.is_crypto")]
    is_crypto: Option<bool>,
    /// Account currency, case-insensitive; a comma list or `search.currency.in=`. Alias: `account_currency`.
    #[serde(rename = "search.currency")]
    #[param(rename = "search.currency")]
    account_currency: Option<String>,
    /// The provider's active flag. Alias: `active`.
    #[serde(rename = "search.active")]
    #[param(rename = "search.active")]
    active: Option<bool>,
    /// `active`, `inactive`, `suspended`, `pending`. Alias: `status`.
    #[serde(rename = "search.status")]
    #[param(rename = "search.status")]
    status: Option<String>,
    /// Balance greater than (account's own currency). Alias: `balance_gt`.
    #[serde(rename = "search.balance.gt")]
    #[param(rename = "search.balance.gt")]
    balance_gt: Option<String>,
    /// Alias: `balance_gte`.
    #[serde(rename = "search.balance.gte")]
    #[param(rename = "search.balance.gte")]
    balance_gte: Option<String>,
    /// Alias: `balance_lt`.
    #[serde(rename = "search.balance.lt")]
    #[param(rename = "search.balance.lt")]
    balance_lt: Option<String>,
    /// Alias: `balance_lte`.
    #[serde(rename = "search.balance.lte")]
    #[param(rename = "search.balance.lte")]
    balance_lte: Option<String>,
    /// Provider id(s), comma list. Alias: `provider`.
    #[serde(rename = "search.provider")]
    #[param(rename = "search.provider")]
    provider: Option<String>,
    /// What the balances mean: `available` (P100) or `unspecified` (Corebanq), a comma list
    /// or `search.balance_type.in=`. Alias: `balance_type`.
    #[serde(rename = "search.balance_type")]
    #[param(rename = "search.balance_type")]
    balance_type: Option<String>,
    /// `currency`: group by currency. Alias: `group_by`.
    stack: Option<String>,
    /// List the accounts. Alias: `include_details`.
    details: Option<bool>,
    /// Seconds: older data is refreshed first.
    max_age: Option<u64>,
    /// A provider failure is an error (502) instead of a stale or partial answer.
    strict: Option<bool>,
    /// RFC 3339 instant in the past: the answer as of then, from the store only (each pair's
    /// last observation at or before it, the rates in force then). Not with `max_age`/`strict`.
    #[param(value_type = Option<String>, format = DateTime, example = "2026-11-30T23:59:59Z")]
    at: Option<String>,
    /// `json` (default) or `csv` (also chosen by `Accept: text/csv`).
    #[param(pattern = "^(json|csv)$")]
    format: Option<String>,
}

/// The parameters of one account (`GET /v2/accounts/{id}`).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccountParams {
    /// Target currency of `balance_in_base`.
    currency: Option<String>,
    max_age: Option<u64>,
    strict: Option<bool>,
    /// RFC 3339 instant in the past: the answer as of then, from the store only (each pair's
    /// last observation at or before it, the rates in force then). Not with `max_age`/`strict`.
    #[param(value_type = Option<String>, format = DateTime, example = "2026-11-30T23:59:59Z")]
    at: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// One customer; omitted: every customer in the caller's scope.
    customer_id: Option<String>,
    /// Target currency of `balance_in_base`.
    currency: Option<String>,
    /// Alias: `is_crypto`.
    #[serde(rename = "search.is_crypto")]
    #[param(rename = "search.is_crypto")]
    is_crypto: Option<bool>,
    /// Alias: `account_currency`. Also `search.currency.in`, `search.currency.like`.
    #[serde(rename = "search.currency")]
    #[param(rename = "search.currency")]
    account_currency: Option<String>,
    /// Alias: `active`.
    #[serde(rename = "search.active")]
    #[param(rename = "search.active")]
    active: Option<bool>,
    /// Alias: `status`. Also `search.status.in`.
    #[serde(rename = "search.status")]
    #[param(rename = "search.status")]
    status: Option<String>,
    /// Also `.gte`, `.lt`, `.lte`. Aliases: `balance_gt` …
    #[serde(rename = "search.balance.gt")]
    #[param(rename = "search.balance.gt")]
    balance_gt: Option<String>,
    /// Alias: `provider`. Also `search.provider.in`, `.like`.
    #[serde(rename = "search.provider")]
    #[param(rename = "search.provider")]
    provider: Option<String>,
    /// `available` or `unspecified`, a comma list or `search.balance_type.in=`. Alias:
    /// `balance_type`.
    #[serde(rename = "search.balance_type")]
    #[param(rename = "search.balance_type")]
    balance_type: Option<String>,
    /// Field searches `search.<field>[.<op>]`: fields `id`, `customer_id`, `main_wallet_address`, `iban`
    /// (and the ones above); ops `in` (comma list), `like` (case-insensitive substring).
    #[serde(rename = "search.id.like")]
    #[param(rename = "search.id.like")]
    id_like: Option<String>,
    /// Free text: id, wallet address or IBAN contains it (case-insensitive).
    search: Option<String>,
    /// Sort fields, comma list, `-` for descending: `balance_in_base`, `balance`, `currency`, `id`,
    /// `customer_id`, `provider`, `status`.
    sort: Option<String>,
    /// Page size (accounts), 1 to `server.max_page_size`. Not with `format=csv` (an export holds
    /// every matching account).
    limit: Option<u32>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
    /// `currency`: stacked format (groups of accounts). Alias: `group_by`.
    stack: Option<String>,
    details: Option<bool>,
    max_age: Option<u64>,
    strict: Option<bool>,
    /// RFC 3339 instant in the past: the answer as of then, from the store only (each pair's
    /// last observation at or before it, the rates in force then). Not with `max_age`/`strict`.
    #[param(value_type = Option<String>, format = DateTime, example = "2026-11-30T23:59:59Z")]
    at: Option<String>,
    /// `json` (default) or `csv` (also chosen by `Accept: text/csv`).
    #[param(pattern = "^(json|csv)$")]
    format: Option<String>,
}
