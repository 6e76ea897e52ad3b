//! The end-to-end tests, one binary: the real server on a random port against the provider
//! simulators over HTTP, on SQLite and on PostgreSQL (the harness is `coffer-testkit`). One
//! binary links the server once instead of once per file. The tests that need the process to
//! themselves (a global log subscriber, exact process-wide metric counts) are the other binaries
//! in `tests/`.
#![allow(clippy::unwrap_used)]

#[macro_use]
extern crate coffer_testkit;

use coffer_testkit as common;

mod browser;
mod cluster;
mod support;
mod timeline;

mod alerts;
mod all_customers;
mod audit;
mod balance_at;
mod checkpoints;
mod cli;
mod console;
mod demo;
mod deploy;
mod event_retention;
mod events;
mod export;
mod filters;
mod freshness;
mod history;
mod image;
mod list;
mod openapi;
mod otlp;
mod outage;
mod process;
mod rate_history;
mod rate_limit;
mod replicas;
mod reproducible;
mod retention;
mod scope;
mod seeds;
mod sim_webhooks;
mod subscriptions;
mod sync;
mod sync_status;
mod validation;
mod webhooks;
mod wide_scope;
