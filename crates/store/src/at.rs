//! Balances at an instant: the rows both backends read for [`crate::Store::held_at`], turned
//! into domain values the same way.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use coffer_core::Account;

use crate::rows::{self, AccountCols};
use crate::{HeldAt, Observation, Result};

/// One account version as read, with the observation it is served from.
pub(crate) struct VersionCols {
    pub account: AccountCols,
    pub valid_from: DateTime<Utc>,
}

pub(crate) struct ObservationCols {
    pub customer_id: String,
    pub provider_id: String,
    pub observed_at: DateTime<Utc>,
    pub rejected: String,
}

/// `account.fetched_at` must already be the observation's instant. An account that moved
/// between pairs can be open in both pairs' versions: the newer version (where it went) wins.
pub(crate) fn held(
    versions: Vec<VersionCols>,
    observations: Vec<ObservationCols>,
    unobserved: Vec<(String, String)>,
) -> Result<HeldAt> {
    let mut newest: HashMap<String, (DateTime<Utc>, Account)> = HashMap::new();
    for v in versions {
        let a = v.account.into_account()?;
        match newest.get(&a.id) {
            Some((from, _)) if *from >= v.valid_from => {}
            _ => {
                newest.insert(a.id.clone(), (v.valid_from, a));
            }
        }
    }
    let mut accounts: Vec<Account> = newest.into_values().map(|(_, a)| a).collect();
    accounts.sort_by(|a, b| a.id.cmp(&b.id));
    let observations = observations
        .into_iter()
        .map(|o| {
            Ok(Observation {
                rejected: rows::strings(&o.rejected)?,
                customer_id: o.customer_id,
                provider_id: o.provider_id,
                observed_at: o.observed_at,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(HeldAt {
        accounts,
        observations,
        unobserved,
    })
}
