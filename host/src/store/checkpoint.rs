//! The checkpoint: writes the in-memory table's latest values to sled,
//! flushes sled, retires the log files that held them, and frees them from
//! the table; and the background thread that decides when (the table or
//! the log is large, or writes paused) and the guard that stops it.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use sled::IVec;

use super::Error;
use super::local::{Inner, MEM_HARD_LIMIT, MEM_LIMIT, WAL_LIMIT, read};
use super::table::FrozenPart;
use super::wal;
use crate::model::now_ms;

/// A pause in writes this long starts a checkpoint.
const IDLE_MS: u64 = 1_000;
/// How often the checkpointer looks.
const TICK: Duration = Duration::from_millis(100);

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

/// One checkpoint: freezes the table's active part (or takes the frozen
/// part a failed checkpoint left), writes it to sled, flushes sled, retires
/// the log files that held it and drops it from the table. Only the freeze
/// holds the log's and the table's locks, for a rotation and a swap.
pub(super) fn once(inner: &Inner) -> Result<(), Error> {
    let _one = inner.checkpoint.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some((frozen, files)) = freeze(inner)? else { return Ok(()) };
    let started = std::time::Instant::now();
    write_all(&inner.tree, frozen.iter().map(|(k, v)| (k.clone(), v.clone())))?;
    inner.db.flush()?;
    wal::retire(&files)?;
    inner.mem.write().unwrap_or_else(std::sync::PoisonError::into_inner).release();
    inner.replayed.store(false, Ordering::Relaxed);
    inner.room.notify_waiters();
    tracing::debug!(entries = frozen.len(), ms = started.elapsed().as_millis() as u64, "checkpoint");
    Ok(())
}

/// The part to write: the frozen one if a checkpoint failed, else the
/// active part, frozen now with the log files before a fresh one; `None`
/// when the table is empty. Holding the log's lock keeps groups out while
/// the log rotates, so the frozen part is exactly what those files hold.
fn freeze(inner: &Inner) -> Result<Option<FrozenPart>, Error> {
    let mut wal = inner.wal.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    {
        let mem = read(&inner.mem);
        if let Some(frozen) = mem.frozen() {
            return Ok(Some(frozen));
        }
        if mem.is_empty() {
            return Ok(None);
        }
    }
    inner.fault.check()?;
    // Rotation syncs the log: a failure there is the store's fault.
    let files = wal.rotate().map_err(|e| inner.fail(&mut wal, e))?;
    Ok(Some(inner.mem.write().unwrap_or_else(std::sync::PoisonError::into_inner).freeze(files)))
}

/// How much lower than the host's other threads the checkpointer runs
/// (a nice increment): a busy host answers requests first, and the
/// writer's back-pressure makes room for the checkpoint when the table is
/// full.
const NICE: i32 = 10;

/// Checkpoints when the table is large, the log long, or writes paused;
/// stops when told. Runs at a lower priority than request handling.
pub(super) fn run(inner: &Inner, stop: &(Mutex<bool>, Condvar)) {
    // On Linux a nice value belongs to the calling thread alone.
    if let Err(e) = rustix::process::nice(NICE) {
        tracing::debug!(error = %e, "could not lower the checkpoint thread's priority");
    }
    let mut ran = false;
    loop {
        // Right after a checkpoint, look again at once: the active part may
        // have filled while the frozen one was written.
        if stopped(stop, if ran { Duration::ZERO } else { TICK }) {
            return;
        }
        ran = due(inner);
        if ran && let Err(e) = once(inner) {
            ran = false;
            if matches!(e, Error::Unavailable(_)) {
                continue;
            }
            // The writer waits for room that no checkpoint can make.
            if read(&inner.mem).bytes() >= MEM_HARD_LIMIT {
                inner.fault.raise(e);
                continue;
            }
            tracing::error!(error = %e, "checkpoint failed; the log keeps every write and is retried");
        }
    }
}

/// Waits up to `wait` for the stop signal; answers whether it came.
fn stopped((flag, wake): &(Mutex<bool>, Condvar), wait: Duration) -> bool {
    let stopped = flag.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if *stopped || wait.is_zero() {
        return *stopped;
    }
    *wake.wait_timeout(stopped, wait).unwrap_or_else(std::sync::PoisonError::into_inner).0
}

/// A checkpoint is due: the table holds something, start-up is not holding
/// checkpoints back, and the active part is large, the log long, or writes
/// paused.
fn due(inner: &Inner) -> bool {
    let (active, empty) = {
        let mem = read(&inner.mem);
        (mem.active_bytes(), mem.is_empty())
    };
    let now = now_ms();
    if empty || now < inner.hold_until_ms.load(Ordering::Relaxed) || inner.fault.check().is_err() {
        return false;
    }
    let wal_bytes = inner.wal.lock().map(|w| w.bytes).unwrap_or(0);
    let idle = now.saturating_sub(inner.last_write_ms.load(Ordering::Relaxed)) >= IDLE_MS;
    active >= MEM_LIMIT || wal_bytes >= WAL_LIMIT || idle
}
