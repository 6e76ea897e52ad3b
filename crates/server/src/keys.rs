//! API keys: random, shown once, stored as SHA-256 hashes (the keys are 256-bit random, so a
//! fast hash is enough; there is nothing to brute-force). Roles `admin` and `reader`; a reader's
//! scope is a list of customers.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use coffer_store::{Actor, ApiKey, NewApiKey, Role, Scope, Store};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// Prefix of every key Coffer issues, so a leaked one is recognisable by secret scanners.
pub const KEY_PREFIX: &str = "coffer_";

/// A new random key (256 bits, hex).
pub fn generate_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{KEY_PREFIX}{}", hex::encode(bytes))
}

/// The stored form of a key.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Creates a key in the store and returns it in clear (the only time it exists in clear).
pub async fn create_key(
    store: &dyn Store,
    role: Role,
    customers: Vec<String>,
    expires_at: Option<DateTime<Utc>>,
    by: &Actor,
) -> Result<(String, ApiKey), coffer_store::StoreError> {
    let key = generate_key();
    let new = NewApiKey {
        hash: hash_key(&key),
        role,
        customers,
        expires_at,
    };
    let stored = store.insert_api_key_by(&new, by).await?;
    Ok((key, stored))
}

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key's id (never the key); `bootstrap` for `COFFER_ADMIN_KEY`.
    pub key_id: String,
    pub role: Role,
    /// Readers: their customers.
    pub customers: Arc<Vec<String>>,
    /// After it the key answers 401 (`key_expired`).
    pub expires_at: Option<DateTime<Utc>>,
    /// This request's `x-request-id`, for the audit log.
    pub request_id: Option<String>,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Who makes a change, as the audit log names them.
    pub fn actor(&self) -> Actor {
        Actor::key(&self.key_id, self.request_id.as_deref())
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }

    /// Whether the caller may see this customer. A reader asking for another customer gets the
    /// same 404 a missing one gets.
    pub fn can_see(&self, customer_id: &str) -> bool {
        self.is_admin() || self.customers.iter().any(|c| c == customer_id)
    }

    /// The store scope for a request, given the optional `customer_id` parameter.
    pub fn scope(&self, customer_id: Option<&str>) -> Scope {
        match (customer_id, self.is_admin()) {
            (Some(c), _) => Scope::Customers(if self.can_see(c) {
                vec![c.to_owned()]
            } else {
                vec![]
            }),
            (None, true) => Scope::All,
            (None, false) => Scope::Customers(self.customers.as_ref().clone()),
        }
    }
}

/// Resolves keys to callers, with a short in-memory cache so a request does not cost a database
/// round trip. A revoked key stops working within `ttl`.
pub struct KeyResolver {
    store: Arc<dyn Store>,
    bootstrap_hash: Option<String>,
    cache: moka::future::Cache<String, Option<Caller>>,
}

impl KeyResolver {
    /// `max_bytes`: what the resolved keys may hold (a reader's key carries its customer list).
    pub fn new(
        store: Arc<dyn Store>,
        bootstrap_key: Option<&str>,
        ttl: Duration,
        max_bytes: u64,
    ) -> Self {
        Self {
            store,
            bootstrap_hash: bootstrap_key.filter(|k| !k.is_empty()).map(hash_key),
            cache: moka::future::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|k: &String, v: &Option<Caller>| weight(k, v))
                .eviction_listener(|_, _, cause| crate::metrics::cache_eviction("keys", cause))
                .time_to_live(ttl)
                .build(),
        }
    }

    /// The bytes held now, by the weights the cache is bounded by.
    pub fn weighed_bytes(&self) -> u64 {
        self.cache.weighted_size()
    }

    pub async fn resolve(&self, key: &str) -> Result<Option<Caller>, ApiError> {
        let hash = hash_key(key);
        if self.bootstrap_hash.as_deref() == Some(hash.as_str()) {
            return Ok(Some(Caller {
                key_id: "bootstrap".into(),
                role: Role::Admin,
                customers: Arc::new(vec![]),
                expires_at: None,
                request_id: None,
            }));
        }
        if let Some(c) = self.cache.get(&hash).await {
            return Ok(c);
        }
        let found = self.store.api_key_by_hash(&hash).await?;
        let caller = found.filter(|k| k.revoked_at.is_none()).map(|k| Caller {
            key_id: k.id,
            role: k.role,
            customers: Arc::new(k.customers),
            expires_at: k.expires_at,
            request_id: None,
        });
        if let Some(c) = &caller {
            // Last use, to the cache's time to live: one write per key per replica per 30 s,
            // off the request's path.
            let (store, id) = (Arc::clone(&self.store), c.key_id.clone());
            tokio::spawn(async move {
                if let Err(e) = store.touch_api_key(&id, Utc::now()).await {
                    tracing::debug!(key = %id, error = %e, "last use of the key not recorded");
                }
            });
        }
        self.cache.insert(hash, caller.clone()).await;
        Ok(caller)
    }

    pub fn invalidate_all(&self) {
        self.cache.invalidate_all();
    }
}

/// What a resolved key (or the memory that it resolves to nothing) costs the key cache.
fn weight(hash: &str, caller: &Option<Caller>) -> u32 {
    let owned = caller.as_ref().map_or(0, |c| {
        c.key_id.capacity() + c.customers.iter().map(|s| s.capacity() + 24).sum::<usize>()
    });
    crate::weigh::saturate(
        crate::weigh::ENTRY_OVERHEAD + hash.len() + std::mem::size_of::<Option<Caller>>() + owned,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_hash_stably() {
        let a = generate_key();
        let b = generate_key();
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX));
        assert_eq!(a.len(), KEY_PREFIX.len() + 64);
        assert_eq!(hash_key(&a), hash_key(&a));
        assert_ne!(hash_key(&a), hash_key(&b));
    }

    #[test]
    fn reader_scope_is_intersected() {
        let reader = Caller {
            key_id: "k".into(),
            role: Role::Reader,
            customers: Arc::new(vec!["a".into()]),
            expires_at: None,
            request_id: None,
        };
        assert_eq!(reader.scope(Some("a")), Scope::Customers(vec!["a".into()]));
        assert_eq!(reader.scope(Some("b")), Scope::Customers(vec![]));
        assert_eq!(reader.scope(None), Scope::Customers(vec!["a".into()]));
        let admin = Caller {
            key_id: "k".into(),
            role: Role::Admin,
            customers: Arc::new(vec![]),
            expires_at: None,
            request_id: None,
        };
        assert_eq!(admin.scope(None), Scope::All);
    }
}
