//! The rate table: a base currency, rates from several sources with precedence, triangulation.
//!
//! One table is built per query (manual rates from the store or config, plus the providers'
//! own rates from the accounts being answered), so an answer can always say exactly which rates
//! produced it. A missing rate is an error, never 0: the query engine lists such accounts as
//! unconverted instead of counting them.

use std::cmp::Ordering;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::account::Account;
use crate::currency::Currency;

/// Where a rate comes from. The order is the precedence: a manual rate beats any provider's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateSource {
    /// Set by an admin (`PUT /v2/rates`) or in the config.
    Manual,
    /// Reported by a provider with a balance (P100's `rate`, Corebanq's
    /// `balance_in_base ÷ balance`).
    Provider,
}

impl RateSource {
    pub fn as_str(self) -> &'static str {
        match self {
            RateSource::Manual => "manual",
            RateSource::Provider => "provider",
        }
    }
}

/// One rate: one unit of `currency` is worth `value` units of `quote`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rate {
    pub currency: Currency,
    pub quote: Currency,
    #[serde(with = "crate::money::decimal_str")]
    pub value: Decimal,
    pub source: RateSource,
    /// The provider instance that reported it (`None` for manual rates).
    pub provider: Option<String>,
    pub as_of: DateTime<Utc>,
}

impl Rate {
    /// A manual rate: one unit of `currency` is worth `value` of `quote`.
    pub fn manual(
        currency: Currency,
        quote: Currency,
        value: Decimal,
        as_of: DateTime<Utc>,
    ) -> Self {
        Rate {
            currency,
            quote,
            value,
            source: RateSource::Manual,
            provider: None,
            as_of,
        }
    }

    /// The identity of a rate in the table: a newer rate with the same identity replaces it.
    fn slot(&self) -> (&Currency, &Currency, RateSource, Option<&str>) {
        (
            &self.currency,
            &self.quote,
            self.source,
            self.provider.as_deref(),
        )
    }
}

/// A rate the table refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateError {
    #[error("rate of {currency} in {quote} must be positive, got {value}")]
    NotPositive {
        currency: Currency,
        quote: Currency,
        value: Decimal,
    },
    #[error("rate of {0} in itself is always 1 and cannot be set")]
    SelfQuoted(Currency),
}

/// Why an amount could not be converted. Never silently 0.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ConvertError {
    /// No rate (direct or through the base) values this currency in the base.
    #[error("no rate for {currency} in {base}")]
    MissingRate { currency: Currency, base: Currency },
    /// The exact result does not fit a decimal (about 7.9e28).
    #[error("converting {currency} overflows")]
    Overflow { currency: Currency },
}

/// A currency's value in the base, and the rates that produced it (empty for the base itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedRate {
    pub currency: Currency,
    /// Value of one unit of `currency` in the base.
    pub value: Decimal,
    pub used: Vec<Rate>,
}

/// An amount converted into a target currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    pub value: Decimal,
    pub currency: Currency,
    /// Every rate used, for the answer to show.
    pub rates: Vec<Rate>,
}

/// Digits kept below the target's minor unit when a conversion divides.
///
/// Why round at all: a quotient such as `x ÷ 0.92` does not terminate, and `Decimal` keeps 28
/// significant digits, so sums of full-precision quotients of different magnitudes would round
/// in the last place differently depending on the order they were added in. Rounding each
/// converted value half-even to `decimals + 10` places makes every later sum exact (total =
/// Σ groups = fiat + crypto, to the last digit) while staying ten digits below anything ever
/// presented. The only effect on a presented total is a tie at the tenth guard digit.
pub const GUARD_DIGITS: u32 = 10;

/// Rates valued in one base currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateTable {
    base: Currency,
    rates: Vec<Rate>,
    /// Provider instances whose rates are quotients of rounded amounts (Corebanq's
    /// `balance_in_base ÷ balance`), not rates the provider stated: they rank after stated ones.
    derived: Vec<String>,
}

impl Default for RateTable {
    /// A table in EUR, the default base.
    fn default() -> Self {
        RateTable::new(Currency::new("EUR"))
    }
}

/// How deep triangulation may go (C → Q → … → base); cycles are cut before that.
const MAX_HOPS: usize = 4;

/// The accounts whose `provider_rate` is taken, one per provider, currency and quote: of the
/// newest fetch, the one with the largest balance (by size; the last of equals), in the order
/// first seen. Where a provider's rate is a quotient of a rounded amount (Corebanq's
/// `balance_in_base ÷ balance`), that is the most precise one (±0.005 over 0.12 is ±4 %, over
/// 12,000 ±4·10⁻⁷); where the provider states its rate, every account carries the same. The
/// rate table and the store both choose with this.
pub fn rate_givers(accounts: &[Account]) -> Vec<&Account> {
    let mut slots: HashMap<(&Currency, &Currency, &str), usize> = HashMap::new();
    let mut chosen: Vec<&Account> = Vec::new();
    for a in accounts {
        let Some(pr) = &a.provider_rate else { continue };
        let rank = |a: &Account| (a.fetched_at, a.balance.abs());
        match slots.get(&(&a.currency, &pr.quote, a.provider_id.as_str())) {
            Some(&i) if rank(a) >= rank(chosen[i]) => chosen[i] = a,
            Some(_) => {}
            None => {
                slots.insert((&a.currency, &pr.quote, &a.provider_id), chosen.len());
                chosen.push(a);
            }
        }
    }
    chosen
}

impl RateTable {
    pub fn new(base: Currency) -> Self {
        RateTable {
            base,
            rates: Vec::new(),
            derived: Vec::new(),
        }
    }

    /// The same table, knowing that these provider instances' rates are derived
    /// ([`crate::BalanceProvider::rates_are_derived`]).
    #[must_use]
    pub fn with_derived_providers(mut self, ids: impl IntoIterator<Item = String>) -> Self {
        self.derived.extend(ids);
        self
    }

    fn is_derived(&self, r: &Rate) -> bool {
        r.provider
            .as_ref()
            .is_some_and(|p| self.derived.iter().any(|d| d == p))
    }

    /// A table in `base` holding every provider rate of `accounts` (see
    /// [`RateTable::add_from_accounts`]).
    pub fn from_accounts(base: Currency, accounts: &[Account]) -> Self {
        let mut t = RateTable::new(base);
        t.add_from_accounts(accounts);
        t
    }

    pub fn base(&self) -> &Currency {
        &self.base
    }

    /// Every rate held, in insertion order (for `GET /v2/rates`).
    pub fn rates(&self) -> &[Rate] {
        &self.rates
    }

    /// Adds a rate. A rate with the same currency, quote, source and provider is replaced when
    /// the new one is at least as recent (so re-inserting today's rates refreshes them), and kept
    /// otherwise. Non-positive rates and a currency quoted in itself are refused: a rate of 0
    /// would turn a balance into nothing, which is exactly the silent loss the table prevents.
    pub fn insert(&mut self, rate: Rate) -> Result<(), RateError> {
        if rate.value <= Decimal::ZERO {
            return Err(RateError::NotPositive {
                currency: rate.currency,
                quote: rate.quote,
                value: rate.value,
            });
        }
        if rate.currency == rate.quote {
            return Err(RateError::SelfQuoted(rate.currency));
        }
        match self.rates.iter_mut().find(|r| r.slot() == rate.slot()) {
            Some(old) if old.as_of <= rate.as_of => *old = rate,
            Some(_) => {}
            None => self.rates.push(rate),
        }
        Ok(())
    }

    /// Adds the provider rates of `accounts` (one per provider, currency and quote, chosen by
    /// [`rate_givers`]) as provider-reported rates, as of the accounts' `fetched_at`. Rates the
    /// table refuses (0, negative, a currency in itself — P100 sends `"rate": 1` for EUR in EUR)
    /// are skipped; the accounts concerned then either convert at 1 (the base) or show up as
    /// unconverted. Returns how many rates were taken.
    pub fn add_from_accounts(&mut self, accounts: &[Account]) -> usize {
        let mut n = 0;
        for a in rate_givers(accounts) {
            if let Some(pr) = &a.provider_rate {
                let rate = Rate {
                    currency: a.currency.clone(),
                    quote: pr.quote.clone(),
                    value: pr.rate,
                    source: RateSource::Provider,
                    provider: Some(a.provider_id.clone()),
                    as_of: a.fetched_at,
                };
                if self.insert(rate).is_ok() {
                    n += 1;
                }
            }
        }
        n
    }

    /// The value of one unit of `currency` in the base, with the rates used.
    ///
    /// Precedence: manual over provider (the newest manual one); among provider rates a stated
    /// one over a derived one, then one quoted in the base over one that must be triangulated,
    /// then the provider id, then the newest, so the choice does not depend on which provider
    /// answered last. A rate quoted in another currency Q is multiplied by Q's own value in the
    /// base (resolved the same way); if Q cannot be valued, the next candidate is tried. A
    /// currency with no rate of its own is valued through the inverse of a rate of the base
    /// quoted in it (base → C), so a table in USD can use P100's EUR-quoted rates once it knows
    /// what a euro is worth.
    pub fn rate(&self, currency: &Currency) -> Option<ResolvedRate> {
        self.resolve(currency, &mut Vec::new()).ok()
    }

    fn resolve(
        &self,
        currency: &Currency,
        visiting: &mut Vec<Currency>,
    ) -> Result<ResolvedRate, ConvertError> {
        if *currency == self.base {
            return Ok(ResolvedRate {
                currency: currency.clone(),
                value: Decimal::ONE,
                used: Vec::new(),
            });
        }
        let missing = || ConvertError::MissingRate {
            currency: currency.clone(),
            base: self.base.clone(),
        };
        if visiting.contains(currency) || visiting.len() >= MAX_HOPS {
            return Err(missing());
        }
        visiting.push(currency.clone());
        let result = self
            .resolve_direct(currency, visiting)
            .or_else(|_| self.resolve_inverse(currency));
        visiting.pop();
        result.map_err(|e| match e {
            ConvertError::MissingRate { .. } => missing(),
            other => other,
        })
    }

    fn resolve_direct(
        &self,
        currency: &Currency,
        visiting: &mut Vec<Currency>,
    ) -> Result<ResolvedRate, ConvertError> {
        let mut candidates: Vec<&Rate> = self
            .rates
            .iter()
            .filter(|r| r.currency == *currency)
            .collect();
        candidates.sort_by(|a, b| self.precedence(a, b));
        let mut last_err = None;
        for r in candidates {
            let quote = match self.resolve(&r.quote, visiting) {
                Ok(q) => q,
                Err(e) => {
                    last_err = Some(e);
                    continue;
                }
            };
            let value = r
                .value
                .checked_mul(quote.value)
                .ok_or_else(|| ConvertError::Overflow {
                    currency: currency.clone(),
                })?;
            let mut used = vec![r.clone()];
            used.extend(quote.used);
            return Ok(ResolvedRate {
                currency: currency.clone(),
                value,
                used,
            });
        }
        Err(last_err.unwrap_or(ConvertError::MissingRate {
            currency: currency.clone(),
            base: self.base.clone(),
        }))
    }

    fn resolve_inverse(&self, currency: &Currency) -> Result<ResolvedRate, ConvertError> {
        let mut candidates: Vec<&Rate> = self
            .rates
            .iter()
            .filter(|r| r.currency == self.base && r.quote == *currency)
            .collect();
        candidates.sort_by(|a, b| self.precedence(a, b));
        let r = candidates
            .first()
            .ok_or_else(|| ConvertError::MissingRate {
                currency: currency.clone(),
                base: self.base.clone(),
            })?;
        let value = Decimal::ONE
            .checked_div(r.value)
            .ok_or_else(|| ConvertError::Overflow {
                currency: currency.clone(),
            })?;
        Ok(ResolvedRate {
            currency: currency.clone(),
            value,
            used: vec![(*r).clone()],
        })
    }

    /// Lower is better: source; among manual rates the newest (an admin's rate replaces the
    /// config's); among provider rates one the provider stated over one derived from rounded
    /// amounts (exact beats approximate, whichever provider's id sorts first), then one quoted in
    /// the base, then the provider id, then the newest. Provider rates are not ranked by time
    /// first: two providers refreshed in turn would otherwise swap which one values a currency,
    /// and the same holdings would total differently from one answer to the next.
    fn precedence(&self, a: &Rate, b: &Rate) -> Ordering {
        let newest = || b.as_of.cmp(&a.as_of);
        a.source
            .cmp(&b.source)
            .then_with(|| {
                if a.source == RateSource::Manual {
                    newest()
                } else {
                    Ordering::Equal
                }
            })
            .then_with(|| self.is_derived(a).cmp(&self.is_derived(b)))
            .then_with(|| (b.quote == self.base).cmp(&(a.quote == self.base)))
            .then_with(|| a.provider.cmp(&b.provider))
            .then_with(newest)
            .then_with(|| a.value.cmp(&b.value))
    }

    /// Converts `amount` of `from` into `to`:
    /// `amount × rate(from→base) ÷ rate(to→base)`, with checked arithmetic.
    ///
    /// Exact where decimals allow: an amount already in `to` is returned unchanged; otherwise
    /// the result is exact up to [`GUARD_DIGITS`] places below `to`'s minor unit and rounded
    /// half-even there (a no-op for products such as balance × P100 rate into the base; see
    /// [`GUARD_DIGITS`] for why). For many amounts into one target, [`RateTable::converter`]
    /// resolves each rate once.
    pub fn convert(
        &self,
        amount: Decimal,
        from: &Currency,
        to: &Currency,
    ) -> Result<Converted, ConvertError> {
        self.converter(to).convert(amount, from)
    }

    /// A converter into `target`, resolving the target's rate once and each source currency's
    /// rate on first use. If the target itself cannot be valued in the base, amounts already in
    /// the target still convert (unchanged) and every other conversion fails with the target's
    /// missing rate, so a query can still list what it could and could not convert.
    pub fn converter(&self, target: &Currency) -> Converter<'_> {
        let target_rate = self.resolve(target, &mut Vec::new());
        Converter {
            table: self,
            target: target.clone(),
            target_rate,
            cache: HashMap::new(),
            used: Vec::new(),
        }
    }
}

/// Converts many amounts into one target currency, remembering every rate it used.
#[derive(Debug)]
pub struct Converter<'t> {
    table: &'t RateTable,
    target: Currency,
    target_rate: Result<ResolvedRate, ConvertError>,
    cache: HashMap<Currency, Result<ResolvedRate, ConvertError>>,
    used: Vec<Rate>,
}

impl Converter<'_> {
    pub fn target(&self) -> &Currency {
        &self.target
    }

    /// `amount` of `from` in the target; see [`RateTable::convert`].
    pub fn convert(&mut self, amount: Decimal, from: &Currency) -> Result<Converted, ConvertError> {
        if *from == self.target {
            return Ok(Converted {
                value: amount,
                currency: self.target.clone(),
                rates: Vec::new(),
            });
        }
        let target_rate = self.target_rate.clone()?;
        let table = self.table;
        let from_rate = self
            .cache
            .entry(from.clone())
            .or_insert_with(|| table.resolve(from, &mut Vec::new()))
            .clone()?;
        let overflow = || ConvertError::Overflow {
            currency: from.clone(),
        };
        let in_base = amount.checked_mul(from_rate.value).ok_or_else(overflow)?;
        let exact = if target_rate.value == Decimal::ONE {
            in_base
        } else {
            in_base
                .checked_div(target_rate.value)
                .ok_or_else(overflow)?
        };
        // A no-op unless the value has more places than the guard (see GUARD_DIGITS).
        let value = exact.round_dp_with_strategy(
            self.target.decimals() + GUARD_DIGITS,
            rust_decimal::RoundingStrategy::MidpointNearestEven,
        );
        let mut rates = from_rate.used;
        rates.extend(target_rate.used);
        for r in &rates {
            if !self.used.contains(r) {
                self.used.push(r.clone());
            }
        }
        Ok(Converted {
            value,
            currency: self.target.clone(),
            rates,
        })
    }

    /// Every rate used so far by successful conversions, each once, in first-use order.
    pub fn rates_used(&self) -> &[Rate] {
        &self.used
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "rates_tests.rs"]
mod tests;
