//! The query engine: pure functions over `&[Account]` and a rate table.
//!
//! Entry points for the server, one per endpoint:
//! - [`parse_query`] turns the raw query pairs into a typed [`Query`] (or a [`ParamError`]
//!   naming the parameter), for either [`Endpoint`];
//! - [`balance`] answers `GET /v2/accounts/balance` with a [`BalanceAnswer`];
//! - [`list`] answers `GET /v2/accounts` with a [`ListPage`].
//!
//! Both take the accounts the caller may see (the server applies key scope before), the query,
//! and a [`RateTable`](crate::rates::RateTable) built for this query. They return typed answers,
//! not JSON: the server maps them into its own API bodies.
//!
//! ```
//! use coffer_core::query::{self, Endpoint, ParseOptions};
//! use coffer_core::rates::RateTable;
//!
//! let pairs = vec![("is_crypto".to_owned(), "true".to_owned())];
//! let q = query::parse_query(&pairs, &ParseOptions::new(Endpoint::Balance)).expect("valid");
//! let accounts = vec![]; // from the store or the providers
//! let rates = RateTable::from_accounts(RateTable::default().base().clone(), &accounts);
//! let answer = query::balance(&accounts, &q, &rates).expect("no overflow");
//! assert_eq!(answer.total.rounded.to_string(), "0.00");
//! ```

pub mod cursor;
pub mod filter;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod fixtures;
pub mod group;
pub mod page;
pub mod param_error;
pub mod params;
mod search;
pub mod select;
pub mod sort;

pub use cursor::{ChangeCursor, Cursor};
pub use filter::{BalanceRange, FieldOp, FieldSearch, Filter, SearchField};
pub use group::{BalanceAnswer, Details, Group, balance};
pub use page::{ListData, ListGroup, ListPage, list};
pub use params::{
    ALIASES, Endpoint, ParamError, ParseOptions, Query, Stack, parse_instant, parse_query,
};
pub use select::{Amount, ConvertedAccount, QueryError, Unconverted};
pub use sort::{KeyValue, SortField, SortKey, SortSpec};
