//! The path every balance call takes: count it, wait the configured latency, then either the
//! normal answer or the fault set for it.

use std::io;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::conn::ConnCtl;
use crate::fault::{Fault, P100Error, Provider, corebanq_error_body};
use crate::state::Shared;

pub(crate) const JSON: &str = "application/json";
pub(crate) const TEXT: &str = "text/plain; charset=utf-8";

/// A P100 error as P100 sends it: its 401s are plain text, the rest JSON.
pub(crate) fn p100_error_reply(e: P100Error) -> Reply {
    let ct = if e.http_status() == 401 { TEXT } else { JSON };
    Reply::new(e.http_status(), ct, e.body())
}

/// A complete answer before faults touch it.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) content_type: &'static str,
    pub(crate) body: Bytes,
}

impl Reply {
    pub(crate) fn new(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Self {
        Self {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            content_type,
            body: body.into(),
        }
    }

    pub(crate) fn json(status: u16, body: impl Into<Bytes>) -> Self {
        Self::new(status, JSON, body)
    }

    fn head(&self, content_length: usize) -> axum::http::response::Builder {
        Response::builder()
            .status(self.status)
            .header(header::CONTENT_TYPE, self.content_type)
            .header(header::CONTENT_LENGTH, content_length)
    }

    fn with_body(self, body: Bytes) -> Response {
        let len = body.len();
        self.head(len)
            .body(Body::from(body))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    }

    /// Declares the whole length but streams `body`'s chunks, `pause` before each; `then_fail`
    /// ends the stream with an error (hyper then closes the connection mid-body).
    fn streamed(self, chunks: Vec<Bytes>, pause: Duration, then_fail: bool) -> Response {
        let len = self.body.len();
        let steps = chunks
            .into_iter()
            .map(Some)
            .chain(then_fail.then_some(None));
        let stream = futures::stream::unfold(steps, move |mut steps| async move {
            let step = steps.next()?;
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            let item = match step {
                Some(chunk) => Ok(chunk),
                None => Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "body cut by simulator fault",
                )),
            };
            Some((item, steps))
        });
        self.head(len)
            .body(Body::from_stream(stream))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let body = self.body.clone();
        self.with_body(body)
    }
}

/// Counts the call, applies latency and faults, and otherwise answers `normal()`.
pub(crate) async fn serve_call(
    shared: &Shared,
    provider: Provider,
    customer: Option<&str>,
    conn: &ConnCtl,
    normal: impl FnOnce() -> Reply,
) -> Response {
    let state = shared.provider(provider);
    state.calls.hit(customer);
    let latency = state.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match state.take_fault(customer) {
        None => normal().into_response(),
        Some(fault) => apply(fault, provider, conn, normal).await,
    }
}

async fn apply(
    fault: Fault,
    provider: Provider,
    conn: &ConnCtl,
    normal: impl FnOnce() -> Reply,
) -> Response {
    match fault {
        Fault::Latency(delay) => {
            tokio::time::sleep(delay).await;
            normal().into_response()
        }
        Fault::P100(e) => p100_error_reply(e).into_response(),
        Fault::Corebanq(e) => Reply::json(e.http_status(), e.body()).into_response(),
        Fault::Status(status, body) => {
            let ct = if serde_json::from_str::<serde::de::IgnoredAny>(&body).is_ok() {
                JSON
            } else {
                TEXT
            };
            Reply::new(status, ct, body).into_response()
        }
        Fault::RateLimited { retry_after } => {
            let reply = match provider {
                Provider::P100 => Reply::new(429, TEXT, "Too Many Requests"),
                Provider::Corebanq => Reply::json(
                    429,
                    corebanq_error_body("rate_limited", "Too many requests", serde_json::json!({})),
                ),
            };
            let mut resp = reply.into_response();
            if let Some(v) = retry_after
                .header_value()
                .and_then(|v| HeaderValue::from_str(&v).ok())
            {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            resp
        }
        Fault::MalformedJson => {
            let reply = normal();
            let mut body = reply.body.to_vec();
            match body.iter().position(|&b| b == b':') {
                Some(i) => body[i] = b'=',
                None => body.extend_from_slice(b"}{"),
            }
            reply.with_body(body.into())
        }
        Fault::TruncatedBody => {
            let reply = normal();
            let cut = reply.body.slice(..half(reply.body.len()));
            reply.with_body(cut)
        }
        Fault::ClosedMidBody => {
            let reply = normal();
            let first = reply.body.slice(..half(reply.body.len()));
            // The pause lets hyper flush the first half before the stream fails.
            reply.streamed(vec![first], Duration::from_millis(20), true)
        }
        Fault::SlowBody(total) => {
            let reply = normal();
            let chunks = pieces(&reply.body, 10);
            let pause = total / u32::try_from(chunks.len().max(1)).unwrap_or(1);
            reply.streamed(chunks, pause, false)
        }
        Fault::DropConnection => {
            conn.kill();
            // Never written: the connection fails its first write.
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn half(len: usize) -> usize {
    if len < 2 { 0 } else { len / 2 }
}

fn pieces(body: &Bytes, n: usize) -> Vec<Bytes> {
    let size = body.len().div_ceil(n).max(1);
    (0..body.len())
        .step_by(size)
        .map(|start| body.slice(start..(start + size).min(body.len())))
        .collect()
}
