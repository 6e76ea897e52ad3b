//! The Corebanq adapter against `coffer-sim`: generated customers survive simulator → HTTP →
//! adapter exactly (a property test), and every fault the simulator can inject maps to the
//! right error.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use coffer_core::{
    BalanceProvider, Currency, ProviderAccount, ProviderErrorKind as K, ProviderSnapshot, Status,
};
use coffer_provider_corebanq::build;
use coffer_provider_kit::testing::sim::{self as conformance, decimals};
use coffer_sim::fixtures::COREBANQ_SEED_CUSTOMER;
use coffer_sim::generate::customer_id;
use coffer_sim::{
    CorebanqAccount, CorebanqError, Fault, Provider, RetryAfter, SimConfig, SimHandle, Target,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use rust_decimal::Decimal;

const CUSTOMERS: usize = 200;

async fn start() -> (SimHandle, Arc<dyn BalanceProvider>) {
    let sim = coffer_sim::start(SimConfig {
        customers: CUSTOMERS,
        accounts_per_customer: 12,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let token = sim.config().corebanq_token.clone();
    let provider = build(
        "bank",
        &sim.corebanq_url(),
        token,
        Duration::from_secs(5),
        None,
    )
    .unwrap();
    (sim, provider)
}

fn check(c: &CorebanqAccount, a: &ProviderAccount) -> Result<(), TestCaseError> {
    prop_assert_eq!(&a.provider_account_id, &c.id);
    if c.scientific {
        // Written as `9.872368e-2`: the value is exact; the scale is the one the exponent gives.
        prop_assert_eq!(a.balance, c.balance);
    } else {
        // A JSON number written from the decimal's text: exact, scale included.
        prop_assert_eq!(a.balance.to_string(), c.balance.to_string());
    }
    prop_assert_eq!(&a.currency, &Currency::new(&c.currency));
    prop_assert_eq!(a.is_crypto, c.is_crypto);
    prop_assert_eq!(
        a.active,
        c.active,
        "active is kept as sent, whatever the status"
    );
    let status: Status = c.status.parse().unwrap_or(Status::Pending);
    prop_assert_eq!(a.status, status);
    prop_assert_eq!(
        a.iban.as_deref(),
        c.iban.as_deref().filter(|i| !i.is_empty())
    );
    match c.main_wallet_address.as_deref().filter(|w| !w.is_empty()) {
        None => prop_assert!(a.wallets.is_empty()),
        Some(address) => {
            prop_assert_eq!(a.wallets.len(), 1);
            prop_assert_eq!(&a.wallets[0].address, address);
            prop_assert_eq!(a.wallets[0].network.as_str(), "main");
            let tag = c
                .main_wallet_address_tag
                .as_deref()
                .filter(|t| !t.is_empty());
            prop_assert_eq!(a.wallets[0].tag.as_deref(), tag);
        }
    }
    if c.balance.is_zero() {
        prop_assert!(a.provider_rate.is_none(), "no rate from a zero balance");
    }
    if let Some(rate) = &a.provider_rate {
        prop_assert_eq!(rate.quote.code(), "EUR");
        prop_assert!(rate.rate > Decimal::ZERO);
    }
    Ok(())
}

fn check_customer(
    expected: &[CorebanqAccount],
    got: &ProviderSnapshot,
) -> Result<(), TestCaseError> {
    prop_assert!(got.rejected.is_empty(), "{:?}", got.rejected);
    // The simulator lists fiat accounts first, then crypto assets, each in their order.
    let wanted: Vec<_> = expected
        .iter()
        .filter(|c| !c.is_crypto)
        .chain(expected.iter().filter(|c| c.is_crypto))
        .collect();
    prop_assert_eq!(got.accounts.len(), wanted.len());
    for (c, a) in wanted.into_iter().zip(&got.accounts) {
        check(c, a)?;
    }
    Ok(())
}

#[test]
fn generated_customers_survive_exactly() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (sim, provider) = rt.block_on(start());
    let mut runner = conformance::runner(40);
    runner
        .run(&(0..CUSTOMERS), |index| {
            let id = customer_id(index);
            let expected = sim.corebanq_accounts(&id).unwrap();
            let got = rt
                .block_on(provider.fetch(&id))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            check_customer(&expected, &got)
        })
        .unwrap();
}

#[test]
fn arbitrary_balances_survive_exactly() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (sim, provider) = rt.block_on(start());
    let mut runner = conformance::runner(48);
    let currencies = prop::sample::select(vec!["EUR", "USDC", "EURe", "EURØP", "BTC", "ZZZ"]);
    let statuses =
        prop::sample::select(vec!["active", "inactive", "suspended", "pending", "frozen"]);
    let account = (
        decimals(),
        currencies,
        any::<bool>(),
        any::<bool>(),
        statuses,
        any::<bool>(),
    );
    runner
        .run(&prop::collection::vec(account, 1..6), |accounts| {
            let accounts: Vec<CorebanqAccount> = accounts
                .into_iter()
                .enumerate()
                .map(
                    |(i, (balance, currency, crypto, active, status, scientific))| {
                        CorebanqAccount {
                            id: format!("a{i}"),
                            currency: currency.to_owned(),
                            balance,
                            scientific,
                            is_crypto: crypto,
                            active,
                            status: status.to_owned(),
                            main_wallet_address: crypto.then(|| format!("wallet-{i}")),
                            main_wallet_address_tag: crypto.then(String::new),
                            iban: (!crypto).then(|| format!("DE{i:020}")),
                        }
                    },
                )
                .collect();
            sim.put_corebanq_customer("prop-customer", accounts.clone());
            let got = rt
                .block_on(provider.fetch("prop-customer"))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            check_customer(&accounts, &got)
        })
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_customer_maps_and_each_fetch_is_one_call() {
    let (sim, provider) = start().await;
    let s = provider.fetch(COREBANQ_SEED_CUSTOMER).await.unwrap();
    assert_eq!(s.accounts.len(), 3);
    assert!(
        s.accounts
            .iter()
            .all(|a| a.currency.code() == "BTC" && a.balance.to_string() == "0")
    );
    assert_eq!(sim.calls(Provider::Corebanq, COREBANQ_SEED_CUSTOMER), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_simulated_fault_maps_to_its_error() {
    let (sim, provider) = start().await;
    let customer = customer_id(7);
    let cases: Vec<(Fault, K, bool)> = vec![
        (Fault::Corebanq(CorebanqError::Unauthorized), K::Auth, false),
        (
            Fault::Corebanq(CorebanqError::NotFound),
            K::UnknownCustomer,
            false,
        ),
        (
            Fault::Corebanq(CorebanqError::Internal),
            K::Unavailable,
            true,
        ),
        (
            Fault::Corebanq(CorebanqError::Unavailable),
            K::Unavailable,
            true,
        ),
        (
            Fault::Status(
                403,
                r#"{"error":"forbidden","message":"no","details":{}}"#.into(),
            ),
            K::Auth,
            false,
        ),
        (Fault::Status(418, "teapot".into()), K::Unexpected, false),
        (
            Fault::RateLimited {
                retry_after: RetryAfter::Seconds(5),
            },
            K::RateLimited,
            true,
        ),
        (Fault::MalformedJson, K::MalformedResponse, false),
        (Fault::TruncatedBody, K::MalformedResponse, true),
        (Fault::ClosedMidBody, K::MalformedResponse, true),
        (Fault::DropConnection, K::Connection, true),
    ];
    for (fault, kind, retryable) in cases {
        sim.set_fault(
            Provider::Corebanq,
            Target::customer(&customer),
            Some(fault.clone()),
        );
        let e = provider.fetch(&customer).await.expect_err("fault");
        assert_eq!((e.kind, e.retryable), (kind, retryable), "{fault:?}: {e}");
    }
    conformance::rate_limits_recovery_and_removal(
        &sim,
        Provider::Corebanq,
        provider.as_ref(),
        &customer,
    )
    .await;

    let wrong = build(
        "bank",
        &sim.corebanq_url(),
        "not-the-token",
        Duration::from_secs(5),
        None,
    )
    .unwrap();
    assert_eq!(
        wrong.fetch(&customer_id(1)).await.unwrap_err().kind,
        K::Auth
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_simulated_answers_time_out() {
    let (sim, _) = start().await;
    let token = sim.config().corebanq_token.clone();
    let provider = build(
        "bank",
        &sim.corebanq_url(),
        token,
        Duration::from_millis(300),
        None,
    )
    .unwrap();
    conformance::slow_answers_time_out(
        &sim,
        Provider::Corebanq,
        provider.as_ref(),
        &customer_id(3),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rates_are_quoted_in_the_configured_currency() {
    let (sim, _) = start().await;
    let token = sim.config().corebanq_token.clone();
    let provider = build(
        "bank",
        &sim.corebanq_url(),
        token,
        Duration::from_secs(5),
        Some("usd"),
    )
    .unwrap();
    let mut rates = 0;
    for index in 0..10 {
        let s = provider.fetch(&customer_id(index)).await.unwrap();
        for rate in s.accounts.iter().filter_map(|a| a.provider_rate.as_ref()) {
            assert_eq!(rate.quote.code(), "USD");
            rates += 1;
        }
    }
    assert!(rates > 0, "some generated accounts have a rate");
}
