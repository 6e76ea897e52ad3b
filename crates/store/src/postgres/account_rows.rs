//! The account rows as PostgreSQL returns them, and the column lists that produce them: shared
//! by the reads (`accounts.rs`, `list.rs`) and the writes (`write.rs`).

use chrono::{DateTime, Utc};
use coffer_core::Account;

use crate::Result;
use crate::plan::Existing;
use crate::rows::AccountCols;

/// The account columns, money as text so it is parsed exactly; `fetched_at` from the given
/// expression (the account row's own, or when it was last seen: `seen_at!`).
macro_rules! account_cols {
    () => {
        account_cols!("accounts.fetched_at")
    };
    ($fetched:expr) => {
        concat!(
            "accounts.id, accounts.customer_id, accounts.provider_id, \
             accounts.provider_account_id, accounts.provider_customer_ref, accounts.currency, \
             accounts.is_crypto, accounts.status, accounts.active, \
             accounts.balance::text AS balance, accounts.wallets, accounts.iban, \
             accounts.balance_type, accounts.provider_rate::text AS provider_rate, \
             accounts.provider_rate_quote, ",
            $fetched,
            " AS fetched_at, accounts.closed, accounts.rollup_shard"
        )
    };
}

/// When an account was last seen: an open account by its pair's last saved snapshot (a sync
/// that found it unchanged does not write its row), a closed one by the fetch before the one
/// that found it gone (set when it is closed). A scalar subquery, evaluated for the rows a read
/// returns (one primary-key probe each): as a join, a page of a search hashed every snapshot
/// (200,000 at full size, 45 ms) to return a hundred rows.
macro_rules! seen_at {
    () => {
        "CASE WHEN accounts.closed THEN accounts.fetched_at \
         ELSE coalesce((SELECT s.fetched_at FROM snapshots s \
             WHERE s.customer_id = accounts.customer_id AND s.provider_id = accounts.provider_id), \
             accounts.fetched_at) END"
    };
}

/// The table the account reads select from, with `seen_at!`.
macro_rules! from_accounts {
    () => {
        " FROM accounts"
    };
}
pub(super) use {account_cols, from_accounts, seen_at};

/// The account columns with when each was last seen, for the list's reads (`list.rs`), from
/// [`FROM_ACCOUNTS`].
pub(super) const ACCOUNT_COLS: &str = account_cols!(seen_at!());
pub(super) const FROM_ACCOUNTS: &str = from_accounts!();

#[derive(sqlx::FromRow)]
pub(super) struct AccountRow {
    id: String,
    pub(super) customer_id: String,
    pub(super) provider_id: String,
    provider_account_id: String,
    provider_customer_ref: Option<String>,
    currency: String,
    is_crypto: bool,
    status: String,
    active: bool,
    balance: String,
    wallets: String,
    iban: Option<String>,
    balance_type: String,
    provider_rate: Option<String>,
    provider_rate_quote: Option<String>,
    fetched_at: DateTime<Utc>,
    closed: bool,
    rollup_shard: i16,
}

impl AccountRow {
    pub(super) fn into_existing(self) -> Result<Existing> {
        let (closed, shard) = (self.closed, self.rollup_shard);
        Ok(Existing {
            account: self.into_account()?,
            closed,
            shard,
        })
    }

    pub(super) fn into_account(self) -> Result<Account> {
        AccountCols {
            id: self.id,
            customer_id: self.customer_id,
            provider_id: self.provider_id,
            provider_account_id: self.provider_account_id,
            provider_customer_ref: self.provider_customer_ref,
            currency: self.currency,
            is_crypto: self.is_crypto,
            status: self.status,
            active: self.active,
            balance: self.balance,
            wallets: self.wallets,
            iban: self.iban,
            balance_type: self.balance_type,
            provider_rate: self.provider_rate,
            provider_rate_quote: self.provider_rate_quote,
            fetched_at: self.fetched_at,
        }
        .into_account()
    }
}

pub(super) fn accounts(rows: Vec<AccountRow>) -> Result<Vec<Account>> {
    rows.into_iter().map(AccountRow::into_account).collect()
}
