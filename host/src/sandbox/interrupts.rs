//! The attempts running in this sandbox and their cancel signals, so a
//! forced cancel can interrupt them: a raised signal ends the attempt at its
//! next epoch tick if it runs wasm code, and at once if it waits in a host
//! call (see `execute.rs`).
//!
//! A forced cancel also covers attempts that were handed out before it but
//! register here only after it (their runner was still preparing them): the
//! job is remembered as force-canceled for [`LATE_WINDOW`], or until it is
//! retried.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::model::{JobId, TaskKey};

/// How long a forced cancel still stops attempts that start late.
const LATE_WINDOW: Duration = Duration::from_secs(30);

/// The cancel signal of one attempt.
#[derive(Debug, Default)]
pub struct Cancel {
    raised: AtomicBool,
    wake: Notify,
}

impl Cancel {
    /// Raises the signal and wakes the attempt if it waits.
    pub fn raise(&self) {
        self.raised.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Whether the signal was raised.
    pub fn is_raised(&self) -> bool {
        self.raised.load(Ordering::Acquire)
    }

    /// Resolves once the signal is raised.
    pub async fn raised(&self) {
        while !self.is_raised() {
            self.wake.notified().await;
        }
    }
}

#[derive(Default)]
struct Inner {
    running: HashMap<TaskKey, Arc<Cancel>>,
    canceled: HashMap<JobId, Instant>,
}

/// Cancel signals of running attempts.
#[derive(Default)]
pub struct Interrupts {
    inner: Mutex<Inner>,
}

impl Interrupts {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A signal for an attempt of `key` that is starting; already raised
    /// when its job was force-canceled moments ago.
    pub fn register(&self, key: TaskKey) -> Arc<Cancel> {
        let mut inner = self.lock();
        let cancel = Arc::new(Cancel::default());
        if inner.canceled.get(&key.job).is_some_and(|t| t.elapsed() < LATE_WINDOW) {
            cancel.raise();
        }
        inner.running.insert(key, cancel.clone());
        cancel
    }

    /// Forgets the attempt of `key`, which has ended.
    pub fn remove(&self, key: TaskKey) {
        self.lock().running.remove(&key);
    }

    /// Raises the signal of every running attempt of `job`, and of any that
    /// starts within the window. Answers how many were running.
    pub fn interrupt_job(&self, job: JobId) -> usize {
        let mut inner = self.lock();
        inner.canceled.retain(|_, t| t.elapsed() < LATE_WINDOW);
        inner.canceled.insert(job, Instant::now());
        let running = inner.running.iter().filter(|(k, _)| k.job == job);
        running.map(|(_, cancel)| cancel.raise()).count()
    }

    /// Forgets a forced cancel of `job` (it was retried).
    pub fn forget(&self, job: JobId) {
        self.lock().canceled.remove(&job);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TaskId;

    #[test]
    fn a_forced_cancel_reaches_attempts_that_register_after_it() {
        let interrupts = Interrupts::default();
        let job = JobId::new();
        let running = interrupts.register(TaskKey { job, task: TaskId::new() });
        assert_eq!(interrupts.interrupt_job(job), 1);
        assert!(running.is_raised());
        let late = interrupts.register(TaskKey { job, task: TaskId::new() });
        assert!(late.is_raised());
        interrupts.forget(job);
        assert!(!interrupts.register(TaskKey { job, task: TaskId::new() }).is_raised());
        let other = interrupts.register(TaskKey { job: JobId::new(), task: TaskId::new() });
        assert!(!other.is_raised());
    }

    #[tokio::test]
    async fn a_raised_signal_wakes_a_waiting_attempt() {
        let cancel = Arc::new(Cancel::default());
        let waiting = tokio::spawn({
            let cancel = cancel.clone();
            async move { cancel.raised().await }
        });
        tokio::task::yield_now().await;
        cancel.raise();
        tokio::time::timeout(Duration::from_secs(5), waiting).await.unwrap().unwrap();
    }
}
