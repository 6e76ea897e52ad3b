//! Environment variables as configuration: `COFFER_SECTION__KEY` sets `section.key`. One mapping
//! serves the process's environment (`Config::load`, through figment's `Env`) and a given list of
//! variables (`Config::load_with_vars`, with which the deploy tests check every variable the
//! manifests set), so the two cannot disagree.

use figment::Figment;
use figment::providers::{Env, Serialized};
use figment::value::Value;

const PREFIX: &str = "COFFER_";

/// The key a variable names after its prefix: `SERVER__LISTEN` → `server.listen`. A variable
/// without `__` is not a config key (`COFFER_CONFIG`, `COFFER_ADMIN_KEY`,
/// `COFFER_REQUIRE_POSTGRES` for the tests) and is left alone; one with `__` must name a real
/// key, or loading fails naming it.
fn key_of(rest: &str) -> Option<String> {
    rest.contains("__").then(|| rest.replace("__", "."))
}

/// The configuration key an environment variable sets (`COFFER_SERVER__LISTEN` →
/// `server.listen`), or `None` for one that sets none; as figment's `Env` reads it: the name
/// trimmed, the prefix in any case, no empty segment, lowercased.
pub fn env_key(var: &str) -> Option<String> {
    let var = var.trim();
    let prefix = var.get(..PREFIX.len())?;
    if !prefix.eq_ignore_ascii_case(PREFIX) {
        return None;
    }
    let key = key_of(&var[PREFIX.len()..])?;
    let key = key.trim();
    (!key.split('.').any(str::is_empty)).then(|| key.to_ascii_lowercase())
}

/// The process's `COFFER_SECTION__KEY` variables.
pub(super) fn process() -> Env {
    Env::prefixed(PREFIX).filter_map(|k| key_of(k.as_str()).map(Into::into))
}

/// `vars` layered onto `fig` as `process()` layers the process's: the same keys, each value
/// typed as figment types an environment value (`8080` a number, `true` a bool).
pub(super) fn merge_vars(mut fig: Figment, vars: &[(String, String)]) -> Figment {
    for (var, value) in vars {
        if let Some(key) = env_key(var) {
            let value: Value = value.parse().unwrap_or_else(|e| match e {});
            fig = fig.merge(Serialized::global(&key, value));
        }
    }
    fig
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_name_keys_as_figment_reads_them() {
        assert_eq!(
            env_key("COFFER_SERVER__LISTEN").as_deref(),
            Some("server.listen")
        );
        assert_eq!(env_key(" coffer_Cache__TTL ").as_deref(), Some("cache.ttl"));
        assert_eq!(env_key("COFFER_ADMIN_KEY"), None);
        assert_eq!(env_key("COFFER_CONFIG"), None);
        assert_eq!(env_key("COFFER_SERVER____LISTEN"), None);
        assert_eq!(env_key("OTHER_SERVER__LISTEN"), None);
        assert_eq!(env_key("COFFER"), None);
    }
}
