//! `GET /v2/accounts/balance/history`: the balance at a series of instants. Each point is
//! exactly what `GET /v2/accounts/balance?at=<point>` answers (totals, groups, `partial`,
//! `warnings`), computed from one store read of the window (`Store::held_window` and
//! `Store::rates_window`) instead of one read per point.

use axum::Json;
use axum::extract::{Query as QueryExtract, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Months, TimeDelta, Utc};
use coffer_core::query::{self, Endpoint, ParseOptions, Query};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::routes::balance_body::{check_target, param_error, query_error};
use crate::routes::dto;
use crate::routes::{at, at_totals, csv, export_balance};
use crate::state::AppState;

pub use crate::routes::dto::PointOut;

/// At most this many points per series.
pub const MAX_POINTS: usize = 1000;

/// The series' own parameters; every filter of `GET /v2/accounts/balance` applies too
/// (`customer_id`, `currency`, `stack`, `search.*` and their aliases), but not `at`,
/// `details`, `max_age` or `strict`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documentation only: the handler reads the pairs itself
pub struct SeriesParams {
    /// The first point: an RFC 3339 instant.
    #[param(value_type = String, format = DateTime, example = "2026-11-01T00:00:00Z")]
    from: String,
    /// The last point is at or before it; not in the future. Default: now.
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<String>,
    /// `1h`, `1d`, `1w` or `1mo` (calendar months, in UTC).
    #[param(example = "1d")]
    interval: String,
    /// One customer; omitted: every customer in the caller's scope.
    customer_id: Option<String>,
    /// Target currency of conversion (default: the base currency).
    currency: Option<String>,
    /// `currency`: each point also carries per-currency groups (JSON only).
    stack: Option<String>,
    /// `json` (default) or `csv` (also chosen by `Accept: text/csv`).
    #[param(pattern = "^(json|csv)$")]
    format: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SeriesOut {
    /// The target currency.
    pub currency: String,
    /// `1h`, `1d`, `1w` or `1mo`.
    pub interval: String,
    /// Oldest first: `from`, `from + interval`, … up to `to`.
    pub points: Vec<PointOut>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interval {
    Fixed(TimeDelta),
    Months,
}

fn interval(text: &str) -> ApiResult<Interval> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1h" => Ok(Interval::Fixed(TimeDelta::hours(1))),
        "1d" => Ok(Interval::Fixed(TimeDelta::days(1))),
        "1w" => Ok(Interval::Fixed(TimeDelta::weeks(1))),
        "1mo" => Ok(Interval::Months),
        _ => Err(ApiError::param(
            "interval",
            format!("`{text}` is not an interval: expected 1h, 1d, 1w or 1mo"),
        )),
    }
}

/// The points' instants. Months are counted from `from` (not stepped one after the other), so
/// 31 January gives 28 February then 31 March.
fn points(from: DateTime<Utc>, to: DateTime<Utc>, step: Interval) -> ApiResult<Vec<DateTime<Utc>>> {
    let mut out = Vec::new();
    for k in 0u32.. {
        let t = match step {
            Interval::Fixed(d) => d
                .checked_mul(i32::try_from(k).unwrap_or(i32::MAX))
                .and_then(|d| from.checked_add_signed(d)),
            Interval::Months => from.checked_add_months(Months::new(k)),
        };
        let Some(t) = t.filter(|t| *t <= to) else {
            break;
        };
        if out.len() == MAX_POINTS {
            return Err(ApiError::param(
                "interval",
                format!(
                    "from `from` to `to` this gives more than {MAX_POINTS} points: take a longer interval or a shorter span"
                ),
            ));
        }
        out.push(t);
    }
    Ok(out)
}

/// The series' own parameters, taken out of the pairs; the rest are the balance filters.
struct Parsed {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    interval: (String, Interval),
    query: Query,
}

fn parse(state: &AppState, pairs: Vec<(String, String)>) -> ApiResult<Parsed> {
    let mut own: [Option<String>; 3] = Default::default();
    let mut rest = Vec::new();
    for (k, v) in pairs {
        let slot = ["from", "to", "interval"]
            .iter()
            .position(|n| k.eq_ignore_ascii_case(n));
        match slot {
            Some(i) => {
                if own[i].as_ref().is_some_and(|old| *old != v) {
                    return Err(ApiError::param(k, "given twice with different values"));
                }
                own[i] = Some(v);
            }
            None if ["at", "details", "include_details", "max_age", "strict"]
                .iter()
                .any(|n| k.eq_ignore_ascii_case(n)) =>
            {
                return Err(ApiError::param(
                    k,
                    "does not apply to a series: each point is the balance at its instant, from the store",
                ));
            }
            None => rest.push((k, v)),
        }
    }
    let [from, to, step] = own;
    let instant = |name: &str, v: Option<String>| -> ApiResult<Option<DateTime<Utc>>> {
        v.map(|v| query::parse_instant(&v).map_err(|m| ApiError::param(name, m)))
            .transpose()
    };
    let now = Utc::now();
    let from = instant("from", from)?.ok_or_else(|| ApiError::param("from", "is required"))?;
    let to = instant("to", to)?.unwrap_or(now);
    if to > now {
        return Err(ApiError::param(
            "to",
            "is in the future: only what was observed can be answered",
        ));
    }
    if from > to {
        return Err(ApiError::param("from", "is after `to`"));
    }
    at::within_retention(state, "from", from)?;
    let step_text = step.ok_or_else(|| ApiError::param("interval", "is required"))?;
    let step = interval(&step_text)?;
    let mut opts = ParseOptions::new(Endpoint::Balance);
    opts.max_limit = state.config.server.max_page_size;
    opts.default_limit = opts.default_limit.min(opts.max_limit);
    let query = query::parse_query(&rest, &opts).map_err(param_error)?;
    Ok(Parsed {
        from,
        to,
        interval: (step_text.trim().to_ascii_lowercase(), step),
        query,
    })
}

type Pairs = Result<QueryExtract<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>;

/// The balance at `from`, `from + interval`, … up to `to` (at most 1,000 points), each
/// exactly as `GET /v2/accounts/balance?at=<point>` with the same filters answers it.
#[utoipa::path(get, path = "/v2/accounts/balance/history", tag = "accounts", params(SeriesParams),
    responses((status = 200, description = "The series (CSV: a row per point)",
            content((SeriesOut = "application/json"), (String = "text/csv"))), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn balance_history(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    pairs: Pairs,
) -> ApiResult<Response> {
    let QueryExtract(pairs) = pairs.map_err(|e| ApiError::param("query", e.body_text()))?;
    let (format, pairs) = csv::take_format(pairs)?;
    let as_csv = csv::wanted(format.as_deref(), &headers)?;
    let p = parse(&state, pairs)?;
    let instants = points(p.from, p.to, p.interval.1)?;
    let q = &p.query;
    if let Some(id) = &q.customer_id {
        // Same answer for "no such customer" and "not yours".
        if !caller.can_see(id) {
            return Err(ApiError::NotFound("customer".into()));
        }
        state.store.get_customer(id).await?;
    }
    let scope = caller.scope(q.customer_id.as_deref());
    // An admin's all-customer series: each point as `at=` answers it, from the checkpoints of
    // the totals where they answer (routes/at_totals.rs); the window of every account is read
    // only when a point needs it.
    let all = caller.is_admin() && q.customer_id.is_none();
    let mut held = None;
    let rates = state.store.rates_window(p.from, p.to).await?;
    let max_gap = state.config.max_gap();
    let mut out = Vec::with_capacity(instants.len());
    // For CSV rows: each point's rates and its oldest observation.
    let mut extra = Vec::with_capacity(if as_csv { instants.len() } else { 0 });
    let mut currency = None;
    for t in instants {
        let table = state.rates.table_from(rates.at(t), t);
        let point = if all {
            let p = all_point(&state, q, t, &table, &mut held, (p.from, p.to)).await?;
            currency.get_or_insert(p.currency);
            if as_csv {
                extra.push((p.rates, p.oldest));
            }
            p.point
        } else {
            if held.is_none() {
                held = Some(state.store.held_window(&scope, p.from, p.to).await?);
            }
            let h = held.as_ref().map(|w| w.at(t)).unwrap_or_default();
            check_target(q, &table).map_err(|e| at_point(e, t))?;
            let a = query::balance(&h.accounts, q, &table).map_err(query_error)?;
            let mut f = at::freshness_at(&h, t, max_gap);
            at::unsettled(&mut f, t, state.config.settle());
            currency.get_or_insert_with(|| a.currency.to_string());
            if as_csv {
                let oldest = f.as_of.iter().filter_map(|p| p.as_of).min();
                extra.push((dto::rates(&a.rates), oldest));
            }
            PointOut {
                at: t,
                total_balance: a.total.rounded.to_string(),
                fiat_balance: a.fiat.rounded.to_string(),
                crypto_balance: a.crypto.rounded.to_string(),
                balance_types: a.balance_types.into(),
                groups: a
                    .groups
                    .as_ref()
                    .map(|g| g.iter().map(dto::group).collect()),
                partial: f.partial,
                warnings: f.warnings,
            }
        };
        out.push(point);
    }
    let currency = currency.unwrap_or_else(|| state.base.to_string());
    if as_csv {
        return export_balance::series(&currency, &out, &extra, p.to);
    }
    Ok(Json(SeriesOut {
        currency,
        interval: p.interval.0,
        points: out,
    })
    .into_response())
}

/// One point of an admin's all-customer series: exactly `GET /v2/accounts/balance?at=<t>`
/// (routes/at_totals.rs), from the checkpoints when they answer, else from the window of every
/// account (read once, on first need).
async fn all_point(
    state: &AppState,
    q: &Query,
    t: DateTime<Utc>,
    table: &coffer_core::rates::RateTable,
    held: &mut Option<coffer_store::HeldWindow>,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
) -> ApiResult<AllPoint> {
    let (totals, s) = match state.store.totals_at(t, &q.filter).await? {
        Some(totals) => (totals, at_totals::observed(state, t).await?),
        None => {
            if held.is_none() {
                let w = state
                    .store
                    .held_window(&coffer_store::Scope::All, from, to)
                    .await?;
                *held = Some(w);
            }
            let h = held.as_ref().map(|w| w.at(t)).unwrap_or_default();
            let s = coffer_store::summarize(&h, t, at::gap(state.config.max_gap()));
            (at_totals::sum(&h.accounts, &q.filter)?, s)
        }
    };
    let mut f = at::freshness_of(&s, t, state.config.max_gap());
    at::unsettled(&mut f, t, state.config.settle());
    let oldest = f.as_of.iter().filter_map(|p| p.as_of).min();
    let out = at_totals::out_of(q, t, &totals, f, None, table).map_err(|e| at_point(e, t))?;
    let point = PointOut {
        at: t,
        total_balance: out.total_balance,
        fiat_balance: out.fiat_balance,
        crypto_balance: out.crypto_balance,
        balance_types: out.balance_types,
        groups: out.groups,
        partial: out.freshness.partial,
        warnings: out.freshness.warnings,
    };
    Ok(AllPoint {
        point,
        currency: out.currency,
        rates: out.rates,
        oldest,
    })
}

/// One all-customer point, with what its CSV row adds: the rates and the oldest data behind it.
struct AllPoint {
    point: PointOut,
    currency: String,
    rates: Vec<crate::routes::rates::RateOut>,
    oldest: Option<DateTime<Utc>>,
}

/// Names the point an error is about: the whole series is refused (as `at=` would refuse that
/// instant) rather than answered with a hole.
fn at_point(e: ApiError, t: DateTime<Utc>) -> ApiError {
    match e {
        ApiError::InvalidParam { param, message } => ApiError::InvalidParam {
            param,
            message: format!(
                "{message} (at the point {})",
                t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            ),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        query::parse_instant(s).unwrap()
    }

    #[test]
    fn months_step_in_calendar_months_from_the_start() {
        let p = points(
            t("2026-01-31T00:00:00Z"),
            t("2026-04-30T00:00:00Z"),
            Interval::Months,
        )
        .unwrap();
        let want = ["2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30"];
        let got: Vec<String> = p.iter().map(|d| d.date_naive().to_string()).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn at_most_a_thousand_points() {
        let from = t("2026-01-01T00:00:00Z");
        let hour = Interval::Fixed(TimeDelta::hours(1));
        assert_eq!(
            points(from, from + TimeDelta::hours(999), hour)
                .unwrap()
                .len(),
            1000
        );
        assert!(points(from, from + TimeDelta::hours(1000), hour).is_err());
        assert_eq!(points(from, from, hour).unwrap(), vec![from]);
    }
}
