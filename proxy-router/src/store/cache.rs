//! Bounded in-memory caches in front of the rows the prompt path re-reads on every request (see
//! "Caches" in the module docs of [`store`](super)).
//!
//! A [`Cache`] is never stale: every write of the store that can change a cached row invalidates
//! it *after* its commit, and a reader may only fill the cache with a row it read under the same
//! generation, so a read that raced with a write (read the old row, then the write committed and
//! invalidated) can never put the old row back.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Rows kept at most per cache; a full cache is emptied (cheap, and it refills from the hot rows).
pub(crate) const CAPACITY: usize = 4096;

/// A bounded map of rows with a generation counter. See the module docs.
#[derive(Debug)]
pub(crate) struct Cache<K, V> {
    inner: Mutex<Inner<K, V>>,
}

#[derive(Debug)]
struct Inner<K, V> {
    generation: u64,
    rows: HashMap<K, V>,
}

/// A cache miss: the generation a row read from the database now may be stored under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Miss(u64);

impl<K: Eq + Hash, V: Clone> Default for Cache<K, V> {
    fn default() -> Self {
        Self { inner: Mutex::new(Inner { generation: 0, rows: HashMap::new() }) }
    }
}

impl<K: Eq + Hash, V: Clone> Cache<K, V> {
    fn lock(&self) -> MutexGuard<'_, Inner<K, V>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached row, or the generation to store a fresh read under.
    pub(crate) fn get(&self, key: &K) -> Result<V, Miss> {
        let inner = self.lock();
        inner.rows.get(key).cloned().ok_or(Miss(inner.generation))
    }

    /// Stores `value` read from the database after `miss`, unless a write invalidated the cache
    /// since (then the value may already be old and is dropped).
    pub(crate) fn put(&self, miss: Miss, key: K, value: V) {
        let mut inner = self.lock();
        if inner.generation != miss.0 {
            return;
        }
        if inner.rows.len() >= CAPACITY && !inner.rows.contains_key(&key) {
            inner.rows.clear();
        }
        inner.rows.insert(key, value);
    }

    /// Forgets every row (a write committed that may have changed any of them).
    pub(crate) fn invalidate(&self) {
        let mut inner = self.lock();
        inner.generation = inner.generation.wrapping_add(1);
        inner.rows.clear();
    }

    /// Forgets `key`'s row (a write committed that changed it).
    pub(crate) fn forget(&self, key: &K) {
        let mut inner = self.lock();
        inner.generation = inner.generation.wrapping_add(1);
        inner.rows.remove(key);
    }

    /// Applies a committed write to `key`'s cached row, if any (a write whose effect commutes
    /// with the other writes of the row, such as adding to counters).
    pub(crate) fn update(&self, key: &K, apply: impl FnOnce(&mut V)) {
        let mut inner = self.lock();
        inner.generation = inner.generation.wrapping_add(1);
        if let Some(row) = inner.rows.get_mut(key) {
            apply(row);
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().rows.len()
    }
}

/// The caches of one [`Store`](super::Store), shared by its clones.
#[derive(Debug, Default)]
pub(crate) struct Caches {
    /// Indexed sessions by id (`sessions`); invalidated by every index write.
    pub(crate) sessions: Cache<alloy::primitives::B256, super::Session>,
    /// Indexed providers by address (`providers`); invalidated by every index write.
    pub(crate) providers: Cache<alloy::primitives::Address, super::Provider>,
    /// The consumer's own session records by id (`consumer_sessions`); each write of a record
    /// forgets it, except the statistics' additions, which are applied to the cached record too.
    pub(crate) consumer_sessions: Cache<alloy::primitives::B256, super::ConsumerSession>,
    /// Consumers' handshake keys by address (`provider_users`); forgotten when a key is saved.
    pub(crate) user_keys: Cache<alloy::primitives::Address, alloy::primitives::Bytes>,
    /// When this process last wrote each session's `provider_sessions` row (its Unix ms), so that
    /// a prompt's `touch` right after another prompt of the session can be skipped.
    pub(crate) touched: Mutex<HashMap<alloy::primitives::B256, u64>>,
}

impl Caches {
    /// Forgets every row of the chain index (after a batch, a rollback, a reset or a single write).
    pub(crate) fn invalidate_index(&self) {
        self.sessions.invalidate();
        self.providers.invalidate();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_that_raced_with_a_write_is_not_stored() {
        let cache = Cache::<u8, &str>::default();
        let Err(miss) = cache.get(&1) else { panic!("empty") };
        cache.invalidate(); // a write committed after the read began
        cache.put(miss, 1, "old");
        assert!(cache.get(&1).is_err());
        let Err(miss) = cache.get(&1) else { panic!("empty") };
        cache.put(miss, 1, "new");
        assert_eq!(cache.get(&1), Ok("new"));
        let Err(miss) = cache.get(&2) else { panic!("empty") };
        cache.forget(&1);
        cache.put(miss, 2, "two");
        assert!(cache.get(&1).is_err() && cache.get(&2).is_err());
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = Cache::<usize, usize>::default();
        for i in 0..CAPACITY + 10 {
            let Err(miss) = cache.get(&i) else { panic!("new key") };
            cache.put(miss, i, i);
        }
        assert!(cache.len() <= CAPACITY);
        assert_eq!(cache.get(&(CAPACITY + 9)), Ok(CAPACITY + 9));
    }
}
