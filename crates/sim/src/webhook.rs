//! P100's webhooks, sent as P100 sends them (DESIGN.md "What the providers really do"): a POST
//! of the JSON body to the partner's URL with the secret token bare in `Authorization`, retried
//! while the answer is not 200 (P100: after about 8, 16, 32, 64 s, then it stops), plus faults
//! to test a receiver with: a wrong token, a duplicate delivery, a burst of the same delivery.
//!
//! HTTP/1.1 over a plain TCP connection (`http://` URLs only): a receiver under test runs
//! locally, and a simulator needs no TLS stack.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// P100's retry schedule: the waits before each retry.
pub const P100_RETRIES: [Duration; 4] = [
    Duration::from_secs(8),
    Duration::from_secs(16),
    Duration::from_secs(32),
    Duration::from_secs(64),
];

/// Where and how to deliver.
#[derive(Debug, Clone)]
pub struct WebhookTarget {
    /// `http://host:port/path`.
    pub url: String,
    /// The secret token P100 sends in `Authorization`.
    pub token: String,
    /// The waits before each retry (P100: [`P100_RETRIES`]; tests use milliseconds).
    pub retries: Vec<Duration>,
}

/// What to do wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFault {
    /// Deliver as P100 does.
    None,
    /// Send another token.
    WrongToken,
    /// Deliver the same body twice, one after the other (as a retry after a lost answer).
    Duplicate,
    /// Deliver the same body this many times at once.
    Burst(usize),
}

/// How a delivery went: the status of each attempt (`None`: no answer, e.g. refused).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    pub attempts: Vec<Option<u16>>,
}

impl Delivery {
    /// Whether an attempt was answered 200.
    pub fn delivered(&self) -> bool {
        self.attempts.contains(&Some(200))
    }
}

/// The user-status webhook body.
pub fn user_status(external_user_id: &str, status: &str) -> Value {
    json!({"externalUserId": external_user_id, "status": status})
}

/// A crypto deposit event naming the user (its amount is a hint for the receiver).
pub fn crypto_deposit(external_user_id: &str, amount: &str) -> Value {
    json!({"event_type": "crypto_deposit.status_changed", "data": {
        "externalUserId": external_user_id,
        "cryptoDepositId": uuid::Uuid::new_v4().to_string(),
        "status": "COMPLETED", "amount": amount, "currency": "btc"}})
}

/// Delivers `body` to `target` with `fault`; one [`Delivery`] per delivery made (two for
/// `Duplicate`, `n` for `Burst(n)`), each retried on its schedule until answered 200.
pub async fn send(target: &WebhookTarget, body: &Value, fault: WebhookFault) -> Vec<Delivery> {
    let body = body.to_string();
    match fault {
        WebhookFault::None => vec![deliver(target, &target.token, &body).await],
        WebhookFault::WrongToken => {
            let wrong = format!("{}-wrong", target.token);
            vec![deliver(target, &wrong, &body).await]
        }
        WebhookFault::Duplicate => {
            let first = deliver(target, &target.token, &body).await;
            vec![first, deliver(target, &target.token, &body).await]
        }
        WebhookFault::Burst(n) => {
            futures::future::join_all((0..n).map(|_| deliver(target, &target.token, &body))).await
        }
    }
}

/// One delivery: the first attempt, then a retry after each wait until one is answered 200.
async fn deliver(target: &WebhookTarget, token: &str, body: &str) -> Delivery {
    let mut out = Delivery::default();
    let mut waits = target.retries.iter();
    loop {
        let status = post(&target.url, token, body).await;
        out.attempts.push(status);
        if status == Some(200) {
            return out;
        }
        match waits.next() {
            Some(wait) => tokio::time::sleep(*wait).await,
            None => return out,
        }
    }
}

/// `POST url` with the token bare in `Authorization`; the answer's status.
async fn post(url: &str, token: &str, body: &str) -> Option<u16> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
    let mut conn = TcpStream::connect(authority).await.ok()?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(request.as_bytes()).await.ok()?;
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).await.ok()?;
    // "HTTP/1.1 200 OK"
    let line = answer.split(|b| *b == b'\r').next()?;
    std::str::from_utf8(line)
        .ok()?
        .split(' ')
        .nth(1)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_receiver_is_tried_on_the_schedule_then_left() {
        // A port nobody listens on: every attempt fails, one per wait plus the first.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let target = WebhookTarget {
            url: format!("http://{addr}/hook"),
            token: "t".into(),
            retries: vec![Duration::from_millis(1); 3],
        };
        let d = send(&target, &user_status("u", "ACTIVE"), WebhookFault::None).await;
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].attempts, vec![None; 4]);
        assert!(!d[0].delivered());
    }
}
