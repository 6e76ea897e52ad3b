//! Coffer's core: the account model every provider is normalised into, the currency registry,
//! exact money and rates, and the query engine.
//!
//! Architecture invariant: this crate does no I/O and knows nothing of HTTP, SQL, caches or async
//! runtimes. Everything here is a pure function of its inputs, so it can be tested exhaustively.
#![forbid(unsafe_code)]

pub mod account;
pub mod currency;
pub mod money;
pub mod provider;
pub mod query;
pub mod rates;

pub use account::{
    Account, BalanceType, BalanceTypeCounts, ProviderRate, Status, StatusParseError, Wallet,
};
pub use currency::{Currency, CurrencyParseError};
pub use money::{MoneyError, parse_decimal, round_for};
pub use provider::{
    BalanceProvider, HeaderFn, ProviderAccount, ProviderError, ProviderErrorKind, ProviderFactory,
    ProviderSettings, ProviderSnapshot, RejectedBalance,
};
pub use query::{
    BalanceAnswer, Endpoint, ListPage, ParamError, ParseOptions, Query, QueryError, balance, list,
    parse_query,
};
pub use rates::{ConvertError, Converted, Rate, RateSource, RateTable, ResolvedRate};
