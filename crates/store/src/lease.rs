//! Lease arithmetic both backends share (sync pairs, webhook deliveries, subscription
//! deliveries): when a lease taken now for `lease_for` ends.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::{Result, StoreError};

/// `now + lease_for`, or an error naming the duration when no calendar can hold it.
pub(crate) fn lease_until(now: DateTime<Utc>, lease_for: Duration) -> Result<DateTime<Utc>> {
    chrono::Duration::from_std(lease_for)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .ok_or_else(|| StoreError::Other(format!("lease duration {lease_for:?} is too long")))
}
