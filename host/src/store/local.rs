//! The local backend of the store (`kv.rs`), the default: sled in a data
//! directory, with recent writes held in memory, and module files. A group of writes is appended to the write-ahead log (`wal.rs`)
//! and put in an ordered in-memory table; reads look there first, then in
//! sled. A checkpoint (`checkpoint.rs`: in the background, when the table
//! passes `MEM_LIMIT` or writes pause) applies the table's latest values to
//! sled, flushes sled, and retires the log files it covered (`segment.rs`).
//!
//! Why: a task's record changes three times in a second (created, started,
//! finished) and its live key is written and deleted again; each sled write
//! costs 5-10 us (it copies the node it lands in). Coalesced, a task costs
//! one sled write for its final record.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};

use sled::IVec;

use super::Error;
use super::checkpoint::{self, Stopper};
use super::fault::Fault;
use super::kv::{Backend, Entries, KeyRange, Kv, KvWrite};
use super::modules::ModuleFiles;
use super::table::{Table, merged};
use super::wal::{self, Wal};
use crate::model::{Digest, now_ms};

/// Bytes of keys and values the in-memory table holds before a checkpoint.
pub(super) const MEM_LIMIT: usize = 64 << 20;
/// Bytes over which the writer waits for the checkpoint ([`Kv::room`]).
pub(super) const MEM_HARD_LIMIT: usize = 2 * MEM_LIMIT;
/// Log bytes since the last checkpoint that start one regardless.
pub(super) const WAL_LIMIT: u64 = 256 << 20;
/// Longest start-up may hold checkpoints back ([`Kv::resume`]).
const STARTUP_GRACE_MS: u64 = 5_000;

/// What the handles and the checkpointer share.
pub(super) struct Inner {
    pub(super) db: sled::Db,
    pub(super) tree: sled::Tree,
    pub(super) mem: RwLock<Table>,
    pub(super) wal: Mutex<Wal>,
    /// One checkpoint at a time.
    pub(super) checkpoint: Mutex<()>,
    pub(super) last_write_ms: AtomicU64,
    /// Woken as a checkpoint frees the table.
    pub(super) room: tokio::sync::Notify,
    /// No automatic checkpoint before this time (Unix ms): start-up after a
    /// crash reads the replayed table and should not share the CPU with
    /// writing it out.
    pub(super) hold_until_ms: AtomicU64,
    /// The table still holds what start-up replayed from the log: the
    /// writer is not held back for it (only for what it writes itself).
    pub(super) replayed: AtomicBool,
    /// Raised by the first write or sync of the log that fails.
    pub(super) fault: Fault,
    /// Counts the groups made visible, for readers that wait for the next.
    pub(super) applied: tokio::sync::watch::Sender<u64>,
}

impl Inner {
    /// A write or sync of the log failed with `cause`: raises the store's
    /// fault and erases what the log holds past its last acknowledged sync
    /// (every group there is answered with an error).
    pub(super) fn fail(&self, wal: &mut Wal, cause: Error) -> Error {
        let e = self.fault.raise(cause);
        if let Err(erase) = wal.erase_unsynced() {
            tracing::error!(error = %erase, "could not erase the unsynced end of the log");
        }
        e
    }
}

/// sled plus the in-memory table, its log and the module files. When the
/// last clone is dropped the checkpointer stops and sled is closed.
pub(super) struct Local {
    inner: Arc<Inner>,
    modules: ModuleFiles,
    #[allow(dead_code, reason = "held for its Drop")]
    stopper: Stopper,
}

/// Opens (or creates) the local store in `dir`: sled, the log replayed into
/// the table (`recover_log`: ending it at a corrupt record), module files,
/// and module bytes an older layout kept in sled moved into files.
pub(super) fn open(dir: &Path, recover_log: bool) -> Result<Kv, Error> {
    let db = sled::Config::new().path(dir).cache_capacity(256 << 20).open()?;
    let tree = db.open_tree("sandflow")?;
    let modules = ModuleFiles::open(&dir.join("modules"))?;
    let local = Arc::new(Local::open(db, tree, &dir.join("wal"), recover_log, modules)?);
    let kv = Kv::new(local.clone());
    let moved = local.modules.adopt_from(&kv)?;
    if moved > 0 {
        kv.checkpoint()?;
        tracing::info!(modules = moved, "moved module bytes out of the database into files");
    }
    Ok(kv)
}

impl Local {
    /// Loads what the log in `dir` holds into the table (the next checkpoint
    /// writes it to sled and retires those files), then starts a new log file
    /// and the background checkpointer.
    fn open(
        db: sled::Db,
        tree: sled::Tree,
        dir: &Path,
        recover_log: bool,
        modules: ModuleFiles,
    ) -> Result<Self, Error> {
        let mem = replay(dir, recover_log)?;
        let replayed = !mem.is_empty();
        let wal = Wal::create(dir)?;
        let inner = Arc::new(Inner {
            db,
            tree,
            mem: RwLock::new(mem),
            wal: Mutex::new(wal),
            checkpoint: Mutex::new(()),
            last_write_ms: AtomicU64::new(now_ms()),
            room: tokio::sync::Notify::new(),
            hold_until_ms: AtomicU64::new(now_ms() + STARTUP_GRACE_MS),
            replayed: AtomicBool::new(replayed),
            fault: Fault::new(),
            applied: tokio::sync::watch::Sender::new(0),
        });
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let (of_thread, signal) = (inner.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("sandflow-checkpoint".into())
            .spawn(move || checkpoint::run(&of_thread, &signal))
            .map_err(Error::Io)?;
        Ok(Local { inner, modules, stopper: Stopper::new(stop, thread) })
    }

    /// The log, unless the store's fault is raised.
    fn lock_wal(&self) -> Result<std::sync::MutexGuard<'_, Wal>, Error> {
        let wal = self.inner.wal.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.inner.fault.check()?;
        Ok(wal)
    }
}

#[async_trait::async_trait]
impl Backend for Local {
    fn get(&self, key: &[u8]) -> Result<Option<IVec>, Error> {
        if let Some(value) = read(&self.inner.mem).get(key) {
            return Ok(value);
        }
        Ok(self.inner.tree.get(key)?)
    }

    fn range(&self, range: KeyRange, rev: bool) -> Entries {
        let bounds = (range.0.as_ref().map(Vec::as_slice), range.1.as_ref().map(Vec::as_slice));
        let mem = read(&self.inner.mem).range(bounds, rev);
        let disk = self.inner.tree.range(range);
        let disk: Box<dyn Iterator<Item = sled::Result<(IVec, IVec)>> + Send> =
            if rev { Box::new(disk.rev()) } else { Box::new(disk) };
        Box::new(merged(mem, disk, rev))
    }

    /// Appends `groups` to the log (one record each, in order) and makes them
    /// visible. Readers wait only for the table's update, not for the log's
    /// (which may move to a new segment); the log's lock, held throughout,
    /// keeps a checkpoint from freezing the table between the two.
    fn apply(&self, groups: Vec<Vec<KvWrite>>) -> Result<(), Error> {
        let inner = &self.inner;
        let mut wal = inner.wal.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.fault.check()?;
        let groups: Vec<Vec<KvWrite>> = groups.into_iter().filter(|g| !g.is_empty()).collect();
        for group in &groups {
            match wal.append(group) {
                Err(Error::Io(e)) => return Err(inner.fail(&mut wal, Error::Io(e))),
                other => other?,
            }
        }
        let mut mem = inner.mem.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        for group in groups {
            mem.put_group(group.into_iter().map(|(k, v)| (IVec::from(k), v.map(IVec::from))));
        }
        drop(mem);
        inner.last_write_ms.store(now_ms(), Ordering::Relaxed);
        inner.applied.send_modify(|n| *n += 1);
        Ok(())
    }

    /// A failure raises the store's fault: what was not durable is erased
    /// from the log ([`Wal::erase_unsynced`]), and nothing is synced again.
    async fn sync(&self) -> Result<(), Error> {
        let handle = self.lock_wal().and_then(|mut wal| wal.sync_handle());
        let synced = match handle {
            Ok(handle) => {
                let file = handle.file.clone();
                let sync =
                    move || super::fault::injected_sync_failure().map_or_else(|| file.sync_data(), Err);
                let done = tokio::task::spawn_blocking(sync).await;
                done.map_err(|e| Error::Io(e.into()))?.map(|()| handle).map_err(Error::Io)
            }
            Err(e) => Err(e),
        };
        let mut wal = self.inner.wal.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match synced {
            Ok(handle) => {
                wal.synced(&handle);
                Ok(())
            }
            Err(e @ Error::Unavailable(_)) => Err(e),
            Err(e) => Err(self.inner.fail(&mut wal, e)),
        }
    }

    fn sync_blocking(&self) -> Result<(), Error> {
        let handle = self.lock_wal()?.sync_handle()?;
        handle.file.sync_data().map_err(Error::Io)?;
        self.lock_wal()?.synced(&handle);
        Ok(())
    }

    fn watch_applied(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.applied.subscribe()
    }

    fn fault(&self) -> tokio::sync::watch::Receiver<Option<Arc<str>>> {
        self.inner.fault.watch()
    }

    /// Bytes appended to the log since it was opened.
    fn written_bytes(&self) -> u64 {
        self.inner.wal.lock().map(|w| w.total).unwrap_or(0)
    }

    /// Lets automatic checkpoints start (without this they start 5 s after
    /// open).
    fn resume(&self) {
        self.inner.hold_until_ms.store(0, Ordering::Relaxed);
    }

    /// Waits while the table is over its hard limit: when writes come faster
    /// than checkpoints drain them. Not while the table holds a replayed log
    /// (after a crash): the first checkpoint writes that out while the host
    /// works. Returns at once when the store's fault is raised.
    async fn room(&self) {
        let mut fault = self.inner.fault.watch();
        loop {
            let freed = self.inner.room.notified();
            if self.inner.replayed.load(Ordering::Relaxed)
                || read(&self.inner.mem).bytes() < MEM_HARD_LIMIT
                || fault.borrow_and_update().is_some()
            {
                return;
            }
            tokio::select! {
                () = freed => {}
                _ = fault.changed() => {}
            }
        }
    }

    /// Writes the in-memory table to sled and drops the log it covers.
    fn checkpoint(&self) -> Result<(), Error> {
        checkpoint::once(&self.inner)
    }

    fn write_module(&self, digest: &Digest, bytes: &[u8]) -> Result<(), Error> {
        self.modules.write(digest, bytes)
    }

    fn read_module(&self, digest: &Digest) -> Result<Option<Vec<u8>>, Error> {
        self.modules.read(digest)
    }
}

pub(super) fn read(mem: &RwLock<Table>) -> std::sync::RwLockReadGuard<'_, Table> {
    mem.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The table holding whatever the log files in `dir` hold, group by group
/// (the files stay until a checkpoint has written it to sled).
fn replay(dir: &Path, recover_log: bool) -> Result<Table, Error> {
    let mut mem = Table::default();
    let files = wal::files(dir)?;
    for (i, path) in files.iter().enumerate() {
        let read = wal::read(path, |group| {
            mem.put_group(group.into_iter().map(|(k, v)| (IVec::from(k), v.map(IVec::from))))
        });
        match read {
            Err(Error::CorruptLog { offset, .. }) if recover_log => {
                tracing::warn!(file = %path.display(), offset, later_files = files.len() - i - 1, "recovering: the log ends at its corrupt record");
                wal::truncate_at(path, offset)?;
                for later in &files[i + 1..] {
                    std::fs::remove_file(later).map_err(Error::Io)?;
                }
                break;
            }
            other => other?,
        };
    }
    if mem.groups > 0 {
        tracing::info!(groups = mem.groups, entries = mem.len(), "replayed the write-ahead log");
    }
    Ok(mem)
}

#[cfg(test)]
mod tests {
    use std::ops::Bound;

    use super::*;
    use crate::store::kv::Entry;

    /// The backend (to look into its table) and the interface over it.
    fn open(dir: &Path) -> (Arc<Local>, Kv) {
        let db = sled::Config::new().path(dir.join("db")).open().unwrap();
        let tree = db.open_tree("t").unwrap();
        let modules = ModuleFiles::open(&dir.join("modules")).unwrap();
        let local = Arc::new(Local::open(db, tree, &dir.join("wal"), false, modules).unwrap());
        (local.clone(), Kv::new(local))
    }

    fn put(k: &str, v: &str) -> KvWrite {
        (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec()))
    }

    fn keys(it: impl Iterator<Item = Entry>) -> Vec<String> {
        it.map(|e| String::from_utf8(e.unwrap().0.to_vec()).unwrap()).collect()
    }

    #[test]
    fn reads_merge_the_table_over_sled() {
        let dir = tempfile::tempdir().unwrap();
        let (local, kv) = open(dir.path());
        kv.apply(vec![vec![put("a1", "x"), put("a2", "x"), put("a4", "x"), put("b1", "x")]]).unwrap();
        kv.checkpoint().unwrap();
        assert!(read(&local.inner.mem).is_empty(), "a checkpoint empties the table");
        kv.apply(vec![vec![put("a3", "new"), (b"a2".to_vec(), None), put("a4", "new"), put("b0", "x")]])
            .unwrap();
        assert_eq!(keys(kv.scan_prefix("a")), ["a1", "a3", "a4"]);
        assert_eq!(kv.get("a4").unwrap().unwrap().as_ref(), b"new");
        assert_eq!(kv.get("a2").unwrap(), None, "deleted in the table, present in sled");
        let all = (Bound::Included(b"a2".to_vec()), Bound::Excluded(b"b2".to_vec()));
        assert_eq!(keys(kv.range(all.clone(), true)), ["b1", "b0", "a4", "a3"]);
        assert_eq!(keys(kv.range(all, false)), ["a3", "a4", "b0", "b1"]);
    }

    #[tokio::test]
    async fn synced_groups_survive_a_crash_and_checkpoints_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (_, kv) = open(dir.path());
            kv.apply(vec![vec![put("k1", "checkpointed")]]).unwrap();
            kv.checkpoint().unwrap();
            kv.apply(vec![vec![put("k2", "logged"), (b"k1".to_vec(), None)], vec![put("k3", "logged")]])
                .unwrap();
            kv.sync().await.unwrap();
            // Dropped without a checkpoint: the log holds the last groups.
        }
        let (local, kv) = open(dir.path());
        assert_eq!(keys(kv.scan_prefix("k")), ["k2", "k3"]);
        assert_eq!(read(&local.inner.mem).len(), 3, "replayed into the table");
        assert!(wal::files(&dir.path().join("wal")).unwrap().len() >= 2, "kept until a checkpoint");
        kv.checkpoint().unwrap();
        assert!(read(&local.inner.mem).is_empty());
        assert_eq!(wal::files(&dir.path().join("wal")).unwrap().len(), 1, "replayed logs are deleted");
        assert_eq!(keys(kv.scan_prefix("k")), ["k2", "k3"]);
    }

    #[tokio::test]
    async fn writes_after_a_torn_tail_survive_the_next_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (_, kv) = open(dir.path());
            kv.apply(vec![vec![put("a", "1")]]).unwrap();
            kv.sync().await.unwrap();
        }
        // The only record is torn (its append never finished, so it was
        // never acknowledged).
        let logs = wal::files(&dir.path().join("wal")).unwrap();
        let (log, mut bytes) = logs
            .iter()
            .map(|p| (p, std::fs::read(p).unwrap()))
            .find(|(_, b)| b.len() > wal::HEADER && b[wal::HEADER..].iter().any(|x| *x != 0))
            .unwrap();
        let last = bytes.iter().rposition(|b| *b != 0).unwrap();
        bytes[last] = 0;
        std::fs::write(log, &bytes).unwrap();
        {
            let (_, kv) = open(dir.path());
            assert!(keys(kv.scan_prefix("")).is_empty());
            kv.apply(vec![vec![put("b", "2")]]).unwrap();
            kv.sync().await.unwrap();
        }
        let (_, kv) = open(dir.path());
        assert_eq!(keys(kv.scan_prefix("")), ["b"], "the write after the torn one is not lost behind it");
    }

    #[test]
    fn writes_racing_checkpoints_keep_their_latest_values() {
        let dir = tempfile::tempdir().unwrap();
        let (_, kv) = open(dir.path());
        let writer = {
            let kv = kv.clone();
            std::thread::spawn(move || {
                for i in 0..3000 {
                    kv.apply(vec![vec![put(&format!("k{:02}", i % 50), &i.to_string())]]).unwrap();
                }
            })
        };
        // A reader never sees a key vanish or go back to an older value
        // while checkpoints move the table to sled.
        let reader = {
            let kv = kv.clone();
            std::thread::spawn(move || {
                let mut last = -1i64;
                while last < 2950 {
                    let Some(v) = kv.get("k00").unwrap() else {
                        assert_eq!(last, -1, "k00 vanished after {last}");
                        continue;
                    };
                    let v: i64 = std::str::from_utf8(&v).unwrap().parse().unwrap();
                    assert!(v >= last, "k00 went back from {last} to {v}");
                    last = v;
                }
            })
        };
        while !writer.is_finished() {
            kv.checkpoint().unwrap();
        }
        writer.join().unwrap();
        reader.join().unwrap();
        let check = |kv: &Kv| {
            for k in 0..50 {
                let v = kv.get(format!("k{k:02}")).unwrap().unwrap();
                assert_eq!(v.as_ref(), (2950 + k).to_string().as_bytes(), "key {k}");
            }
        };
        check(&kv);
        kv.checkpoint().unwrap();
        check(&kv);
    }
}
