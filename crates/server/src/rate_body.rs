//! A rate as every body shows it: the rate tables and answers of the API, the rates an alert's
//! `threshold.crossed` event carries, the exports. Outside `routes/` so that what writes events
//! need not import the routes.

use chrono::{DateTime, Utc};
use coffer_core::rates::Rate;
use serde::Serialize;
use utoipa::ToSchema;

/// One rate of a rate table.
#[derive(Debug, Serialize, ToSchema)]
pub struct RateOut {
    pub currency: String,
    /// One unit of `currency` is worth `rate` units of `quote`.
    #[schema(value_type = String, example = "0.92")]
    pub rate: String,
    pub quote: String,
    /// `manual` or `provider`.
    pub source: String,
    pub provider: Option<String>,
    pub as_of: DateTime<Utc>,
}

impl From<&Rate> for RateOut {
    fn from(r: &Rate) -> Self {
        RateOut {
            currency: r.currency.to_string(),
            rate: r.value.to_string(),
            quote: r.quote.to_string(),
            source: r.source.as_str().to_owned(),
            provider: r.provider.clone(),
            as_of: r.as_of,
        }
    }
}

/// A rate table's rates as bodies.
pub fn rates(r: &[Rate]) -> Vec<RateOut> {
    r.iter().map(RateOut::from).collect()
}
