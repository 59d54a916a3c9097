//! Who writes the store, over the life of the process: this host's leader
//! stack while it holds the store, or a standby that passes requests on and
//! waits for the store's lock. A leader whose shared store fails (the
//! database went away, a commit failed, the lock was lost) steps down at
//! once: it lets the lock go, answers as a standby, tears its stack down
//! and waits for the lock like any standby, so it leads again, rebuilt
//! from the database, as soon as the database takes writes and no other
//! host took the lead first. A local store's failure (a full disk) stops
//! the host after the grace instead: its restart recovers from the log.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::leader::Leader;
use super::{Error, Options};
use crate::api;
use crate::store::{self, Store};

/// The deadline a stop signal set, if any.
pub(super) type Stopping = watch::Receiver<Option<tokio::time::Instant>>;

/// The seat of the store's writer in this process.
pub(super) struct Seat {
    pub location: store::Location,
    pub options: Options,
    pub stopping: Stopping,
    /// This host's API address, as other hosts reach it.
    pub advertise: String,
    /// What the API answers with.
    pub front: watch::Sender<api::Front>,
    /// The leader's stack while this host leads.
    pub led: watch::Sender<Option<Leader>>,
    /// Asks the host to stop (a local store failed, or a start failed).
    pub quit: Arc<Notify>,
}

impl Seat {
    /// Leads while this host holds the store and waits for it while
    /// another does, until the host stops.
    pub async fn run(self) {
        loop {
            let leading = self.led.borrow().is_some();
            match if leading { Ok(()) } else { self.take_over().await } {
                Ok(()) => {}
                Err(e) if e.is_unavailable() => {
                    tracing::warn!(error = %e, "could not take the lead of the store; trying again");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not take the lead of the store; stopping");
                    return self.quit.notify_one();
                }
            }
            let Some(mut fault) = self.led.borrow().as_ref().map(|l| l.store.fault()) else { return };
            if fault.wait_for(Option::is_some).await.is_err() || self.stopping.borrow().is_some() {
                return;
            }
            if !self.location.is_shared() {
                let grace = self.options.shutdown_grace;
                tracing::error!(exit_in = ?grace, "the store failed; the host exits so a restart recovers from the store");
                tokio::time::sleep(grace).await;
                return self.quit.notify_one();
            }
            self.step_down().await;
        }
    }

    /// Tells the hosts sharing the store that this one leads it.
    pub async fn announce(&self) -> Result<(), Error> {
        let Some(store) = self.led.borrow().as_ref().map(|l| l.store.clone()) else { return Ok(()) };
        let address = self.advertise.clone();
        let done = tokio::task::spawn_blocking(move || store.announce(&address)).await;
        done.map_err(|e| Error::Config(format!("announcing the host failed: {e}")))?.map_err(Error::from)
    }

    /// Waits for the store (on a thread: the wait may last as long as the
    /// leader), starts the leader's stack, answers with it and announces it.
    async fn take_over(&self) -> Result<(), Error> {
        tracing::info!(store = %self.location, "another host leads the store: serving as its standby");
        let (tx, rx) = tokio::sync::oneshot::channel();
        let location = self.location.clone();
        std::thread::spawn(move || {
            let _ = tx.send(wait_for_store(&location));
        });
        let Ok(store) = rx.await else { return Ok(()) };
        let started = std::time::Instant::now();
        let held = store.clone();
        let leader = Leader::start(store, &self.options, self.stopping.clone()).await.inspect_err(|_| {
            // Whatever the start left running must not keep the lock.
            held.release();
        })?;
        self.front.send_replace(api::Front::Leader(leader.router.clone()));
        self.led.send_replace(Some(leader));
        match self.announce().await {
            Ok(()) => tracing::info!(took = ?started.elapsed(), "took the lead of the store"),
            Err(e) => tracing::error!(error = %e, "took the lead but could not announce it"),
        }
        Ok(())
    }

    /// Lets the failed store go and answers as a standby; the old stack
    /// ends in the background (runners finish their attempts, whose
    /// reports are refused; the next leader runs them again).
    async fn step_down(&self) {
        let Some(old) = self.led.send_replace(None) else { return };
        tracing::error!(
            "the store failed; this host lets it go and serves as a standby until it can lead again"
        );
        old.store.release();
        self.front.send_replace(standby(&self.location, &self.advertise));
        tokio::spawn(old.step_down(self.options.shutdown_grace));
    }
}

/// The front of a standby of the store at `location`, on a host that
/// others reach at `advertise`.
pub(super) fn standby(location: &store::Location, advertise: &str) -> api::Front {
    let leader = Store::follow_leader(location).unwrap_or_else(|| watch::channel(None).1);
    api::Front::Standby(api::Standby::new(leader, advertise.to_owned()))
}

/// Opens the store once the leader lets it go, trying again (every
/// second) while the database cannot be reached.
fn wait_for_store(location: &store::Location) -> Store {
    loop {
        match Store::open_when_free(location) {
            Ok(store) => return store,
            Err(e) => {
                tracing::warn!(error = %e, "waiting for the store; trying again");
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}
