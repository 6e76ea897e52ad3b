//! The provider registry: the one place that knows every provider `kind`. Adding a provider is
//! one crate and one line in [`REGISTRY`]. Apart from `providers.rs` (which builds the configured
//! stacks) so that the configuration can check kinds without importing what it configures.

use coffer_core::ProviderFactory;

/// Every provider kind a config may name, and how to build it. Adding a provider is one crate
/// and one line here.
pub const REGISTRY: &[(&str, ProviderFactory)] = &[
    (coffer_provider_p100::KIND, coffer_provider_p100::factory),
    (
        coffer_provider_corebanq::KIND,
        coffer_provider_corebanq::factory,
    ),
];

/// The kinds of [`REGISTRY`].
pub fn kinds() -> Vec<&'static str> {
    REGISTRY.iter().map(|(k, _)| *k).collect()
}
