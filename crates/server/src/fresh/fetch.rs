//! The loader's provider fetches: one pair through its provider's stack, written at once (a
//! request's) or handed back unwritten (the sync worker's, written in batches), and bounded by
//! a request's deadline.

use std::sync::Arc;
use std::time::Instant;

use chrono::SubsecRound;
use coffer_core::{Account, ProviderError, ProviderErrorKind};
use coffer_store::SnapshotMeta;
use tracing::Instrument;

use super::Freshness;

impl Freshness {
    /// Fetches and writes one pair, waiting at most until `deadline`: past it, the fetch goes
    /// on (and is written, and this customer dropped from L1, when it ends) and the caller gets
    /// a timeout naming the deadline.
    pub(super) async fn fetch_by(
        self: &Arc<Self>,
        customer_id: &str,
        provider_id: &str,
        external_id: &str,
        fresh_after: Option<Instant>,
        deadline: Option<Instant>,
    ) -> Result<(Vec<Account>, SnapshotMeta), ProviderError> {
        let Some(deadline) = deadline else {
            return self
                .fetch_pair(customer_id, provider_id, external_id, fresh_after)
                .await;
        };
        let this = Arc::clone(self);
        let (cid, pid, ext) = (
            customer_id.to_owned(),
            provider_id.to_owned(),
            external_id.to_owned(),
        );
        let mut handle =
            // In the request's span, so the provider call stays in the request's trace.
            tokio::spawn(
                async move { this.fetch_pair(&cid, &pid, &ext, fresh_after).await }
                    .instrument(tracing::Span::current()),
            );
        match tokio::time::timeout_at(deadline.into(), &mut handle).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(ProviderError::new(
                provider_id,
                ProviderErrorKind::Unexpected,
                "the provider call failed inside Coffer (a panic, logged)",
            )
            .retryable(false)),
            Err(_) => {
                let this = Arc::clone(self);
                let cid = customer_id.to_owned();
                tokio::spawn(async move {
                    if let Ok(Ok(_)) = handle.await {
                        this.invalidate(&cid).await;
                    }
                });
                Err(ProviderError::new(
                    provider_id,
                    ProviderErrorKind::Timeout,
                    "no answer before the request's deadline (server.request_timeout); the fetch goes on in the background",
                ))
            }
        }
    }

    /// Fetches one pair through its provider's stack (coalesced with a call in flight that
    /// gives data fetched after `fresh_after`), without writing it: the sync worker writes its
    /// snapshots in batches (and drops the customers from L1 then).
    pub async fn fetch_snapshot(
        &self,
        customer_id: &str,
        provider_id: &str,
        external_id: &str,
        fresh_after: Option<Instant>,
    ) -> Result<(Vec<Account>, SnapshotMeta), ProviderError> {
        let provider = self.providers.get(provider_id).ok_or_else(|| {
            ProviderError::new(
                provider_id,
                ProviderErrorKind::Unexpected,
                "provider is not configured",
            )
            .retryable(false)
        })?;
        let mut snapshot = provider.fetch(external_id, fresh_after).await?;
        // The stores keep microseconds: an answer must show the same `as_of` whether it was just
        // fetched or read back from the store.
        snapshot.fetched_at = snapshot.fetched_at.trunc_subsecs(6);
        let accounts = snapshot.to_accounts(customer_id, provider_id);
        let meta = SnapshotMeta {
            customer_id: customer_id.to_owned(),
            provider_id: provider_id.to_owned(),
            provider_customer_ref: snapshot.provider_customer_ref.clone(),
            fetched_at: snapshot.fetched_at,
            rejected: snapshot
                .rejected
                .iter()
                .map(|r| match &r.provider_account_id {
                    Some(id) => format!("{id}: {}", r.reason),
                    None => r.reason.clone(),
                })
                .collect(),
        };
        Ok((accounts, meta))
    }

    /// Fetches one (customer, provider) pair like [`Self::fetch_snapshot`] and writes the
    /// snapshot at once, announced to the other replicas.
    pub async fn fetch_pair(
        &self,
        customer_id: &str,
        provider_id: &str,
        external_id: &str,
        fresh_after: Option<Instant>,
    ) -> Result<(Vec<Account>, SnapshotMeta), ProviderError> {
        let (accounts, meta) = self
            .fetch_snapshot(customer_id, provider_id, external_id, fresh_after)
            .await?;
        self.save_fetched(customer_id, provider_id, &accounts, &meta)
            .await;
        Ok((accounts, meta))
    }

    /// Writes what [`Self::fetch_snapshot`] fetched, as [`Self::fetch_pair`] does (announcing
    /// it to the other replicas); a failed write is logged (the next fetch writes it again).
    pub async fn save_fetched(
        &self,
        customer_id: &str,
        provider_id: &str,
        accounts: &[Account],
        meta: &SnapshotMeta,
    ) {
        match self.store.save_snapshot(meta, accounts).await {
            Ok(_) => {
                if let Some(f) = &self.on_saved {
                    f(customer_id);
                }
            }
            // The answer is still good; the next fetch writes it again.
            Err(e) => {
                tracing::warn!(customer = customer_id, provider = provider_id, error = %e, "snapshot not saved");
            }
        }
    }
}
