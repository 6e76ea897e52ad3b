//! `GET /v2/events`: the outbox as pages, or with `Accept: text/event-stream` as a live SSE
//! stream (`id:` the cursor, `event:` the type, `data:` the event; `Last-Event-ID` resumes).
//!
//! Scope: a reader sees its customers' events only, whatever the parameters. A stream waits on
//! the store's event wake (this replica's commits, and on PostgreSQL other replicas' through
//! `NOTIFY coffer_events`), and also polls now and then, so a lost notification delays an
//! event by at most [`POLL`], never loses it: the cursor, not the wake, says what is sent.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use coffer_store::{Event, EventFilter, EventType, Scope};
use futures::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

pub use crate::event_body::EventOut;

/// How often a stream looks for events even without a wake.
const POLL: Duration = Duration::from_secs(5);
/// Events a stream reads per query.
const STREAM_BATCH: u32 = 500;
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

/// The parameters, as the OpenAPI document shows them (parsed by hand, to name what is wrong).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documentation only
pub struct EventParams {
    /// Events after this cursor (a page's `next_cursor`, or an event's `id`); default: from the
    /// first event. On a stream, `Last-Event-ID` takes precedence.
    #[param(pattern = "^[0-9]{1,18}$")]
    after: Option<String>,
    /// Page size (1–1000, default 100). Not used by a stream.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// Only these types, comma-separated: `balance.changed`, `account.opened`,
    /// `account.closed`, `sync.failed`, `sync.recovered`, `threshold.crossed`.
    #[param(
        pattern = "^(balance\\.changed|account\\.opened|account\\.closed|sync\\.failed|sync\\.recovered|threshold\\.crossed)(,(balance\\.changed|account\\.opened|account\\.closed|sync\\.failed|sync\\.recovered|threshold\\.crossed))*$"
    )]
    types: Option<String>,
    /// Only this customer (a reader: one of its own; another gives nothing).
    customer_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    pub data: Vec<EventOut>,
    /// Pass as `after` to continue: the last event's id, or the `after` given when the page is
    /// empty (poll again with it later).
    pub next_cursor: String,
}

struct Parsed {
    filter: EventFilter,
    stream: bool,
}

fn cursor(param: &str, v: &str) -> ApiResult<i64> {
    v.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| ApiError::param(param, "an event id (a cursor from next_cursor)"))
}

type Pairs = Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>;

fn parse(caller: &Caller, pairs: Pairs, headers: &HeaderMap) -> ApiResult<Parsed> {
    let Query(pairs) = pairs.map_err(|e| ApiError::param("query", e.body_text()))?;
    let (mut after, mut limit, mut types, mut customer) = (0, DEFAULT_LIMIT, Vec::new(), None);
    for (k, v) in pairs {
        match k.as_str() {
            "after" => after = cursor("after", &v)?,
            "limit" => {
                limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| ApiError::param("limit", "between 1 and 1000"))?;
            }
            "types" => {
                // Exactly the document's pattern: names joined by commas, no blanks or spaces.
                for t in v.split(',') {
                    types.push(EventType::parse(t).ok_or_else(|| {
                        ApiError::param(
                            "types",
                            format!("unknown event type `{t}`: one of {}", type_list()),
                        )
                    })?);
                }
            }
            "customer_id" => customer = Some(v),
            other => {
                return Err(ApiError::param(
                    if other.is_empty() { "(no name)" } else { other },
                    "unknown parameter",
                ));
            }
        }
    }
    let stream = headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"));
    if stream && let Some(id) = headers.get("last-event-id") {
        let id = id
            .to_str()
            .map_err(|_| ApiError::param("Last-Event-ID", "an event id"))?;
        after = cursor("Last-Event-ID", id)?;
    }
    types.sort();
    types.dedup();
    Ok(Parsed {
        filter: EventFilter {
            scope: caller.scope(customer.as_deref()),
            types,
            after,
            limit: if stream { STREAM_BATCH } else { limit },
        },
        stream,
    })
}

fn type_list() -> String {
    EventType::ALL.map(EventType::as_str).join(", ")
}

/// Change events, as a page or a live stream.
#[utoipa::path(get, path = "/v2/events", tag = "events", params(EventParams),
    responses(
        (status = 200, description = "A page; with `Accept: text/event-stream`, an SSE stream \
            whose events carry `id:` (the cursor), `event:` (the type) and `data:` (the event)",
            content(
                (EventPage = "application/json"),
                (String = "text/event-stream"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    pairs: Pairs,
) -> ApiResult<Response> {
    let p = parse(&caller, pairs, &headers)?;
    if p.stream {
        return Ok(stream(state, p.filter).into_response());
    }
    let after = p.filter.after;
    let data: Vec<EventOut> = state
        .store
        .events(&p.filter)
        .await?
        .into_iter()
        .map(EventOut::from)
        .collect();
    let next_cursor = data.last().map_or(after, |e| e.id).to_string();
    Ok(Json(EventPage { data, next_cursor }).into_response())
}

struct Streaming {
    state: AppState,
    filter: EventFilter,
    wake: watch::Receiver<i64>,
    closing: watch::Receiver<bool>,
    queued: VecDeque<Event>,
    _open: OpenStream,
}

/// Counts the open streams while it lives.
struct OpenStream;

impl OpenStream {
    fn new() -> Self {
        crate::metrics::event_streams(1.0);
        OpenStream
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        crate::metrics::event_streams(-1.0);
    }
}

fn stream(
    state: AppState,
    filter: EventFilter,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let empty = matches!(&filter.scope, Scope::Customers(c) if c.is_empty());
    let st = Streaming {
        wake: state.store.event_wake(),
        closing: state.closing.subscribe(),
        state,
        filter,
        queued: VecDeque::new(),
        _open: OpenStream::new(),
    };
    let events = futures::stream::unfold(st, move |mut st| async move {
        loop {
            if let Some(e) = st.queued.pop_front() {
                crate::metrics::event_streamed(e.kind.as_str());
                return Some((Ok(sse_event(e)), st));
            }
            if *st.closing.borrow() {
                // Shutting down: the client reconnects (to any replica) with Last-Event-ID.
                return None;
            }
            // Marked seen before the query: a commit after it wakes the wait below.
            st.wake.borrow_and_update();
            if !empty {
                match st.state.store.events(&st.filter).await {
                    Ok(page) => {
                        if let Some(last) = page.last() {
                            st.filter.after = last.id;
                            st.queued.extend(page);
                            continue;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "event stream cannot read events; retrying")
                    }
                }
            }
            tokio::select! {
                r = st.wake.changed() => if r.is_err() { tokio::time::sleep(POLL).await },
                _ = st.closing.changed() => {},
                () = tokio::time::sleep(POLL) => {},
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

fn sse_event(e: Event) -> SseEvent {
    let id = e.id.to_string();
    let kind = e.kind.as_str();
    let out = EventOut::from(e);
    let data = serde_json::to_string(&out).unwrap_or_else(|_| "{}".to_owned());
    SseEvent::default().id(id).event(kind).data(data)
}
