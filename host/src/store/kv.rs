//! The key-value layer under the store: sled, with recent writes held in
//! memory. A group of writes is appended to the write-ahead log (`wal.rs`)
//! and put in an ordered in-memory table; reads look there first, then in
//! sled. A checkpoint (`checkpoint.rs`: in the background, when the table
//! passes `MEM_LIMIT` or writes pause) applies the table's latest values to
//! sled, flushes sled, and retires the log files it covered (`segment.rs`).
//!
//! Why: a task's record changes three times in a second (created, started,
//! finished) and its live key is written and deleted again; each sled write
//! costs 5-10 us (it copies the node it lands in). Coalesced, a task costs
//! one sled write for its final record.

use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};

use itertools::{EitherOrBoth, Itertools};
use sled::IVec;

use super::Error;
use super::checkpoint::{self, Stopper};
use super::fault::Fault;
use super::table::{Pending, Table};
use super::wal::{self, KvWrite, Wal};
use crate::model::now_ms;

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

/// sled plus the in-memory table and its log; cheap to clone. When the
/// last clone is dropped the checkpointer stops and sled is closed.
#[derive(Clone)]
pub struct Kv(Arc<Inner>, #[allow(dead_code, reason = "held for its Drop")] Arc<Stopper>);

/// The entries a scan yields.
pub type Entry = Result<(IVec, IVec), Error>;

impl Kv {
    /// Loads what the log in `dir` holds into the table (the next checkpoint
    /// writes it to sled and retires those files), then starts a new log file
    /// and the background checkpointer.
    pub fn open(db: sled::Db, tree: sled::Tree, dir: &Path, recover_log: bool) -> Result<Self, Error> {
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
        Ok(Kv(inner, Arc::new(Stopper::new(stop, thread))))
    }

    /// The value of `key`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<IVec>, Error> {
        let key = key.as_ref();
        if let Some(value) = read(&self.0.mem).get(key) {
            return Ok(value);
        }
        Ok(self.0.tree.get(key)?)
    }

    /// Entries with keys starting with `prefix`, in key order.
    pub fn scan_prefix<P: AsRef<[u8]>>(&self, prefix: P) -> impl Iterator<Item = Entry> + use<P> {
        let prefix = prefix.as_ref().to_vec();
        self.range((Bound::Included(prefix.clone()), prefix_end(&prefix)), false)
    }

    /// Entries in `range`, in key order (`rev`: descending).
    pub fn range(
        &self,
        range: (Bound<Vec<u8>>, Bound<Vec<u8>>),
        rev: bool,
    ) -> impl Iterator<Item = Entry> + use<> {
        let bounds = (range.0.as_ref().map(Vec::as_slice), range.1.as_ref().map(Vec::as_slice));
        let mem = read(&self.0.mem).range(bounds, rev);
        let disk = self.0.tree.range(range);
        let disk: Box<dyn Iterator<Item = sled::Result<(IVec, IVec)>> + Send> =
            if rev { Box::new(disk.rev()) } else { Box::new(disk) };
        merged(mem, disk, rev)
    }

    /// Appends `groups` to the log (one record each, in order) and makes them
    /// visible; durable after the next [`Kv::sync`]. Readers wait only for
    /// the table's update, not for the log's (which may move to a new
    /// segment); the log's lock, held throughout, keeps a checkpoint from
    /// freezing the table between the two.
    pub fn apply(&self, groups: Vec<Vec<KvWrite>>) -> Result<(), Error> {
        let mut wal = self.0.wal.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.0.fault.check()?;
        let groups: Vec<Vec<KvWrite>> = groups.into_iter().filter(|g| !g.is_empty()).collect();
        for group in &groups {
            match wal.append(group) {
                Err(Error::Io(e)) => return Err(self.0.fail(&mut wal, Error::Io(e))),
                other => other?,
            }
        }
        let mut mem = self.0.mem.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        for group in groups {
            mem.put_group(group.into_iter().map(|(k, v)| (IVec::from(k), v.map(IVec::from))));
        }
        drop(mem);
        self.0.last_write_ms.store(now_ms(), Ordering::Relaxed);
        self.0.applied.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Changes each time [`Kv::apply`] made groups visible.
    pub fn watch_applied(&self) -> tokio::sync::watch::Receiver<u64> {
        self.0.applied.subscribe()
    }

    /// Makes every group applied so far durable. A failure raises the
    /// store's fault: what was not durable is erased from the log
    /// ([`Wal::erase_unsynced`]), and nothing is synced again.
    pub async fn sync(&self) -> Result<(), Error> {
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
        let mut wal = self.0.wal.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match synced {
            Ok(handle) => {
                wal.synced(&handle);
                Ok(())
            }
            Err(e @ Error::Unavailable(_)) => Err(e),
            Err(e) => Err(self.0.fail(&mut wal, e)),
        }
    }

    /// The log, unless the store's fault is raised.
    fn lock_wal(&self) -> Result<std::sync::MutexGuard<'_, Wal>, Error> {
        let wal = self.0.wal.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.0.fault.check()?;
        Ok(wal)
    }

    /// Follows the store's fault.
    pub fn fault(&self) -> tokio::sync::watch::Receiver<Option<Arc<str>>> {
        self.0.fault.watch()
    }

    /// Bytes appended to the log since it was opened.
    pub fn log_bytes(&self) -> u64 {
        self.0.wal.lock().map(|w| w.total).unwrap_or(0)
    }

    /// Lets automatic checkpoints start (once start-up has read what it
    /// needs; without this they start 5 s after open).
    pub fn resume(&self) {
        self.0.hold_until_ms.store(0, Ordering::Relaxed);
    }

    /// Waits while the table is over its hard limit: the writer's
    /// back-pressure when writes come faster than checkpoints drain them.
    /// Not while the table holds a replayed log (after a crash): the first
    /// checkpoint writes that out while the host works.
    /// Returns at once when the store's fault is raised (writes fail then).
    pub async fn room(&self) {
        let mut fault = self.0.fault.watch();
        loop {
            let freed = self.0.room.notified();
            if self.0.replayed.load(Ordering::Relaxed)
                || read(&self.0.mem).bytes() < MEM_HARD_LIMIT
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

    /// [`Kv::sync`] for code outside the runtime (start-up).
    pub fn sync_blocking(&self) -> Result<(), Error> {
        let handle = self.lock_wal()?.sync_handle()?;
        handle.file.sync_data().map_err(Error::Io)?;
        self.lock_wal()?.synced(&handle);
        Ok(())
    }

    /// Writes the in-memory table to sled and drops the log it covers.
    pub fn checkpoint(&self) -> Result<(), Error> {
        checkpoint::once(&self.0)
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

/// The in-memory entries (in scan order) merged with sled's, the table
/// winning on equal keys; deleted keys are skipped, sled's errors passed on.
fn merged(
    mem: Vec<Pending>,
    disk: impl Iterator<Item = sled::Result<(IVec, IVec)>>,
    rev: bool,
) -> impl Iterator<Item = Entry> {
    let order = move |(m, _): &Pending, d: &sled::Result<(IVec, IVec)>| match d {
        Err(_) => std::cmp::Ordering::Greater,
        Ok((d, _)) if rev => d.cmp(m),
        Ok((d, _)) => m.cmp(d),
    };
    mem.into_iter().merge_join_by(disk, order).filter_map(|entry| match entry {
        EitherOrBoth::Left((k, v)) | EitherOrBoth::Both((k, v), _) => v.map(|v| Ok((k, v))),
        EitherOrBoth::Right(d) => Some(d.map_err(Error::from)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path) -> Kv {
        let db = sled::Config::new().path(dir.join("db")).open().unwrap();
        let tree = db.open_tree("t").unwrap();
        Kv::open(db, tree, &dir.join("wal"), false).unwrap()
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
        let kv = open(dir.path());
        kv.apply(vec![vec![put("a1", "x"), put("a2", "x"), put("a4", "x"), put("b1", "x")]]).unwrap();
        kv.checkpoint().unwrap();
        assert!(read(&kv.0.mem).is_empty(), "a checkpoint empties the table");
        kv.apply(vec![vec![put("a3", "new"), (b"a2".to_vec(), None), put("a4", "new"), put("b0", "x")]])
            .unwrap();
        assert_eq!(keys(kv.scan_prefix("a")), ["a1", "a3", "a4"]);
        assert_eq!(prefix_end(b"a\xff\xff"), Bound::Excluded(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff"), Bound::Unbounded);
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
            let kv = open(dir.path());
            kv.apply(vec![vec![put("k1", "checkpointed")]]).unwrap();
            kv.checkpoint().unwrap();
            kv.apply(vec![vec![put("k2", "logged"), (b"k1".to_vec(), None)], vec![put("k3", "logged")]])
                .unwrap();
            kv.sync().await.unwrap();
            // Dropped without a checkpoint: the log holds the last groups.
        }
        let kv = open(dir.path());
        assert_eq!(keys(kv.scan_prefix("k")), ["k2", "k3"]);
        assert_eq!(read(&kv.0.mem).len(), 3, "replayed into the table");
        assert!(wal::files(&dir.path().join("wal")).unwrap().len() >= 2, "kept until a checkpoint");
        kv.checkpoint().unwrap();
        assert!(read(&kv.0.mem).is_empty());
        assert_eq!(wal::files(&dir.path().join("wal")).unwrap().len(), 1, "replayed logs are deleted");
        assert_eq!(keys(kv.scan_prefix("k")), ["k2", "k3"]);
    }

    #[tokio::test]
    async fn writes_after_a_torn_tail_survive_the_next_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let kv = open(dir.path());
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
            let kv = open(dir.path());
            assert!(keys(kv.scan_prefix("")).is_empty());
            kv.apply(vec![vec![put("b", "2")]]).unwrap();
            kv.sync().await.unwrap();
        }
        let kv = open(dir.path());
        assert_eq!(keys(kv.scan_prefix("")), ["b"], "the write after the torn one is not lost behind it");
    }

    #[test]
    fn writes_racing_checkpoints_keep_their_latest_values() {
        let dir = tempfile::tempdir().unwrap();
        let kv = open(dir.path());
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
