//! Faults the simulators can inject, and how they are written in the admin API.
//!
//! A fault is set for a provider either globally ([`Target::Global`]) or for one customer
//! ([`Target::Customer`]); a customer's fault wins over the global one. A fault applies to
//! every call of that provider's balance endpoint (before authentication) until it is cleared,
//! or for the next `times` calls when set with [`crate::SimHandle::set_fault_times`].

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::reply::{JSON, Reply, TEXT};

/// Which simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// The P100 Partner API v1 simulator.
    P100,
    /// The Corebanq unified accounts API v2 simulator.
    Corebanq,
}

impl Provider {
    /// `"p100"` or `"corebanq"`.
    pub fn name(self) -> &'static str {
        match self {
            Provider::P100 => "p100",
            Provider::Corebanq => "corebanq",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a fault applies.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// Every call to the provider (unless the customer has its own fault).
    Global,
    /// Calls for this customer id (P100 `externalUserId`, Corebanq `customer_id`).
    Customer(String),
}

impl Target {
    /// `Target::Customer(id.into())`.
    pub fn customer(id: impl Into<String>) -> Self {
        Target::Customer(id.into())
    }
}

/// What the simulator does instead of (or on top of) its normal answer.
///
/// Body faults (`MalformedJson`, `TruncatedBody`, `ClosedMidBody`, `SlowBody`) change the
/// response the simulator would otherwise send (usually the 200 balance body), keeping its
/// status and headers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "FaultSpec", into = "FaultSpec")]
pub enum Fault {
    /// Wait this long (on top of the provider's configured latency), then answer normally.
    Latency(Duration),
    /// One of P100's documented errors, with P100's status and body.
    P100(P100Error),
    /// One of Corebanq's errors: `{"error","message","details"}` with its status.
    Corebanq(CorebanqError),
    /// Any status with this body (`application/json` when the body parses as JSON, else
    /// `text/plain`).
    Status(u16, String),
    /// HTTP 429 with a `Retry-After` header as given.
    RateLimited {
        /// The `Retry-After` header.
        retry_after: RetryAfter,
    },
    /// The normal body with a syntax error (its first `:` becomes `=`).
    MalformedJson,
    /// The first half of the normal body, with an honest `Content-Length` (the client gets a
    /// complete HTTP response whose JSON ends mid-way).
    TruncatedBody,
    /// `Content-Length` of the whole body, the first half is sent, then the connection is
    /// closed (the client sees an incomplete body / connection error).
    ClosedMidBody,
    /// Headers at once, then the body trickles out in ten pieces over this duration.
    SlowBody(Duration),
    /// Close the TCP connection without sending any response.
    DropConnection,
}

/// The `Retry-After` header of a [`Fault::RateLimited`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryAfter {
    /// `Retry-After: 5`
    Seconds(u64),
    /// `Retry-After: Wed, 21 Oct 2026 07:28:00 GMT` (IMF-fixdate).
    HttpDate(DateTime<Utc>),
    /// No `Retry-After` header at all.
    Absent,
}

impl RetryAfter {
    /// The header value, if any.
    pub fn header_value(&self) -> Option<String> {
        match self {
            RetryAfter::Seconds(s) => Some(s.to_string()),
            RetryAfter::HttpDate(d) => Some(d.format("%a, %d %b %Y %H:%M:%S GMT").to_string()),
            RetryAfter::Absent => None,
        }
    }
}

/// Why P100 answers `401 Access Denied.` (seed `000_…`, DESIGN "What the providers really do").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// `Access Denied. xo1`: no API key.
    Xo1,
    /// `Access Denied. xo2`: wrong API key.
    Xo2,
    /// `Access Denied. xo3`: IP not allowed (production).
    Xo3,
}

/// P100's errors as the seed documents them. Business errors are
/// `{"errorCode","errorName","errorMessage"}`; note P501 is HTTP 400, not 5xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum P100Error {
    /// HTTP 401, text body `Access Denied. xo1|xo2|xo3`.
    Unauthorized(DenyReason),
    /// HTTP 404, user does not exist.
    P412,
    /// HTTP 400, user not verified.
    P459,
    /// HTTP 400, validation error.
    P403,
    /// HTTP 400, unknown exception.
    P500,
    /// HTTP 400, service temporarily unavailable.
    P501,
}

impl P100Error {
    /// The HTTP status P100 uses for this error.
    pub fn http_status(self) -> u16 {
        match self {
            P100Error::Unauthorized(_) => 401,
            P100Error::P412 => 404,
            P100Error::P459 | P100Error::P403 | P100Error::P500 | P100Error::P501 => 400,
        }
    }

    /// `errorCode`, or `xo1`/`xo2`/`xo3` for the 401s.
    pub fn code(self) -> &'static str {
        match self {
            P100Error::Unauthorized(DenyReason::Xo1) => "xo1",
            P100Error::Unauthorized(DenyReason::Xo2) => "xo2",
            P100Error::Unauthorized(DenyReason::Xo3) => "xo3",
            P100Error::P412 => "P412",
            P100Error::P459 => "P459",
            P100Error::P403 => "P403",
            P100Error::P500 => "P500",
            P100Error::P501 => "P501",
        }
    }

    /// The body P100 sends (text for the 401s, JSON otherwise).
    pub fn body(self) -> String {
        let (name, message) = match self {
            P100Error::Unauthorized(_) => return format!("Access Denied. {}", self.code()),
            P100Error::P412 => ("USER_NOT_EXIST", "User not exist"),
            P100Error::P459 => ("USER_NOT_VERIFIED", "User not verified"),
            P100Error::P403 => ("VALIDATION_ERROR", "Validation error"),
            P100Error::P500 => ("UNKNOWN_EXCEPTION", "Unknown exception"),
            P100Error::P501 => (
                "SERVICE_TEMPORARILY_UNAVAILABLE",
                "Service temporarily unavailable",
            ),
        };
        serde_json::json!({"errorCode": self.code(), "errorName": name, "errorMessage": message})
            .to_string()
    }

    /// The error as P100 sends it: its 401s are plain text, the rest JSON.
    pub(crate) fn reply(self) -> Reply {
        let ct = if self.http_status() == 401 {
            TEXT
        } else {
            JSON
        };
        Reply::new(self.http_status(), ct, self.body())
    }

    fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "xo1" => P100Error::Unauthorized(DenyReason::Xo1),
            "xo2" => P100Error::Unauthorized(DenyReason::Xo2),
            "xo3" => P100Error::Unauthorized(DenyReason::Xo3),
            "P412" => P100Error::P412,
            "P459" => P100Error::P459,
            "P403" => P100Error::P403,
            "P500" => P100Error::P500,
            "P501" => P100Error::P501,
            _ => return None,
        })
    }
}

/// Corebanq's errors, each `{"error","message","details"}` (seed `004_…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CorebanqError {
    /// HTTP 401 `unauthorized`.
    Unauthorized,
    /// HTTP 404 `not_found`.
    NotFound,
    /// HTTP 500 `internal_error`.
    Internal,
    /// HTTP 503 `service_unavailable`.
    Unavailable,
}

impl CorebanqError {
    /// The HTTP status.
    pub fn http_status(self) -> u16 {
        match self {
            CorebanqError::Unauthorized => 401,
            CorebanqError::NotFound => 404,
            CorebanqError::Internal => 500,
            CorebanqError::Unavailable => 503,
        }
    }

    /// The `error` field.
    pub fn code(self) -> &'static str {
        match self {
            CorebanqError::Unauthorized => "unauthorized",
            CorebanqError::NotFound => "not_found",
            CorebanqError::Internal => "internal_error",
            CorebanqError::Unavailable => "service_unavailable",
        }
    }

    /// The body Corebanq sends.
    pub fn body(self) -> String {
        let message = match self {
            CorebanqError::Unauthorized => "Invalid or expired access token",
            CorebanqError::NotFound => "Customer not found",
            CorebanqError::Internal => "Internal server error",
            CorebanqError::Unavailable => "Service temporarily unavailable",
        };
        corebanq_error_body(self.code(), message, serde_json::json!({}))
    }

    /// The error as Corebanq sends it.
    pub(crate) fn reply(self) -> Reply {
        Reply::json(self.http_status(), self.body())
    }

    fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "unauthorized" => CorebanqError::Unauthorized,
            "not_found" => CorebanqError::NotFound,
            "internal_error" | "internal" => CorebanqError::Internal,
            "service_unavailable" | "unavailable" => CorebanqError::Unavailable,
            _ => return None,
        })
    }
}

pub(crate) fn corebanq_error_body(
    error: &str,
    message: &str,
    details: serde_json::Value,
) -> String {
    serde_json::json!({"error": error, "message": message, "details": details}).to_string()
}

/// The admin API's JSON form of a [`Fault`], tagged by `kind`.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum FaultSpec {
    Latency {
        #[serde(with = "humantime_serde")]
        delay: Duration,
    },
    P100 {
        error: String,
    },
    Corebanq {
        error: String,
    },
    Status {
        status: u16,
        #[serde(default)]
        body: String,
    },
    RateLimited {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_secs: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_date: Option<DateTime<Utc>>,
    },
    MalformedJson,
    TruncatedBody,
    ClosedMidBody,
    SlowBody {
        #[serde(with = "humantime_serde")]
        duration: Duration,
    },
    DropConnection,
}

impl TryFrom<FaultSpec> for Fault {
    type Error = String;

    fn try_from(spec: FaultSpec) -> Result<Self, String> {
        Ok(match spec {
            FaultSpec::Latency { delay } => Fault::Latency(delay),
            FaultSpec::P100 { error } => {
                Fault::P100(P100Error::from_code(&error).ok_or_else(|| {
                    format!(
                        "unknown P100 error `{error}` (xo1, xo2, xo3, P412, P459, P403, P500, P501)"
                    )
                })?)
            }
            FaultSpec::Corebanq { error } => {
                Fault::Corebanq(CorebanqError::from_code(&error).ok_or_else(|| {
                    format!(
                        "unknown Corebanq error `{error}` \
                         (unauthorized, not_found, internal_error, service_unavailable)"
                    )
                })?)
            }
            FaultSpec::Status { status, body } => {
                if !(100..=999).contains(&status) {
                    return Err(format!("status {status} is not an HTTP status"));
                }
                Fault::Status(status, body)
            }
            FaultSpec::RateLimited {
                retry_after_secs,
                retry_after_date,
            } => Fault::RateLimited {
                retry_after: match (retry_after_secs, retry_after_date) {
                    (Some(s), None) => RetryAfter::Seconds(s),
                    (None, Some(d)) => RetryAfter::HttpDate(d),
                    (None, None) => RetryAfter::Absent,
                    (Some(_), Some(_)) => {
                        return Err("give retry_after_secs or retry_after_date, not both".into());
                    }
                },
            },
            FaultSpec::MalformedJson => Fault::MalformedJson,
            FaultSpec::TruncatedBody => Fault::TruncatedBody,
            FaultSpec::ClosedMidBody => Fault::ClosedMidBody,
            FaultSpec::SlowBody { duration } => Fault::SlowBody(duration),
            FaultSpec::DropConnection => Fault::DropConnection,
        })
    }
}

impl From<Fault> for FaultSpec {
    fn from(fault: Fault) -> Self {
        match fault {
            Fault::Latency(delay) => FaultSpec::Latency { delay },
            Fault::P100(e) => FaultSpec::P100 {
                error: e.code().to_owned(),
            },
            Fault::Corebanq(e) => FaultSpec::Corebanq {
                error: e.code().to_owned(),
            },
            Fault::Status(status, body) => FaultSpec::Status { status, body },
            Fault::RateLimited { retry_after } => {
                let (retry_after_secs, retry_after_date) = match retry_after {
                    RetryAfter::Seconds(s) => (Some(s), None),
                    RetryAfter::HttpDate(d) => (None, Some(d)),
                    RetryAfter::Absent => (None, None),
                };
                FaultSpec::RateLimited {
                    retry_after_secs,
                    retry_after_date,
                }
            }
            Fault::MalformedJson => FaultSpec::MalformedJson,
            Fault::TruncatedBody => FaultSpec::TruncatedBody,
            Fault::ClosedMidBody => FaultSpec::ClosedMidBody,
            Fault::SlowBody(duration) => FaultSpec::SlowBody { duration },
            Fault::DropConnection => FaultSpec::DropConnection,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_round_trip_through_json() {
        let faults = [
            Fault::Latency(Duration::from_millis(250)),
            Fault::P100(P100Error::Unauthorized(DenyReason::Xo3)),
            Fault::P100(P100Error::P501),
            Fault::Corebanq(CorebanqError::Unavailable),
            Fault::Status(502, "bad gateway".into()),
            Fault::RateLimited {
                retry_after: RetryAfter::Seconds(7),
            },
            Fault::RateLimited {
                retry_after: RetryAfter::Absent,
            },
            Fault::MalformedJson,
            Fault::TruncatedBody,
            Fault::ClosedMidBody,
            Fault::SlowBody(Duration::from_secs(2)),
            Fault::DropConnection,
        ];
        for fault in faults {
            let json = serde_json::to_string(&fault).expect("serialize");
            let back: Fault = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(back, fault, "{json}");
        }
    }

    #[test]
    fn admin_json_spelling() {
        let f: Fault =
            serde_json::from_str(r#"{"kind":"latency","delay":"1s 500ms"}"#).expect("latency");
        assert_eq!(f, Fault::Latency(Duration::from_millis(1500)));
        let f: Fault = serde_json::from_str(r#"{"kind":"p100","error":"P412"}"#).expect("p100");
        assert_eq!(f, Fault::P100(P100Error::P412));
        let f: Fault = serde_json::from_str(
            r#"{"kind":"rate_limited","retry_after_date":"2026-10-21T07:28:00Z"}"#,
        )
        .expect("429");
        let Fault::RateLimited { retry_after } = f else {
            panic!("not rate limited")
        };
        assert_eq!(
            retry_after.header_value().as_deref(),
            Some("Wed, 21 Oct 2026 07:28:00 GMT")
        );
        assert!(serde_json::from_str::<Fault>(r#"{"kind":"p100","error":"P999"}"#).is_err());
    }

    #[test]
    fn p100_error_bodies() {
        assert_eq!(
            P100Error::Unauthorized(DenyReason::Xo2).body(),
            "Access Denied. xo2"
        );
        let v: serde_json::Value = serde_json::from_str(&P100Error::P501.body()).expect("json");
        assert_eq!(v["errorCode"], "P501");
        assert_eq!(P100Error::P501.http_status(), 400);
        assert_eq!(P100Error::P412.http_status(), 404);
    }
}
