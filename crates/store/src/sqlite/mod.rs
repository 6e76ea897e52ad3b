//! The SQLite backend (embedded default: one process, one replica). A file in WAL mode with a
//! busy timeout, or `sqlite::memory:` for tests (one connection, since every connection would
//! otherwise see its own database). Writes run in `BEGIN IMMEDIATE` transactions.
//!
//! SQLite has no exact decimal type: money is stored as text and parsed exactly; balance
//! ranges and totals are evaluated in Rust. Timestamps are fixed-width UTC text.

mod accounts;
mod alerts;
mod at;
mod audit;
mod checkpoint;
mod customers;
mod events;
mod history;
mod keys;
mod list;
mod prune;
mod rates;
mod status;
mod subscriptions;
mod sync;
mod webhooks;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use coffer_core::{Account, Currency, query::Filter};
use rust_decimal::Decimal;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::error::db_err;
use crate::{
    Actor, ApiKey, AuditEntry, AuditFilter, ConnectOptions, Customer, CustomerAccounts, HeldAt,
    HistoryEntry, Lease, NewApiKey, NewAudit, NewCustomer, Result, SaveOutcome, Scope,
    SnapshotMeta, Store, StoreError, StoredRate, SyncOutcome, SyncState, Totals,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

/// The SQLite store. Cheap to clone (the pool is shared).
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Wakes event readers (streams) after a commit that wrote events.
    wake: crate::events::EventWake,
}

impl SqliteStore {
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, &ConnectOptions::default()).await
    }

    /// `sqlite://path/to/file.db` (created, with its folder, when missing) or `sqlite::memory:`.
    pub async fn connect_with(url: &str, opts: &ConnectOptions) -> Result<Self> {
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let mut o = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Other(format!("SQLite URL: {e}")))?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = if memory {
            // One connection that lives as long as the pool: the database lives with it.
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .acquire_timeout(opts.acquire_timeout.max(crate::SQLITE_MIN_ACQUIRE))
                .connect_with(o)
                .await
        } else {
            if let Some(dir) = o
                .get_filename()
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir)
                    .map_err(|e| StoreError::Other(format!("creating {}: {e}", dir.display())))?;
            }
            o = o
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal);
            SqlitePoolOptions::new()
                .max_connections(opts.max_connections.clamp(1, 8))
                .acquire_timeout(opts.acquire_timeout.max(crate::SQLITE_MIN_ACQUIRE))
                .connect_with(o)
                .await
        }
        .map_err(db_err)?;
        Ok(SqliteStore {
            pool,
            wake: crate::events::EventWake::default(),
        })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A write transaction that takes the write lock at once (no deadlock-prone upgrade).
    async fn write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_err)
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => db_err(e),
            e => StoreError::Other(format!("migrations: {e}")),
        })
    }

    fn pool_stats(&self) -> crate::PoolStats {
        crate::PoolStats {
            size: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            max: self.pool.options().get_max_connections(),
        }
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(db_err)
    }

    async fn create_customer_by(&self, c: &NewCustomer, by: &Actor) -> Result<Customer> {
        self.create_customer_impl(c, by).await
    }

    async fn get_customer(&self, id: &str) -> Result<Customer> {
        self.get_customer_impl(id).await
    }

    async fn list_customers(&self, after: Option<&str>, limit: u32) -> Result<Vec<Customer>> {
        self.list_customers_impl(after, limit).await
    }

    async fn update_customer_by(&self, c: &NewCustomer, by: &Actor) -> Result<Customer> {
        self.update_customer_impl(c, by).await
    }

    async fn delete_customer_by(&self, id: &str, by: &Actor) -> Result<()> {
        self.delete_customer_impl(id, by).await
    }

    async fn save_snapshot(
        &self,
        meta: &SnapshotMeta,
        accounts: &[Account],
    ) -> Result<SaveOutcome> {
        self.save_snapshot_impl(meta, accounts).await
    }

    async fn customer_accounts(&self, customer_id: &str) -> Result<CustomerAccounts> {
        self.customer_accounts_impl(customer_id).await
    }

    async fn get_account(&self, id: &str) -> Result<Account> {
        self.get_account_impl(id).await
    }

    async fn list_accounts(&self, scope: &Scope, filter: &Filter) -> Result<Vec<Account>> {
        self.list_accounts_impl(scope, filter).await
    }

    async fn list_page(
        &self,
        scope: &Scope,
        filter: &Filter,
        sort: &coffer_core::query::SortSpec,
        after: Option<&[coffer_core::query::KeyValue]>,
        limit: usize,
    ) -> Result<Vec<Account>> {
        self.list_page_impl(scope, filter, sort, after, limit).await
    }

    async fn totals(&self, scope: &Scope, filter: &Filter) -> Result<Totals> {
        self.totals_impl(scope, filter).await
    }

    async fn account_history(
        &self,
        account_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<HistoryEntry>> {
        self.history_impl(None, Some(account_id), from, to).await
    }

    async fn held_at(
        &self,
        scope: &Scope,
        at: DateTime<Utc>,
        account_id: Option<&str>,
    ) -> Result<HeldAt> {
        self.held_at_impl(scope, at, account_id).await
    }

    async fn customer_history(
        &self,
        customer_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<HistoryEntry>> {
        self.history_impl(Some(customer_id), None, from, to).await
    }

    async fn held_window(
        &self,
        scope: &Scope,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<crate::HeldWindow> {
        self.held_window_impl(scope, from, to).await
    }

    async fn rates_window(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<crate::RateWindow> {
        self.rates_window_impl(from, to).await
    }

    async fn account_changes(
        &self,
        scope: &Scope,
        account_id: &str,
        q: &crate::ChangesQuery,
    ) -> Result<Option<Vec<crate::AccountChange>>> {
        self.account_changes_impl(scope, account_id, q).await
    }

    async fn prune_history(&self, horizon: DateTime<Utc>) -> Result<Option<crate::Pruned>> {
        self.prune_history_impl(horizon).await
    }

    async fn build_checkpoints(&self, until: DateTime<Utc>, step: Duration) -> Result<u32> {
        crate::checkpoint::build(self, until, step).await
    }

    async fn totals_at(
        &self,
        at: DateTime<Utc>,
        filter: &Filter,
    ) -> Result<Option<Vec<crate::CurrencyTotal>>> {
        crate::checkpoint::totals_at(self, at, filter).await
    }

    async fn set_manual_rates(
        &self,
        base: &Currency,
        rates: &BTreeMap<Currency, Decimal>,
        as_of: DateTime<Utc>,
        by: &Actor,
    ) -> Result<()> {
        self.set_manual_rates_impl(base, rates, as_of, by).await
    }

    async fn delete_manual_rate(
        &self,
        currency: &Currency,
        as_of: DateTime<Utc>,
        by: &Actor,
    ) -> Result<()> {
        self.delete_manual_rate_impl(currency, as_of, by).await
    }

    async fn rates(&self) -> Result<Vec<StoredRate>> {
        self.rates_impl().await
    }

    async fn rates_at(&self, at: DateTime<Utc>) -> Result<Vec<StoredRate>> {
        self.rates_at_impl(at).await
    }

    async fn manual_rate_versions(
        &self,
        currency: &Currency,
    ) -> Result<Vec<crate::ManualRateVersion>> {
        self.manual_rate_versions_impl(currency).await
    }

    async fn insert_api_key_by(&self, k: &NewApiKey, by: &Actor) -> Result<ApiKey> {
        self.insert_api_key_impl(k, by).await
    }

    async fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>> {
        self.api_key_by_hash_impl(hash).await
    }

    async fn revoke_api_key_by(&self, id: &str, by: &Actor) -> Result<()> {
        self.revoke_api_key_impl(id, by).await
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKey>> {
        self.list_api_keys_impl().await
    }

    async fn touch_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<()> {
        self.touch_api_key_impl(id, at).await
    }

    async fn append_audit(&self, by: &Actor, a: NewAudit) -> Result<AuditEntry> {
        self.append_audit_impl(by, a).await
    }

    async fn list_audit(&self, f: &AuditFilter) -> Result<Vec<AuditEntry>> {
        self.list_audit_impl(f).await
    }

    async fn audit_run(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditEntry>> {
        self.audit_run_impl(after_seq, limit).await
    }

    async fn audit_head(&self) -> Result<(i64, String)> {
        self.audit_head_impl().await
    }

    async fn lease_due(&self, owner: &str, n: u32, lease_for: Duration) -> Result<Vec<Lease>> {
        self.lease_due_impl(owner, n, lease_for).await
    }

    async fn release(&self, lease: &Lease, outcome: &SyncOutcome) -> Result<()> {
        self.release_impl(lease, outcome).await
    }

    async fn sync_states(&self, customer_id: &str) -> Result<Vec<SyncState>> {
        self.sync_states_impl(customer_id).await
    }

    async fn sync_status(
        &self,
        now: DateTime<Utc>,
        failing_limit: u32,
    ) -> Result<crate::SyncStatus> {
        self.sync_status_impl(now, failing_limit).await
    }

    async fn insert_webhook(&self, w: &crate::NewWebhook) -> Result<(crate::WebhookEntry, bool)> {
        self.insert_webhook_impl(w).await
    }

    async fn insert_webhooks(
        &self,
        ws: &[crate::NewWebhook],
    ) -> Result<Vec<(crate::WebhookEntry, bool)>> {
        self.insert_webhooks_impl(ws).await
    }

    async fn lease_webhooks(
        &self,
        owner: &str,
        n: u32,
        lease_for: Duration,
    ) -> Result<Vec<crate::WebhookEntry>> {
        self.lease_webhooks_impl(owner, n, lease_for).await
    }

    async fn finish_webhook(
        &self,
        id: i64,
        owner: &str,
        outcome: &crate::WebhookOutcome,
    ) -> Result<bool> {
        self.finish_webhook_impl(id, owner, outcome).await
    }

    async fn list_webhooks(&self, f: &crate::WebhookFilter) -> Result<Vec<crate::WebhookEntry>> {
        self.list_webhooks_impl(f).await
    }

    async fn replay_webhook(&self, id: i64) -> Result<crate::WebhookEntry> {
        self.replay_webhook_impl(id).await
    }

    async fn prune_webhooks(&self, horizon: DateTime<Utc>) -> Result<u64> {
        self.prune_webhooks_impl(horizon).await
    }

    async fn customer_by_link(&self, provider: &str, external_id: &str) -> Result<Option<String>> {
        self.customer_by_link_impl(provider, external_id).await
    }

    async fn events(&self, f: &crate::EventFilter) -> Result<Vec<crate::Event>> {
        self.events_impl(f).await
    }

    fn event_wake(&self) -> tokio::sync::watch::Receiver<i64> {
        self.wake.subscribe()
    }

    fn events_written(&self) -> Vec<(crate::EventType, u64)> {
        self.wake.written()
    }

    async fn prune_events(&self, horizon: DateTime<Utc>) -> Result<(u64, u64)> {
        self.prune_events_impl(horizon).await
    }

    async fn create_subscription_by(
        &self,
        s: &crate::NewSubscription,
        by: &crate::Actor,
    ) -> Result<crate::Subscription> {
        self.create_subscription_impl(s, by).await
    }

    async fn list_subscriptions(&self) -> Result<Vec<crate::Subscription>> {
        self.list_subscriptions_impl().await
    }

    async fn get_subscription(&self, id: &str) -> Result<crate::Subscription> {
        self.get_subscription_impl(id).await
    }

    async fn delete_subscription_by(&self, id: &str, by: &crate::Actor) -> Result<()> {
        self.delete_subscription_impl(id, by).await
    }

    async fn create_alert_by(
        &self,
        a: &crate::NewAlert,
        by: &crate::Actor,
    ) -> Result<crate::Alert> {
        self.create_alert_impl(a, by).await
    }

    async fn list_alerts(&self) -> Result<Vec<crate::Alert>> {
        self.list_alerts_impl().await
    }

    async fn get_alert(&self, id: &str) -> Result<crate::Alert> {
        self.get_alert_impl(id).await
    }

    async fn delete_alert_by(&self, id: &str, by: &crate::Actor) -> Result<()> {
        self.delete_alert_impl(id, by).await
    }

    async fn record_alert(&self, u: &crate::AlertUpdate) -> Result<bool> {
        self.record_alert_impl(u).await
    }

    async fn list_deliveries(
        &self,
        subscription_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<crate::Delivery>> {
        self.list_deliveries_impl(subscription_id, after, limit)
            .await
    }

    async fn fan_out(&self, per_subscription: u32) -> Result<u64> {
        self.fan_out_impl(per_subscription).await
    }

    async fn lease_deliveries(
        &self,
        owner: &str,
        n: u32,
        lease_for: Duration,
    ) -> Result<Vec<crate::LeasedDelivery>> {
        self.lease_deliveries_impl(owner, n, lease_for).await
    }

    async fn finish_delivery(
        &self,
        id: i64,
        owner: &str,
        outcome: &crate::AttemptOutcome,
    ) -> Result<bool> {
        self.finish_delivery_impl(id, owner, outcome).await
    }

    async fn sync_due_now(&self, customer_id: &str, provider_id: &str) -> Result<()> {
        self.sync_due_now_impl(customer_id, provider_id).await
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
