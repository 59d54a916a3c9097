//! The attempts running in this sandbox and their cancel flags, so a forced
//! cancel can interrupt them. A flag is checked at every epoch tick.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::model::{JobId, TaskKey};

/// Cancel flags of running attempts.
#[derive(Default)]
pub struct Interrupts {
    running: Mutex<HashMap<TaskKey, Arc<AtomicBool>>>,
}

impl Interrupts {
    /// A fresh flag for an attempt of `key` that is starting.
    pub fn register(&self, key: TaskKey) -> Arc<AtomicBool> {
        let flag = Arc::new(AtomicBool::new(false));
        self.running.lock().unwrap_or_else(PoisonError::into_inner).insert(key, flag.clone());
        flag
    }

    /// Forgets the attempt of `key`, which has ended.
    pub fn remove(&self, key: TaskKey) {
        self.running.lock().unwrap_or_else(PoisonError::into_inner).remove(&key);
    }

    /// Raises the flag of every running attempt of `job`.
    pub fn interrupt_job(&self, job: JobId) -> usize {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let flags = running.iter().filter(|(k, _)| k.job == job);
        flags.map(|(_, flag)| flag.store(true, Ordering::Relaxed)).count()
    }
}
