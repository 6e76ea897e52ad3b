//! P100's wire types → Coffer's account model. Each quirk cites where it comes from.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use coffer_core::{
    Currency, ProviderAccount, ProviderError, ProviderErrorKind, ProviderRate, ProviderSnapshot,
    RejectedBalance, Status, Wallet,
};
use rust_decimal::Decimal;

use crate::wire::{self, DecimalText, Lenient};

/// What this provider's balance means: P100 documents its `amount` as the "current available amount".
pub const BALANCE_TYPE: coffer_core::BalanceType = coffer_core::BalanceType::Available;

pub use coffer_provider_kit::wire::exact;

/// P100 quotes every `rate` in EUR (seed 000: "Exchange rate to EUR").
pub const RATE_QUOTE: &str = "EUR";

/// Parses a 200 body into a snapshot. A body that is not the expected shape at all fails;
/// a single bad balance is reported in `rejected` and the others still map.
pub fn snapshot(
    provider: &str,
    body: &[u8],
    fetched_at: DateTime<Utc>,
) -> Result<ProviderSnapshot, ProviderError> {
    let response: wire::BalancesResponse =
        serde_json::from_slice(body).map_err(|e| malformed(provider, &e))?;
    if response.user_id.is_none()
        && response.fiat_balances.is_none()
        && response.crypto_balances.is_none()
    {
        return Err(ProviderError::new(
            provider,
            ProviderErrorKind::MalformedResponse,
            "the balances answer has none of userId, fiatBalances, cryptoBalances",
        )
        .with_status(200));
    }

    let mut accounts = Vec::new();
    let mut rejected = Vec::new();
    let mut seen = HashSet::new();
    // Seed 000 sends two lists; which list a balance is in is the only fiat/crypto flag P100 gives.
    let lists = [
        (
            "fiatBalances",
            false,
            response.fiat_balances.unwrap_or_default(),
        ),
        (
            "cryptoBalances",
            true,
            response.crypto_balances.unwrap_or_default(),
        ),
    ];
    for (list, is_crypto, balances) in lists {
        for (index, entry) in balances.into_iter().enumerate() {
            let outcome = match entry {
                Lenient::Ok(b) => {
                    let id = b.id.clone();
                    account(b, is_crypto).map_err(|reason| (Some(id), reason))
                }
                Lenient::Err { raw, error } => Err((raw_id(&raw), error)),
            };
            match outcome {
                Ok(a) if !seen.insert(a.provider_account_id.clone()) => {
                    rejected.push(RejectedBalance {
                        reason: format!(
                            "{list}[{index}]: id: `{}` appears twice",
                            a.provider_account_id
                        ),
                        provider_account_id: Some(a.provider_account_id),
                    });
                }
                Ok(a) => accounts.push(a),
                Err((provider_account_id, reason)) => rejected.push(RejectedBalance {
                    provider_account_id,
                    reason: format!("{list}[{index}]: {reason}"),
                }),
            }
        }
    }

    Ok(ProviderSnapshot {
        // Seed 000: `userId` differs from the `externalUserId` we call with; keep it as the
        // provider's reference.
        provider_customer_ref: response.user_id.filter(|u| !u.is_empty()),
        accounts,
        rejected,
        fetched_at,
        balance_type: BALANCE_TYPE,
    })
}

fn malformed(provider: &str, e: &serde_json::Error) -> ProviderError {
    // A body that ends early (cut connection, truncated write) is worth another try; a body that
    // is wrong is not likely to get better.
    let truncated = e.is_eof();
    let what = if truncated {
        "the balances answer ends early"
    } else {
        "the balances answer is not the expected JSON"
    };
    ProviderError::new(
        provider,
        ProviderErrorKind::MalformedResponse,
        format!("{what}: {e}"),
    )
    .with_status(200)
    .retryable(truncated)
}

fn raw_id(raw: &serde_json::Value) -> Option<String> {
    raw.get("id").and_then(|v| v.as_str()).map(str::to_owned)
}

/// One balance. The error names the field at fault.
fn account(b: wire::Balance, is_crypto: bool) -> Result<ProviderAccount, String> {
    if b.id.trim().is_empty() {
        return Err("id: empty".into());
    }
    if b.name.trim().is_empty() {
        return Err("name: empty".into());
    }
    // Seed 000: `amount` is a decimal string whose scale is the currency's ("3.000000"); keep it.
    let balance = exact(&b.amount).map_err(|e| format!("amount: {e}"))?;
    // Seed 000: `rate` is a JSON number, value of one unit in EUR.
    let provider_rate = match &b.rate {
        None => None,
        Some(r) => {
            usable_rate(exact(r).map_err(|e| format!("rate: {e}"))?).map(|rate| ProviderRate {
                rate,
                quote: Currency::new(RATE_QUOTE),
            })
        }
    };
    let status = status(b.status.as_deref());
    let mut wallets = Vec::new();
    for (network, config) in b.network_config.unwrap_or_default() {
        if let Some(w) = wallet(&network, config)? {
            wallets.push(w);
        }
    }
    Ok(ProviderAccount {
        provider_account_id: b.id,
        // Seed 000: names are lower case ("usdc"); the registry canonicalises them.
        currency: Currency::new(&b.name),
        is_crypto,
        status,
        // P100 has no separate flag: a balance is usable when its status is ACTIVE.
        active: status == Status::Active,
        balance,
        wallets,
        iban: None,
        provider_rate,
    })
}

/// A rate of zero or below cannot be a price; it is left out (the account is then reported as
/// unconverted) rather than turning the balance's value into 0.
fn usable_rate(rate: Decimal) -> Option<Decimal> {
    if rate > Decimal::ZERO {
        Some(rate)
    } else {
        tracing::warn!(%rate, "P100 sent a rate that is not positive; ignoring it");
        None
    }
}

/// P100 status → Coffer status. Seed 000 names `ACTIVE` and `WAITING_TO_BE_ACTIVATED`; the
/// account-management menu (suspend, delete user) implies suspended and inactive states. Anything
/// unclear, including a missing status (the seed's crypto balances have none), is `Pending`:
/// never `Active` (STYLE.md, hyperswitch's rule).
pub fn status(raw: Option<&str>) -> Status {
    let Some(raw) = raw else {
        return Status::Pending;
    };
    match raw.trim().to_ascii_uppercase().as_str() {
        "ACTIVE" => Status::Active,
        "WAITING_TO_BE_ACTIVATED" => Status::Pending,
        "SUSPENDED" => Status::Suspended,
        "INACTIVE" | "DISABLED" => Status::Inactive,
        other => {
            tracing::debug!(
                status = other,
                "unknown P100 balance status; treating it as pending"
            );
            Status::Pending
        }
    }
}

/// One `networkConfig` entry (seed 000: USDC has `ethereum` and `polygon`, each with its own
/// wallet, fees and minimums). An entry without a wallet address is not a wallet.
fn wallet(network: &str, c: wire::NetworkConfig) -> Result<Option<Wallet>, String> {
    let field = |name: &str| format!("networkConfig.{network}.{name}");
    let opt = |v: Option<&DecimalText>, name: &str| -> Result<Option<Decimal>, String> {
        v.map(exact)
            .transpose()
            .map_err(|e| format!("{}: {e}", field(name)))
    };
    let withdrawal_fee = opt(
        c.withdrawal
            .as_ref()
            .and_then(|w| w.fee_withdrawal.as_ref()),
        "withdrawal.feeWithdrawal",
    )?;
    let withdrawal_min = opt(
        c.withdrawal
            .as_ref()
            .and_then(|w| w.min_withdrawal.as_ref()),
        "withdrawal.minWithdrawal",
    )?;
    let deposit_min = opt(
        c.deposit.as_ref().and_then(|d| d.min_deposit.as_ref()),
        "deposit.minDeposit",
    )?;
    let Some(address) = c.wallet.filter(|w| !w.trim().is_empty()) else {
        tracing::debug!(
            network,
            "P100 network config without a wallet address; no wallet"
        );
        return Ok(None);
    };
    Ok(Some(Wallet {
        network: network.to_owned(),
        address,
        tag: None,
        mainnet: c.mainnet,
        network_name: c.name.filter(|n| !n.is_empty()),
        withdrawal_fee,
        withdrawal_min,
        deposit_min,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> String {
        let text = DecimalText {
            text: s.to_owned(),
            quoted: false,
        };
        exact(&text)
            .map(|d| d.to_string())
            .unwrap_or_else(|e| format!("ERR {e}"))
    }

    #[test]
    fn exact_numbers_survive() {
        assert_eq!(p("3.000000"), "3.000000");
        assert_eq!(p("9.872368e-2"), "0.09872368");
        assert_eq!(p("1e-7"), "0.0000001");
        assert_eq!(p("12345678901234.12345678"), "12345678901234.12345678");
        assert_eq!(p("12345678901234567890"), "12345678901234567890");
        assert_eq!(p("69258.93415658"), "69258.93415658");
    }

    #[test]
    fn inexact_or_invalid_numbers_are_refused() {
        for bad in [
            "",
            "abc",
            "1_000",
            "NaN",
            "1e99999",
            "123456789012345678901234567890",
            "0.00000000000000000000000000001",
        ] {
            assert!(p(bad).starts_with("ERR"), "{bad} should be refused");
        }
    }

    #[test]
    fn status_never_guesses_active() {
        assert_eq!(status(Some("ACTIVE")), Status::Active);
        assert_eq!(status(Some("active")), Status::Active);
        assert_eq!(status(Some("WAITING_TO_BE_ACTIVATED")), Status::Pending);
        assert_eq!(status(Some("SUSPENDED")), Status::Suspended);
        assert_eq!(status(Some("INACTIVE")), Status::Inactive);
        assert_eq!(status(Some("DISABLED")), Status::Inactive);
        assert_eq!(status(Some("ACTIVATED_MAYBE")), Status::Pending);
        assert_eq!(status(None), Status::Pending);
    }

    #[test]
    fn duplicate_ids_are_rejected_not_merged() {
        let body = br#"{"userId":"u","fiatBalances":[
            {"id":"a","amount":"1.00","name":"eur","rate":1,"status":"ACTIVE"},
            {"id":"a","amount":"2.00","name":"eur","rate":1,"status":"ACTIVE"}]}"#;
        let s = snapshot("p100", body, Utc::now()).expect("maps");
        assert_eq!(s.accounts.len(), 1);
        assert_eq!(s.rejected.len(), 1);
        assert!(s.rejected[0].reason.contains("appears twice"));
    }

    #[test]
    fn wrong_shapes_fail_as_malformed() {
        for body in [
            &b"[]"[..],
            b"{}",
            b"\"x\"",
            b"{\"fiatBalances\": 3}",
            b"null",
        ] {
            let e = snapshot("p100", body, Utc::now()).expect_err("malformed");
            assert_eq!(e.kind, ProviderErrorKind::MalformedResponse);
        }
        let cut = snapshot("p100", br#"{"userId":"u","fiatBal"#, Utc::now()).expect_err("cut");
        assert!(cut.retryable, "a truncated body may be retried");
    }
}
