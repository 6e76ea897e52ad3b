//! The PostgreSQL backend (production): several replicas share one database, its snapshots,
//! leases (`FOR UPDATE SKIP LOCKED`) and `LISTEN/NOTIFY` cache invalidation.
//!
//! Money is NUMERIC, written as text cast to `numeric` and read back as `::text`, parsed
//! exactly: the value and its scale survive byte for byte.

mod account_rows;
mod accounts;
mod alerts;
mod at;
mod audit;
mod batch;
mod checkpoint;
mod customers;
mod events;
mod filter;
mod history;
mod keys;
mod list;
mod locks;
mod notify;
mod observed;
mod prune;
mod rates;
mod status;
mod subscriptions;
mod sync;
mod totals;
mod webhook_batch;
mod webhooks;
mod write;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use coffer_core::{Currency, query::Filter};
use rust_decimal::Decimal;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::error::db_err;
use crate::{
    Actor, ApiKey, AuditEntry, AuditFilter, Change, ConnectOptions, Customer, CustomerAccounts,
    HeldAt, HistoryEntry, Lease, NewApiKey, NewAudit, NewCustomer, Result, SaveOutcome, Scope,
    SnapshotMeta, Store, StoreError, StoredRate, SyncOutcome, SyncState, SyncWrite, Totals,
};
use coffer_core::Account;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// The PostgreSQL store. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Identifies this instance in NOTIFY payloads, so it can tell its own changes apart.
    instance: String,
    /// Wakes event readers (streams) of this replica.
    wake: crate::events::EventWake,
}

impl std::fmt::Debug for PgStore {
    // No DSN here: it may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, &ConnectOptions::default()).await
    }

    /// Connects lazily-tolerant: the pool tests every connection before handing it out and
    /// opens new ones on demand, so it recovers by itself when the database comes back.
    pub async fn connect_with(url: &str, opts: &ConnectOptions) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections)
            .min_connections(0)
            .acquire_timeout(opts.acquire_timeout)
            .test_before_acquire(true)
            .idle_timeout(Duration::from_secs(300))
            .connect(url)
            .await
            .map_err(db_err)?;
        Ok(Self::from_pool(pool))
    }

    pub fn from_pool(pool: PgPool) -> Self {
        PgStore {
            pool,
            instance: uuid::Uuid::new_v4().simple().to_string(),
            wake: crate::events::EventWake::default(),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

#[async_trait::async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
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

    async fn rate_givers(&self, scope: &Scope) -> Result<Vec<Account>> {
        self.rate_givers_impl(scope).await
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
        let built = crate::checkpoint::build(self, until, step).await?;
        // Marks of the observations at the same instants (the answers' freshness).
        if let Ok(step) = chrono::TimeDelta::from_std(step) {
            self.build_observation_marks(until, step).await?;
        }
        Ok(built)
    }

    async fn observed_summary(
        &self,
        at: DateTime<Utc>,
        max_gap: Duration,
    ) -> Result<Option<crate::ObservedSummary>> {
        self.observed_summary_impl(at, max_gap).await
    }

    async fn totals_at(
        &self,
        at: DateTime<Utc>,
        filter: &Filter,
    ) -> Result<Option<Vec<crate::CurrencyTotal>>> {
        crate::checkpoint::totals_at(self, at, filter).await
    }

    async fn observed_at(&self, scope: &Scope, at: DateTime<Utc>) -> Result<HeldAt> {
        self.observed_at_impl(scope, at).await
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

    async fn finish_syncs(&self, batch: &[SyncWrite]) -> Vec<Result<()>> {
        self.finish_syncs_impl(batch).await
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

    async fn finish_webhooks(
        &self,
        owner: &str,
        batch: &[crate::WebhookWrite],
    ) -> Vec<Result<bool>> {
        self.finish_webhooks_impl(owner, batch).await
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

    async fn sync_due_now(&self, customer_id: &str, provider_id: &str) -> Result<()> {
        self.sync_due_now_impl(customer_id, provider_id).await
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

    async fn notify_changed(&self, customer_id: Option<&str>) -> Result<()> {
        self.notify_changed_impl(customer_id).await
    }

    async fn subscribe_changes(&self) -> Result<Option<tokio::sync::mpsc::Receiver<Change>>> {
        self.subscribe_changes_impl().await.map(Some)
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn heartbeat(&self, owner: &str, ttl: Duration) -> Result<u32> {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query(
            "INSERT INTO replicas (owner, expires_at) \
             VALUES ($1, now() + make_interval(secs => $2::double precision / 1000)) \
             ON CONFLICT (owner) DO UPDATE SET expires_at = EXCLUDED.expires_at",
        )
        .bind(owner)
        .bind(ttl_ms)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query("DELETE FROM replicas WHERE expires_at < now()")
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let live: i64 = sqlx::query_scalar("SELECT count(*) FROM replicas")
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(u32::try_from(live).unwrap_or(u32::MAX).max(1))
    }

    async fn oldest_snapshot(&self) -> Result<Option<DateTime<Utc>>> {
        // Served by the `snapshots_fetched_at` index.
        sqlx::query_scalar("SELECT min(fetched_at) FROM snapshots")
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)
    }
}
