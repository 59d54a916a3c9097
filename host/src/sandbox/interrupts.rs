//! The attempts running in this sandbox and their cancel flags, so a forced
//! cancel can interrupt them. A flag is checked at every epoch tick.
//!
//! A forced cancel also covers attempts that were handed out before it but
//! register here only after it (their runner was still preparing them): the
//! job is remembered as force-canceled for [`LATE_WINDOW`], or until it is
//! retried.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::model::{JobId, TaskKey};

/// How long a forced cancel still stops attempts that start late.
const LATE_WINDOW: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Inner {
    running: HashMap<TaskKey, Arc<AtomicBool>>,
    canceled: HashMap<JobId, Instant>,
}

/// Cancel flags of running attempts.
#[derive(Default)]
pub struct Interrupts {
    inner: Mutex<Inner>,
}

impl Interrupts {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A flag for an attempt of `key` that is starting; already raised when
    /// its job was force-canceled moments ago.
    pub fn register(&self, key: TaskKey) -> Arc<AtomicBool> {
        let mut inner = self.lock();
        let canceled = inner.canceled.get(&key.job).is_some_and(|t| t.elapsed() < LATE_WINDOW);
        let flag = Arc::new(AtomicBool::new(canceled));
        inner.running.insert(key, flag.clone());
        flag
    }

    /// Forgets the attempt of `key`, which has ended.
    pub fn remove(&self, key: TaskKey) {
        self.lock().running.remove(&key);
    }

    /// Raises the flag of every running attempt of `job`, and of any that
    /// starts within the window. Answers how many were running.
    pub fn interrupt_job(&self, job: JobId) -> usize {
        let mut inner = self.lock();
        inner.canceled.retain(|_, t| t.elapsed() < LATE_WINDOW);
        inner.canceled.insert(job, Instant::now());
        let flags = inner.running.iter().filter(|(k, _)| k.job == job);
        flags.map(|(_, flag)| flag.store(true, Ordering::Relaxed)).count()
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
        assert!(running.load(Ordering::Relaxed));
        let late = interrupts.register(TaskKey { job, task: TaskId::new() });
        assert!(late.load(Ordering::Relaxed));
        interrupts.forget(job);
        assert!(!interrupts.register(TaskKey { job, task: TaskId::new() }).load(Ordering::Relaxed));
        let other = interrupts.register(TaskKey { job: JobId::new(), task: TaskId::new() });
        assert!(!other.load(Ordering::Relaxed));
    }
}
