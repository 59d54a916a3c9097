//! The store's interface to durable storage: ordered keys and values,
//! written in groups that commit atomically, and module bytes by digest.
//! Two backends implement it: [`super::local`] (sled, a write-ahead log and
//! files in a data directory, the default) and [`super::postgres`] (one
//! PostgreSQL database that several hosts can share). Everything in the
//! store above this file reads and writes through [`Kv`], so nothing above
//! the store knows which backend runs.
//!
//! Architecture invariant: a group applied with [`Kv::apply`] is visible to
//! every read at once, and durable (on disk, or committed in the database)
//! once a [`Kv::sync`] that started after it has returned `Ok`. After the
//! first failed sync the backend's fault is raised and every later write
//! and sync is refused.

use std::ops::Bound;
use std::sync::Arc;

use sled::IVec;

use super::Error;
use crate::model::Digest;

/// One write of a group: a key and its new value (`None`: delete it).
pub type KvWrite = (Vec<u8>, Option<Vec<u8>>);

/// The entries a scan yields.
pub type Entry = Result<(IVec, IVec), Error>;

/// The entries of a range, in order.
pub type Entries = Box<dyn Iterator<Item = Entry> + Send>;

/// Bounds of a range of keys.
pub type KeyRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// What a backend does; see the module's invariant.
#[async_trait::async_trait]
pub(super) trait Backend: Send + Sync {
    /// The value of `key`.
    fn get(&self, key: &[u8]) -> Result<Option<IVec>, Error>;
    /// Entries in `range`, in key order (`rev`: descending).
    fn range(&self, range: KeyRange, rev: bool) -> Entries;
    /// Makes `groups` visible, in order; durable after the next sync.
    fn apply(&self, groups: Vec<Vec<KvWrite>>) -> Result<(), Error>;
    /// Makes every group applied so far durable.
    async fn sync(&self) -> Result<(), Error>;
    /// [`Backend::sync`] for code outside the runtime (start-up, tools).
    fn sync_blocking(&self) -> Result<(), Error>;
    /// Changes each time groups were made visible.
    fn watch_applied(&self) -> tokio::sync::watch::Receiver<u64>;
    /// Follows the backend's fault: `None` until writes stopped, then why.
    fn fault(&self) -> tokio::sync::watch::Receiver<Option<Arc<str>>>;
    /// Bytes written to durable storage since open (log records, or rows).
    fn written_bytes(&self) -> u64;
    /// Start-up has read what it needs: background work may start.
    fn resume(&self);
    /// Waits while writes wait for background work (back-pressure).
    async fn room(&self);
    /// Moves what memory holds to its final place (at shutdown, after a
    /// migration); durable when it returns.
    fn checkpoint(&self) -> Result<(), Error>;
    /// Stores module bytes (sha256 `digest`) durably; blocking.
    fn write_module(&self, digest: &Digest, bytes: &[u8]) -> Result<(), Error>;
    /// The bytes of module `digest`, if stored and intact; blocking.
    fn read_module(&self, digest: &Digest) -> Result<Option<Vec<u8>>, Error>;
    /// Tells other hosts sharing the store where this one, which writes
    /// it, serves its API; blocking. Nothing to tell where none can share it.
    fn announce(&self, _address: &str) -> Result<(), Error> {
        Ok(())
    }
    /// Lets the store go at once, for another host (or a later open of
    /// this one) to take: raises the fault, so nothing is written after
    /// it, and gives up the store's lock. Nothing where none can share it.
    fn release(&self) {}
}

/// The backend the store runs on; cheap to clone.
#[derive(Clone)]
pub struct Kv(Arc<dyn Backend>);

impl Kv {
    pub(super) fn new(backend: Arc<dyn Backend>) -> Self {
        Kv(backend)
    }

    /// The value of `key`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<IVec>, Error> {
        self.0.get(key.as_ref())
    }

    /// Entries with keys starting with `prefix`, in key order.
    pub fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> Entries {
        let prefix = prefix.as_ref().to_vec();
        self.0.range((Bound::Included(prefix.clone()), prefix_end(&prefix)), false)
    }

    /// Entries in `range`, in key order (`rev`: descending).
    pub fn range(&self, range: KeyRange, rev: bool) -> Entries {
        self.0.range(range, rev)
    }

    /// Makes `groups` visible (one atomic group each, in order); durable
    /// after the next [`Kv::sync`].
    pub fn apply(&self, groups: Vec<Vec<KvWrite>>) -> Result<(), Error> {
        self.0.apply(groups)
    }

    /// Makes every group applied so far durable.
    pub async fn sync(&self) -> Result<(), Error> {
        self.0.sync().await
    }

    /// [`Kv::sync`] for code outside the runtime.
    pub fn sync_blocking(&self) -> Result<(), Error> {
        self.0.sync_blocking()
    }

    /// Changes each time [`Kv::apply`] made groups visible.
    pub fn watch_applied(&self) -> tokio::sync::watch::Receiver<u64> {
        self.0.watch_applied()
    }

    /// Follows the backend's fault.
    pub fn fault(&self) -> tokio::sync::watch::Receiver<Option<Arc<str>>> {
        self.0.fault()
    }

    /// Bytes written to durable storage since open.
    pub fn written_bytes(&self) -> u64 {
        self.0.written_bytes()
    }

    /// Lets background work start.
    pub fn resume(&self) {
        self.0.resume();
    }

    /// The writer's back-pressure.
    pub async fn room(&self) {
        self.0.room().await;
    }

    /// Moves what memory holds to its final place, durably.
    pub fn checkpoint(&self) -> Result<(), Error> {
        self.0.checkpoint()
    }

    /// Stores module bytes durably (blocking).
    pub fn write_module(&self, digest: &Digest, bytes: &[u8]) -> Result<(), Error> {
        self.0.write_module(digest, bytes)
    }

    /// The bytes of module `digest` (blocking).
    pub fn read_module(&self, digest: &Digest) -> Result<Option<Vec<u8>>, Error> {
        self.0.read_module(digest)
    }

    /// Tells other hosts where this one serves its API (blocking).
    pub fn announce(&self, address: &str) -> Result<(), Error> {
        self.0.announce(address)
    }

    /// Lets the store go at once (see [`Backend::release`]).
    pub fn release(&self) {
        self.0.release();
    }
}

/// The end (excluded) of the keys starting with `prefix`: the prefix with
/// its last byte below 0xff incremented and what follows dropped; none when
/// every byte is 0xff.
pub(super) fn prefix_end(prefix: &[u8]) -> Bound<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Bound::Excluded(end);
        }
    }
    Bound::Unbounded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_ends_after_its_last_byte_below_0xff() {
        assert_eq!(prefix_end(b"a\xff\xff"), Bound::Excluded(b"b".to_vec()));
        assert_eq!(prefix_end(b"ab"), Bound::Excluded(b"ac".to_vec()));
        assert_eq!(prefix_end(b"\xff"), Bound::Unbounded);
    }
}
