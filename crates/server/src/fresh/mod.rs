//! Freshness: the one loader every read of a customer goes through (requests and the sync
//! worker alike).
//!
//! Path for one customer: L1 (moka, per customer) → store snapshot newer than the bound →
//! every linked provider in parallel (each through its stack, `provider/`) → snapshot + history
//! written → answer. Concurrent loads of one customer are coalesced when the load in flight
//! gives the caller what it needs (a refresh or a `max_age` never joins an older load), and
//! each provider's stack coalesces its calls the same way, so a request and a sync of the same
//! pair share one provider call.
//! When a provider fails, or does not answer before the request's deadline, its last snapshot
//! is served flagged stale (up to `cache.stale_if_error`); beyond that its accounts are left
//! out and the answer is partial.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use coffer_core::{Account, ProviderError};
use coffer_store::{SnapshotMeta, Store, StoreError};
use futures::FutureExt;
use futures::future::join_all;

use crate::config::CacheConfig;
use crate::metrics;
use crate::provider::{Role, SingleFlight};

mod fetch;
mod held;
mod weight;
use crate::providers::Providers;
pub use held::HeldAccounts;

/// What one provider contributed to a customer's view.
#[derive(Debug, Clone)]
pub struct ProviderView {
    pub provider_id: String,
    /// Accounts served (empty when `Missing`).
    pub accounts: HeldAccounts,
    /// When the served data was fetched from the provider; `None` if never.
    pub as_of: Option<DateTime<Utc>>,
    pub state: ProviderState,
    /// Balances the provider sent that could not be understood.
    pub rejected: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum ProviderState {
    /// Fetched now or within the freshness bound.
    Fresh,
    /// The provider failed; the last snapshot is served.
    Stale(ProviderError),
    /// The provider failed and there is no snapshot young enough: its accounts are left out.
    Missing(ProviderError),
}

/// A customer's accounts across every linked provider.
#[derive(Debug, Clone)]
pub struct CustomerView {
    pub customer_id: String,
    pub providers: Vec<ProviderView>,
    /// When this view was assembled.
    pub loaded_at: Instant,
    /// The store could not be read; this view is an older one served from memory.
    pub store_unavailable: bool,
    /// Unique per load: an answer computed from this view can be reused while the view is.
    pub generation: u64,
}

/// Source of [`CustomerView::generation`].
static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl CustomerView {
    /// The accounts, built from what the view holds (see [`HeldAccounts`]).
    pub fn accounts(&self) -> impl Iterator<Item = Account> + '_ {
        self.providers.iter().flat_map(|p| p.accounts.iter())
    }

    pub fn has_failures(&self) -> bool {
        self.store_unavailable
            || self
                .providers
                .iter()
                .any(|p| !matches!(p.state, ProviderState::Fresh))
    }

    /// Oldest provider data in the view.
    fn oldest_as_of(&self) -> Option<DateTime<Utc>> {
        self.providers.iter().filter_map(|p| p.as_of).min()
    }
}

/// Why a customer could not be loaded at all.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    #[error("customer not found")]
    NotFound,
    #[error("store unavailable: {0}")]
    StoreUnavailable(String),
    #[error("store error: {0}")]
    Store(String),
}

impl From<LoadError> for crate::error::ApiError {
    fn from(e: LoadError) -> Self {
        match e {
            LoadError::NotFound => crate::error::ApiError::NotFound("customer".into()),
            LoadError::StoreUnavailable(m) => crate::error::ApiError::Unavailable(m),
            LoadError::Store(m) => crate::error::ApiError::Internal(m),
        }
    }
}

/// How fresh the caller needs the data, and by when.
#[derive(Debug, Clone, Copy, Default)]
pub struct Need {
    /// `max_age`: data older than this is refreshed first.
    pub max_age: Option<Duration>,
    /// Ignore every cache and fetch from the providers now (refresh endpoint).
    pub force: bool,
    /// Answer by then with what is there: a provider still fetching is served stale or left
    /// out (its fetch goes on and is written when it ends).
    pub deadline: Option<Instant>,
}

impl Need {
    /// A request's need: `max_age`, answered before `server.request_timeout` (a tenth of it,
    /// at most a second, is left to compute and send the answer).
    pub fn request(max_age: Option<Duration>, force: bool, request_timeout: Duration) -> Self {
        let margin = (request_timeout / 10).min(Duration::from_secs(1));
        Self {
            max_age,
            force,
            deadline: Instant::now().checked_add(request_timeout.saturating_sub(margin)),
        }
    }

    /// The instant the caller needs data fetched after, asked at `now`; `None`: any data the
    /// cache policy accepts.
    fn fresh_after(&self, now: Instant) -> Option<Instant> {
        if self.force {
            return Some(now);
        }
        self.max_age.map(|m| now.checked_sub(m).unwrap_or(now))
    }

    /// What a load started at `now` for this need covers.
    fn covers_from(&self, now: Instant, ttl: Duration) -> Option<Instant> {
        if self.force {
            return Some(now);
        }
        now.checked_sub(self.max_age.unwrap_or(ttl))
    }
}
/// Called with a customer id after one of its snapshots was written.
pub type OnSaved = Arc<dyn Fn(&str) + Send + Sync>;

/// How long an invalidation is remembered: longer than any load takes.
const INVALIDATION_MEMORY: Duration = Duration::from_secs(120);

/// Invalidations remembered at once.
const INVALIDATIONS_KEPT: u64 = 100_000;

pub struct Freshness {
    store: Arc<dyn Store>,
    providers: Arc<Providers>,
    cfg: CacheConfig,
    l1: moka::future::Cache<String, Arc<CustomerView>>,
    /// The last view of each customer, kept through invalidations: the answer of last resort
    /// (flagged) while the store is down. Shares the views with `l1`.
    last_known: moka::future::Cache<String, Arc<CustomerView>>,
    customers: SingleFlight<String, Result<Arc<CustomerView>, LoadError>>,
    /// Called after a snapshot of a customer was written (cross-replica invalidation).
    on_saved: Option<OnSaved>,
    /// When each customer was last invalidated, so a load that began before an invalidation
    /// does not put its older view back into L1 afterwards.
    invalidated: moka::future::Cache<String, Instant>,
    /// When everything was last invalidated.
    all_invalidated: std::sync::Mutex<Option<Instant>>,
}

impl Freshness {
    pub fn new(store: Arc<dyn Store>, providers: Arc<Providers>, cfg: CacheConfig) -> Self {
        // Entries live as long as they may be served stale, not just `ttl`: freshness is checked
        // on read, and an old entry is the answer of last resort when the store is down.
        let views = |name: &'static str| {
            moka::future::Cache::builder()
                .max_capacity(cfg.budget(name))
                .weigher(|k: &String, v: &Arc<CustomerView>| weight::view(k, v))
                .eviction_listener(move |_, _, cause| crate::metrics::cache_eviction(name, cause))
                .time_to_live(cfg.stale_if_error.max(cfg.ttl))
                .build()
        };
        let (l1, last_known) = (views("views"), views("last_known"));
        Self {
            store,
            providers,
            cfg,
            l1,
            last_known,
            customers: SingleFlight::default(),
            on_saved: None,
            invalidated: moka::future::Cache::builder()
                .max_capacity(INVALIDATIONS_KEPT)
                .time_to_live(INVALIDATION_MEMORY)
                .build(),
            all_invalidated: std::sync::Mutex::new(None),
        }
    }

    pub fn with_on_saved(mut self, f: OnSaved) -> Self {
        self.on_saved = Some(f);
        self
    }

    pub fn config(&self) -> &CacheConfig {
        &self.cfg
    }

    /// The bytes each view cache holds now, by the weights it is bounded by.
    pub fn weighed_bytes(&self) -> [(&'static str, u64); 2] {
        [
            ("views", self.l1.weighted_size()),
            ("last_known", self.last_known.weighted_size()),
        ]
    }

    /// Settles pending inserts and evictions, so `weighed_bytes` is exact (benchmarks, tests).
    pub async fn settle(&self) {
        self.l1.run_pending_tasks().await;
        self.last_known.run_pending_tasks().await;
    }

    /// Drops a customer from L1 (after a refresh elsewhere, a link or rate change).
    pub async fn invalidate(&self, customer_id: &str) {
        self.invalidated
            .insert(customer_id.to_owned(), Instant::now())
            .await;
        self.l1.invalidate(customer_id).await;
    }

    pub fn invalidate_all(&self) {
        if let Ok(mut at) = self.all_invalidated.lock() {
            *at = Some(Instant::now());
        }
        self.l1.invalidate_all();
    }

    /// Whether the customer was invalidated at or after `since`.
    async fn invalidated_since(&self, customer_id: &str, since: Instant) -> bool {
        let all = self
            .all_invalidated
            .lock()
            .ok()
            .and_then(|at| *at)
            .is_some_and(|at| at >= since);
        all || self
            .invalidated
            .get(customer_id)
            .await
            .is_some_and(|at| at >= since)
    }

    /// A customer's view, as fresh as `need` says.
    pub async fn customer(
        self: &Arc<Self>,
        customer_id: &str,
        need: Need,
    ) -> Result<Arc<CustomerView>, LoadError> {
        let cached = self.l1.get(customer_id).await;
        if let Some(v) = &cached
            && !need.force
            && self.usable(v, need.max_age)
        {
            metrics::cache("hit");
            return Ok(Arc::clone(v));
        }
        let this = Arc::clone(self);
        let id = customer_id.to_owned();
        let now = Instant::now();
        let (res, role) = self
            .customers
            .run(
                customer_id.to_owned(),
                need.fresh_after(now),
                need.covers_from(now, self.cfg.ttl),
                move || async move { this.load(&id, need).await }.boxed(),
            )
            .await;
        // The outcomes partition the lookups: hit, miss (this lookup loaded) or coalesced.
        metrics::cache(match role {
            Role::Leader => "miss",
            Role::Follower => "coalesced",
        });
        let res = res
            .unwrap_or_else(|_| Err(LoadError::Store("the load failed (a panic, logged)".into())));
        match res {
            Ok(v) => Ok(v),
            Err(LoadError::StoreUnavailable(m)) => match match cached {
                Some(v) => Some(v),
                // Dropped from L1 by an invalidation (a sync, another replica's refresh): the
                // last view still beats no answer.
                None => self.last_known.get(customer_id).await,
            } {
                // The store is down: the last view in memory, flagged, beats no answer.
                Some(v) => {
                    let mut old = (*v).clone();
                    old.store_unavailable = true;
                    Ok(Arc::new(old))
                }
                None => Err(LoadError::StoreUnavailable(m)),
            },
            Err(e) => Err(e),
        }
    }

    fn usable(&self, v: &CustomerView, max_age: Option<Duration>) -> bool {
        let ttl = if v.has_failures() {
            self.cfg.error_ttl.min(self.cfg.ttl)
        } else {
            self.cfg.ttl
        };
        if v.loaded_at.elapsed() > ttl {
            return false;
        }
        match (max_age, v.oldest_as_of()) {
            (Some(max), Some(oldest)) => age(oldest) <= max,
            _ => true,
        }
    }

    async fn load(
        self: Arc<Self>,
        customer_id: &str,
        need: Need,
    ) -> Result<Arc<CustomerView>, LoadError> {
        let started = Instant::now();
        let fresh_after = need.fresh_after(started);
        // Both reads at once, on two connections: they are on the path of every cold request.
        let (customer, stored) = tokio::try_join!(
            self.store.get_customer(customer_id),
            self.store.customer_accounts(customer_id),
        )
        .map_err(load_error)?;
        let bound = need.max_age.unwrap_or(self.cfg.ttl);
        let mut by_provider: HashMap<&str, Vec<Account>> = HashMap::new();
        for a in &stored.accounts {
            by_provider
                .entry(a.provider_id.as_str())
                .or_default()
                .push(a.clone());
        }
        let metas: HashMap<&str, &SnapshotMeta> = stored
            .snapshots
            .iter()
            .map(|m| (m.provider_id.as_str(), m))
            .collect();

        let views = customer.links.iter().map(|link| {
            let meta = metas.get(link.provider.as_str()).copied();
            let stored_accounts = by_provider
                .get(link.provider.as_str())
                .cloned()
                .unwrap_or_default();
            let this = Arc::clone(&self);
            let customer = &customer;
            async move {
                if let Some(m) = meta.filter(|m| !need.force && age(m.fetched_at) <= bound) {
                    return ProviderView {
                        provider_id: link.provider.clone(),
                        accounts: stored_accounts.into(),
                        as_of: Some(m.fetched_at),
                        state: ProviderState::Fresh,
                        rejected: m.rejected.clone(),
                    };
                }
                let fetched = this.fetch_by(
                    &customer.id,
                    &link.provider,
                    &link.external_id,
                    fresh_after,
                    need.deadline,
                );
                match fetched.await {
                    Ok((accounts, meta)) => ProviderView {
                        provider_id: link.provider.clone(),
                        accounts: accounts.into(),
                        as_of: Some(meta.fetched_at),
                        state: ProviderState::Fresh,
                        rejected: meta.rejected,
                    },
                    Err(e) => this.fallback(link.provider.clone(), meta, stored_accounts, e),
                }
            }
        });
        let providers = join_all(views).await;
        let view = Arc::new(CustomerView {
            customer_id: customer_id.to_owned(),
            providers,
            loaded_at: Instant::now(),
            store_unavailable: false,
            generation: GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        });
        self.l1
            .insert(customer_id.to_owned(), Arc::clone(&view))
            .await;
        self.last_known
            .insert(customer_id.to_owned(), Arc::clone(&view))
            .await;
        // Invalidated while loading (another replica refreshed it, links changed): what was
        // read may be older than that change, so it is answered once but not kept. Checked
        // after the insert, so an invalidation racing with it cannot be lost.
        if self.invalidated_since(customer_id, started).await {
            self.l1.invalidate(customer_id).await;
        }
        Ok(view)
    }

    fn fallback(
        &self,
        provider_id: String,
        meta: Option<&SnapshotMeta>,
        stored_accounts: Vec<Account>,
        e: ProviderError,
    ) -> ProviderView {
        match meta {
            Some(m) if age(m.fetched_at) <= self.cfg.stale_if_error => ProviderView {
                provider_id,
                accounts: stored_accounts.into(),
                as_of: Some(m.fetched_at),
                state: ProviderState::Stale(e),
                rejected: m.rejected.clone(),
            },
            other => ProviderView {
                provider_id,
                accounts: HeldAccounts::default(),
                as_of: other.map(|m| m.fetched_at),
                state: ProviderState::Missing(e),
                rejected: Vec::new(),
            },
        }
    }
}

fn load_error(e: StoreError) -> LoadError {
    match e {
        StoreError::NotFound { .. } => LoadError::NotFound,
        StoreError::Unavailable(m) => LoadError::StoreUnavailable(m),
        other => LoadError::Store(other.to_string()),
    }
}

/// Age of data fetched at `t` (zero if `t` is in the future).
pub fn age(t: DateTime<Utc>) -> Duration {
    (Utc::now() - t).to_std().unwrap_or(Duration::ZERO)
}
