//! The checkpoint: writes the in-memory table's latest values to sled,
//! flushes sled, deletes the log files that held them, and frees the table
//! as it goes; and the background thread that decides when (the table or
//! the log is large, or writes paused) and the guard that stops it.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use sled::IVec;

use super::Error;
use super::kv::{Inner, MEM_LIMIT, Pending, WAL_LIMIT, entry_size, read};
use super::wal;
use crate::model::now_ms;

/// A pause in writes this long starts a checkpoint.
const IDLE_MS: u64 = 1_000;
/// How often the checkpointer looks.
const TICK: Duration = Duration::from_millis(100);
/// Entries a checkpoint writes between two releases of the table.
const CHUNK: usize = 1024;

/// Stops the checkpointer thread, and waits for it, when dropped.
pub(super) struct Stopper {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Stopper {
    pub(super) fn new(stop: Arc<(Mutex<bool>, Condvar)>, thread: std::thread::JoinHandle<()>) -> Self {
        Stopper { stop, thread: Some(thread) }
    }
}

impl Drop for Stopper {
    fn drop(&mut self) {
        let (flag, wake) = &*self.stop;
        *flag.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Writes entries to sled one by one: a checkpoint needs no atomicity (the
/// log stays the truth until it is deleted, and replaying it again is
/// harmless), and a sled batch would hold sled's global write lock, stopping
/// every reader's iteration until it ends.
fn write_all(tree: &sled::Tree, writes: impl Iterator<Item = (IVec, Option<IVec>)>) -> Result<(), Error> {
    for (k, v) in writes {
        match v {
            Some(v) => tree.insert(k, v)?,
            None => tree.remove(k)?,
        };
    }
    Ok(())
}

pub(super) fn once(inner: &Inner) -> Result<(), Error> {
    let _one = inner.checkpoint.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let (upto, snapshot, old): (u64, Vec<Pending>, Vec<PathBuf>) = {
        let mut wal = inner.wal.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mem = read(&inner.mem);
        if mem.map.is_empty() {
            return Ok(());
        }
        let old = wal.rotate()?;
        (mem.seq, mem.map.iter().map(|(k, s)| (k.clone(), s.value.clone())).collect(), old)
    };
    let (started, entries) = (std::time::Instant::now(), snapshot.len());
    let mut rest = snapshot.into_iter();
    loop {
        let chunk: Vec<Pending> = rest.by_ref().take(CHUNK).collect();
        if chunk.is_empty() {
            break;
        }
        write_all(&inner.tree, chunk.iter().cloned())?;
        forget(inner, &chunk, upto);
    }
    inner.db.flush()?;
    wal::remove(&old)?;
    inner.replayed.store(false, std::sync::atomic::Ordering::Relaxed);
    tracing::debug!(entries, ms = started.elapsed().as_millis() as u64, "checkpoint");
    Ok(())
}

/// Drops from the table the entries of `chunk` that sled now holds (those
/// not written again since the snapshot), and wakes a waiting writer.
fn forget(inner: &Inner, chunk: &[Pending], upto: u64) {
    let mut mem = inner.mem.write().unwrap_or_else(std::sync::PoisonError::into_inner);
    for (k, _) in chunk {
        if mem.map.get(k).is_some_and(|s| s.seq <= upto) {
            let slot = mem.map.remove(k).expect("present");
            mem.bytes -= entry_size(k.len(), slot.value.map_or(0, |v| v.len()));
        }
    }
    drop(mem);
    inner.room.notify_waiters();
}

/// Checkpoints when the table is large, the log long, or writes paused;
/// stops when told.
pub(super) fn run(inner: &Inner, stop: &(Mutex<bool>, Condvar)) {
    loop {
        {
            let (flag, wake) = stop;
            let stopped = flag.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let (stopped, _) =
                wake.wait_timeout(stopped, TICK).unwrap_or_else(std::sync::PoisonError::into_inner);
            if *stopped {
                return;
            }
        }
        let (bytes, empty) = {
            let mem = read(&inner.mem);
            (mem.bytes, mem.map.is_empty())
        };
        let wal_bytes = inner.wal.lock().map(|w| w.bytes).unwrap_or(0);
        let now = now_ms();
        if now < inner.hold_until_ms.load(Ordering::Relaxed) {
            continue;
        }
        let idle = now.saturating_sub(inner.last_write_ms.load(Ordering::Relaxed)) >= IDLE_MS;
        if !empty
            && (bytes >= MEM_LIMIT || wal_bytes >= WAL_LIMIT || idle)
            && let Err(e) = once(inner)
        {
            tracing::error!(error = %e, "checkpoint failed; the log keeps every write and is retried");
        }
    }
}
