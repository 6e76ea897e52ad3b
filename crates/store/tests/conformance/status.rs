//! The sync status (`GET /v2/sync/status`): pairs per provider by state, the observations'
//! ages at their nearest ranks, failing pairs worst first, the last webhook per provider.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::Utc;
use coffer_core::ProviderErrorKind;
use coffer_store::{Lease, NewWebhook, Store, SyncOutcome};

use super::*;

const HOUR: Duration = Duration::from_secs(3600);

fn failure(next_due: chrono::DateTime<Utc>) -> SyncOutcome {
    SyncOutcome::Failure {
        kind: ProviderErrorKind::Unavailable,
        message: "P501 service temporarily unavailable".into(),
        next_due,
    }
}

fn take(leases: &mut Vec<Lease>, c: &str, p: &str) -> Lease {
    let i = leases
        .iter()
        .position(|l| l.customer_id == c && l.provider_id == p)
        .unwrap();
    leases.remove(i)
}

pub async fn sync_status_counts_lags_and_failing(s: &dyn Store) {
    let empty = s.sync_status(Utc::now(), 10).await.unwrap();
    assert_eq!(empty, coffer_store::SyncStatus::default());
    for c in ["c1", "c2", "c3", "c4", "c5"] {
        let mut links = vec![("p100", c)];
        if c == "c1" || c == "c2" {
            links.push(("bank", c));
        }
        s.create_customer(&customer(c, &links)).await.unwrap();
    }
    // p100: four pairs observed (c5 never), ages ascending t(300), t(200), t(100), t(0).
    for (c, at) in [("c1", 0), ("c2", 100), ("c3", 200), ("c4", 300)] {
        s.save_snapshot(&meta(c, "p100", at), &[]).await.unwrap();
    }
    s.save_snapshot(&meta("c1", "bank", 50), &[]).await.unwrap();

    let past = Utc::now() - chrono::Duration::seconds(1);
    let later = Utc::now() + chrono::Duration::hours(1);
    let mut leases = s.lease_due("w", 10, HOUR).await.unwrap();
    assert_eq!(leases.len(), 7);
    // c1/p100 succeeds, then fails: failing since that failure (its `sync.failed`).
    let l = take(&mut leases, "c1", "p100");
    s.release(&l, &SyncOutcome::Success { next_due: past })
        .await
        .unwrap();
    // c2/p100 never succeeds: two failures.
    let l = take(&mut leases, "c2", "p100");
    s.release(&l, &failure(past)).await.unwrap();
    let mut again = s.lease_due("w", 10, HOUR).await.unwrap();
    assert_eq!(again.len(), 2, "{again:?}");
    let before_failure = Utc::now();
    let l = take(&mut again, "c1", "p100");
    s.release(&l, &failure(later)).await.unwrap();
    let after_failure = Utc::now();
    let l = take(&mut again, "c2", "p100");
    s.release(&l, &failure(later)).await.unwrap();
    // c3/p100 stays leased; c1/bank fails and is due at once; the rest succeed for later.
    let l = take(&mut leases, "c1", "bank");
    s.release(&l, &failure(past)).await.unwrap();
    drop(take(&mut leases, "c3", "p100"));
    for l in leases {
        s.release(&l, &SyncOutcome::Success { next_due: later })
            .await
            .unwrap();
    }
    let received = t(1000);
    for (i, at) in [t(900), received].into_iter().enumerate() {
        s.insert_webhook(&NewWebhook {
            provider_id: "p100".into(),
            delivery_id: format!("d{i}"),
            body: "{}".into(),
            received_at: at,
        })
        .await
        .unwrap();
    }

    let st = s.sync_status(Utc::now(), 10).await.unwrap();
    let ids: Vec<&str> = st
        .providers
        .iter()
        .map(|p| p.provider_id.as_str())
        .collect();
    assert_eq!(ids, ["bank", "p100"]);
    let (bank, p100) = (&st.providers[0], &st.providers[1]);
    assert_eq!(
        (
            p100.total,
            p100.due,
            p100.leased,
            p100.failing,
            p100.never_observed
        ),
        (5, 0, 1, 2, 1)
    );
    let lag = p100.lag.unwrap();
    // Nearest rank of four ages: p50 is the 2nd youngest, p99 and the oldest the 4th.
    assert_eq!((lag.p50, lag.p99, lag.oldest), (t(200), t(0), t(0)));
    assert_eq!(
        (
            bank.total,
            bank.due,
            bank.leased,
            bank.failing,
            bank.never_observed
        ),
        (2, 1, 0, 1, 1)
    );
    let lag = bank.lag.unwrap();
    assert_eq!((lag.p50, lag.p99, lag.oldest), (t(50), t(50), t(50)));

    let worst: Vec<(&str, &str, u32)> = st
        .failing
        .iter()
        .map(|f| (f.customer_id.as_str(), f.provider_id.as_str(), f.failures))
        .collect();
    // Most failures first; then never succeeded before succeeded once.
    assert_eq!(
        worst,
        [("c2", "p100", 2), ("c1", "bank", 1), ("c1", "p100", 1)]
    );
    let never = &st.failing[0];
    assert_eq!(never.last_error_kind.as_deref(), Some("unavailable"));
    assert!(never.last_error_at.is_some());
    assert_eq!((never.last_success, never.failing_since), (None, None));
    let once = &st.failing[2];
    let since = once.failing_since.unwrap();
    assert!(
        since >= before_failure - chrono::Duration::milliseconds(1),
        "{since}"
    );
    assert!(since <= after_failure, "{since}");
    assert!(once.last_success.unwrap() <= since);
    assert_eq!(st.last_webhooks, [("p100".to_owned(), received)]);

    // The limit keeps the worst.
    let two = s.sync_status(Utc::now(), 2).await.unwrap();
    assert_eq!(two.failing, st.failing[..2]);
    // A lease past its expiry is due again, not leased.
    let much_later = Utc::now() + chrono::Duration::hours(2);
    let st = s.sync_status(much_later, 10).await.unwrap();
    assert_eq!((st.providers[1].due, st.providers[1].leased), (5, 0));
}
