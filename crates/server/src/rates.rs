//! Where a query's rate table comes from: manual rates (config, then the admin API, newest
//! wins), then the providers' own rates. Stored rates are cached in memory and dropped when an
//! admin changes them (here or, through the store's notifications, on another replica).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use coffer_core::rates::{Rate, RateSource, RateTable};
use coffer_core::{Account, Currency};
use coffer_store::{Store, StoredRate};
use tokio::sync::RwLock;

/// How long stored rates are reused without asking the store again.
const STORED_TTL: Duration = Duration::from_secs(30);

pub struct RateBook {
    base: Currency,
    /// Provider instances whose rates are derived from rounded amounts: they rank after the
    /// rates other providers state.
    derived: Vec<String>,
    /// Manual rates from the config file, dated at start-up so an admin's later rate wins.
    config_manual: Vec<Rate>,
    stored: RwLock<Option<(Instant, Arc<Vec<Rate>>)>>,
    /// Bumped whenever manual rates may have changed, so answers cached with older ones are
    /// not reused.
    generation: AtomicU64,
}

impl RateBook {
    pub fn new(
        base: Currency,
        config_manual: Vec<(Currency, rust_decimal::Decimal)>,
        derived: Vec<String>,
    ) -> Self {
        let now = Utc::now();
        let config_manual = config_manual
            .into_iter()
            .map(|(c, v)| Rate::manual(c, base.clone(), v, now))
            .collect();
        Self {
            base,
            derived,
            config_manual,
            stored: RwLock::new(None),
            generation: AtomicU64::new(0),
        }
    }

    pub fn base(&self) -> &Currency {
        &self.base
    }

    /// Rates changed (here or on another replica): read them again, and do not reuse answers
    /// computed with the old ones.
    pub async fn invalidate(&self) {
        *self.stored.write().await = None;
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    /// Changes whenever the manual rates may have.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Rates kept in the store (manual and provider-reported), cached. When the store cannot be
    /// read, the last rates read are used; with none, only the config's and the accounts'.
    pub async fn stored(&self, store: &dyn Store) -> Arc<Vec<Rate>> {
        if let Some((at, rates)) = self.stored.read().await.as_ref()
            && at.elapsed() < STORED_TTL
        {
            return Arc::clone(rates);
        }
        match store.rates().await {
            Ok(rows) => {
                let rates = Arc::new(rows.into_iter().map(to_core).collect::<Vec<_>>());
                *self.stored.write().await = Some((Instant::now(), Arc::clone(&rates)));
                rates
            }
            Err(e) => {
                tracing::warn!(error = %e, "rates not read from the store; using the last known");
                self.stored
                    .read()
                    .await
                    .as_ref()
                    .map(|(_, r)| Arc::clone(r))
                    .unwrap_or_default()
            }
        }
    }

    /// The rate table for an all-customer answer built from per-currency sums, which carry no
    /// rates of their own: manual rates, then the providers' latest rates, read from the store
    /// now (not from the cache: every snapshot written since may have brought newer ones).
    pub async fn table_for_all(&self, store: &dyn Store) -> RateTable {
        *self.stored.write().await = None;
        let mut table = self.manual(store).await;
        for r in self
            .stored(store)
            .await
            .iter()
            .filter(|r| r.source == RateSource::Provider)
        {
            insert(&mut table, r.clone());
        }
        table
    }

    /// The rate table for an answer over `accounts`: manual rates, then the rates the providers
    /// reported with these very accounts, and nothing else. So an answer is a function of its
    /// own accounts (and the admin's rates): a customer's totals are the same whether asked by
    /// an admin or a reader, and no rate derived from another customer's balances appears in it.
    pub async fn table_for(&self, store: &dyn Store, accounts: &[Account]) -> RateTable {
        let mut table = self.manual(store).await;
        table.add_from_accounts(accounts);
        table
    }

    /// The rate table in force at `at` (`GET /v2/rates?at=`), from the store only: the admin's
    /// manual versions in force then, the config's manual rates for the currencies they leave
    /// (the config is not versioned: dated at `at`, so restarts change nothing), then the
    /// providers' rates reported last at or before `at`.
    pub async fn table_at(
        &self,
        store: &dyn Store,
        at: DateTime<Utc>,
    ) -> Result<RateTable, coffer_store::StoreError> {
        Ok(self.table_from(store.rates_at(at).await?, at))
    }

    /// The table in force at `at` from the stored rates in force then (`Store::rates_at`, or
    /// a `RateWindow`'s answer for that instant): the config's manual rates under the admin's.
    pub fn table_from(
        &self,
        stored: Vec<coffer_store::StoredRate>,
        at: DateTime<Utc>,
    ) -> RateTable {
        let stored: Vec<Rate> = stored.into_iter().map(to_core).collect();
        let mut table =
            RateTable::new(self.base.clone()).with_derived_providers(self.derived.iter().cloned());
        let admin: HashSet<&Currency> = stored
            .iter()
            .filter(|r| r.source == RateSource::Manual)
            .map(|r| &r.currency)
            .collect();
        for r in self.config_manual.iter() {
            if !admin.contains(&r.currency) {
                insert(
                    &mut table,
                    Rate {
                        as_of: at,
                        ..r.clone()
                    },
                );
            }
        }
        for r in stored {
            insert(&mut table, r);
        }
        table
    }

    /// Manual rates: the config's, then the admin's (newer, so they win).
    async fn manual(&self, store: &dyn Store) -> RateTable {
        let mut table =
            RateTable::new(self.base.clone()).with_derived_providers(self.derived.iter().cloned());
        for r in self.config_manual.iter().cloned() {
            insert(&mut table, r);
        }
        for r in self
            .stored(store)
            .await
            .iter()
            .filter(|r| r.source == RateSource::Manual)
        {
            insert(&mut table, r.clone());
        }
        table
    }
}

fn insert(table: &mut RateTable, r: Rate) {
    if let Err(e) = table.insert(r) {
        tracing::warn!(error = %e, "rate ignored");
    }
}

fn to_core(r: StoredRate) -> Rate {
    Rate {
        currency: r.currency,
        quote: r.quote,
        value: r.rate,
        source: match r.source {
            coffer_store::RateSource::Manual => RateSource::Manual,
            coffer_store::RateSource::Provider => RateSource::Provider,
        },
        provider: r.provider,
        as_of: r.as_of,
    }
}
