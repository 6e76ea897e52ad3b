//! The query engine: pure functions over `&[Account]` and a rate table.

pub mod filter;

pub use filter::{BalanceRange, FieldOp, FieldSearch, Filter, SearchField};
