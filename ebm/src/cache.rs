//! LRU cache of embeddings keyed by the exact text, so repeated proof states (transpositions,
//! re-scored frontiers) skip the forward pass.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lru::LruCache;

/// One embedding, shared between the cache and the responses that use it.
pub type Embedding = Arc<[f32]>;

pub struct EmbeddingCache {
    /// None when the capacity is 0 (caching off).
    inner: Option<Mutex<LruCache<String, Embedding>>>,
}

impl EmbeddingCache {
    pub fn new(capacity: usize) -> Self {
        EmbeddingCache {
            inner: NonZeroUsize::new(capacity).map(|c| Mutex::new(LruCache::new(c))),
        }
    }

    pub fn get(&self, text: &str) -> Option<Embedding> {
        let cache = self.inner.as_ref()?;
        cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(text)
            .cloned()
    }

    pub fn put(&self, text: String, embedding: Embedding) {
        if let Some(cache) = &self.inner {
            cache
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .put(text, embedding);
        }
    }

    pub fn len(&self) -> usize {
        self.inner
            .as_ref()
            .map_or(0, |c| c.lock().unwrap_or_else(|p| p.into_inner()).len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
