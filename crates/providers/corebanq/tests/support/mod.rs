//! A tiny in-test HTTP server, so the adapter's real HTTP path runs against recorded bodies.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the server saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Path and query exactly as sent (still percent-encoded).
    pub path_and_query: String,
    pub headers: HeaderMap,
}

/// A server answering every request with `status`, `headers` and `body`, after `delay`.
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Canned {
    pub fn new(status: u16, body: impl Into<String>) -> Self {
        Canned {
            status,
            headers: Vec::new(),
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Canned::new(status, body).header("content-type", "application/json")
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Serves on 127.0.0.1:0; returns the base URL and the log of requests.
    pub async fn serve(self) -> (String, Arc<Mutex<Vec<Seen>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let canned = Arc::new(self);
        let router = Router::new().fallback(move |req: Request| {
            let canned = canned.clone();
            let log = log.clone();
            async move {
                let path_and_query = req
                    .uri()
                    .path_and_query()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default();
                log.lock().unwrap().push(Seen {
                    path_and_query,
                    headers: req.headers().clone(),
                });
                tokio::time::sleep(canned.delay).await;
                let mut response =
                    Response::builder().status(StatusCode::from_u16(canned.status).unwrap());
                for (name, value) in &canned.headers {
                    response = response.header(*name, value.as_str());
                }
                response.body(Body::from(canned.body.clone())).unwrap()
            }
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        (format!("http://{addr}"), seen)
    }
}

/// A raw TCP server that reads the request head, writes `raw` as is, waits `then_wait` and
/// closes: for answers no well-behaved HTTP server would send.
pub async fn raw_server(raw: &'static [u8], then_wait: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = socket.write_all(raw).await;
                let _ = socket.flush().await;
                tokio::time::sleep(then_wait).await;
            });
        }
    });
    format!("http://{addr}")
}

/// A loopback port nobody listens on.
pub async fn refused_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

/// A `MakeWriter` collecting every log line, to prove what logs do (not) hold.
#[derive(Clone, Default)]
pub struct Capture(pub Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}
