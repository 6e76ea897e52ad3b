//! HTTP handlers, one file per resource. API bodies are their own structs, never internal types.

pub mod accounts;
pub mod alert_eval;
pub mod alerts;
pub mod answer;
pub mod at;
pub mod at_totals;
pub mod audit;
pub mod balance_body;
pub mod body;
pub mod changes;
pub mod csv;
pub mod customers;
pub mod dto;
pub mod events;
pub mod export;
pub mod export_balance;
pub mod health;
pub mod params;
pub mod rates;
pub mod series;
pub mod source;
pub mod status;
pub mod subscriptions;
