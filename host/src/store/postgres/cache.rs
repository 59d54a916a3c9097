//! The values this host read from or committed to the database, kept in
//! memory (up to [`CAPACITY`] bytes, the least recently used evicted):
//! only the host holding the store's lock writes the database, so what it
//! committed or read stays true until it changes it itself. Point reads,
//! and the rows of small prefix scans (at most [`SCAN_ROWS`] rows), which a
//! commit forgets when it writes a key under their prefix.
//!
//! A value read from the database is kept only if no commit ended while it
//! was being read ([`ReadCache::fill`] against [`ReadCache::generation`]),
//! and a commit replaces the values it wrote under the same lock, so a slow
//! read can never put back a value older than a commit.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, RwLock};

use sled::IVec;

use crate::store::table::Map;

/// Bytes of keys and values kept.
const CAPACITY: u64 = 256 << 20;
/// Bytes of scanned rows kept.
const SCAN_CAPACITY: u64 = 64 << 20;
/// Most rows of a prefix scan kept.
pub(super) const SCAN_ROWS: usize = 64;

/// The rows of one prefix, in key order.
pub(super) type Rows = Arc<Vec<(IVec, IVec)>>;

/// Weighs a scan's rows by their bytes.
#[derive(Clone)]
struct RowBytes;

impl quick_cache::Weighter<IVec, Rows> for RowBytes {
    fn weight(&self, prefix: &IVec, rows: &Rows) -> u64 {
        (prefix.len() + rows.iter().map(|(k, v)| k.len() + v.len() + 48).sum::<usize>() + 48) as u64
    }
}

/// Weighs an entry by its bytes (with the map's overhead).
#[derive(Clone)]
struct Bytes;

impl quick_cache::Weighter<IVec, Option<IVec>> for Bytes {
    fn weight(&self, key: &IVec, value: &Option<IVec>) -> u64 {
        (key.len() + value.as_ref().map_or(0, |v| v.len()) + 48) as u64
    }
}

/// Keys and their committed values (`None`: absent).
pub(super) struct ReadCache {
    values: quick_cache::sync::Cache<IVec, Option<IVec>, Bytes>,
    /// Prefix scans' rows by prefix.
    scans: quick_cache::sync::Cache<IVec, Rows, RowBytes>,
    /// The lengths of the prefixes in `scans` (a commit looks up each
    /// written key's prefixes of these lengths).
    prefix_lengths: Mutex<BTreeSet<usize>>,
    /// Commits ended; the write lock is held while one replaces values.
    generation: RwLock<u64>,
}

impl ReadCache {
    pub(super) fn new() -> Self {
        let values = quick_cache::sync::Cache::with_weighter(1 << 16, CAPACITY, Bytes);
        let scans = quick_cache::sync::Cache::with_weighter(1 << 14, SCAN_CAPACITY, RowBytes);
        ReadCache { values, scans, prefix_lengths: Mutex::default(), generation: RwLock::new(0) }
    }

    /// The committed value of `key` if kept: `Some(None)` when it is known
    /// to be absent.
    pub(super) fn get(&self, key: &[u8]) -> Option<Option<IVec>> {
        self.values.get(key)
    }

    /// Taken after memory and this cache missed and before the database is
    /// read: a commit whose values were kept before it has reached the
    /// database too, so what the read finds is at least as new; one kept
    /// after it changes the generation, and the read is not kept
    /// ([`ReadCache::fill`]). It waits while a commit's values are being
    /// kept, so only reads that go to the database take it.
    pub(super) fn generation(&self) -> u64 {
        *self.generation.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps `value`, read from the database, unless a commit ended since
    /// `seen` (it may have changed the key).
    pub(super) fn fill(&self, key: &[u8], value: Option<IVec>, seen: u64) {
        let generation = self.generation.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        if *generation == seen {
            self.values.insert(IVec::from(key), value);
        }
    }

    /// The rows under `prefix` if kept.
    pub(super) fn scan(&self, prefix: &[u8]) -> Option<Rows> {
        self.scans.get(prefix)
    }

    /// Keeps `rows`, the database's rows under `prefix`, unless there are
    /// too many or a commit ended since `seen`.
    pub(super) fn fill_scan(&self, prefix: &[u8], rows: Rows, seen: u64) {
        if rows.len() > SCAN_ROWS {
            return;
        }
        let generation = self.generation.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        if *generation == seen {
            self.lengths().insert(prefix.len());
            self.scans.insert(IVec::from(prefix), rows);
        }
    }

    /// A commit of `map` ended: its values are the database's now, and the
    /// kept scans of prefixes it wrote under are forgotten.
    pub(super) fn committed(&self, map: &Map) {
        let mut generation = self.generation.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        *generation += 1;
        let lengths: Vec<usize> = self.lengths().iter().copied().collect();
        for (key, value) in map {
            for len in lengths.iter().filter(|l| **l <= key.len()) {
                self.scans.remove(&key[..*len]);
            }
            self.values.insert(key.clone(), value.clone());
        }
    }

    fn lengths(&self) -> std::sync::MutexGuard<'_, BTreeSet<usize>> {
        self.prefix_lengths.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_that_raced_a_commit_is_not_kept() {
        let cache = ReadCache::new();
        let seen = cache.generation();
        let mut map = Map::new();
        map.insert(IVec::from("k"), Some(IVec::from("new")));
        map.insert(IVec::from("gone"), None);
        cache.committed(&map);
        cache.fill(b"k", Some(IVec::from("old")), seen);
        assert_eq!(cache.get(b"k"), Some(Some(IVec::from("new"))), "the commit's value stays");
        assert_eq!(cache.get(b"gone"), Some(None), "a deletion is known");
        cache.fill(b"other", Some(IVec::from("v")), cache.generation());
        assert_eq!(cache.get(b"other"), Some(Some(IVec::from("v"))));
        assert_eq!(cache.get(b"never"), None);
    }

    #[test]
    fn a_commit_under_a_prefix_forgets_its_scan() {
        let cache = ReadCache::new();
        let rows: Rows = Arc::new(vec![(IVec::from("ab1"), IVec::from("x"))]);
        cache.fill_scan(b"ab", rows.clone(), cache.generation());
        cache.fill_scan(b"cd", Arc::new(Vec::new()), cache.generation());
        assert_eq!(cache.scan(b"ab"), Some(rows));
        let mut map = Map::new();
        map.insert(IVec::from("ab2"), Some(IVec::from("y")));
        cache.committed(&map);
        assert_eq!(cache.scan(b"ab"), None, "written under: forgotten");
        assert_eq!(cache.scan(b"cd"), Some(Arc::new(Vec::new())), "an empty prefix stays known");
        let seen = cache.generation();
        cache.committed(&Map::new());
        cache.fill_scan(b"ab", Arc::new(Vec::new()), seen);
        assert_eq!(cache.scan(b"ab"), None, "a scan that raced a commit is not kept");
    }
}
