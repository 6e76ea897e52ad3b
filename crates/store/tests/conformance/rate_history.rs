//! Rate history: provider rates kept when they change, manual rates as versions, and the
//! rates in force at an instant (`rates_at`).
#![allow(unused_imports, clippy::unwrap_used)]

use std::collections::BTreeMap;

use coffer_core::{Account, Currency, ProviderRate};
use coffer_store::{Actor, ManualRateVersion, RateSource, Store, StoredRate};

use super::batch::{leased_customers, ok_write};
use super::*;

fn with_rate(mut a: Account, rate: &str) -> Account {
    a.provider_rate = Some(ProviderRate {
        rate: d(rate),
        quote: Currency::new("EUR"),
    });
    a
}

/// The provider rate of `currency` in force at `at`: its text and since when.
async fn provider_at(s: &dyn Store, at: i64, currency: &str) -> Option<(String, i64)> {
    let rates = s.rates_at(t(at)).await.unwrap();
    let found: Vec<&StoredRate> = rates
        .iter()
        .filter(|r| r.source == RateSource::Provider && r.currency.code() == currency)
        .collect();
    assert!(found.len() <= 1, "one per key: {found:?}");
    found
        .first()
        .map(|r| (r.rate.to_string(), r.as_of.timestamp() - t(0).timestamp()))
}

/// The manual rate of `currency` in force at `at`.
async fn manual_at(s: &dyn Store, at: i64, currency: &str) -> Option<String> {
    s.rates_at(t(at))
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.source == RateSource::Manual && r.currency.code() == currency)
        .map(|r| r.rate.to_string())
}

fn some(rate: &str, since: i64) -> Option<(String, i64)> {
    Some((rate.to_owned(), since))
}

/// Observations one at a time (`save_snapshot`): a row per change only, exact values, the table
/// at instants before, between and after the changes, and a late report at its own instant.
pub async fn provider_rates_keep_a_row_per_change(s: &dyn Store) {
    s.create_customer(&customer("c1", &[])).await.unwrap();
    let steps = [
        (10, "0.09872368"),
        (20, "0.09872368"),
        (30, "0.09872368"),
        (40, "0.0000001"),
        (50, "0.0000001"),
        (60, "1234.567890123456789012345678"),
        (70, "0.9100"),
        (80, "0.91"),
    ];
    for (at, rate) in steps {
        let btc = with_rate(account("c1", "p100", "b", "BTC", "2", at), rate);
        let usd = with_rate(account("c1", "p100", "u", "USD", "5", at), "0.92");
        save(s, "c1", "p100", at, &[btc, usd]).await;
    }
    assert_eq!(provider_at(s, 9, "BTC").await, None, "before any report");
    // Unchanged over three observations: one row, in force since the first.
    assert_eq!(provider_at(s, 10, "BTC").await, some("0.09872368", 10));
    assert_eq!(provider_at(s, 39, "BTC").await, some("0.09872368", 10));
    assert_eq!(provider_at(s, 40, "BTC").await, some("0.0000001", 40));
    assert_eq!(provider_at(s, 59, "BTC").await, some("0.0000001", 40));
    let wide = some("1234.567890123456789012345678", 60);
    assert_eq!(provider_at(s, 69, "BTC").await, wide);
    // The rate is served as reported: another scale is a change.
    assert_eq!(provider_at(s, 70, "BTC").await, some("0.9100", 70));
    assert_eq!(provider_at(s, 80, "BTC").await, some("0.91", 80));
    assert_eq!(provider_at(s, 10_000, "BTC").await, some("0.91", 80));
    assert_eq!(provider_at(s, 10_000, "USD").await, some("0.92", 10));

    // Another customer's report, older than the newest row: in force from its own instant.
    s.create_customer(&customer("c2", &[])).await.unwrap();
    let late = with_rate(account("c2", "p100", "l", "BTC", "1", 25), "5");
    save(s, "c2", "p100", 25, &[late]).await;
    assert_eq!(provider_at(s, 24, "BTC").await, some("0.09872368", 10));
    assert_eq!(provider_at(s, 39, "BTC").await, some("5", 25));
    assert_eq!(provider_at(s, 40, "BTC").await, some("0.0000001", 40));
    // The present table is unchanged by it: the newest report wins there.
    let present = s.rates().await.unwrap();
    let btc = present.iter().find(|r| r.currency.code() == "BTC").unwrap();
    assert_eq!((btc.rate.to_string().as_str(), btc.as_of), ("0.91", t(80)));
}

/// The same through sync batches: of a batch's pairs reporting one rate the first says since
/// when; a batch repeating it adds nothing; a changed rate adds one row.
pub async fn sync_batch_keeps_rate_history(s: &dyn Store) {
    let leases = leased_customers(s, &["c1", "c2", "c3"]).await;
    let write = |at: i64, rate: &str| {
        leases
            .iter()
            .zip(0..)
            .map(|(l, i)| {
                let at = at + i;
                let a = account(&l.customer_id, "p100", &l.customer_id, "BTC", "1", at);
                ok_write(l, at, vec![with_rate(a, rate)])
            })
            .collect::<Vec<_>>()
    };
    let ok = |r: Vec<coffer_store::Result<()>>| assert!(r.iter().all(Result::is_ok), "{r:?}");
    ok(s.finish_syncs(&write(100, "0.09872368")).await);
    assert_eq!(provider_at(s, 99, "BTC").await, None);
    assert_eq!(provider_at(s, 100, "BTC").await, some("0.09872368", 100));

    // The next cycles, with the same leases (released already: releasing again is a no-op).
    let second = write(200, "0.09872368");
    let third = write(300, "0.0000001");
    ok(s.finish_syncs(&second).await);
    assert_eq!(provider_at(s, 250, "BTC").await, some("0.09872368", 100));
    ok(s.finish_syncs(&third).await);
    assert_eq!(provider_at(s, 299, "BTC").await, some("0.09872368", 100));
    assert_eq!(provider_at(s, 300, "BTC").await, some("0.0000001", 300));
    assert_eq!(provider_at(s, 302, "BTC").await, some("0.0000001", 300));
}

/// A batch whose pairs report one rate around a row another writer stored in between: the
/// batch's rate is in force again from its last report, not hidden behind the other row.
pub async fn sync_batch_rate_around_another_report(s: &dyn Store) {
    let leases = leased_customers(s, &["c1", "c2"]).await;
    s.create_customer(&customer("c3", &[])).await.unwrap();
    let other = with_rate(account("c3", "p100", "o", "BTC", "1", 20), "5");
    save(s, "c3", "p100", 20, &[other]).await;
    let batch: Vec<_> = leases
        .iter()
        .zip([10, 30])
        .map(|(l, at)| {
            let a = account(&l.customer_id, "p100", &l.customer_id, "BTC", "1", at);
            ok_write(l, at, vec![with_rate(a, "0.09872368")])
        })
        .collect();
    let r = s.finish_syncs(&batch).await;
    assert!(r.iter().all(Result::is_ok), "{r:?}");
    assert_eq!(provider_at(s, 10, "BTC").await, some("0.09872368", 10));
    assert_eq!(provider_at(s, 29, "BTC").await, some("5", 20));
    assert_eq!(provider_at(s, 30, "BTC").await, some("0.09872368", 30));
}

/// Manual rates: set, changed, removed, each a version with its instant and key; the table at
/// an instant has the version in force then, and a removed rate is absent after its removal.
pub async fn manual_rates_are_versions(s: &dyn Store) {
    let eur = Currency::new("EUR");
    let usd = Currency::new("USD");
    let set = |cur: &str, v: &str| BTreeMap::from([(Currency::new(cur), d(v))]);
    s.set_manual_rates(
        &eur,
        &set("USD", "0.09872368"),
        t(0),
        &Actor::key("k1", None),
    )
    .await
    .unwrap();
    s.set_manual_rates(
        &eur,
        &set("BTC", "69258.93415658"),
        t(5),
        &Actor::key("k1", None),
    )
    .await
    .unwrap();
    s.set_manual_rates(
        &eur,
        &set("USD", "0.0000001"),
        t(10),
        &Actor::key("k2", None),
    )
    .await
    .unwrap();
    s.delete_manual_rate(&usd, t(20), &Actor::key("k3", None))
        .await
        .unwrap();
    // Removing what is not there records nothing.
    s.delete_manual_rate(&usd, t(25), &Actor::key("k4", None))
        .await
        .unwrap();

    assert_eq!(manual_at(s, -1, "USD").await, None, "before it was set");
    assert_eq!(manual_at(s, 0, "USD").await.as_deref(), Some("0.09872368"));
    assert_eq!(manual_at(s, 4, "BTC").await, None);
    assert_eq!(manual_at(s, 9, "USD").await.as_deref(), Some("0.09872368"));
    assert_eq!(manual_at(s, 10, "USD").await.as_deref(), Some("0.0000001"));
    assert_eq!(manual_at(s, 19, "USD").await.as_deref(), Some("0.0000001"));
    assert_eq!(manual_at(s, 20, "USD").await, None, "removed");
    assert_eq!(manual_at(s, 1000, "USD").await, None);
    let btc = manual_at(s, 1000, "BTC").await;
    assert_eq!(btc.as_deref(), Some("69258.93415658"));
    let at = s.rates_at(t(15)).await.unwrap();
    let usd_at = at.iter().find(|r| r.currency == usd).unwrap();
    assert_eq!((usd_at.quote.code(), usd_at.as_of), ("EUR", t(10)));

    let versions = s.manual_rate_versions(&usd).await.unwrap();
    let v = |rate: Option<&str>, at: i64, key: &str| ManualRateVersion {
        currency: usd.clone(),
        quote: rate.map(|_| eur.clone()),
        rate: rate.map(d),
        as_of: t(at),
        key_id: Some(key.to_owned()),
    };
    assert_eq!(
        versions,
        [
            v(Some("0.09872368"), 0, "k1"),
            v(Some("0.0000001"), 10, "k2"),
            v(None, 20, "k3"),
        ]
    );
    // Set again after the removal: in force again from then.
    s.set_manual_rates(&eur, &set("USD", "0.93"), t(30), &Actor::key("k1", None))
        .await
        .unwrap();
    assert_eq!(manual_at(s, 29, "USD").await, None);
    assert_eq!(manual_at(s, 30, "USD").await.as_deref(), Some("0.93"));
    assert_eq!(s.manual_rate_versions(&usd).await.unwrap().len(), 4);
}

/// `rates_at` now is the present table, but for when each provider rate took effect.
pub async fn rates_at_now_matches_the_present_table(s: &dyn Store) {
    let eur = Currency::new("EUR");
    let manual = BTreeMap::from([(Currency::new("USD"), d("0.92"))]);
    s.set_manual_rates(&eur, &manual, t(0), &Actor::system())
        .await
        .unwrap();
    s.create_customer(&customer("c1", &[])).await.unwrap();
    for at in [10, 20] {
        let a = with_rate(account("c1", "bank", "a", "USDC", "3", at), "0.9991");
        let b = with_rate(account("c1", "bank", "b", "BTC", "3", at), "60000.5");
        save(s, "c1", "bank", at, &[a, b]).await;
    }
    let key = |r: &StoredRate| {
        (
            r.currency.clone(),
            r.source,
            r.provider.clone(),
            r.quote.clone(),
            r.rate.to_string(),
        )
    };
    let present: Vec<_> = s.rates().await.unwrap().iter().map(key).collect();
    let now = s.rates_at(t(1000)).await.unwrap();
    assert_eq!(now.iter().map(key).collect::<Vec<_>>(), present);
    assert!(
        now.iter().all(|r| r.as_of
            == if r.source == RateSource::Manual {
                t(0)
            } else {
                t(10)
            }),
        "{now:?}"
    );
}
