//! The outbox when PostgreSQL fails mid-write: no event without its snapshot, no change without
//! its event. The failures are real: the writer's connection is killed by the server
//! (`pg_terminate_backend` of its own backend, from a trigger) while the transaction is open —
//! once while the events are inserted, once at commit (a deferred constraint trigger, after the
//! events and the snapshot were both written) — and a statement raising an error.
#![allow(clippy::unwrap_used)]

use coffer_testkit::pg;

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use coffer_core::{Account, Currency, Status};
use coffer_store::{
    Event, EventFilter, Link, NewCustomer, PgStore, Scope, SnapshotMeta, Store, SyncOutcome,
    SyncWrite,
};
use pg::TestDb;
use rust_decimal::Decimal;

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_714_564_800 + secs, 0).unwrap()
}

fn account(c: &str, balance: &str, at: i64) -> Account {
    Account {
        id: Account::make_id("p100", &format!("acc-{c}")),
        customer_id: c.to_owned(),
        provider_id: "p100".to_owned(),
        provider_account_id: format!("acc-{c}"),
        provider_customer_ref: None,
        currency: Currency::new("EUR"),
        is_crypto: false,
        status: Status::Active,
        active: true,
        balance: Decimal::from_str_exact(balance).unwrap(),
        wallets: vec![],
        iban: None,
        balance_type: coffer_core::BalanceType::Unspecified,
        provider_rate: None,
        fetched_at: t(at),
    }
}

fn meta(c: &str, at: i64) -> SnapshotMeta {
    SnapshotMeta {
        customer_id: c.to_owned(),
        provider_id: "p100".to_owned(),
        provider_customer_ref: None,
        fetched_at: t(at),
        rejected: vec![],
    }
}

async fn setup(customers: &[&str]) -> Option<(TestDb, PgStore)> {
    let db = TestDb::create().await?;
    let s = PgStore::connect(&db.url).await.unwrap();
    s.migrate().await.unwrap();
    for c in customers {
        s.create_customer(&NewCustomer {
            id: (*c).to_owned(),
            name: None,
            links: vec![Link {
                provider: "p100".into(),
                external_id: (*c).to_owned(),
            }],
        })
        .await
        .unwrap();
    }
    Some((db, s))
}

async fn events(s: &PgStore) -> Vec<Event> {
    s.events(&EventFilter {
        scope: Scope::All,
        types: vec![],
        after: 0,
        limit: 1000,
    })
    .await
    .unwrap()
}

async fn balance(s: &PgStore, c: &str) -> Option<String> {
    let got = s.customer_accounts(c).await.unwrap();
    got.accounts.first().map(|a| a.balance.to_string())
}

/// The trigger functions: each fails the transaction of a write for customer `boom` only.
async fn install(s: &PgStore, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(s.pool())
        .await
        .unwrap();
}

const KILL_ON_EVENT: &str = "
    CREATE FUNCTION kill_writer() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.customer_id = 'boom' THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF;
        RETURN NEW;
    END $$;
    CREATE TRIGGER kill_writer BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION kill_writer();";

const KILL_AT_COMMIT: &str = "
    CREATE FUNCTION kill_writer() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.customer_id = 'boom' THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF;
        RETURN NULL;
    END $$;
    CREATE CONSTRAINT TRIGGER kill_writer AFTER INSERT ON events DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW EXECUTE FUNCTION kill_writer();";

const RAISE_ON_VERSION: &str = "
    CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.customer_id = 'boom' THEN RAISE EXCEPTION 'refused by the test'; END IF;
        RETURN NEW;
    END $$;
    CREATE TRIGGER refuse BEFORE INSERT ON account_versions FOR EACH ROW
        EXECUTE FUNCTION refuse();";

/// A request's snapshot write whose transaction fails: neither the change nor its event is
/// kept; once the database works again the same write keeps both, exactly once.
async fn snapshot_write_fails_whole(fault: &str, drop_fault: &str) {
    let Some((_db, s)) = setup(&["boom"]).await else {
        return;
    };
    s.save_snapshot(&meta("boom", 0), &[account("boom", "1.00", 0)])
        .await
        .unwrap();
    let before = events(&s).await;
    assert_eq!(before.len(), 1);
    install(&s, fault).await;
    let r = s
        .save_snapshot(&meta("boom", 10), &[account("boom", "2.00", 10)])
        .await;
    assert!(r.is_err(), "the write succeeded: {r:?}");
    assert_eq!(balance(&s, "boom").await.as_deref(), Some("1.00"));
    assert_eq!(
        s.customer_accounts("boom").await.unwrap().snapshots[0].fetched_at,
        t(0)
    );
    assert_eq!(events(&s).await, before, "an event without its snapshot");
    install(&s, drop_fault).await;
    s.save_snapshot(&meta("boom", 10), &[account("boom", "2.00", 10)])
        .await
        .unwrap();
    assert_eq!(balance(&s, "boom").await.as_deref(), Some("2.00"));
    let after = events(&s).await;
    assert_eq!(after.len(), 2, "a change without its event: {after:?}");
    assert_eq!(after[1].data["before"], "1.00");
    assert_eq!(after[1].data["after"], "2.00");
    s.close().await;
}

const DROP_KILL: &str = "DROP TRIGGER kill_writer ON events; DROP FUNCTION kill_writer();";

#[tokio::test]
async fn connection_killed_while_events_are_written() {
    snapshot_write_fails_whole(KILL_ON_EVENT, DROP_KILL).await;
}

#[tokio::test]
async fn connection_killed_at_commit() {
    snapshot_write_fails_whole(KILL_AT_COMMIT, DROP_KILL).await;
}

#[tokio::test]
async fn a_statement_before_the_events_fails() {
    snapshot_write_fails_whole(
        RAISE_ON_VERSION,
        "DROP TRIGGER refuse ON account_versions; DROP FUNCTION refuse();",
    )
    .await;
}

/// A sync batch whose connection dies at commit: it is written again pair by pair, the good
/// pair with its events, the failing one with neither (its lease kept, so it is fetched again).
#[tokio::test]
async fn sync_batch_killed_at_commit_keeps_the_good_pairs_whole() {
    let Some((_db, s)) = setup(&["boom", "fine"]).await else {
        return;
    };
    install(&s, KILL_AT_COMMIT).await;
    let leases = s
        .lease_due("w", 10, Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(leases.len(), 2);
    let batch: Vec<SyncWrite> = leases
        .iter()
        .map(|l| SyncWrite {
            lease: l.clone(),
            snapshot: Some((
                meta(&l.customer_id, 0),
                vec![account(&l.customer_id, "5", 0)],
            )),
            outcome: SyncOutcome::Success {
                next_due: Utc::now() + chrono::Duration::hours(1),
            },
        })
        .collect();
    let results = s.finish_syncs(&batch).await;
    for (w, r) in batch.iter().zip(&results) {
        assert_eq!(
            r.is_ok(),
            w.lease.customer_id == "fine",
            "{}: {r:?}",
            w.lease.customer_id
        );
    }
    assert_eq!(balance(&s, "fine").await.as_deref(), Some("5"));
    assert_eq!(balance(&s, "boom").await, None);
    let got = events(&s).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].customer_id, "fine");
    let boom = s.sync_states("boom").await.unwrap().remove(0);
    assert_eq!(
        boom.lease_owner.as_deref(),
        Some("w"),
        "boom's lease is kept"
    );
    s.close().await;
}
