//! The path every balance call takes, whichever provider serves it: count it, wait the
//! configured latency, then either the normal answer or the fault set for it.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::conn::ConnCtl;
use crate::fault::Fault;
use crate::provider::{Sim, SimProvider};
use crate::reply::{JSON, Reply, TEXT};

/// Counts the call, applies latency and faults, and otherwise answers `normal()`.
pub(crate) async fn serve_call<P: SimProvider>(
    sim: &Sim<P>,
    customer: Option<&str>,
    conn: &ConnCtl,
    normal: impl FnOnce() -> Reply,
) -> Response {
    let controls = &sim.controls;
    controls.calls.hit(customer);
    let latency = controls.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match controls.take_fault(customer) {
        None => normal().into_response(),
        Some(fault) => apply::<P>(fault, conn, normal).await,
    }
}

async fn apply<P: SimProvider>(
    fault: Fault,
    conn: &ConnCtl,
    normal: impl FnOnce() -> Reply,
) -> Response {
    match fault {
        Fault::Latency(delay) => {
            tokio::time::sleep(delay).await;
            normal().into_response()
        }
        Fault::P100(e) => e.reply().into_response(),
        Fault::Corebanq(e) => e.reply().into_response(),
        Fault::Status(status, body) => {
            let ct = if serde_json::from_str::<serde::de::IgnoredAny>(&body).is_ok() {
                JSON
            } else {
                TEXT
            };
            Reply::new(status, ct, body).into_response()
        }
        Fault::RateLimited { retry_after } => {
            // Each provider words its 429 its own way; the header is the same.
            let mut resp = P::rate_limited().into_response();
            if let Some(v) = retry_after
                .header_value()
                .and_then(|v| HeaderValue::from_str(&v).ok())
            {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            resp
        }
        Fault::DropConnection => {
            conn.kill();
            // Never written: the connection fails its first write.
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        body_fault => spoil(body_fault, normal()),
    }
}

/// The body faults: the normal answer, spoiled.
fn spoil(fault: Fault, reply: Reply) -> Response {
    match fault {
        Fault::MalformedJson => {
            let mut body = reply.body.to_vec();
            match body.iter().position(|&b| b == b':') {
                Some(i) => body[i] = b'=',
                None => body.extend_from_slice(b"}{"),
            }
            reply.with_body(body.into())
        }
        Fault::TruncatedBody => {
            let cut = reply.body.slice(..half(reply.body.len()));
            reply.with_body(cut)
        }
        Fault::ClosedMidBody => {
            let first = reply.body.slice(..half(reply.body.len()));
            // The pause lets hyper flush the first half before the stream fails.
            reply.streamed(vec![first], Duration::from_millis(20), true)
        }
        Fault::SlowBody(total) => {
            let chunks = pieces(&reply.body, 10);
            let pause = total / u32::try_from(chunks.len().max(1)).unwrap_or(1);
            reply.streamed(chunks, pause, false)
        }
        _ => reply.into_response(),
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
