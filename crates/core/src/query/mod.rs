//! The query engine: pure functions over `&[Account]` and a rate table.
//!
//! Entry points for the server, one per endpoint:
//! - [`parse_query`] turns the raw query pairs into a typed [`Query`] (or a [`ParamError`]
//!   naming the parameter), for either [`Endpoint`];
//! - [`balance`] answers `GET /v2/accounts/balance` with a [`BalanceAnswer`];
//! - [`list`] answers `GET /v2/accounts` with a [`ListPage`].
//!
//! Both take the accounts the caller may see (the server applies scope before), the query, and
//! a [`RateTable`](crate::rates::RateTable) built for this query. They return typed answers, not
//! JSON: the server maps them into its own API bodies.

pub mod cursor;
pub mod filter;
pub mod params;
mod search;
pub mod sort;

pub use cursor::Cursor;
pub use filter::{BalanceRange, FieldOp, FieldSearch, Filter, SearchField};
pub use params::{ALIASES, Endpoint, ParamError, ParseOptions, Query, Stack, parse_query};
pub use sort::{SortField, SortKey, SortSpec};
