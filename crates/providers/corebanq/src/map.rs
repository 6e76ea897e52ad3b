//! Corebanq's wire types → Coffer's account model. Each quirk cites where it comes from.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use coffer_core::money::parse_decimal;
use coffer_core::{
    Currency, ProviderAccount, ProviderError, ProviderErrorKind, ProviderRate, ProviderSnapshot,
    RejectedBalance, Status, Wallet,
};
use rust_decimal::Decimal;

use crate::wire::{self, Lenient};

/// What this provider's balance means: Corebanq's `balance` carries no qualifier.
pub const BALANCE_TYPE: coffer_core::BalanceType = coffer_core::BalanceType::Unspecified;

pub use coffer_provider_kit::wire::exact;

/// The `network` of the one wallet Corebanq gives (`main_wallet_address`): it does not say which
/// chain, so Coffer does not guess one.
pub const MAIN_WALLET_NETWORK: &str = "main";

/// Parses a 200 body into a snapshot. `requested` is the `currency` Coffer asked for; the
/// answer's own `currency`, when present, is what `balance_in_base` is quoted in.
pub fn snapshot(
    provider: &str,
    body: &[u8],
    requested: &Currency,
    fetched_at: DateTime<Utc>,
) -> Result<ProviderSnapshot, ProviderError> {
    let response: wire::BalanceResponse =
        serde_json::from_slice(body).map_err(|e| malformed_json(provider, &e))?;
    let quote = match response.currency.as_deref().map(str::trim) {
        Some(c) if !c.is_empty() => Currency::new(c),
        _ => requested.clone(),
    };
    if &quote != requested {
        tracing::warn!(asked = %requested, answered = %quote,
            "Corebanq answered in another currency than asked; its rates are quoted in the answered one");
    }
    let Some(details) = response.details else {
        // We always ask `details=true`. Without details, only an answer whose total is zero can
        // honestly mean "no accounts"; anything else would lose balances in silence.
        if total_is_zero(response.total_balance.as_ref()) {
            return Ok(ProviderSnapshot {
                provider_customer_ref: None,
                accounts: Vec::new(),
                rejected: Vec::new(),
                fetched_at,
                balance_type: BALANCE_TYPE,
            });
        }
        return Err(malformed(
            provider,
            "the balance answer has no `details` although they were asked for",
        ));
    };

    let mut accounts = Vec::new();
    let mut rejected = Vec::new();
    let mut seen = HashSet::new();
    let mut customer_refs = HashSet::new();
    // Seed 004: `fiat_accounts` may be `null`; each list gives a default for `is_crypto`.
    let lists = [
        (
            "fiat_accounts",
            false,
            details.fiat_accounts.unwrap_or_default(),
        ),
        (
            "crypto_assets",
            true,
            details.crypto_assets.unwrap_or_default(),
        ),
    ];
    for (list, crypto_list, entries) in lists {
        for (index, entry) in entries.into_iter().enumerate() {
            let outcome = match entry {
                Lenient::Ok(a) => {
                    let id = a.id.clone();
                    if let Some(c) = a.customer_id.as_deref().filter(|c| !c.is_empty()) {
                        customer_refs.insert(c.to_owned());
                    }
                    account(a, crypto_list, &quote).map_err(|reason| (Some(id), reason))
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
                    })
                }
                Ok(a) => accounts.push(a),
                Err((provider_account_id, reason)) => rejected.push(RejectedBalance {
                    provider_account_id,
                    reason: format!("{list}[{index}]: {reason}"),
                }),
            }
        }
    }

    // Seed 004: accounts carry Corebanq's own `customer_id`, which need not be the id we asked
    // with; it is the provider's reference when all accounts agree on it.
    let provider_customer_ref = if customer_refs.len() == 1 {
        customer_refs.into_iter().next()
    } else {
        None
    };
    Ok(ProviderSnapshot {
        provider_customer_ref,
        accounts,
        rejected,
        fetched_at,
        balance_type: BALANCE_TYPE,
    })
}

fn total_is_zero(total: Option<&serde_json::Value>) -> bool {
    match total {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Number(n)) => {
            parse_decimal(&n.to_string()).is_ok_and(|d| d.is_zero())
        }
        Some(serde_json::Value::String(s)) => parse_decimal(s).is_ok_and(|d| d.is_zero()),
        Some(_) => false,
    }
}

fn malformed(provider: &str, message: &str) -> ProviderError {
    ProviderError::new(provider, ProviderErrorKind::MalformedResponse, message)
        .with_status(200)
        .retryable(false)
}

fn malformed_json(provider: &str, e: &serde_json::Error) -> ProviderError {
    // A body that ends early is worth another try; a body that is wrong is not.
    let truncated = e.is_eof();
    let what = if truncated {
        "the balance answer ends early"
    } else {
        "the balance answer is not the expected JSON"
    };
    malformed(provider, &format!("{what}: {e}")).retryable(truncated)
}

fn raw_id(raw: &serde_json::Value) -> Option<String> {
    raw.get("id").and_then(|v| v.as_str()).map(str::to_owned)
}

/// One account. The error names the field at fault.
fn account(
    a: wire::Account,
    crypto_list: bool,
    quote: &Currency,
) -> Result<ProviderAccount, String> {
    if a.id.trim().is_empty() {
        return Err("id: empty".into());
    }
    if a.currency.trim().is_empty() {
        return Err("currency: empty".into());
    }
    // Seed 004: money is a JSON number; read its digits exactly.
    let balance = exact(&a.balance).map_err(|e| format!("balance: {e}"))?;
    let in_base = a
        .balance_in_base
        .as_ref()
        .map(exact)
        .transpose()
        .map_err(|e| format!("balance_in_base: {e}"))?;
    let status = status(a.status.as_deref());
    let wallets = a
        .main_wallet_address
        .filter(|w| !w.trim().is_empty())
        .map(|address| Wallet {
            network: MAIN_WALLET_NETWORK.to_owned(),
            address,
            // Seed 004 sends `""` for "no tag".
            tag: a.main_wallet_address_tag.filter(|t| !t.trim().is_empty()),
            ..Wallet::default()
        })
        .into_iter()
        .collect();
    Ok(ProviderAccount {
        provider_account_id: a.id,
        currency: Currency::new(&a.currency),
        // The body says; the list it came in is only the default.
        is_crypto: a.is_crypto.unwrap_or(crypto_list),
        status,
        // Seed 004: `active` and `status` disagree on some accounts; both are kept as sent.
        active: a.active.unwrap_or(status == Status::Active),
        provider_rate: rate(balance, in_base).map(|rate| ProviderRate {
            rate,
            quote: quote.clone(),
        }),
        balance,
        wallets,
        iban: a.iban.filter(|i| !i.trim().is_empty()),
    })
}

/// `balance_in_base ÷ balance`: the value of one unit in the quote currency (DESIGN.md, "Rates").
/// None when the balance is zero (seed 004's accounts all are), `balance_in_base` is missing or
/// null, or the quotient is not a positive price.
pub fn rate(balance: Decimal, in_base: Option<Decimal>) -> Option<Decimal> {
    let in_base = in_base?;
    if balance.is_zero() {
        return None;
    }
    in_base
        .checked_div(balance)
        .map(|r| r.normalize())
        .filter(|r| *r > Decimal::ZERO)
}

/// Corebanq status → Coffer status: the four names, case-insensitively; anything else, or none,
/// is `Pending`, never `Active` (STYLE.md, hyperswitch's rule).
pub fn status(raw: Option<&str>) -> Status {
    match raw.map(str::parse::<Status>) {
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            tracing::debug!(error = %e, "unknown Corebanq account status; treating it as pending");
            Status::Pending
        }
        None => Status::Pending,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        parse_decimal(s).unwrap()
    }

    #[test]
    fn rate_is_in_base_over_balance_when_it_means_something() {
        assert_eq!(
            rate(d("2.000000"), Some(d("1.717628")))
                .unwrap()
                .to_string(),
            "0.858814"
        );
        assert_eq!(
            rate(d("0.5"), Some(d("34629.46707829")))
                .unwrap()
                .to_string(),
            "69258.93415658"
        );
        assert_eq!(rate(d("0"), Some(d("0"))), None);
        assert_eq!(rate(d("1"), None), None);
        assert_eq!(rate(d("1"), Some(d("0"))), None);
        assert_eq!(
            rate(d("1e-28"), Some(d("79228162514264337593543950335"))),
            None,
            "overflow is no rate"
        );
    }

    #[test]
    fn status_never_guesses_active() {
        assert_eq!(status(Some("active")), Status::Active);
        assert_eq!(status(Some("Suspended")), Status::Suspended);
        assert_eq!(status(Some("inactive")), Status::Inactive);
        assert_eq!(status(Some("pending")), Status::Pending);
        assert_eq!(status(Some("frozen")), Status::Pending);
        assert_eq!(status(None), Status::Pending);
    }

    #[test]
    fn no_details_is_empty_only_when_the_total_is_zero() {
        let eur = Currency::new("EUR");
        let s = snapshot(
            "bank",
            br#"{"total_balance":0,"currency":"EUR"}"#,
            &eur,
            Utc::now(),
        )
        .unwrap();
        assert!(s.accounts.is_empty());
        let e = snapshot(
            "bank",
            br#"{"total_balance":12.5,"currency":"EUR"}"#,
            &eur,
            Utc::now(),
        )
        .unwrap_err();
        assert_eq!(e.kind, ProviderErrorKind::MalformedResponse);
        for body in [
            &b"[]"[..],
            b"null",
            b"{}",
            b"{\"details\":\"x\"}",
            b"{\"details\":{\"crypto_assets\":{}}}",
        ] {
            let e = snapshot("bank", body, &eur, Utc::now()).unwrap_err();
            assert_eq!(
                e.kind,
                ProviderErrorKind::MalformedResponse,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
