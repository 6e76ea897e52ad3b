//! What Coffer's tests and benchmarks share, so no test reaches into another crate's files:
//! - [`pg`]: a fresh PostgreSQL database per test, dropped afterwards;
//! - with the `app` feature, the whole service on a random port against both provider
//!   simulators over HTTP ([`spawn`], [`TestApp`], the [`both!`] macro for a test on SQLite and
//!   on PostgreSQL), its providers built through the registry like `coffer serve` builds them.
//!
//! Test code: a failed setup panics with what failed (`unwrap`), which is the test's failure.
#![allow(clippy::unwrap_used)]

pub mod pg;

#[cfg(feature = "app")]
mod app;
#[cfg(feature = "app")]
pub use app::*;
