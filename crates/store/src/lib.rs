//! Coffer's persistence: the [`Store`] trait and its two backends, PostgreSQL (production) and
//! SQLite (embedded default). The database URL's scheme picks one at start-up ([`connect`]).
//!
//! Architecture invariant: row types live in the backend files, never on domain types; every
//! multi-row write is one transaction.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use coffer_core::query::{Filter, KeyValue, SortSpec};
use coffer_core::{Account, Currency};
use rust_decimal::Decimal;

mod alerts;
mod at;
mod audit;
mod by_value;
mod checkpoint;
mod error;
mod events;
mod history;
mod lease;
mod list;
mod observed;
mod plan;
#[cfg(feature = "postgres")]
mod postgres;
mod rows;
#[cfg(feature = "sqlite")]
mod sqlite;
mod status;
mod subscriptions;
mod types;
mod webhooks;

pub use alerts::{
    ALL as ALL_CUSTOMERS, Alert, AlertUpdate, Direction, NewAlert, evaluate as evaluate_alert,
};
pub use audit::{Actor, AuditEntry, AuditFilter, Broken, GENESIS, NewAudit, verify};
pub use by_value::value_page;
pub use checkpoint::servable as checkpoint_servable;
pub use events::{Event, EventFilter, EventType, NewEvent};
pub use history::{HeldWindow, RateWindow};
pub use observed::{ObservedSummary, is_gap, summarize};
#[cfg(feature = "postgres")]
pub use postgres::PgStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
pub use status::{FailingPair, LagInstants, PairStats, SyncStatus, nearest_rank};
pub use subscriptions::{
    AttemptOutcome, Delivery, DeliveryState, LeasedDelivery, NewSubscription, Subscription,
};
pub use types::*;
pub use webhooks::{
    NewWebhook, WebhookEntry, WebhookFilter, WebhookOutcome, WebhookState, WebhookWrite,
};

/// Store errors, typed so the API can map them to 404, 409 and 503.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database cannot be reached right now (lost connection, pool timeout). Retryable.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Data in the database could not be read back exactly (e.g. a malformed decimal).
    #[error("corrupt data: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Other(String),
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Coffer's persistence. Both backends pass the same conformance suite.
///
/// Timestamps are kept to the microsecond (PostgreSQL's resolution, and SQLite's text format).
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// `postgres` or `sqlite`.
    fn backend(&self) -> &'static str;
    /// Applies pending migrations.
    async fn migrate(&self) -> Result<()>;
    /// A cheap round trip, for readiness.
    async fn ping(&self) -> Result<()>;
    /// The connection pool right now, for metrics.
    fn pool_stats(&self) -> PoolStats {
        PoolStats::default()
    }

    // Customers and links. Every change is appended to the audit log in its transaction, by
    // `by` (the `_by`-less forms change as `Actor::system()`).
    /// Conflict when the id exists or a link's external id belongs to another customer.
    async fn create_customer_by(&self, c: &NewCustomer, by: &Actor) -> Result<Customer>;
    async fn create_customer(&self, c: &NewCustomer) -> Result<Customer> {
        self.create_customer_by(c, &Actor::system()).await
    }
    async fn get_customer(&self, id: &str) -> Result<Customer>;
    /// Ordered by id, keyset after `after`.
    async fn list_customers(&self, after: Option<&str>, limit: u32) -> Result<Vec<Customer>>;
    /// Replaces name and links. NotFound / Conflict as for create.
    async fn update_customer_by(&self, c: &NewCustomer, by: &Actor) -> Result<Customer>;
    async fn update_customer(&self, c: &NewCustomer) -> Result<Customer> {
        self.update_customer_by(c, &Actor::system()).await
    }
    /// Deletes the customer, its links, snapshots, history and sync state.
    async fn delete_customer_by(&self, id: &str, by: &Actor) -> Result<()>;
    async fn delete_customer(&self, id: &str) -> Result<()> {
        self.delete_customer_by(id, &Actor::system()).await
    }

    // Snapshots and accounts.
    /// Atomically replaces one provider's accounts of one customer: upserts `accounts`, marks
    /// the provider's previously open accounts that are absent as closed, writes history rows
    /// for changes, records the snapshot meta and the provider rates (and, where a rate
    /// changed, its history row: see [`Store::rates_at`]). Stale writes (a
    /// `fetched_at` older than the stored one) are ignored.
    async fn save_snapshot(&self, meta: &SnapshotMeta, accounts: &[Account])
    -> Result<SaveOutcome>;
    /// A customer's open accounts and snapshot metas.
    async fn customer_accounts(&self, customer_id: &str) -> Result<CustomerAccounts>;
    /// One open account by id.
    async fn get_account(&self, id: &str) -> Result<Account>;
    /// Open accounts in `scope` matching `filter`, exact: whatever the backend cannot push down
    /// to SQL exactly it checks with `Filter::matches`.
    async fn list_accounts(&self, scope: &Scope, filter: &Filter) -> Result<Vec<Account>>;
    /// One page of the unified list: the first `limit` open accounts in `scope` matching
    /// `filter` (exactly, as `Filter::matches`) in core's order for `sort`
    /// (`SortSpec::compare`), strictly after `after` (a cursor's key under `sort`). Read from
    /// SQL in that order with a `LIMIT`, never the whole result. `sort` must not use
    /// `balance_in_base` (it depends on the rates): `Other` if it does.
    async fn list_page(
        &self,
        scope: &Scope,
        filter: &Filter,
        sort: &SortSpec,
        after: Option<&[KeyValue]>,
        limit: usize,
    ) -> Result<Vec<Account>>;
    /// Per-currency totals of the open accounts in `scope` matching `filter`.
    async fn totals(&self, scope: &Scope, filter: &Filter) -> Result<Totals>;
    /// The open accounts in `scope` whose provider rates an answer over the whole scope uses:
    /// one per provider, currency and quote, chosen as [`coffer_core::rates::rate_givers`]
    /// chooses over the scope's accounts in id order (newest fetch, then largest balance by
    /// size, then the largest id). A rate table over these is the table over every account of
    /// the scope, without reading them all.
    async fn rate_givers(&self, scope: &Scope) -> Result<Vec<Account>> {
        let all = self.list_accounts(scope, &Filter::default()).await?;
        Ok(coffer_core::rates::rate_givers(&all)
            .into_iter()
            .cloned()
            .collect())
    }
    async fn account_history(
        &self,
        account_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<HistoryEntry>>;
    async fn customer_history(
        &self,
        customer_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<HistoryEntry>>;

    /// The accounts in `scope` as they were at `at`: each (customer, provider) pair's state in
    /// its last observation at or before `at` (an account absent from it is not held). With
    /// `account_id`, only that account (and only the pairs that ever held it).
    async fn held_at(
        &self,
        scope: &Scope,
        at: DateTime<Utc>,
        account_id: Option<&str>,
    ) -> Result<HeldAt>;

    // History over time: series, one account's changes, retention.
    /// What [`Store::held_at`] would answer (without an account) at every instant of
    /// `[from, to]`, in one read: [`HeldWindow::at`] answers each instant.
    async fn held_window(
        &self,
        scope: &Scope,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<HeldWindow>;
    /// What [`Store::rates_at`] would answer at every instant of `[from, to]`, in one read:
    /// [`RateWindow::at`] answers each instant.
    async fn rates_window(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<RateWindow>;
    /// An account's observed changes in `scope`, newest first; `None` when no customer in
    /// scope ever held it (unknown and not yours look the same).
    async fn account_changes(
        &self,
        scope: &Scope,
        account_id: &str,
        q: &ChangesQuery,
    ) -> Result<Option<Vec<AccountChange>>>;
    /// Removes history older than `horizon` while keeping the state at it: per pair its last
    /// observation at or before the horizon, per account its version in force then, per rate
    /// key its row in force then, so answers at and after the horizon do not change. `None`
    /// when another replica is pruning (PostgreSQL: an advisory lock).
    async fn prune_history(&self, horizon: DateTime<Utc>) -> Result<Option<Pruned>>;
    /// Builds the missing checkpoints of the all-customer totals on every `step` instant (from
    /// the Unix epoch) up to `until`, forward from the newest one; how many were written.
    /// `until` must be settled (no write may still come at or before it: `history.settle`); a
    /// later write at or before a checkpoint drops it anyway (docs/store.md).
    async fn build_checkpoints(&self, until: DateTime<Utc>, step: Duration) -> Result<u32>;
    /// Per-currency totals of every customer's accounts held at `at` matching `filter`, exactly
    /// what summing [`Store::held_at`]`(All, at)` gives, from the newest checkpoint at or before
    /// `at` plus the versions written since. `None` without a checkpoint by then, or for a
    /// filter beyond the rollup's dimensions ([`checkpoint_servable`]).
    async fn totals_at(
        &self,
        at: DateTime<Utc>,
        filter: &Filter,
    ) -> Result<Option<Vec<CurrencyTotal>>>;
    /// What [`Store::held_at`]`(scope, at, None)` answers without its accounts: each pair's
    /// observation and the unobserved pairs, for the warnings of an answer built from totals.
    async fn observed_at(&self, scope: &Scope, at: DateTime<Utc>) -> Result<HeldAt> {
        let mut h = self.held_at(scope, at, None).await?;
        h.accounts.clear();
        Ok(h)
    }
    /// The summary of [`Store::observed_at`]`(&Scope::All, at)` ([`summarize`] with
    /// `max_gap`) from the backend's marks of it, when it keeps them and one answers; `None`:
    /// read every pair instead.
    async fn observed_summary(
        &self,
        _at: DateTime<Utc>,
        _max_gap: Duration,
    ) -> Result<Option<ObservedSummary>> {
        Ok(None)
    }

    // Rates.
    /// Replaces manual rates given (currency → value of one unit in `base`); others kept. Each
    /// is also kept as a version in force from `as_of`, naming the API key that set it.
    async fn set_manual_rates(
        &self,
        base: &Currency,
        rates: &BTreeMap<Currency, Decimal>,
        as_of: DateTime<Utc>,
        by: &Actor,
    ) -> Result<()>;
    /// Removes a manual rate; when there was one, a removal version from `as_of` is kept.
    async fn delete_manual_rate(
        &self,
        currency: &Currency,
        as_of: DateTime<Utc>,
        by: &Actor,
    ) -> Result<()>;
    /// Every stored rate (manual and provider-reported, latest per source).
    async fn rates(&self) -> Result<Vec<StoredRate>>;
    /// The rates in force at `at`, shaped and ordered as [`Store::rates`]: each currency's
    /// manual version newest at or before `at` (none if it was a removal), and each
    /// (provider, currency, quote)'s provider rate reported newest at or before `at`.
    async fn rates_at(&self, at: DateTime<Utc>) -> Result<Vec<StoredRate>>;
    /// A currency's manual rate versions, oldest first.
    async fn manual_rate_versions(&self, currency: &Currency) -> Result<Vec<ManualRateVersion>>;

    // API keys (creating and revoking one is audited like the customers' changes).
    async fn insert_api_key_by(&self, k: &NewApiKey, by: &Actor) -> Result<ApiKey>;
    async fn insert_api_key(&self, k: &NewApiKey) -> Result<ApiKey> {
        self.insert_api_key_by(k, &Actor::system()).await
    }
    async fn api_key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>>;
    async fn revoke_api_key_by(&self, id: &str, by: &Actor) -> Result<()>;
    async fn revoke_api_key(&self, id: &str) -> Result<()> {
        self.revoke_api_key_by(id, &Actor::system()).await
    }
    /// Every key, oldest first.
    async fn list_api_keys(&self) -> Result<Vec<ApiKey>>;
    /// Records that the key was used at `at`.
    async fn touch_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<()>;

    // The audit log.
    /// Appends an entry on its own (reads and exports; changes append in their transaction).
    async fn append_audit(&self, by: &Actor, a: NewAudit) -> Result<AuditEntry>;
    /// Entries matching `f`, newest first.
    async fn list_audit(&self, f: &AuditFilter) -> Result<Vec<AuditEntry>>;
    /// Up to `limit` entries after `after_seq`, oldest first: the chain, to verify.
    async fn audit_run(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditEntry>>;
    /// The chain's head as the appends left it: the last `(seq, hash)`.
    async fn audit_head(&self) -> Result<(i64, String)>;
    /// Walks the whole chain and compares its end with the head: the number of entries, or
    /// where it first breaks (an edit, a removal, an insertion, or entries cut off the end).
    async fn verify_audit(&self) -> Result<std::result::Result<i64, Broken>> {
        let mut head = (0, GENESIS.to_owned());
        loop {
            let run = self.audit_run(head.0, 1000).await?;
            if run.is_empty() {
                let stored = self.audit_head().await?;
                return Ok(if stored == head {
                    Ok(head.0)
                } else {
                    Err(Broken::Truncated {
                        head: stored.0,
                        last: head.0,
                    })
                });
            }
            match verify(&run, head) {
                Ok(next) => head = next,
                Err(broken) => return Ok(Err(broken)),
            }
        }
    }

    // Background sync.
    /// Leases up to `n` due pairs (next_due ≤ now, no live lease) for `owner` until now +
    /// `lease_for`. On PostgreSQL with `FOR UPDATE SKIP LOCKED`, so replicas never share a pair.
    async fn lease_due(&self, owner: &str, n: u32, lease_for: Duration) -> Result<Vec<Lease>>;
    /// Records the outcome and releases the lease (only if `owner` still holds it).
    async fn release(&self, lease: &Lease, outcome: &SyncOutcome) -> Result<()>;
    /// Saves each write's snapshot and records its outcome (releasing its lease), as
    /// [`Store::save_snapshot`] then [`Store::release`] would, one answer per write in order. A
    /// write whose snapshot is not saved keeps its lease (it expires and the pair is fetched
    /// again). PostgreSQL writes the whole batch in one transaction with set-based statements
    /// and announces the changed customers to every replica with it; the default writes one
    /// pair after the other.
    async fn finish_syncs(&self, batch: &[SyncWrite]) -> Vec<Result<()>> {
        let refs: Vec<&SyncWrite> = batch.iter().collect();
        finish_each(self, &refs).await
    }
    /// Sync state of every linked provider of a customer.
    async fn sync_states(&self, customer_id: &str) -> Result<Vec<SyncState>>;
    /// Every linked pair's sync state summed per provider at `now`, the failing pairs worst
    /// first (at most `failing_limit`) and the last webhook kept per provider: what
    /// `GET /v2/sync/status` shows (see [`SyncStatus`]).
    async fn sync_status(&self, now: DateTime<Utc>, failing_limit: u32) -> Result<SyncStatus>;

    // Webhook inbox (DESIGN.md "Push", In).
    /// Keeps a delivery; `(entry, true)` when it is new, `(the kept one, false)` when a delivery
    /// with the same `(provider_id, delivery_id)` was kept before (a provider's retry).
    async fn insert_webhook(&self, w: &NewWebhook) -> Result<(WebhookEntry, bool)>;
    /// Keeps several deliveries in one transaction (one commit for all: the receiving path's
    /// group commit), answering as [`Store::insert_webhook`] would for each, in order; a body
    /// twice in `ws` is new the first time only. All or nothing.
    async fn insert_webhooks(&self, ws: &[NewWebhook]) -> Result<Vec<(WebhookEntry, bool)>>;
    /// Leases up to `n` pending deliveries (oldest first; no live lease) for `owner` until now
    /// + `lease_for`, counting an attempt on each. On PostgreSQL with `FOR UPDATE SKIP LOCKED`,
    /// so replicas never process the same delivery at once; an expired lease is taken over.
    async fn lease_webhooks(
        &self,
        owner: &str,
        n: u32,
        lease_for: Duration,
    ) -> Result<Vec<WebhookEntry>>;
    /// Records how processing ended and releases the lease; `false` (nothing written) when
    /// `owner` no longer holds it.
    async fn finish_webhook(&self, id: i64, owner: &str, outcome: &WebhookOutcome) -> Result<bool>;
    /// Records processed deliveries with what their refreshes fetched, one answer per write in
    /// order, as [`Store::save_snapshot`], [`Store::sync_due_now`] then
    /// [`Store::finish_webhook`] would for each (a snapshot that cannot be saved is logged and
    /// its outcome still recorded), and announces the customers whose snapshots were written
    /// to every replica. PostgreSQL writes the batch in one transaction with the sync batch's
    /// set-based statements; the default writes one delivery after the other.
    async fn finish_webhooks(&self, owner: &str, batch: &[WebhookWrite]) -> Vec<Result<bool>> {
        let refs: Vec<&WebhookWrite> = batch.iter().collect();
        webhooks::finish_webhooks_each(self, owner, &refs).await
    }
    /// Deliveries matching the filter, ascending by id.
    async fn list_webhooks(&self, filter: &WebhookFilter) -> Result<Vec<WebhookEntry>>;
    /// Re-queues a delivery (pending, no lease, outcome cleared); `NotFound` when unknown.
    async fn replay_webhook(&self, id: i64) -> Result<WebhookEntry>;
    /// Retention: deletes the deliveries finished as `processed` or `ignored` before `horizon`
    /// (by `processed_at`); `pending` (leased or not) and `failed` ones are kept, whatever their
    /// age. Returns how many were deleted.
    async fn prune_webhooks(&self, horizon: DateTime<Utc>) -> Result<u64>;
    /// The customer linked to `external_id` at `provider`, if any.
    async fn customer_by_link(&self, provider: &str, external_id: &str) -> Result<Option<String>>;
    /// Makes a pair due now (its sync state's `next_due`), so the sync worker takes it at once.
    async fn sync_due_now(&self, customer_id: &str, provider_id: &str) -> Result<()>;

    // Outbox (DESIGN.md "Push", Out). Events are written by `save_snapshot`, `release` and
    // `finish_syncs`, in the transaction of the change they show.
    /// Events matching the filter, ascending by id (after `after`, at most `limit`).
    async fn events(&self, filter: &EventFilter) -> Result<Vec<Event>>;
    /// Changes whenever events may have been committed (by this replica, or by another one on
    /// PostgreSQL once the change listener of [`Store::subscribe_changes`] runs); the value is
    /// the newest id known committed. Readers subscribe, then query from their cursor, then
    /// wait for a change.
    fn event_wake(&self) -> tokio::sync::watch::Receiver<i64>;
    /// Events this store instance (replica) wrote since it started, per type.
    fn events_written(&self) -> Vec<(EventType, u64)>;
    /// Deletes deliveries finished (delivered or failed) before `horizon`, then events that
    /// occurred before it, except those a pending delivery or an enabled subscription's fan-out
    /// still needs; returns (events, deliveries) deleted.
    async fn prune_events(&self, horizon: DateTime<Utc>) -> Result<(u64, u64)>;

    // Subscriptions (DESIGN.md "Push"): events fanned out from the outbox into deliveries.
    /// Creates a subscription (audited as `by`'s, its secret left out); it receives the events
    /// written after it.
    async fn create_subscription_by(&self, s: &NewSubscription, by: &Actor)
    -> Result<Subscription>;
    async fn create_subscription(&self, s: &NewSubscription) -> Result<Subscription> {
        self.create_subscription_by(s, &Actor::system()).await
    }
    async fn list_subscriptions(&self) -> Result<Vec<Subscription>>;
    /// `NotFound` when unknown.
    async fn get_subscription(&self, id: &str) -> Result<Subscription>;
    /// Deletes it and its delivery log (audited as `by`'s); `NotFound` when unknown.
    async fn delete_subscription_by(&self, id: &str, by: &Actor) -> Result<()>;
    async fn delete_subscription(&self, id: &str) -> Result<()> {
        self.delete_subscription_by(id, &Actor::system()).await
    }
    /// A subscription's deliveries after id `after`, ascending.
    async fn list_deliveries(
        &self,
        subscription_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<Delivery>>;
    /// Makes a delivery per enabled subscription for each matching event after its cursor (at
    /// most `per_subscription` each); returns how many. Replicas fan out different
    /// subscriptions at once (PostgreSQL: `SKIP LOCKED`), and a delivery is made once per
    /// (subscription, event).
    async fn fan_out(&self, per_subscription: u32) -> Result<u64>;
    /// Leases up to `n` pending deliveries due now (no live lease, subscription enabled) for
    /// one attempt each, counting it; replicas never lease the same one at once.
    async fn lease_deliveries(
        &self,
        owner: &str,
        n: u32,
        lease_for: Duration,
    ) -> Result<Vec<LeasedDelivery>>;
    /// Records an attempt's outcome (delivered, or pending again at `retry_at`; a subscription
    /// failing for `disable_after` is disabled and its pending deliveries given up); `false`
    /// (nothing written) when `owner` no longer holds the lease.
    async fn finish_delivery(&self, id: i64, owner: &str, outcome: &AttemptOutcome)
    -> Result<bool>;

    // Alerts (DESIGN.md "Push", Alerts).
    /// Creates an alert (audited as `by`'s); its evaluation follows the events written after it.
    async fn create_alert_by(&self, a: &NewAlert, by: &Actor) -> Result<Alert>;
    async fn list_alerts(&self) -> Result<Vec<Alert>>;
    /// `NotFound` when unknown.
    async fn get_alert(&self, id: &str) -> Result<Alert>;
    /// Deletes it (audited as `by`'s); `NotFound` when unknown.
    async fn delete_alert_by(&self, id: &str, by: &Actor) -> Result<()>;
    /// Writes an evaluation if the alert is still at `u.version` (compare-and-set), with its
    /// crossing's event in the same transaction; `false` (nothing written) when another
    /// evaluation, from this replica or another, was written first.
    async fn record_alert(&self, u: &AlertUpdate) -> Result<bool>;

    // Scale-out.
    /// Tells every replica (PostgreSQL `NOTIFY`) that a customer's data (`Some`) or anything
    /// (`None`: rates, links) changed. A no-op on a single-replica backend.
    async fn notify_changed(&self, customer_id: Option<&str>) -> Result<()> {
        let _ = customer_id;
        Ok(())
    }
    /// Changes announced by any replica, this one included (`Change::local`). The listener
    /// reconnects by itself and sends `customer_id: None` after a reconnection, since it may
    /// have missed some. `None` when the backend serves a single replica (SQLite). The
    /// listener stops when the receiver is dropped.
    async fn subscribe_changes(&self) -> Result<Option<tokio::sync::mpsc::Receiver<Change>>> {
        Ok(None)
    }
    /// Closes the pool (graceful shutdown); later calls fail with `Unavailable`.
    async fn close(&self) {}
    /// Records that replica `owner` is alive for `ttl` and returns how many replicas are alive
    /// (this one included), so each can take its share of a provider's quota. Single-replica
    /// backends answer 1.
    async fn heartbeat(&self, owner: &str, ttl: Duration) -> Result<u32> {
        let _ = (owner, ttl);
        Ok(1)
    }
    /// When the oldest open snapshot was fetched: the sync lag.
    async fn oldest_snapshot(&self) -> Result<Option<DateTime<Utc>>> {
        Ok(self
            .totals(&Scope::All, &Filter::default())
            .await?
            .oldest_as_of)
    }
}

/// [`Store::finish_syncs`] one write at a time.
pub(crate) async fn finish_each<S: Store + ?Sized>(
    store: &S,
    batch: &[&SyncWrite],
) -> Vec<Result<()>> {
    let mut out = Vec::with_capacity(batch.len());
    for w in batch {
        if let Some((meta, accounts)) = &w.snapshot
            && let Err(e) = store.save_snapshot(meta, accounts).await
        {
            out.push(Err(e));
            continue;
        }
        out.push(store.release(&w.lease, &w.outcome).await);
    }
    out
}

/// Whether an account passes what a backend could not push down to SQL. `Filter::matches` is
/// only called when a constraint needs it (field searches, free text).
pub(crate) fn keep(f: &Filter, a: &Account, balance_pushed: bool) -> bool {
    if !f.fields.is_empty() || f.text.is_some() {
        return f.matches(a);
    }
    balance_pushed || f.balance.contains(a.balance)
}

/// Connects to the backend the URL's scheme names (`postgres://`, `postgresql://`, `sqlite:`),
/// creating the SQLite file when it is missing. Does not migrate.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>> {
    connect_with(url, &ConnectOptions::default()).await
}

/// [`connect`] with pool settings.
pub async fn connect_with(url: &str, opts: &ConnectOptions) -> Result<Arc<dyn Store>> {
    let scheme = url
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match scheme.as_str() {
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => Ok(Arc::new(PgStore::connect_with(url, opts).await?)),
        #[cfg(feature = "sqlite")]
        "sqlite" => Ok(Arc::new(SqliteStore::connect_with(url, opts).await?)),
        #[cfg(not(feature = "postgres"))]
        "postgres" | "postgresql" => Err(StoreError::Other(
            "this build has no PostgreSQL backend (cargo feature `postgres`)".into(),
        )),
        #[cfg(not(feature = "sqlite"))]
        "sqlite" => Err(StoreError::Other(
            "this build has no SQLite backend (cargo feature `sqlite`); use postgres://".into(),
        )),
        _ => Err(StoreError::Other(format!(
            "unsupported database URL scheme `{scheme}`: expected postgres://, postgresql:// or sqlite:"
        ))),
    }
}
