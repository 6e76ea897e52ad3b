//! The store's own domain types: customers and links, snapshots and their outcomes, totals,
//! history and observations, rates, keys, sync state and leases, changes, pruning and pool
//! figures. What the [`crate::Store`] trait takes and answers; the trait is in `lib.rs`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use coffer_core::{Account, BalanceTypeCounts, Currency, ProviderErrorKind, Status};
use rust_decimal::Decimal;

/// A customer and its provider links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub id: String,
    pub name: Option<String>,
    pub links: Vec<Link>,
    pub created_at: DateTime<Utc>,
}

impl Customer {
    /// What the audit log keeps of a customer (links by provider, as they read back).
    pub fn audited(&self) -> serde_json::Value {
        let mut links: Vec<&Link> = self.links.iter().collect();
        links.sort_by(|a, b| a.provider.cmp(&b.provider));
        let links: Vec<serde_json::Value> = links
            .into_iter()
            .map(|l| serde_json::json!({"provider": l.provider, "external_id": l.external_id}))
            .collect();
        serde_json::json!({"id": self.id, "name": self.name, "links": links})
    }
}

/// One external id at one provider instance. A customer has at most one link per provider; an
/// external id (per provider) belongs to one customer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Link {
    pub provider: String,
    pub external_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCustomer {
    pub id: String,
    pub name: Option<String>,
    pub links: Vec<Link>,
}

/// Which customers a read may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    /// Only these customers (a reader's scope intersected with the request's `customer_id`).
    Customers(Vec<String>),
}

/// One provider's latest answer for one customer, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotMeta {
    pub customer_id: String,
    pub provider_id: String,
    pub provider_customer_ref: Option<String>,
    pub fetched_at: DateTime<Utc>,
    /// Rejected balances of that fetch, as text (what was wrong).
    pub rejected: Vec<String>,
}

/// What saving a snapshot changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaveOutcome {
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Accounts that were in the previous snapshot and are not in this one: marked closed.
    pub closed: usize,
    /// History rows written (balance or status changed, opened or closed).
    pub history_rows: usize,
    /// The write was older than the stored snapshot (`fetched_at`) and was ignored.
    pub stale: bool,
}

/// A customer's accounts and when each provider last answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerAccounts {
    /// Open accounts only (closed ones are kept in the store, not returned here).
    pub accounts: Vec<Account>,
    pub snapshots: Vec<SnapshotMeta>,
}

/// Per-currency sums over many customers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrencyTotal {
    pub currency: Currency,
    pub is_crypto: bool,
    pub balance: Decimal,
    pub accounts: u64,
    /// The `accounts` by balance type (they add up to it).
    pub balance_types: BalanceTypeCounts,
}

/// The all-customer totals answer, with the span of data it covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub by_currency: Vec<CurrencyTotal>,
    pub customers: u64,
    pub oldest_as_of: Option<DateTime<Utc>>,
    pub newest_as_of: Option<DateTime<Utc>>,
}

/// One balance-history row: written only when an account's balance or status changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub account_id: String,
    pub customer_id: String,
    pub balance: Decimal,
    pub status: Status,
    pub closed: bool,
    pub recorded_at: DateTime<Utc>,
}

/// One (customer, provider) pair's last observation (saved snapshot) at or before an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub customer_id: String,
    pub provider_id: String,
    pub observed_at: DateTime<Utc>,
    /// Rejected balances of that fetch, as text.
    pub rejected: Vec<String>,
}

/// What the store held at an instant (see [`Store::held_at`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeldAt {
    /// The accounts open in their pair's last observation at or before the instant, ordered by
    /// id; each account's `fetched_at` is that observation's instant (its `observed_at`).
    pub accounts: Vec<Account>,
    /// Per observed pair in scope, its last observation at or before the instant.
    pub observations: Vec<Observation>,
    /// Pairs linked now, in scope, with no observation at or before the instant (customer,
    /// provider). Empty when one account was asked for.
    pub unobserved: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateSource {
    Manual,
    Provider,
}

/// A stored rate: one unit of `currency` is worth `rate` units of `quote`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRate {
    pub currency: Currency,
    pub quote: Currency,
    pub rate: Decimal,
    pub source: RateSource,
    /// For provider rates, the provider instance id.
    pub provider: Option<String>,
    pub as_of: DateTime<Utc>,
}

/// One version of a manual rate: set or changed (`quote` and `rate`), or removed (both `None`),
/// from `as_of`, by the API key `key_id` (`None`: recorded before rates were versioned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManualRateVersion {
    pub currency: Currency,
    pub quote: Option<Currency>,
    pub rate: Option<Decimal>,
    pub as_of: DateTime<Utc>,
    pub key_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Admin,
    Reader,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Reader => "reader",
        }
    }
}

/// An API key as stored: the hash only, never the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    /// Hex SHA-256 of the key.
    pub hash: String,
    pub role: Role,
    /// For readers: the customers the key may read.
    pub customers: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// After it, the key answers 401 saying it expired.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was last resolved from the store (to the key cache's 30 s).
    pub last_used_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    /// What the audit log keeps of a key: everything but its hash.
    pub fn audited(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "role": self.role.as_str(),
            "customers": self.customers,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    pub hash: String,
    pub role: Role,
    pub customers: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A (customer, provider) pair leased for background sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub customer_id: String,
    pub provider_id: String,
    pub external_id: String,
    pub owner: String,
    pub expires_at: DateTime<Utc>,
    /// Consecutive failures before this lease (for backoff).
    pub failures: u32,
}

/// How a leased sync ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    Success {
        next_due: DateTime<Utc>,
    },
    Failure {
        kind: ProviderErrorKind,
        message: String,
        next_due: DateTime<Utc>,
    },
}

/// One leased pair's finished sync: the snapshot to save (when the provider answered) and the
/// outcome that releases the lease. Written in batches by [`Store::finish_syncs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncWrite {
    pub lease: Lease,
    pub snapshot: Option<(SnapshotMeta, Vec<Account>)>,
    pub outcome: SyncOutcome,
}

/// Sync state of one (customer, provider) pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncState {
    pub customer_id: String,
    pub provider_id: String,
    pub last_success: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_kind: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub failures: u32,
    pub next_due: DateTime<Utc>,
    pub lease_owner: Option<String>,
    pub lease_expires: Option<DateTime<Utc>>,
}

/// A change another replica (or this one) announced: drop the matching L1 cache entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The customer whose data changed; `None`: anything may have changed (rates, or
    /// notifications may have been lost while the listener reconnected): drop everything.
    pub customer_id: Option<String>,
    /// Sent by this very store instance (this replica).
    pub local: bool,
}

/// Pool settings; [`connect`] uses the defaults.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub max_connections: u32,
    /// How long an operation waits for a connection before it fails with `Unavailable`. With
    /// PostgreSQL down this is how long every operation takes to fail (the pool keeps retrying
    /// a refused connection until then), so it is short: the API answers from memory (flagged)
    /// or 503 instead of hanging. SQLite, whose database cannot be down, waits at least
    /// [`SQLITE_MIN_ACQUIRE`] (queueing behind its connections is all it waits for).
    pub acquire_timeout: Duration,
}

/// The shortest connection wait on SQLite.
pub const SQLITE_MIN_ACQUIRE: Duration = Duration::from_secs(5);

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(2),
        }
    }
}

/// One observed change of an account: a version of it (opened, changed, closed), as
/// [`Store::account_changes`] reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountChange {
    /// The customer whose pair observed it (an account can move between customers).
    pub customer_id: String,
    pub observed_at: DateTime<Utc>,
    pub balance: Decimal,
    pub status: Status,
    pub active: bool,
    pub closed: bool,
}

/// Which changes of one account to read: `[from, to]`, newest first, strictly after `after`
/// (the `(observed_at, customer_id)` of the previous page's last change), at most `limit`.
#[derive(Debug, Clone, Default)]
pub struct ChangesQuery {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub after: Option<(DateTime<Utc>, String)>,
    pub limit: u32,
}

/// The PostgreSQL advisory lock [`Store::prune_history`] holds while it prunes: "coffer" and a
/// 1, so it meets no other lock of the database.
pub const PRUNE_LOCK_KEY: i64 = 0x636f_6666_6572_0001;

/// The advisory lock that makes one replica the pruner of a round ([`Store::prune_history`]
/// tries it and skips the round without it). Apart from [`PRUNE_LOCK_KEY`], which the
/// checkpoint builder holds shared for each step: a pruner waits out that step rather than
/// skip its round for a build (at start-up the builder catches up for minutes, and a skipped
/// round waits `history.prune_interval`, an hour by default).
pub const PRUNER_LOCK_KEY: i64 = 0x636f_6666_6572_0003;

/// The advisory lock between the checkpoint builder and the writes of account versions on
/// PostgreSQL: a write of versions holds it shared (from dropping the checkpoints it makes
/// wrong until its commit), a checkpoint write holds it exclusive, so the versions the
/// checkpoint reads are all that will ever be written at or before it, or the write that adds
/// one drops it after.
pub const CHECKPOINT_LOCK_KEY: i64 = 0x636f_6666_6572_0002;

/// What one pruning removed (see [`Store::prune_history`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub observations: u64,
    pub account_versions: u64,
    pub balance_history: u64,
    pub rate_versions: u64,
}

/// A connection pool's state: connections open (`size`, of at most `max`) and idle among them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}
