//! A complete answer before faults touch it, and the ways a fault sends it (cut, streamed).

use std::io;
use std::time::Duration;

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

pub(crate) const JSON: &str = "application/json";
pub(crate) const TEXT: &str = "text/plain; charset=utf-8";

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

    pub(crate) fn with_body(self, body: Bytes) -> Response {
        let len = body.len();
        self.head(len)
            .body(Body::from(body))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    }

    /// Declares the whole length but streams `body`'s chunks, `pause` before each; `then_fail`
    /// ends the stream with an error (hyper then closes the connection mid-body).
    pub(crate) fn streamed(self, chunks: Vec<Bytes>, pause: Duration, then_fail: bool) -> Response {
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
