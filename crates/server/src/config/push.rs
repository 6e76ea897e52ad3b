//! The push sections of the configuration: the webhook inbox (`[webhooks]`), deliveries to
//! subscriptions (`[subscriptions]`), the outbox's retention (`[events]`) and alerts
//! (`[alerts]`). Part of [`super::Config`]; apart so each file holds one concern.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The webhook inbox's processor (`[webhooks]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Whether this replica processes the inbox; every replica receives deliveries either way.
    pub process: bool,
    /// How often a replica looks for deliveries another replica received (its own wake it at
    /// once).
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// How long a delivery is leased while processed; a replica that dies loses it after this.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// Deliveries leased per round trip.
    pub batch: u32,
    /// Deliveries processed at once (each one provider call and a few writes), per replica.
    pub concurrency: usize,
    /// How long a delivery is kept once processed (`processed` or `ignored`), pruned by the
    /// task of `history.retention` (`retention.rs`); `pending` and `failed` ones are kept
    /// until they are processed. Zero keeps everything.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
}

/// Default `webhooks.retention`: a month to look back at what a provider sent.
pub const DEFAULT_WEBHOOK_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            process: true,
            poll_interval: Duration::from_secs(5),
            lease: Duration::from_secs(60),
            batch: 128,
            concurrency: 1024,
            retention: DEFAULT_WEBHOOK_RETENTION,
        }
    }
}

/// Delivering events to subscriptions (`[subscriptions]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SubscriptionsConfig {
    /// Whether this replica delivers (any number of replicas may: deliveries are leased).
    pub deliver: bool,
    /// How often a replica looks for retries due and events it was not woken for.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// How long a delivery attempt is leased; keep it above `timeout`.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// How long a receiver has to answer one delivery.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Deliveries leased per round trip (and sent at once).
    pub batch: u32,
    /// The first retry's wait; each later one doubles it, up to `max_backoff`.
    #[serde(with = "humantime_serde")]
    pub retry_base: Duration,
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// A subscription failing without a success for this long is disabled.
    #[serde(with = "humantime_serde")]
    pub disable_after: Duration,
}

impl Default for SubscriptionsConfig {
    fn default() -> Self {
        Self {
            deliver: true,
            poll_interval: Duration::from_secs(1),
            lease: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            batch: 16,
            retry_base: Duration::from_secs(5),
            max_backoff: Duration::from_secs(3600),
            disable_after: Duration::from_secs(3 * 24 * 3600),
        }
    }
}

/// The outbox's retention (pruned by the task of `history.retention`, `retention.rs`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// How long events and finished subscription deliveries are kept; an event a pending
    /// delivery or a subscription's fan-out still needs is kept until it is not. Default:
    /// everything is kept.
    #[serde(with = "humantime_serde")]
    pub retention: Option<Duration>,
}

/// Alerts' evaluation (DESIGN.md "Push", Alerts).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// Whether this replica evaluates alerts (any number may: evaluations are compare-and-set).
    pub evaluate: bool,
    /// Besides the events that wake it: how often every alert is evaluated, so a rate change
    /// alone is seen.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            evaluate: true,
            interval: Duration::from_secs(60),
        }
    }
}
