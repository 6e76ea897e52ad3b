//! The one parser from raw query pairs to a typed [`Query`], shared by both endpoints.
//!
//! Decisions, and why:
//! - **Unknown parameters are rejected** (a [`ParamError`] naming them). A typo'd filter
//!   (`stauts=suspended`) that is silently ignored returns a wrong amount of money with a 200;
//!   a 400 that names the parameter costs the caller one retry. Parameters of the other endpoint
//!   (`sort` on the balance endpoint) are rejected the same way.
//! - **Aliases live in one table**, [`ALIASES`]: Corebanq's names are canonical, the short names
//!   are mapped before anything else looks at a parameter.
//! - **A parameter given twice** (as itself, as its alias, or `search.status` next to
//!   `search.status.in`, which mean the same) is accepted when the values agree and rejected when
//!   they differ: there is no safe guess about which one the caller meant.
//! - Names are matched ASCII-case-insensitively; values keep their case.
//! - `details` and `strict` are flags: present without a value (`?details`) means `true`.
//!   Every other empty value is an error, except `search=` (an empty search box searches
//!   nothing).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};

use super::cursor::Cursor;
use super::filter::Filter;
pub use super::param_error::ParamError;
use super::param_error::{parse_bool, quote};
use super::search;
use super::sort::SortSpec;
use crate::currency::Currency;

/// Which endpoint is parsing: the list accepts more parameters than the balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `GET /v2/accounts/balance`: the filters of DESIGN.md's table.
    Balance,
    /// `GET /v2/accounts`: the filters plus field searches, `search`, `sort`, `limit`, `cursor`.
    List,
}

/// How to parse: the endpoint and the page-size bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    pub endpoint: Endpoint,
    /// Largest `limit` accepted; a larger one is an error, not silently clamped.
    pub max_limit: u32,
    /// Page size when `limit` is absent (capped at `max_limit`).
    pub default_limit: u32,
}

impl ParseOptions {
    pub const DEFAULT_MAX_LIMIT: u32 = 1000;
    pub const DEFAULT_LIMIT: u32 = 100;

    pub fn new(endpoint: Endpoint) -> Self {
        ParseOptions {
            endpoint,
            max_limit: Self::DEFAULT_MAX_LIMIT,
            default_limit: Self::DEFAULT_LIMIT,
        }
    }
}

/// How to group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stack {
    Currency,
}

/// A parsed query. Built by [`parse_query`]; [`Query::default`] is "everything, in the base".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// `customer_id`: one customer. `None`: every customer in the caller's scope (the server
    /// passes only those accounts). The engine also filters on it.
    pub customer_id: Option<String>,
    /// `currency`: the target of conversion, always a registry currency; `None`: the table's base.
    pub currency: Option<Currency>,
    pub filter: Filter,
    /// `stack` / `group_by`.
    pub stack: Option<Stack>,
    /// `details` / `include_details`: list the accounts in the balance answer. The list endpoint
    /// accepts it (it is in the shared filter table) and always lists accounts anyway.
    pub details: bool,
    /// `max_age` in seconds: the freshness layer's business, carried through.
    pub max_age: Option<Duration>,
    /// `strict`: a provider failure is an error (the server's business, carried through).
    pub strict: bool,
    /// `sort` as requested (list only); see [`Query::effective_sort`].
    pub sort: SortSpec,
    /// `limit` (list only).
    pub limit: u32,
    /// `cursor` (list only), already checked against the effective sort.
    pub cursor: Option<Cursor>,
    /// `at`: answer as of this past instant (microseconds), from what was observed then. The
    /// server refuses one in the future (the parser does not know the time).
    pub at: Option<DateTime<Utc>>,
}

impl Default for Query {
    fn default() -> Self {
        Query {
            customer_id: None,
            currency: None,
            filter: Filter::default(),
            stack: None,
            details: false,
            max_age: None,
            strict: false,
            sort: SortSpec::default(),
            limit: ParseOptions::DEFAULT_LIMIT,
            cursor: None,
            at: None,
        }
    }
}

impl Query {
    /// The order the list really uses: stacked lists sort by currency first.
    pub fn effective_sort(&self) -> SortSpec {
        match self.stack {
            Some(Stack::Currency) => self.sort.stacked(),
            None => self.sort.clone(),
        }
    }
}

/// Every alias and the canonical name it stands for. The only place aliases are known.
pub const ALIASES: &[(&str, &str)] = &[
    ("is_crypto", "search.is_crypto"),
    ("account_currency", "search.currency"),
    ("active", "search.active"),
    ("status", "search.status"),
    ("balance_gt", "search.balance.gt"),
    ("balance_gte", "search.balance.gte"),
    ("balance_lt", "search.balance.lt"),
    ("balance_lte", "search.balance.lte"),
    ("provider", "search.provider"),
    ("balance_type", "search.balance_type"),
    ("group_by", "stack"),
    ("include_details", "details"),
];

/// Plain (non-`search.…`) parameters and whether the balance endpoint takes them.
const PLAIN: &[(&str, bool)] = &[
    ("customer_id", true),
    ("currency", true),
    ("stack", true),
    ("details", true),
    ("max_age", true),
    ("strict", true),
    ("at", true),
    ("sort", false),
    ("limit", false),
    ("cursor", false),
    ("search", false),
];

/// The canonical name of a parameter as given (aliases mapped, `search.x.in` folded into
/// `search.x` for the fields where both mean "any of").
fn canonical(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    let mapped = ALIASES
        .iter()
        .find(|(a, _)| *a == lower)
        .map_or(lower, |(_, c)| (*c).to_owned());
    match mapped.as_str() {
        "search.currency.in"
        | "search.status.in"
        | "search.provider.in"
        | "search.balance_type.in" => mapped.trim_end_matches(".in").to_owned(),
        _ => mapped,
    }
}

/// Parses raw query pairs (as the HTTP layer decoded them, in order) into a [`Query`].
///
/// Every error names the parameter as the caller spelled it and says what was expected; see the
/// module doc for the rules on unknown, repeated and empty parameters. Never panics.
pub fn parse_query(pairs: &[(String, String)], opts: &ParseOptions) -> Result<Query, ParamError> {
    // canonical name -> (name as given, value)
    let mut params: BTreeMap<String, (String, String)> = BTreeMap::new();
    for (name, value) in pairs {
        // `=value`: an error must still name what it is about.
        if name.trim().is_empty() {
            return Err(ParamError::new(
                "(no name)",
                format!("a parameter without a name (`={}`)", quote(value)),
            ));
        }
        let canon = canonical(name);
        check_allowed(&canon, name, opts.endpoint)?;
        if let Some((first, v)) = params.get(&canon) {
            if v != value {
                let msg = if first == name {
                    format!(
                        "given twice with different values (`{}` and `{}`)",
                        quote(v),
                        quote(value)
                    )
                } else {
                    format!(
                        "`{}` and `{}` mean the same and are given different values (`{}` and `{}`)",
                        quote(first),
                        quote(name),
                        quote(v),
                        quote(value)
                    )
                };
                return Err(ParamError::new(name, msg));
            }
            continue;
        }
        params.insert(canon, (name.clone(), value.clone()));
    }

    let mut q = Query {
        limit: opts.default_limit.clamp(1, opts.max_limit.max(1)),
        ..Query::default()
    };
    let mut cursor_text = None;
    for (canon, (given, value)) in &params {
        let err = |m: String| ParamError::new(given, m);
        match canon.as_str() {
            "customer_id" => q.customer_id = Some(parse_customer_id(value).map_err(err)?),
            "currency" => {
                q.currency = Some(Currency::parse_known(value.trim()).map_err(|e| {
                    err(format!(
                        "{e}; the target of conversion must be a currency with a known rate"
                    ))
                })?)
            }
            "stack" => q.stack = Some(parse_stack(value).map_err(err)?),
            "details" => q.details = parse_flag(value).map_err(err)?,
            "strict" => q.strict = parse_flag(value).map_err(err)?,
            "max_age" => q.max_age = Some(parse_seconds(value).map_err(err)?),
            "sort" => q.sort = SortSpec::parse(value).map_err(err)?,
            "limit" => q.limit = parse_limit(value, opts.max_limit).map_err(err)?,
            "cursor" => cursor_text = Some((given, value)),
            "at" => q.at = Some(parse_instant(value).map_err(err)?),
            "search" => q.filter.text = search::parse_text(value).map_err(err)?,
            _ => search::apply(&mut q.filter, canon, value).map_err(err)?,
        }
    }
    search::check_range(&q.filter.balance, &params)?;
    check_at(&params)?;
    if let Some((given, text)) = cursor_text {
        q.cursor =
            Some(Cursor::decode(text, &q.effective_sort()).map_err(|m| ParamError::new(given, m))?);
    }
    Ok(q)
}

/// A past instant is answered from what was observed: refreshing (`max_age`) or failing on a
/// provider failure (`strict`) mean nothing there.
fn check_at(params: &BTreeMap<String, (String, String)>) -> Result<(), ParamError> {
    let Some((given, _)) = params.get("at") else {
        return Ok(());
    };
    for other in ["max_age", "strict"] {
        if params.contains_key(other) {
            return Err(ParamError::new(
                given,
                format!(
                    "cannot be combined with `{other}`: an answer at a past instant comes from the store only"
                ),
            ));
        }
    }
    Ok(())
}

/// An RFC 3339 instant, kept to the microsecond (the store's resolution).
pub fn parse_instant(v: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(v.trim())
        .map(|t| t.with_timezone(&Utc).trunc_subsecs(6))
        .map_err(|e| {
            format!(
                "`{}` is not an RFC 3339 instant such as 2026-11-30T23:59:59Z: {e}",
                quote(v)
            )
        })
}

/// Whether `canon` (given as `given`) is a parameter of `endpoint`.
fn check_allowed(canon: &str, given: &str, endpoint: Endpoint) -> Result<(), ParamError> {
    let on_balance = match PLAIN.iter().find(|(n, _)| *n == canon) {
        Some((_, on_balance)) => *on_balance,
        None => match search::classify(canon) {
            Some(Ok(on_balance)) => on_balance,
            Some(Err(message)) => return Err(ParamError::new(given, message)),
            None => return Err(ParamError::new(given, unknown_message(endpoint))),
        },
    };
    if endpoint == Endpoint::Balance && !on_balance {
        return Err(ParamError::new(
            given,
            "only the list endpoint (GET /v2/accounts) takes this parameter, not the balance endpoint",
        ));
    }
    Ok(())
}

fn unknown_message(endpoint: Endpoint) -> String {
    let mut names: Vec<&str> = PLAIN
        .iter()
        .filter(|(_, on_balance)| endpoint == Endpoint::List || *on_balance)
        .map(|(n, _)| *n)
        .collect();
    names.extend([
        "search.is_crypto",
        "search.active",
        "search.currency[.in]",
        "search.status[.in]",
        "search.provider[.in]",
        "search.balance_type[.in]",
        "search.balance.{gt,gte,lt,lte}",
    ]);
    if endpoint == Endpoint::List {
        names.push(
            "search.<id|customer_id|currency|provider|status|main_wallet_address|iban>[.in|.like]",
        );
    }
    let aliases: Vec<&str> = ALIASES.iter().map(|(a, _)| *a).collect();
    format!(
        "unknown parameter: expected one of {} (or an alias: {})",
        names.join(", "),
        aliases.join(", ")
    )
}

/// Customer ids as DESIGN.md defines them: 1–64 of `A-Za-z0-9._:-`.
fn parse_customer_id(v: &str) -> Result<String, String> {
    let ok = (1..=64).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        Ok(v.to_owned())
    } else {
        Err(format!(
            "`{}` is not a customer id: expected 1 to 64 characters of A-Z a-z 0-9 . _ : -",
            quote(v)
        ))
    }
}

fn parse_stack(v: &str) -> Result<Stack, String> {
    if v.trim().eq_ignore_ascii_case("currency") {
        Ok(Stack::Currency)
    } else {
        Err(format!(
            "cannot group by `{}`: expected `currency`",
            quote(v)
        ))
    }
}

/// A flag: like [`parse_bool`], and present without a value means `true`.
fn parse_flag(v: &str) -> Result<bool, String> {
    if v.trim().is_empty() {
        Ok(true)
    } else {
        parse_bool(v)
    }
}

fn parse_seconds(v: &str) -> Result<Duration, String> {
    let t = v.trim();
    if !t.is_empty()
        && t.len() <= 12
        && t.bytes().all(|b| b.is_ascii_digit())
        && let Ok(n) = t.parse::<u64>()
    {
        return Ok(Duration::from_secs(n));
    }
    Err(format!(
        "`{}` is not a number of seconds: expected a whole number such as `60`",
        quote(v)
    ))
}

fn parse_limit(v: &str, max: u32) -> Result<u32, String> {
    let t = v.trim();
    let n = if t.len() <= 10 && !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        t.parse::<u64>().ok()
    } else {
        None
    };
    match n {
        Some(n) if n >= 1 && n <= u64::from(max) => Ok(u32::try_from(n).unwrap_or(max)),
        _ => Err(format!(
            "`{}` is not a page size: expected a whole number from 1 to {max}",
            quote(v)
        )),
    }
}

#[cfg(test)]
#[path = "params_tests.rs"]
#[allow(clippy::unwrap_used)]
mod tests;
