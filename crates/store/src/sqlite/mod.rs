//! The SQLite backend (embedded default: one process, one replica). A file in WAL mode with a
//! busy timeout, or `sqlite::memory:` for tests (one connection, since every connection would
//! otherwise see its own database). Writes run in `BEGIN IMMEDIATE` transactions.
//!
//! SQLite has no exact decimal type: money is stored as text and parsed exactly; balance
//! ranges and totals are evaluated in Rust. Timestamps are fixed-width UTC text.

mod accounts;
mod at;
mod customers;
mod rates;
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

use crate::error::{Violation, db_err, violation};
use crate::rows::{self, ApiKeyCols};
use crate::{
    ApiKey, ConnectOptions, Customer, CustomerAccounts, HeldAt, HistoryEntry, Lease, NewApiKey,
    NewCustomer, Result, SaveOutcome, Scope, SnapshotMeta, Store, StoreError, StoredRate,
    SyncOutcome, SyncState, Totals,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

/// The SQLite store. Cheap to clone (the pool is shared).
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
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
        Ok(SqliteStore { pool })
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

#[derive(sqlx::FromRow)]
struct ApiKeyRow {
    id: String,
    hash: String,
    role: String,
    customers: String,
    created_at: String,
    revoked_at: Option<String>,
}

fn key(r: ApiKeyRow) -> Result<ApiKey> {
    ApiKeyCols {
        customers: rows::strings(&r.customers)?,
        created_at: rows::parse_ts(&r.created_at)?,
        revoked_at: rows::opt_ts(r.revoked_at.as_deref())?,
        id: r.id,
        hash: r.hash,
        role: r.role,
    }
    .into_key()
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

    async fn create_customer(&self, c: &NewCustomer) -> Result<Customer> {
        self.create_customer_impl(c).await
    }

    async fn get_customer(&self, id: &str) -> Result<Customer> {
        self.get_customer_impl(id).await
    }

    async fn list_customers(&self, after: Option<&str>, limit: u32) -> Result<Vec<Customer>> {
        self.list_customers_impl(after, limit).await
    }

    async fn update_customer(&self, c: &NewCustomer) -> Result<Customer> {
        self.update_customer_impl(c).await
    }

    async fn delete_customer(&self, id: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM customers WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: format!("customer {id}"),
            });
        }
        Ok(())
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

    async fn set_manual_rates(
        &self,
        base: &Currency,
        rates: &BTreeMap<Currency, Decimal>,
        as_of: DateTime<Utc>,
        key_id: Option<&str>,
    ) -> Result<()> {
        self.set_manual_rates_impl(base, rates, as_of, key_id).await
    }

    async fn delete_manual_rate(
        &self,
        currency: &Currency,
        as_of: DateTime<Utc>,
        key_id: Option<&str>,
    ) -> Result<()> {
        self.delete_manual_rate_impl(currency, as_of, key_id).await
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

    async fn insert_api_key(&self, k: &NewApiKey) -> Result<ApiKey> {
        let row: ApiKeyRow = sqlx::query_as(
            "INSERT INTO api_keys (id, hash, role, customers, created_at) VALUES (?, ?, ?, ?, ?)
             RETURNING id, hash, role, customers, created_at, revoked_at",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(&k.hash)
        .bind(k.role.as_str())
        .bind(rows::strings_json(&k.customers))
        .bind(rows::ts(Utc::now()))
        .fetch_one(&self.pool)
        .await
        .map_err(|e| match violation(&e) {
            Some(Violation::Unique) => {
                StoreError::Conflict("an API key with this hash exists".to_owned())
            }
            _ => db_err(e),
        })?;
        key(row)
    }

    async fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>> {
        let row: Option<ApiKeyRow> = sqlx::query_as(
            "SELECT id, hash, role, customers, created_at, revoked_at FROM api_keys WHERE hash = ?",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.map(key).transpose()
    }

    async fn revoke_api_key(&self, id: &str) -> Result<()> {
        let done =
            sqlx::query("UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?")
                .bind(rows::ts(Utc::now()))
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: format!("API key {id}"),
            });
        }
        Ok(())
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

    async fn insert_webhook(&self, w: &crate::NewWebhook) -> Result<(crate::WebhookEntry, bool)> {
        self.insert_webhook_impl(w).await
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

    async fn customer_by_link(&self, provider: &str, external_id: &str) -> Result<Option<String>> {
        self.customer_by_link_impl(provider, external_id).await
    }

    async fn sync_due_now(&self, customer_id: &str, provider_id: &str) -> Result<()> {
        self.sync_due_now_impl(customer_id, provider_id).await
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
