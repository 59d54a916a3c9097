//! The host's short log of forced cancels, for remote runners: `POST
//! /v1/runners/interrupts` long-polls it, so a runner interrupts its
//! attempts of a force-canceled job at once, and learns when a retry of the
//! job lifts the cancel. Entries are kept as long as a forced cancel holds
//! in a sandbox (`LATE_WINDOW` there: 30 s).

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::model::JobId;
use crate::protocol::InterruptView;

/// How long an entry is kept.
const KEPT: Duration = Duration::from_secs(30);

struct Entry {
    seq: u64,
    job: JobId,
    canceled: bool,
    at: Instant,
}

/// Recent forced cancels and retries of force-canceled jobs.
#[derive(Default)]
pub struct ForcedCancels {
    log: Mutex<(u64, VecDeque<Entry>)>,
    added: Notify,
}

impl ForcedCancels {
    fn lock(&self) -> MutexGuard<'_, (u64, VecDeque<Entry>)> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that `job` was force-canceled (`canceled`), or retried.
    pub fn push(&self, job: JobId, canceled: bool) {
        let mut log = self.lock();
        log.0 += 1;
        let seq = log.0;
        log.1.retain(|e| e.at.elapsed() < KEPT);
        log.1.push_back(Entry { seq, job, canceled, at: Instant::now() });
        drop(log);
        self.added.notify_waiters();
    }

    /// The entries after `after` that are still kept.
    pub fn after(&self, after: u64) -> Vec<InterruptView> {
        let log = self.lock();
        let kept = log.1.iter().filter(|e| e.seq > after && e.at.elapsed() < KEPT);
        kept.map(|e| InterruptView { seq: e.seq, job: e.job.to_string(), canceled: e.canceled }).collect()
    }

    /// The entries after `after`, waiting up to `wait` for one.
    pub async fn wait_after(&self, after: u64, wait: Duration) -> Vec<InterruptView> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let added = self.added.notified();
            let found = self.after(after);
            if !found.is_empty() || tokio::time::timeout_at(deadline, added).await.is_err() {
                return found;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiting_poll_gets_a_cancel_that_comes_later() {
        let log = std::sync::Arc::new(ForcedCancels::default());
        let job = JobId::new();
        let waiting = tokio::spawn({
            let log = log.clone();
            async move { log.wait_after(0, Duration::from_secs(10)).await }
        });
        tokio::task::yield_now().await;
        log.push(job, true);
        let got = tokio::time::timeout(Duration::from_secs(5), waiting).await.unwrap().unwrap();
        assert_eq!((got.len(), got[0].canceled, got[0].job.clone()), (1, true, job.to_string()));
        log.push(job, false);
        assert_eq!(log.after(got[0].seq).len(), 1);
        assert!(log.wait_after(2, Duration::from_millis(10)).await.is_empty());
    }
}
