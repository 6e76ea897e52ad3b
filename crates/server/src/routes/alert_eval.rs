//! Alerts (DESIGN.md "Push", Alerts): a worker beside the subscription worker follows the
//! outbox. An alert whose customers had account events after its cursor (or that was never
//! evaluated, or every `alerts.interval`, so a changed rate is seen too) is evaluated from the
//! store: its balance query answered over the stored snapshots, its crossing decided by
//! `coffer_store::evaluate_alert`, and the result compare-and-set in the store. Any number of
//! replicas may evaluate: an evaluation written first makes the others' stale, so a crossing is
//! written once.

use chrono::Utc;
use coffer_core::query::{self, Endpoint, ParamError, ParseOptions, Query};
use coffer_store::{Alert, EventFilter, EventType, Scope};
use tokio::sync::watch;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Events read per alert per round (its cursor moves on by as many).
const PAGE: u32 = 1000;

/// The events that may change a total.
const ACCOUNT_EVENTS: [EventType; 3] = [
    EventType::BalanceChanged,
    EventType::AccountOpened,
    EventType::AccountClosed,
];

/// Parses an alert's query with the balance endpoint's parser. An alert follows the present,
/// so `at` is refused; `max_age` and `strict` mean nothing to an evaluation from the store.
pub fn parse(text: &str) -> Result<Query, ParamError> {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(text.trim_start_matches('?').as_bytes())
            .into_owned()
            .collect();
    for (k, _) in &pairs {
        if ["at", "max_age", "strict"]
            .iter()
            .any(|p| k.eq_ignore_ascii_case(p))
        {
            return Err(ParamError::new(
                k.clone(),
                "not for an alert: it is evaluated on the present, from the store",
            ));
        }
    }
    query::parse_query(&pairs, &ParseOptions::new(Endpoint::Balance))
}

/// Runs until `shutdown`.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let every = state
        .config
        .alerts
        .interval
        .max(std::time::Duration::from_secs(1));
    let mut wake = state.store.event_wake();
    let mut last_full = tokio::time::Instant::now();
    loop {
        wake.borrow_and_update();
        let full = last_full.elapsed() >= every;
        if full {
            last_full = tokio::time::Instant::now();
        }
        round(&state, full).await;
        tokio::select! {
            r = wake.changed() => if r.is_err() { tokio::time::sleep(every).await },
            () = tokio::time::sleep(every) => {},
            _ = shutdown.changed() => {},
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

/// One round over every alert; `full` evaluates them all, events or not.
pub async fn round(state: &AppState, full: bool) {
    let alerts = match state.store.list_alerts().await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "alerts not read; retrying");
            return;
        }
    };
    for a in alerts {
        if let Err(e) = evaluate(state, &a, full).await {
            tracing::warn!(alert = %a.id, error = %e, "alert not evaluated; retrying");
        }
    }
}

/// Evaluates `a` if something may have changed its total; writes the result unless another
/// evaluation was written first (then the next round reads the newer state).
pub async fn evaluate(state: &AppState, a: &Alert, full: bool) -> ApiResult<()> {
    let scope = match &a.customer_id {
        Some(c) => Scope::Customers(vec![c.clone()]),
        None => Scope::All,
    };
    let page = state
        .store
        .events(&EventFilter {
            scope,
            types: ACCOUNT_EVENTS.to_vec(),
            after: a.cursor,
            limit: PAGE,
        })
        .await?;
    if page.is_empty() && a.triggered.is_some() && !full {
        return Ok(());
    }
    let cursor = page.last().map_or(a.cursor, |e| e.id);
    let q = parse(&a.query).map_err(crate::routes::balance_body::param_error)?;
    let Some((total, data)) = total(state, &q).await? else {
        return Ok(());
    };
    let update = coffer_store::evaluate_alert(a, total, cursor, Utc::now(), data);
    let crossed = update.event.is_some();
    if state.store.record_alert(&update).await? && crossed {
        crate::metrics::alert_crossed();
        tracing::info!(alert = %a.id, %total, "alert crossed its bound");
    }
    Ok(())
}

/// The query's exact total from the store, and what the event says of it: the currency, the
/// rates used, the accounts left out for want of a rate. `None`: the customer is gone.
async fn total(
    state: &AppState,
    q: &Query,
) -> ApiResult<
    Option<(
        rust_decimal::Decimal,
        serde_json::Map<String, serde_json::Value>,
    )>,
> {
    let (accounts, table, q) = match &q.customer_id {
        Some(id) => {
            let accounts = match state.store.customer_accounts(id).await {
                Ok(c) => c.accounts,
                Err(coffer_store::StoreError::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let table = state.rates.table_for(state.store.as_ref(), &accounts).await;
            (accounts, table, q.clone())
        }
        None => {
            let (src, _) =
                crate::routes::source::all_totals(state, &coffer_store::Scope::All, &q.filter)
                    .await?;
            let table = state.rates.table_for_all(state.store.as_ref()).await;
            // The store applied the filters to the per-currency sums.
            let unfiltered = Query {
                filter: Default::default(),
                ..q.clone()
            };
            (src.accounts, table, unfiltered)
        }
    };
    let answer =
        query::balance(&accounts, &q, &table).map_err(crate::routes::balance_body::query_error)?;
    let mut data = serde_json::Map::new();
    data.insert("currency".into(), answer.currency.to_string().into());
    data.insert(
        "rates".into(),
        serde_json::to_value(crate::rate_body::rates(&answer.rates))
            .map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    data.insert("unconverted".into(), answer.unconverted.len().into());
    Ok(Some((answer.total.exact, data)))
}
