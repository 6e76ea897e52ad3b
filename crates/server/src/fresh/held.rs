//! One provider's accounts as a cached customer view holds them (`cache.max_bytes`; issue 20's
//! goal is at most 512 bytes an account). What every account of one (customer, provider) pair
//! repeats is kept once: the customer id, the provider id and (shared) the provider's customer
//! reference; the id is not kept where it is the usual `provider:provider_account_id`; text and
//! lists are boxed to their length. A read builds each `Account` again, which costs what the
//! clone every read made before did.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use coffer_core::{Account, BalanceType, Currency, ProviderRate, Status, Wallet};
use rust_decimal::Decimal;

use crate::weigh;

/// The accounts of one provider view, in the order they were given.
#[derive(Debug, Clone, Default)]
pub struct HeldAccounts(Repr);

#[derive(Debug, Clone, Default)]
enum Repr {
    #[default]
    Empty,
    /// Every account of one pair.
    Pair {
        customer_id: Arc<str>,
        provider_id: Arc<str>,
        accounts: Box<[Slim]>,
    },
    /// Accounts of several pairs (never built by the loader, which holds one pair per view):
    /// kept whole.
    Whole(Vec<Account>),
}

/// An account without what its pair gives.
#[derive(Debug, Clone)]
struct Slim {
    provider_account_id: Box<str>,
    /// The id, where it is not `provider:provider_account_id`.
    id: Option<Box<str>>,
    provider_customer_ref: Option<Arc<str>>,
    currency: Currency,
    balance: Decimal,
    wallets: Box<[Wallet]>,
    iban: Option<Box<str>>,
    provider_rate: Option<ProviderRate>,
    fetched_at: DateTime<Utc>,
    status: Status,
    balance_type: BalanceType,
    is_crypto: bool,
    active: bool,
}

impl From<Vec<Account>> for HeldAccounts {
    fn from(accounts: Vec<Account>) -> Self {
        let Some(first) = accounts.first() else {
            return HeldAccounts(Repr::Empty);
        };
        let (customer, provider) = (first.customer_id.clone(), first.provider_id.clone());
        if accounts
            .iter()
            .any(|a| a.customer_id != customer || a.provider_id != provider)
        {
            return HeldAccounts(Repr::Whole(accounts));
        }
        let mut last_ref: Option<Arc<str>> = None;
        let slim = accounts
            .into_iter()
            .map(|a| slim(a, &mut last_ref))
            .collect();
        HeldAccounts(Repr::Pair {
            customer_id: customer.into(),
            provider_id: provider.into(),
            accounts: slim,
        })
    }
}

/// `a` without its pair; `last_ref` shares one reference between the accounts that carry it.
fn slim(a: Account, last_ref: &mut Option<Arc<str>>) -> Slim {
    // Destructured whole, so a field added to `Account` must be held here too.
    let Account {
        id,
        customer_id: _,
        provider_id,
        provider_account_id,
        provider_customer_ref,
        currency,
        is_crypto,
        status,
        active,
        balance,
        balance_type,
        wallets,
        iban,
        provider_rate,
        fetched_at,
    } = a;
    let provider_customer_ref = provider_customer_ref.map(|r| match last_ref {
        Some(shared) if **shared == *r => Arc::clone(shared),
        _ => {
            let shared: Arc<str> = r.into();
            *last_ref = Some(Arc::clone(&shared));
            shared
        }
    });
    let derived = id == Account::make_id(&provider_id, &provider_account_id);
    Slim {
        id: (!derived).then(|| id.into_boxed_str()),
        provider_account_id: provider_account_id.into_boxed_str(),
        provider_customer_ref,
        currency,
        balance,
        wallets: wallets.into_iter().map(shrunk).collect(),
        iban: iban.map(String::into_boxed_str),
        provider_rate,
        fetched_at,
        status,
        balance_type,
        is_crypto,
        active,
    }
}

/// A wallet whose text holds no spare capacity.
fn shrunk(mut w: Wallet) -> Wallet {
    w.network.shrink_to_fit();
    w.address.shrink_to_fit();
    for s in [&mut w.tag, &mut w.network_name].into_iter().flatten() {
        s.shrink_to_fit();
    }
    w
}

impl HeldAccounts {
    /// The accounts, built again, in the order they were given.
    pub fn iter(&self) -> impl Iterator<Item = Account> + '_ {
        let (pair, slim, whole): (_, &[Slim], &[Account]) = match &self.0 {
            Repr::Empty => (None, &[], &[]),
            Repr::Pair {
                customer_id,
                provider_id,
                accounts,
            } => (Some((customer_id, provider_id)), accounts, &[]),
            Repr::Whole(all) => (None, &[], all),
        };
        let built = slim.iter().filter_map(move |s| {
            let (customer_id, provider_id) = pair?;
            Some(whole_account(customer_id, provider_id, s))
        });
        built.chain(whole.iter().cloned())
    }

    /// What these accounts cost in memory, counted as [`weigh`] counts: each shared value once.
    pub fn weight(&self) -> usize {
        match &self.0 {
            Repr::Empty => 0,
            Repr::Pair {
                customer_id,
                provider_id,
                accounts,
            } => {
                let mut last_ref: Option<&Arc<str>> = None;
                let mut bytes = customer_id.len() + provider_id.len();
                for s in accounts.iter() {
                    bytes += std::mem::size_of::<Slim>()
                        + s.provider_account_id.len()
                        + s.id.as_ref().map_or(0, |i| i.len())
                        + s.currency.heap_bytes()
                        + s.wallets.iter().map(weigh::wallet).sum::<usize>()
                        + s.iban.as_ref().map_or(0, |i| i.len())
                        + s.provider_rate.as_ref().map_or(0, |r| r.quote.heap_bytes());
                    if let Some(r) = &s.provider_customer_ref
                        && !last_ref.is_some_and(|l| Arc::ptr_eq(l, r))
                    {
                        bytes += r.len();
                        last_ref = Some(r);
                    }
                }
                bytes
            }
            Repr::Whole(all) => {
                all.iter().map(weigh::account).sum::<usize>()
                    + (all.capacity() - all.len()) * std::mem::size_of::<Account>()
            }
        }
    }
}

fn whole_account(customer_id: &str, provider_id: &str, s: &Slim) -> Account {
    Account {
        id: s.id.as_deref().map_or_else(
            || Account::make_id(provider_id, &s.provider_account_id),
            str::to_owned,
        ),
        customer_id: customer_id.to_owned(),
        provider_id: provider_id.to_owned(),
        provider_account_id: s.provider_account_id.to_string(),
        provider_customer_ref: s.provider_customer_ref.as_deref().map(str::to_owned),
        currency: s.currency.clone(),
        is_crypto: s.is_crypto,
        status: s.status,
        active: s.active,
        balance: s.balance,
        balance_type: s.balance_type,
        wallets: s.wallets.to_vec(),
        iban: s.iban.as_deref().map(str::to_owned),
        provider_rate: s.provider_rate.clone(),
        fetched_at: s.fetched_at,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn account(customer: &str, provider: &str, pid: &str, at: i64) -> Account {
        Account {
            id: Account::make_id(provider, pid),
            customer_id: customer.into(),
            provider_id: provider.into(),
            provider_account_id: pid.into(),
            provider_customer_ref: Some("user-77".into()),
            currency: Currency::new("USDC"),
            is_crypto: true,
            status: Status::Active,
            active: true,
            balance: "0.09872368".parse().unwrap(),
            balance_type: BalanceType::Available,
            wallets: vec![Wallet {
                network: "ethereum".into(),
                address: "0x52908400098527886E0F7030069857D2E4169EE7".into(),
                tag: None,
                mainnet: Some(true),
                network_name: None,
                withdrawal_fee: Some("1e-7".parse().unwrap()),
                withdrawal_min: None,
                deposit_min: None,
            }],
            iban: None,
            provider_rate: Some(ProviderRate {
                rate: "0.9166666666666666666666666667".parse().unwrap(),
                quote: Currency::new("EUR"),
            }),
            fetched_at: DateTime::from_timestamp(at, 0).unwrap(),
        }
    }

    #[test]
    fn accounts_come_back_as_given_and_weigh_less() {
        let mut odd = account("c1", "p100", "b", 2);
        odd.id = "legacy-id".into();
        odd.provider_customer_ref = Some("other".into());
        odd.iban = Some("DE89 3704 0044 0532 0130 00".into());
        odd.currency = Currency::new("xyz-unknown");
        let given = vec![
            account("c1", "p100", "a", 1),
            odd,
            account("c1", "p100", "c", 3),
        ];
        let held = HeldAccounts::from(given.clone());
        assert_eq!(held.iter().collect::<Vec<_>>(), given);
        let whole: usize = given.iter().map(weigh::account).sum();
        assert!(held.weight() < whole, "{} >= {whole}", held.weight());
    }

    #[test]
    fn accounts_of_several_pairs_are_kept_whole() {
        let given = vec![account("c1", "p100", "a", 1), account("c2", "p100", "b", 1)];
        let held = HeldAccounts::from(given.clone());
        assert!(matches!(held.0, Repr::Whole(_)));
        assert_eq!(held.iter().collect::<Vec<_>>(), given);
        assert_eq!(HeldAccounts::from(Vec::new()).iter().count(), 0);
    }
}
