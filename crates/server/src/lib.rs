//! Coffer's service: the HTTP API, auth, freshness and cache, the sync worker, config and
//! telemetry.
//!
//! Architecture invariant: this is the only crate that knows axum and HTTP status codes; every
//! error becomes an HTTP answer in `error.rs` and nowhere else.
#![forbid(unsafe_code)]

pub mod answers;
pub mod app;
pub mod audit;
pub mod auth;
pub mod batch_queue;
pub mod bucket;
pub mod cgroup;
pub mod checkpoints;
pub mod config;
pub mod config_check;
pub mod console;
pub mod error;
pub mod event_body;
pub mod fresh;
pub mod keys;
pub mod limiter;
pub mod metrics;
pub mod notify;
pub mod openapi;
pub mod provider;
pub mod providers;
pub mod rate_body;
pub mod rates;
pub mod registry;
pub mod retention;
pub mod routes;
pub mod run;
pub mod state;
pub mod subscriptions;
pub mod sync;
pub mod telemetry;
pub mod webhook_keeper;
pub mod webhooks;
pub mod weigh;
