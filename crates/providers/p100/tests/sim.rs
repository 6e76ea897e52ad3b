//! The P100 adapter against `coffer-sim`: generated customers survive simulator → HTTP →
//! adapter exactly (a property test), and every fault the simulator can inject maps to the
//! right error.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use coffer_core::{BalanceProvider, Currency, ProviderAccount, ProviderErrorKind as K, Status};
use coffer_provider_kit::testing::sim::{self as conformance, decimals};
use coffer_provider_p100::build;
use coffer_sim::fixtures::{P100_SEED_USER, P100_SEED_USER_ID};
use coffer_sim::generate::customer_id;
use coffer_sim::{
    DenyReason, Fault, P100Balance, P100Customer, P100Error, P100Status, Provider, RetryAfter,
    SimConfig, SimHandle, Target,
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
    let key = sim.config().p100_api_key.clone();
    let provider = build("p100", &sim.p100_url(), key, Duration::from_secs(5)).unwrap();
    (sim, provider)
}

/// What the adapter must make of one simulated balance.
fn check(b: &P100Balance, a: &ProviderAccount, is_crypto: bool) -> Result<(), TestCaseError> {
    prop_assert_eq!(&a.provider_account_id, &b.id);
    // Exact, scale included: the simulator writes `amount` as a string keeping its scale.
    prop_assert_eq!(a.balance.to_string(), b.amount.to_string());
    prop_assert_eq!(&a.currency, &Currency::new(&b.name));
    prop_assert_eq!(a.is_crypto, is_crypto);
    let rate = a.provider_rate.as_ref().unwrap();
    prop_assert_eq!(rate.rate.to_string(), b.rate.to_string());
    prop_assert_eq!(rate.quote.code(), "EUR");
    let status = match b.status {
        Some(P100Status::Active) => Status::Active,
        Some(P100Status::WaitingToBeActivated) | None => Status::Pending,
    };
    prop_assert_eq!((a.status, a.active), (status, status == Status::Active));
    prop_assert_eq!(a.wallets.len(), b.networks.len());
    for (w, n) in a.wallets.iter().zip(&b.networks) {
        prop_assert_eq!(&w.network, &n.key);
        prop_assert_eq!(&w.address, &n.wallet);
        prop_assert_eq!(w.mainnet, Some(n.mainnet));
        prop_assert_eq!(w.network_name.as_deref(), Some(n.name.as_str()));
        prop_assert_eq!(
            w.withdrawal_fee.map(|d| d.to_string()),
            Some(n.fee_withdrawal.to_string())
        );
        prop_assert_eq!(
            w.withdrawal_min.map(|d| d.to_string()),
            Some(n.min_withdrawal.to_string())
        );
        prop_assert_eq!(
            w.deposit_min.map(|d| d.to_string()),
            Some(n.min_deposit.to_string())
        );
    }
    Ok(())
}

fn check_customer(
    expected: &P100Customer,
    got: &coffer_core::ProviderSnapshot,
) -> Result<(), TestCaseError> {
    prop_assert!(got.rejected.is_empty(), "{:?}", got.rejected);
    prop_assert_eq!(
        got.provider_customer_ref.as_deref(),
        Some(expected.user_id.as_str())
    );
    let wanted: Vec<_> = expected
        .fiat_balances
        .iter()
        .map(|b| (b, false))
        .chain(expected.crypto_balances.iter().map(|b| (b, true)))
        .collect();
    prop_assert_eq!(got.accounts.len(), wanted.len());
    for ((b, crypto), a) in wanted.into_iter().zip(&got.accounts) {
        check(b, a, crypto)?;
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
            let expected = sim.p100_customer(&id).unwrap();
            let got = rt
                .block_on(provider.fetch(&id))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            check_customer(&expected, &got)
        })
        .unwrap();
}

#[test]
fn arbitrary_amounts_and_rates_survive_exactly() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (sim, provider) = rt.block_on(start());
    let mut runner = conformance::runner(48);
    let names = prop::sample::select(vec!["eur", "usdc", "eure", "eurøp", "btc", "zzz"]);
    runner
        .run(
            &(prop::collection::vec((decimals(), decimals(), names), 1..6)),
            |balances| {
                let customer = P100Customer {
                    user_id: "user-1".into(),
                    fiat_balances: Vec::new(),
                    crypto_balances: balances
                        .iter()
                        .enumerate()
                        .map(|(i, (amount, rate, name))| P100Balance {
                            id: format!("b{i}"),
                            amount: *amount,
                            name: (*name).to_owned(),
                            // P100 rates are prices: positive.
                            rate: rate.abs().max(Decimal::new(1, 8)),
                            status: Some(P100Status::Active),
                            networks: Vec::new(),
                        })
                        .collect(),
                };
                sim.put_p100_data("prop-user", customer.clone());
                let got = rt
                    .block_on(provider.fetch("prop-user"))
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                check_customer(&customer, &got)
            },
        )
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_user_maps_and_each_fetch_is_one_call() {
    let (sim, provider) = start().await;
    let s = provider.fetch(P100_SEED_USER).await.unwrap();
    assert_eq!(s.provider_customer_ref.as_deref(), Some(P100_SEED_USER_ID));
    assert_eq!(s.accounts.len(), 8);
    let usdc = s
        .accounts
        .iter()
        .find(|a| a.currency.code() == "USDC")
        .unwrap();
    assert_eq!(usdc.balance.to_string(), "3.000000");
    assert_eq!(sim.calls(Provider::P100, P100_SEED_USER), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_simulated_fault_maps_to_its_error() {
    let (sim, provider) = start().await;
    let user = customer_id(7);
    let cases: Vec<(Fault, K, bool)> = vec![
        (
            Fault::P100(P100Error::Unauthorized(DenyReason::Xo1)),
            K::Auth,
            false,
        ),
        (
            Fault::P100(P100Error::Unauthorized(DenyReason::Xo2)),
            K::Auth,
            false,
        ),
        (
            Fault::P100(P100Error::Unauthorized(DenyReason::Xo3)),
            K::Auth,
            false,
        ),
        (Fault::P100(P100Error::P412), K::UnknownCustomer, false),
        (Fault::P100(P100Error::P459), K::CustomerNotVerified, false),
        (Fault::P100(P100Error::P403), K::InvalidRequest, false),
        (Fault::P100(P100Error::P500), K::Unavailable, true),
        (Fault::P100(P100Error::P501), K::Unavailable, true),
        (Fault::Status(503, "down".into()), K::Unavailable, true),
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
        sim.set_fault(Provider::P100, Target::customer(&user), Some(fault.clone()));
        let e = provider.fetch(&user).await.expect_err("fault");
        assert_eq!((e.kind, e.retryable), (kind, retryable), "{fault:?}: {e}");
    }
    for (deny, code) in [
        (DenyReason::Xo1, "xo1"),
        (DenyReason::Xo2, "xo2"),
        (DenyReason::Xo3, "xo3"),
    ] {
        let fault = Fault::P100(P100Error::Unauthorized(deny));
        sim.set_fault(Provider::P100, Target::customer(&user), Some(fault));
        assert_eq!(
            provider.fetch(&user).await.unwrap_err().code.as_deref(),
            Some(code)
        );
    }

    conformance::rate_limits_recovery_and_removal(&sim, Provider::P100, provider.as_ref(), &user)
        .await;

    let wrong = build(
        "p100",
        &sim.p100_url(),
        "not-the-key",
        Duration::from_secs(5),
    )
    .unwrap();
    let e = wrong.fetch(&customer_id(1)).await.unwrap_err();
    assert_eq!((e.kind, e.code.as_deref()), (K::Auth, Some("xo2")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_simulated_answers_time_out() {
    let (sim, _) = start().await;
    let key = sim.config().p100_api_key.clone();
    let provider = build("p100", &sim.p100_url(), key, Duration::from_millis(300)).unwrap();
    conformance::slow_answers_time_out(&sim, Provider::P100, provider.as_ref(), &customer_id(3))
        .await;
}
