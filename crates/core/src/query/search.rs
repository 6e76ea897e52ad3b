//! Field searches: `search.<field>[.<op>]=value` and free text `search=…`, parsed into the
//! [`Filter`]. Called by the one parameter parser ([`super::params::parse_query`]) with names
//! already canonical (aliases mapped, `.in` folded for currency, status and provider).

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::filter::{BalanceRange, FieldOp, FieldSearch, Filter, SearchField};
use super::param_error::{ParamError, parse_bool, quote};
use crate::account::{BalanceType, Status};
use crate::currency::Currency;
use crate::money::parse_decimal;

/// Longest free text or `like` pattern accepted; longer is surely not an id, address or IBAN.
const MAX_TEXT: usize = 256;
/// Most items in an `in` list.
const MAX_ITEMS: usize = 100;

const STRING_FIELDS: &[(&str, SearchField)] = &[
    ("id", SearchField::Id),
    ("customer_id", SearchField::CustomerId),
    ("currency", SearchField::Currency),
    ("provider", SearchField::Provider),
    ("status", SearchField::Status),
    ("main_wallet_address", SearchField::MainWalletAddress),
    ("iban", SearchField::Iban),
];

/// Whether a canonical name is a search parameter: `None` if it is not a `search.…` name of any
/// kind, `Some(Ok(on_balance))` if it is valid (and whether the balance endpoint takes it),
/// `Some(Err(message))` if it names a field or operator wrongly.
pub(crate) fn classify(canon: &str) -> Option<Result<bool, String>> {
    let rest = canon.strip_prefix("search.")?;
    let (field, op) = match rest.split_once('.') {
        Some((f, o)) => (f, Some(o)),
        None => (rest, None),
    };
    Some(match (field, op) {
        ("is_crypto" | "active", None) => Ok(true),
        ("currency" | "status" | "provider" | "balance_type", None) => Ok(true),
        ("balance_type", Some(o)) => Err(format!(
            "unknown operator `{}` for balance_type: expected in (or none, for equality)",
            quote(o)
        )),
        ("balance", Some("gt" | "gte" | "lt" | "lte")) => Ok(true),
        ("balance", None) => Ok(false),
        ("balance", Some(o)) => Err(format!(
            "unknown operator `{}` for balance: expected gt, gte, lt or lte (or none, for equality)",
            quote(o)
        )),
        (f, None | Some("in" | "like")) if STRING_FIELDS.iter().any(|(n, _)| *n == f) => Ok(false),
        (f, Some(o)) if STRING_FIELDS.iter().any(|(n, _)| *n == f) => Err(format!(
            "unknown operator `{}` for {f}: expected in or like (gt, gte, lt, lte apply to balance only)",
            quote(o)
        )),
        _ => Err(format!(
            "unknown search field: expected search.<field>[.<op>] with field one of id, customer_id, \
             currency, provider, status, main_wallet_address, iban, balance, balance_type, is_crypto, \
             active; got `{}`",
            quote(rest)
        )),
    })
}

/// Applies one search parameter (canonical name, raw value) to the filter.
pub(crate) fn apply(filter: &mut Filter, canon: &str, value: &str) -> Result<(), String> {
    let rest = canon.strip_prefix("search.").unwrap_or(canon);
    let (field, op) = match rest.split_once('.') {
        Some((f, o)) => (f, Some(o)),
        None => (rest, None),
    };
    match (field, op) {
        ("is_crypto", None) => filter.is_crypto = Some(parse_bool(value)?),
        ("active", None) => filter.active = Some(parse_bool(value)?),
        ("currency", None) => {
            filter.currencies = list(value)?.iter().map(|c| Currency::new(c)).collect()
        }
        ("status", None) => {
            filter.statuses = list(value)?
                .iter()
                .map(|s| s.parse::<Status>().map_err(|e| format!("{e}")))
                .collect::<Result<_, _>>()?
        }
        ("provider", None) => filter.providers = list(value)?,
        ("balance_type", None) => filter.balance_types = balance_types(value)?,
        ("balance", op) => apply_balance(&mut filter.balance, op, value)?,
        (f, op) => {
            let field = STRING_FIELDS
                .iter()
                .find(|(n, _)| *n == f)
                .map(|(_, sf)| *sf)
                .ok_or_else(|| format!("unknown search field `{}`", quote(f)))?;
            let op = match op {
                None => FieldOp::Eq(non_empty(value)?.to_owned()),
                Some("in") => FieldOp::In(list(value)?),
                Some("like") => FieldOp::Like(pattern(value)?),
                Some(o) => {
                    return Err(format!(
                        "unknown operator `{}`: expected in or like",
                        quote(o)
                    ));
                }
            };
            filter.fields.push(FieldSearch { field, op });
        }
    }
    Ok(())
}

/// `available`, `unspecified` or a comma list of them, case-insensitively.
fn balance_types(value: &str) -> Result<Vec<BalanceType>, String> {
    let mut out = Vec::new();
    for item in list(value)? {
        let t = BalanceType::parse(&item).ok_or_else(|| {
            format!(
                "unknown balance type `{}`: expected one of available, unspecified",
                quote(&item)
            )
        })?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

/// Free text `search=`: empty means no constraint.
pub(crate) fn parse_text(value: &str) -> Result<Option<String>, String> {
    let t = value.trim();
    if t.is_empty() {
        return Ok(None);
    }
    if t.chars().count() > MAX_TEXT {
        return Err(format!("search text is longer than {MAX_TEXT} characters"));
    }
    Ok(Some(t.to_owned()))
}

fn non_empty(v: &str) -> Result<&str, String> {
    let t = v.trim();
    if t.is_empty() {
        Err("empty value: expected a value to search for".into())
    } else {
        Ok(t)
    }
}

fn pattern(v: &str) -> Result<String, String> {
    let t = non_empty(v)?;
    if t.chars().count() > MAX_TEXT {
        return Err(format!("pattern is longer than {MAX_TEXT} characters"));
    }
    Ok(t.to_owned())
}

/// A comma list (`USDC,EURC`): items trimmed, empty items dropped, at least one required.
fn list(v: &str) -> Result<Vec<String>, String> {
    let items: Vec<String> = v
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if items.is_empty() {
        return Err("empty value: expected one value or a comma-separated list".into());
    }
    if items.len() > MAX_ITEMS {
        return Err(format!("more than {MAX_ITEMS} values in the list"));
    }
    Ok(items)
}

/// Sets a bound, keeping the tighter one when the same bound is set twice (`search.balance=5`
/// sets both `gte` and `lte`, and may meet an explicit `gte`).
fn apply_balance(range: &mut BalanceRange, op: Option<&str>, value: &str) -> Result<(), String> {
    let v = parse_decimal(value).map_err(|e| format!("{e}"))?;
    let lower = |slot: &mut Option<Decimal>| *slot = Some(slot.map_or(v, |o| o.max(v)));
    let upper = |slot: &mut Option<Decimal>| *slot = Some(slot.map_or(v, |o| o.min(v)));
    match op {
        Some("gt") => lower(&mut range.gt),
        Some("gte") => lower(&mut range.gte),
        Some("lt") => upper(&mut range.lt),
        Some("lte") => upper(&mut range.lte),
        None => {
            lower(&mut range.gte);
            upper(&mut range.lte);
        }
        Some(o) => return Err(format!("unknown operator `{}` for balance", quote(o))),
    }
    Ok(())
}

/// Rejects a range no balance can satisfy (`gt=10&lt=5`, `gt=5&lte=5`): it is always a mistake,
/// and answering "0 accounts" would hide it.
pub(crate) fn check_range(
    range: &BalanceRange,
    params: &BTreeMap<String, (String, String)>,
) -> Result<(), ParamError> {
    // (value, strict, canonical name)
    let lower = tighter(
        range.gt.map(|v| (v, true, "search.balance.gt")),
        range.gte.map(|v| (v, false, "search.balance.gte")),
        true,
    );
    let upper = tighter(
        range.lt.map(|v| (v, true, "search.balance.lt")),
        range.lte.map(|v| (v, false, "search.balance.lte")),
        false,
    );
    let (Some((lo, lo_strict, lo_name)), Some((hi, hi_strict, hi_name))) = (lower, upper) else {
        return Ok(());
    };
    if lo < hi || (lo == hi && !lo_strict && !hi_strict) {
        return Ok(());
    }
    let given = |canon: &str| {
        params
            .get(canon)
            .or_else(|| params.get("search.balance"))
            .map_or_else(
                || (canon.to_owned(), String::new()),
                |(g, v)| (g.clone(), v.clone()),
            )
    };
    let (lo_given, lo_value) = given(lo_name);
    let (hi_given, hi_value) = given(hi_name);
    Err(ParamError::new(
        &lo_given,
        format!(
            "`{}={}` and `{}={}` leave no balance possible: expected a lower bound below the upper bound",
            quote(&lo_given),
            quote(&lo_value),
            quote(&hi_given),
            quote(&hi_value)
        ),
    ))
}

/// Of a strict and a non-strict bound, the one that constrains more.
fn tighter<'a>(
    strict: Option<(Decimal, bool, &'a str)>,
    loose: Option<(Decimal, bool, &'a str)>,
    is_lower: bool,
) -> Option<(Decimal, bool, &'a str)> {
    match (strict, loose) {
        (Some(s), Some(l)) => {
            let strict_wins = if is_lower { s.0 >= l.0 } else { s.0 <= l.0 };
            Some(if strict_wins { s } else { l })
        }
        (s, l) => s.or(l),
    }
}
