//! A prune that commits while checkpoints are being built (issue 14's flaky
//! `retention::the_task_prunes_at_start_postgres`: at start-up the retention task and the
//! checkpoint builder run together). The builder reads a checkpoint, the prune removes it and the
//! versions it summed, the builder reads the versions left: built on, those give totals that
//! belong to neither history, and a checkpoint written from them would answer wrongly forever.
//! Here the prune runs exactly between the builder's reads, every time.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use coffer_core::{Account, BalanceType, Currency, Status};
use rust_decimal::Decimal;

use super::*;
use crate::{NewCustomer, Scope, SnapshotMeta, SqliteStore, Store};

const HOUR: i64 = 3600;

fn t(hours: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_714_564_800 + hours * HOUR, 0).unwrap()
}

fn account(balance: i64, at: i64) -> Account {
    Account {
        id: Account::make_id("bank", "a"),
        customer_id: "c1".into(),
        provider_id: "bank".into(),
        provider_account_id: "a".into(),
        provider_customer_ref: None,
        currency: Currency::new("EUR"),
        is_crypto: false,
        status: Status::Active,
        active: true,
        balance: Decimal::from(balance),
        balance_type: BalanceType::Unspecified,
        wallets: Vec::new(),
        iban: None,
        provider_rate: None,
        fetched_at: t(at),
    }
}

/// The store, with the prune run once, at `horizon`, after the build read its checkpoint and
/// before it writes the next.
struct PruneMidway<'a> {
    store: &'a SqliteStore,
    horizon: DateTime<Utc>,
    pruned: AtomicBool,
}

#[async_trait::async_trait]
impl CheckpointIo for PruneMidway<'_> {
    async fn latest_mark(&self, at: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
        self.store.latest_mark(at).await
    }
    async fn read_checkpoint(&self, at: DateTime<Utc>) -> Result<Sums> {
        self.store.read_checkpoint(at).await
    }
    async fn versions_since(
        &self,
        from: Option<DateTime<Utc>>,
        to: DateTime<Utc>,
    ) -> Result<Vec<VersionLite>> {
        self.store.versions_since(from, to).await
    }
    async fn write_checkpoint(
        &self,
        at: DateTime<Utc>,
        after: Option<(DateTime<Utc>, &Sums)>,
    ) -> Result<Option<Sums>> {
        if !self.pruned.swap(true, Ordering::SeqCst) {
            self.store.prune_history(self.horizon).await?.unwrap();
        }
        self.store.write_checkpoint(at, after).await
    }
    async fn has_mark(&self, at: DateTime<Utc>) -> Result<bool> {
        self.store.has_mark(at).await
    }
    async fn first_version(&self) -> Result<Option<DateTime<Utc>>> {
        self.store.first_version().await
    }
}

/// The balance at `at` summed by the checkpoints, if they answer.
async fn by_checkpoints(s: &SqliteStore, at: DateTime<Utc>) -> Option<Decimal> {
    let totals = s.totals_at(at, &Filter::default()).await.unwrap()?;
    Some(totals.iter().map(|t| t.balance).sum())
}

#[tokio::test]
async fn a_prune_during_a_build_leaves_no_wrong_checkpoint() {
    let s = SqliteStore::connect("sqlite::memory:").await.unwrap();
    s.migrate().await.unwrap();
    s.create_customer(&NewCustomer {
        id: "c1".into(),
        name: None,
        links: Vec::new(),
    })
    .await
    .unwrap();
    // One account: 10 from hour 0, 20 from hour 2, 30 from hour 4.
    for (balance, at) in [(10, 0), (20, 2), (30, 4)] {
        let meta = SnapshotMeta {
            customer_id: "c1".into(),
            provider_id: "bank".into(),
            provider_customer_ref: None,
            fetched_at: t(at),
            rejected: Vec::new(),
        };
        s.save_snapshot(&meta, &[account(balance, at)])
            .await
            .unwrap();
    }
    let step = Duration::from_secs(3600);
    s.build_checkpoints(t(1), step).await.unwrap();
    assert_eq!(by_checkpoints(&s, t(1)).await, Some(Decimal::from(10)));

    // Built on to hour 5 while a prune at hour 3 commits between the builder's reads.
    let racing = PruneMidway {
        store: &s,
        horizon: t(3),
        pruned: AtomicBool::new(false),
    };
    build(&racing, t(5), step).await.unwrap();
    assert!(racing.pruned.load(Ordering::SeqCst));
    // Whatever the checkpoints answer at or after the horizon is the account's balance then;
    // the per-account answer is the reference.
    for (at, want) in [(3, 20), (4, 30), (5, 30)] {
        let held = s.held_at(&Scope::All, t(at), None).await.unwrap();
        let each: Decimal = held.accounts.iter().map(|a| a.balance).sum();
        assert_eq!(each, Decimal::from(want), "hour {at}, per account");
        if let Some(sum) = by_checkpoints(&s, t(at)).await {
            assert_eq!(sum, each, "hour {at}, from the checkpoints");
        }
    }
    // The next build, with nothing racing, makes the checkpoints answer again, rightly.
    s.build_checkpoints(t(5), step).await.unwrap();
    for (at, want) in [(3, 20), (4, 30), (5, 30)] {
        assert_eq!(
            by_checkpoints(&s, t(at)).await,
            Some(Decimal::from(want)),
            "hour {at}"
        );
    }
}
