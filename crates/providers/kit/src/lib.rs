//! What every HTTP provider adapter needs, written once: the [`Secret`] credential and the
//! [`ConfigError`]s of an adapter's config, the exact-number wire helpers ([`DecimalText`],
//! [`Lenient`]), the HTTP client and the one request's plumbing (body size cap, `Retry-After`,
//! transport errors, snippets), and the per-request [`HeaderHook`].
//!
//! A new adapter starts from here (docs/providers.md) and keeps only what is its provider's
//! own: the wire structs, the mapping, the request and the `parse_error` decisions, as one
//! [`HttpAdapter`]; the kit's [`HttpProvider`] makes the call, its span, logs and timing.
//!
//! Files: `adapter.rs` (the contract, and the provider made of it), `config.rs` (secret,
//! config errors, base URL), `http.rs` (client, body, errors, `Retry-After`), `wire.rs`
//! (numbers as their text, lenient list elements), `testing.rs` (feature `testing`: what
//! adapters' integration tests share).
#![forbid(unsafe_code)]

pub mod adapter;
pub mod config;
pub mod http;
pub mod wire;

#[cfg(feature = "testing")]
pub mod testing;

pub use adapter::{HttpAdapter, HttpProvider, Transport};
pub use config::{ConfigError, DEFAULT_TIMEOUT, Secret};
pub use http::{HeaderHook, header_hook};
pub use wire::{DecimalText, Lenient};
