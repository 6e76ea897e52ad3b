//! The store conformance suite: written once, run against every backend (`tests/sqlite.rs`,
//! `tests/postgres.rs`). Each case takes a freshly migrated, empty store.
#![allow(dead_code, unused_imports, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use coffer_core::query::{BalanceRange, FieldOp, FieldSearch, Filter, SearchField};
use coffer_core::{Account, Currency, ProviderErrorKind, ProviderRate, Status, Wallet};
use coffer_store::{
    Link, NewApiKey, NewCustomer, RateSource, Role, Scope, SnapshotMeta, Store, StoreError,
    SyncOutcome,
};
use rust_decimal::Decimal;

mod alerts;
mod audit;
mod batch;
mod checkpoints;
mod customers;
mod events;
mod held_at;
mod history;
mod keys_rates;
mod list_pages;
mod queries;
mod rate_history;
mod snapshots;
mod status;
mod subscriptions;
mod sync;
mod unchanged;
mod webhook_batch;
mod webhooks;

pub use alerts::*;
pub use audit::*;
pub use batch::*;
pub use checkpoints::*;
pub use customers::*;
pub use events::*;
pub use held_at::*;
pub use history::*;
pub use keys_rates::*;
pub use list_pages::*;
pub use queries::*;
pub use rate_history::*;
pub use snapshots::*;
pub use status::*;
pub use subscriptions::*;
pub use sync::*;
pub use unchanged::*;
pub use webhook_batch::*;
pub use webhooks::*;

/// Generates one `#[tokio::test]` per conformance case; `$run` is an async fn taking the case
/// (a `fn(&dyn Store) -> future`) that sets up a store and runs it.
#[macro_export]
macro_rules! conformance_tests {
    ($run:path) => {
        $crate::conformance_tests!(@each $run;
            customers_crud_and_conflicts,
            link_conflict_leaves_nothing_written,
            snapshot_upsert_close_and_history,
            customer_accounts_come_from_one_fetch,
            stale_snapshot_is_ignored,
            snapshot_of_unknown_customer_is_not_found,
            money_round_trips_exactly,
            balance_types_are_kept,
            filters_pushed_down_match_filter_matches,
            totals_are_exact_and_say_what_they_cover,
            leases_are_exclusive_and_expire,
            release_records_outcome,
            links_drive_sync_pairs,
            api_keys_by_hash,
            rates_keep_both_sources,
            provider_rate_comes_from_the_largest_balance,
            history_between_times,
            delete_customer_removes_everything,
            account_reopens_and_moves,
            sync_batch_writes_like_pair_by_pair,
            sync_batch_with_a_pair_twice_keeps_the_newest,
            sync_batch_with_a_deleted_customer_writes_the_others,
            sync_batch_with_an_account_in_two_pairs,
            sync_batch_moves_an_account_stored_elsewhere,
            provider_rates_keep_a_row_per_change,
            sync_batch_keeps_rate_history,
            sync_batch_rate_around_another_report,
            manual_rates_are_versions,
            rates_at_now_matches_the_present_table,
            held_at_serves_each_pair_from_its_last_observation,
            sync_batch_keeps_observations,
            webhook_retries_are_kept_once,
            webhook_leases_are_exclusive_and_expire,
            webhook_replay_requeues,
            webhook_listing_filters_and_pages,
            webhook_retention_keeps_what_is_unfinished,
            webhook_batches_are_kept_like_single_deliveries,
            webhook_batches_write_like_one_by_one,
            webhook_batch_with_a_pair_twice_keeps_the_newest,
            links_are_found_by_external_id_and_made_due,
            audit_log_chains_every_change,
            a_failed_change_appends_nothing,
            concurrent_appends_keep_one_chain,
            api_keys_keep_expiry_and_last_use,
            snapshots_emit_one_event_per_changed_account,
            sync_batches_emit_only_changes,
            sync_failures_emit_on_transitions_only,
            event_pages_are_scoped_filtered_and_ordered,
            event_wake_changes_on_commit,
            subscriptions_fan_out_once_and_lease_exclusively,
            held_window_answers_as_held_at,
            pruning_keeps_every_answer_from_the_horizon,
            checkpoint_totals_answer_as_held_at,
            list_pages_match_core,
            value_pages_match_core,
            sync_status_counts_lags_and_failing,
            alerts_cross_once_by_compare_and_set,
            subscription_changes_are_audited_without_secrets,
            event_retention_keeps_what_deliveries_need,
            unchanged_syncs_keep_last_seen_and_answers,
            rate_givers_are_cores_choice_over_the_scope,
        );
    };
    (@each $run:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $run(|s| Box::pin(async move { conformance::$case(s).await })).await;
            }
        )*
    };
}

pub type Case = for<'a> fn(
    &'a dyn Store,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;

pub fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_714_564_800 + secs, 0).unwrap()
}

pub fn d(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap()
}

pub fn customer(id: &str, links: &[(&str, &str)]) -> NewCustomer {
    NewCustomer {
        id: id.to_owned(),
        name: Some(format!("Customer {id}")),
        links: links
            .iter()
            .map(|(p, e)| Link {
                provider: (*p).to_owned(),
                external_id: (*e).to_owned(),
            })
            .collect(),
    }
}

pub fn account(c: &str, p: &str, pid: &str, cur: &str, balance: &str, at: i64) -> Account {
    let currency = Currency::new(cur);
    Account {
        id: Account::make_id(p, pid),
        customer_id: c.to_owned(),
        provider_id: p.to_owned(),
        provider_account_id: pid.to_owned(),
        provider_customer_ref: Some(format!("ref-{c}")),
        is_crypto: currency.is_crypto().unwrap_or(false),
        currency,
        status: Status::Active,
        active: true,
        balance: d(balance),
        wallets: vec![],
        iban: None,
        balance_type: coffer_core::BalanceType::Unspecified,
        provider_rate: None,
        fetched_at: t(at),
    }
}

pub fn meta(c: &str, p: &str, at: i64) -> SnapshotMeta {
    SnapshotMeta {
        customer_id: c.to_owned(),
        provider_id: p.to_owned(),
        provider_customer_ref: Some(format!("ref-{c}")),
        fetched_at: t(at),
        rejected: vec![],
    }
}

pub async fn save(s: &dyn Store, c: &str, p: &str, at: i64, accounts: &[Account]) {
    s.save_snapshot(&meta(c, p, at), accounts).await.unwrap();
}

pub fn all() -> Filter {
    Filter::default()
}
