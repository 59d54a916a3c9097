//! The store's fault: the first failure that leaves the backend unable to
//! take or keep writes (locally: a failed write or sync of the log, no
//! space for a segment, a checkpoint that cannot make room; PostgreSQL: a
//! failed commit, a fenced one, the lock's connection lost). Once raised,
//! every later write and sync is refused at once, so no group is
//! acknowledged after it, and a group whose sync failed can never be made
//! durable by a later sync; the host stops acknowledging and exits so a
//! restart recovers from the log or the database (`server/mod.rs`).

use std::sync::Arc;

use tokio::sync::watch;

use super::Error;

/// The first fault, once raised; watched by the host.
pub(super) struct Fault {
    raised: watch::Sender<Option<Arc<str>>>,
}

impl Fault {
    pub(super) fn new() -> Self {
        Fault { raised: watch::channel(None).0 }
    }

    /// The error every write answers once the fault is raised.
    pub(super) fn check(&self) -> Result<(), Error> {
        match &*self.raised.borrow() {
            Some(reason) => Err(Error::Unavailable(reason.clone())),
            None => Ok(()),
        }
    }

    /// Raises the fault for `cause` (the first cause stays); answers the
    /// error its caller returns.
    pub(super) fn raise(&self, cause: Error) -> Error {
        let reason: Arc<str> = cause.to_string().into();
        self.raised.send_if_modified(|raised| {
            if raised.is_some() {
                return false;
            }
            tracing::error!(error = %reason, "the store stopped taking writes");
            *raised = Some(reason.clone());
            true
        });
        self.check().err().unwrap_or(Error::Unavailable(reason))
    }

    /// Follows the fault: `None` until it is raised.
    pub(super) fn watch(&self) -> watch::Receiver<Option<Arc<str>>> {
        self.raised.subscribe()
    }
}

/// Test builds only: the `n`th sync of the log (counting from 1) fails when
/// `SANDFLOW_FAULT_SYNC_AFTER=n` is set, without syncing, as a sync whose
/// pages the kernel lost would. The end-to-end tests use it to check that
/// such a group is neither acknowledged nor replayed.
#[cfg(debug_assertions)]
pub(super) fn injected_sync_failure() -> Option<std::io::Error> {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static AT: OnceLock<Option<u64>> = OnceLock::new();
    static SYNCS: AtomicU64 = AtomicU64::new(0);
    let at = (*AT.get_or_init(|| std::env::var("SANDFLOW_FAULT_SYNC_AFTER").ok()?.parse().ok()))?;
    let n = SYNCS.fetch_add(1, Ordering::Relaxed) + 1;
    (n == at)
        .then(|| std::io::Error::other(format!("sync {n} failed (injected by SANDFLOW_FAULT_SYNC_AFTER)")))
}

/// Release builds have no injected failures.
#[cfg(not(debug_assertions))]
pub(super) fn injected_sync_failure() -> Option<std::io::Error> {
    None
}
