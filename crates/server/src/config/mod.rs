//! Configuration: defaults → `coffer.toml` → `COFFER_SECTION__KEY` environment overrides, in one
//! typed struct validated at start-up. Secrets are never read from the file: the file names the
//! environment variable that holds each one.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytesize::ByteSize;
use coffer_core::Currency;
use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

mod env;
mod push;

pub use env::env_key;
pub use push::{AlertsConfig, EventsConfig, SubscriptionsConfig, WebhooksConfig};

/// The whole configuration. Every key has a default, so an empty file is valid.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub cache: CacheConfig,
    pub sync: SyncConfig,
    pub rates: RatesConfig,
    pub log: LogConfig,
    pub telemetry: TelemetryConfig,
    pub history: HistoryConfig,
    pub providers: Vec<ProviderConfig>,
    pub webhooks: WebhooksConfig,
    pub subscriptions: SubscriptionsConfig,
    pub alerts: AlertsConfig,
    pub events: EventsConfig,
}

/// Answers at a past instant (`at=`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    /// A pair whose last observation before the instant is older than this is served with a
    /// `gap` warning (the value may have changed unseen). Default: twice `sync.interval`.
    #[serde(with = "humantime_serde")]
    pub max_gap: Option<Duration>,
    /// How long after an instant its answers may still change: a fetch that began before the
    /// instant is written when it ends, with the instant the provider answered. An `at` more
    /// recent than this is answered with an `unsettled` warning. Default: 60 s.
    #[serde(with = "humantime_serde")]
    pub settle: Option<Duration>,
    /// How long history is kept: older observations, account versions, balance history and
    /// rate versions are pruned, keeping the state at the horizon (now − retention), so answers
    /// at and after it do not change. Default: everything is kept.
    #[serde(with = "humantime_serde")]
    pub retention: Option<Duration>,
    /// How often one replica prunes (with `retention`). Default: hourly.
    #[serde(with = "humantime_serde")]
    pub prune_interval: Option<Duration>,
}

impl HistoryConfig {
    /// The oldest instant answered, when history is pruned: now − `retention`.
    pub fn horizon(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        let keep = chrono::TimeDelta::from_std(self.retention?).ok()?;
        now.checked_sub_signed(keep)
    }
}

impl Config {
    /// `history.max_gap`, or its default.
    pub fn max_gap(&self) -> Duration {
        self.history.max_gap.unwrap_or(self.sync.interval * 2)
    }

    /// `history.settle`, or its default.
    pub fn settle(&self) -> Duration {
        self.history.settle.unwrap_or(Duration::from_secs(60))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Whole-request timeout (the client gets 503 after it).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Origins allowed by CORS; empty means CORS is off, `["*"]` allows any.
    pub cors_origins: Vec<String>,
    /// Requests per second allowed per API key (token bucket); 0 turns the limit off.
    pub rate_limit_per_key: u32,
    /// Burst size of the per-key bucket.
    pub rate_limit_burst: u32,
    /// From SIGTERM, the longest the process takes to stop: requests still in flight when it
    /// has passed are cut.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// From SIGTERM, how long the listener keeps accepting (with `/readyz` at 503) before it
    /// closes, so load balancers that poll readiness stop sending first. Part of the grace.
    #[serde(with = "humantime_serde")]
    pub shutdown_delay: Duration,
    /// Largest page a list request may ask for.
    pub max_page_size: u32,
    /// Where `/metrics` is also served, on its own (e.g. a port only Prometheus can reach).
    pub metrics_listen: Option<SocketAddr>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            request_timeout: Duration::from_secs(30),
            cors_origins: Vec::new(),
            rate_limit_per_key: 100,
            rate_limit_burst: 200,
            shutdown_grace: Duration::from_secs(20),
            shutdown_delay: Duration::ZERO,
            max_page_size: 1000,
            metrics_listen: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://coffer.db`, `sqlite::memory:` or `postgres://user@host/db`. A password may be
    /// given by `COFFER_DATABASE__URL` in the environment instead of the file.
    pub url: String,
    /// Apply migrations when `coffer serve` starts.
    pub migrate_on_start: bool,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://coffer.db".into(),
            migrate_on_start: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// How long a customer's answer is served from memory without asking again.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// How old a stored snapshot may be and still be served (flagged stale) when its provider
    /// fails. Beyond it the provider's accounts are left out and the answer is `partial`.
    #[serde(with = "humantime_serde")]
    pub stale_if_error: Duration,
    /// How long an answer that holds a provider failure stays in memory, so recovery is seen soon.
    #[serde(with = "humantime_serde")]
    pub error_ttl: Duration,
    /// Memory for every in-memory cache together, weighed in bytes (`"192 MiB"`), split as
    /// [`CacheConfig::budget`] says. Bounds the process's cached data whatever the number of
    /// customers or accounts: past it the least useful entries are evicted, never an error.
    pub max_bytes: ByteSize,
}

/// Shares of `cache.max_bytes`, in percent: customer views (L1), the last-known views (the
/// answer of last resort while the store is down; they share their views with L1, so a
/// customer in both costs its bytes once), serialised answers, resolved API keys.
pub const CACHE_SHARES: [(&str, u64); 4] = [
    ("views", 40),
    ("last_known", 30),
    ("answers", 25),
    ("keys", 5),
];

impl CacheConfig {
    /// The bytes of one cache's share of `max_bytes`.
    pub fn budget(&self, cache: &str) -> u64 {
        let share = CACHE_SHARES
            .iter()
            .find(|(name, _)| *name == cache)
            .map_or(0, |(_, pct)| *pct);
        self.max_bytes.as_u64() / 100 * share
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(30),
            stale_if_error: Duration::from_secs(24 * 3600),
            error_ttl: Duration::from_secs(5),
            // The shipped manifests give a pod 512 MiB; the rest of the process (runtime,
            // pools, requests in flight, allocator slack) stays within the remainder.
            max_bytes: ByteSize::mib(192),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncConfig {
    pub enabled: bool,
    /// Every linked (customer, provider) pair is refreshed this often.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Provider fetches in flight at once, per replica.
    pub concurrency: usize,
    /// Pairs leased per round trip to the database, and the most written per transaction.
    pub batch: u32,
    /// How long a lease lasts; a replica that dies loses its pairs after this.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// Longest wait between retries of a failing pair.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// How often a pair the provider does not know (or has not verified) is retried.
    #[serde(with = "humantime_serde")]
    pub unknown_customer_retry: Duration,
    /// How long the worker waits when nothing is due.
    #[serde(with = "humantime_serde")]
    pub idle_poll: Duration,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: Duration::from_secs(300),
            concurrency: 32,
            batch: 64,
            lease: Duration::from_secs(60),
            max_backoff: Duration::from_secs(3600),
            unknown_customer_retry: Duration::from_secs(6 * 3600),
            idle_poll: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RatesConfig {
    pub base: String,
    /// Manual rates: value of one unit in the base currency, as decimal strings.
    pub manual: BTreeMap<String, String>,
}

impl Default for RatesConfig {
    fn default() -> Self {
        Self {
            base: "EUR".into(),
            manual: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` (readable) or `json`.
    pub format: String,
    /// A `tracing` filter, e.g. `info,coffer_server=debug`; `RUST_LOG` wins when set.
    pub level: String,
    /// One `info` line per request served (method, route, status, duration).
    pub access: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "text".into(),
            level: "info".into(),
            access: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// OTLP/gRPC endpoint for traces; `OTEL_EXPORTER_OTLP_ENDPOINT` is used when unset.
    pub otlp_endpoint: Option<String>,
    pub service_name: Option<String>,
}

/// One configured provider instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Instance id, used in account ids and links (`p100`, `bank`).
    pub id: String,
    /// Which adapter: `p100` or `corebanq`.
    pub kind: String,
    pub base_url: String,
    /// Name of the environment variable holding the API key or token.
    pub api_key_env: String,
    #[serde(default = "default_provider_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Calls per second the whole deployment may make to this provider (0 = unlimited).
    #[serde(default)]
    pub rate_limit: u32,
    /// Retries of a retryable failure within one request.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// The currency the provider is asked to value balances in (Corebanq `currency=`).
    #[serde(default)]
    pub quote_currency: Option<String>,
    /// The longest `Retry-After` honoured: a provider asking for more is treated as "not
    /// now" and asked again after this long.
    #[serde(default = "default_max_retry_after", with = "humantime_serde")]
    pub max_retry_after: Duration,
    /// Name of the environment variable holding the provider's webhook token (P100 only):
    /// set, `POST /v2/webhooks/{id}` accepts this provider's deliveries.
    #[serde(default)]
    pub webhook_secret_env: Option<String>,
}

impl ProviderConfig {
    /// A provider section with its required keys only, every other key at the default a config
    /// file gives it.
    pub fn new(id: &str, kind: &str, base_url: &str, api_key_env: &str) -> Self {
        ProviderConfig {
            id: id.into(),
            kind: kind.into(),
            base_url: base_url.into(),
            api_key_env: api_key_env.into(),
            timeout: default_provider_timeout(),
            rate_limit: 0,
            retries: default_retries(),
            quote_currency: None,
            max_retry_after: default_max_retry_after(),
            webhook_secret_env: None,
        }
    }
}

fn default_max_retry_after() -> Duration {
    crate::provider::DEFAULT_MAX_RETRY_AFTER
}

fn default_provider_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_retries() -> u32 {
    2
}

/// A configuration problem, naming the key and where it came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(String),
    #[error("configuration key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

impl Config {
    /// Loads defaults, then the file (if given or `COFFER_CONFIG` names one), then `COFFER_…`
    /// environment overrides (`COFFER_SERVER__LISTEN=0.0.0.0:8080`).
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let path: Option<PathBuf> = path
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("COFFER_CONFIG").map(PathBuf::from));
        Self::load_layers(path, |fig| fig.merge(env::process()))
    }

    /// As `load` would with exactly `vars` (name, value) as the environment instead of the
    /// process's (and `path` the file, whatever `COFFER_CONFIG` says).
    pub fn load_with_vars(
        path: Option<&Path>,
        vars: &[(String, String)],
    ) -> Result<Self, ConfigError> {
        Self::load_layers(path.map(Path::to_path_buf), |fig| {
            env::merge_vars(fig, vars)
        })
    }

    /// Defaults, then the file, then the environment `env` layers on.
    fn load_layers(
        path: Option<PathBuf>,
        env: impl FnOnce(Figment) -> Figment,
    ) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(p) = &path {
            if !p.exists() {
                return Err(ConfigError::Load(format!(
                    "file {} does not exist",
                    p.display()
                )));
            }
            fig = fig.merge(Toml::file(p));
        }
        fig = env(fig);
        let cfg: Config = fig.extract().map_err(|e| {
            let at = path
                .as_ref()
                .map(|p| format!(" in {}", p.display()))
                .unwrap_or_default();
            ConfigError::Load(format!("{e}{at}"))
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks what serde cannot: currencies, decimals, provider kinds and ids.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            key: key.into(),
            message,
        };
        Currency::known(&self.rates.base).ok_or_else(|| {
            invalid(
                "rates.base",
                format!("`{}` is not a known currency", self.rates.base),
            )
        })?;
        for (cur, val) in &self.rates.manual {
            let key = format!("rates.manual.{cur}");
            Currency::known(cur)
                .ok_or_else(|| invalid(&key, format!("`{cur}` is not a known currency")))?;
            let v: Decimal = val
                .parse()
                .map_err(|_| invalid(&key, format!("`{val}` is not a decimal number")))?;
            if v <= Decimal::ZERO {
                return Err(invalid(&key, "a rate must be greater than 0".into()));
            }
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err(invalid(
                "log.format",
                format!("`{}`: expected `text` or `json`", self.log.format),
            ));
        }
        let s = &self.server;
        if !s.shutdown_delay.is_zero() && s.shutdown_delay >= s.shutdown_grace {
            return Err(invalid(
                "server.shutdown_delay",
                "must be shorter than server.shutdown_grace (the delay is part of it)".into(),
            ));
        }
        if self.server.max_page_size == 0 {
            return Err(invalid("server.max_page_size", "must be at least 1".into()));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, p) in self.providers.iter().enumerate() {
            let key = |k: &str| format!("providers[{i}].{k}");
            let kinds = crate::registry::kinds();
            // Only P100's webhooks are understood (DESIGN.md "What the providers really do").
            if p.webhook_secret_env.is_some() && p.kind != "p100" {
                return Err(invalid(
                    &key("webhook_secret_env"),
                    format!("`{}` sends no webhooks Coffer understands", p.kind),
                ));
            }
            if !kinds.contains(&p.kind.as_str()) {
                return Err(invalid(
                    &key("kind"),
                    format!("`{}`: expected one of {}", p.kind, kinds.join(", ")),
                ));
            }
            if p.id.is_empty()
                || !p
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            {
                return Err(invalid(
                    &key("id"),
                    format!("`{}`: 1+ characters of A-Za-z0-9._-", p.id),
                ));
            }
            if !seen.insert(p.id.clone()) {
                return Err(invalid(
                    &key("id"),
                    format!("`{}` is configured twice", p.id),
                ));
            }
            if let Some(q) = &p.quote_currency {
                Currency::known(q).ok_or_else(|| {
                    invalid(
                        &key("quote_currency"),
                        format!("`{q}` is not a known currency"),
                    )
                })?;
            }
        }
        Ok(())
    }

    pub fn base_currency(&self) -> Currency {
        Currency::new(&self.rates.base)
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail closures return figment::Error
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn file_and_env_layer() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "coffer.toml",
                r#"
                [server]
                listen = "127.0.0.1:9000"
                [cache]
                ttl = "10s"
                [rates]
                manual = { USD = "0.92" }
                [[providers]]
                id = "p100"
                kind = "p100"
                base_url = "http://localhost:1"
                api_key_env = "P100_API_KEY"
                "#,
            )?;
            jail.set_env("COFFER_SERVER__LISTEN", "127.0.0.1:9100");
            let cfg = Config::load(Some(Path::new("coffer.toml"))).unwrap();
            assert_eq!(cfg.server.listen.port(), 9100);
            assert_eq!(cfg.cache.ttl, Duration::from_secs(10));
            assert_eq!(cfg.providers[0].timeout, Duration::from_secs(5));
            assert_eq!(cfg.rates.manual["USD"], "0.92");
            Ok(())
        });
    }

    #[test]
    fn bad_values_name_the_key() {
        let mut cfg = Config::default();
        cfg.rates.manual.insert("USD".into(), "abc".into());
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("rates.manual.USD"), "{err}");
        let mut cfg = Config::default();
        cfg.providers.push(ProviderConfig {
            id: "x".into(),
            kind: "nope".into(),
            base_url: "http://x".into(),
            api_key_env: "X".into(),
            timeout: Duration::from_secs(1),
            rate_limit: 0,
            retries: 0,
            quote_currency: None,
            max_retry_after: crate::provider::DEFAULT_MAX_RETRY_AFTER,
            webhook_secret_env: None,
        });
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("providers[0].kind"), "{err}");
    }

    #[test]
    fn a_new_provider_config_has_the_defaults_of_a_file() {
        let file: ProviderConfig =
            toml::from_str("id = 'p'\nkind = 'p100'\nbase_url = 'http://x'\napi_key_env = 'K'")
                .unwrap();
        let new = ProviderConfig::new("p", "p100", "http://x", "K");
        assert_eq!(format!("{new:?}"), format!("{file:?}"));
    }

    #[test]
    fn coffer_variables_that_are_not_keys_are_left_alone() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("COFFER_REQUIRE_POSTGRES", "1");
            jail.set_env("COFFER_ADMIN_KEY", "k");
            jail.set_env("COFFER_CACHE__TTL", "7s");
            let cfg = Config::load(None).unwrap();
            assert_eq!(cfg.cache.ttl, Duration::from_secs(7));
            jail.set_env("COFFER_CACHE__TTLL", "7s");
            let err = Config::load(None).unwrap_err().to_string();
            assert!(err.contains("ttll"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_rejected() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("coffer.toml", "[server]\nlisen = \"x\"\n")?;
            let err = Config::load(Some(Path::new("coffer.toml")))
                .unwrap_err()
                .to_string();
            assert!(err.contains("lisen"), "{err}");
            Ok(())
        });
    }
}
