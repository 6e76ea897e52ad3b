//! Reuse of computed answers. An answer about one customer is a function of the customer's
//! view (which has a generation per load), the manual rates (which have a generation per
//! change) and the question; while those three are the same, the serialised answer is reused
//! instead of filtering, converting, grouping and serialising again. Only fresh answers are
//! kept: a stale answer's warnings carry ages that grow.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::header;
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AnswerKey {
    endpoint: &'static str,
    view: u64,
    rates: u64,
    question: String,
}

impl AnswerKey {
    /// `question`: the request's query pairs, as sent (order matters; a reordered query is
    /// simply another entry).
    /// The bytes of the question this key holds (for weighing).
    pub fn question_len(&self) -> usize {
        self.question.capacity()
    }

    pub fn new(endpoint: &'static str, view: u64, rates: u64, pairs: &[(String, String)]) -> Self {
        let mut question = String::new();
        for (k, v) in pairs {
            question.push_str(k);
            question.push('\u{0}');
            question.push_str(v);
            question.push('\u{1}');
        }
        AnswerKey {
            endpoint,
            view,
            rates,
            question,
        }
    }
}

pub struct AnswerCache {
    cache: moka::future::Cache<AnswerKey, Bytes>,
}

impl AnswerCache {
    /// Entries live no longer than the views they were computed from (`ttl`), and weigh
    /// their bytes against `max_bytes`.
    pub fn new(ttl: Duration, max_bytes: u64) -> Self {
        let cache = moka::future::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|k: &AnswerKey, v: &Bytes| weight(k, v))
            .eviction_listener(|_, _, cause| crate::metrics::cache_eviction("answers", cause))
            .time_to_live(ttl.max(Duration::from_millis(1)))
            .build();
        AnswerCache { cache }
    }

    /// The bytes held now, by the weights the cache is bounded by.
    pub fn weighed_bytes(&self) -> u64 {
        self.cache.weighted_size()
    }

    pub async fn settle(&self) {
        self.cache.run_pending_tasks().await;
    }

    pub async fn get(&self, key: &AnswerKey) -> Option<Bytes> {
        let hit = self.cache.get(key).await;
        crate::metrics::answer_cache(hit.is_some());
        hit
    }

    pub async fn put(&self, key: AnswerKey, body: Bytes) {
        self.cache.insert(key, body).await;
    }

    pub fn clear(&self) {
        self.cache.invalidate_all();
    }
}

/// A JSON answer from bytes already serialised.
pub fn json(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A serialised answer and its key.
fn weight(key: &AnswerKey, body: &[u8]) -> u32 {
    crate::weigh::saturate(
        crate::weigh::ENTRY_OVERHEAD
            + std::mem::size_of::<AnswerKey>()
            + key.question_len()
            + body.len(),
    )
}
