//! Ready tasks per cluster (served by job priority, then fairly among
//! jobs, `fair.rs`), and the runners waiting for them.

use std::collections::{HashMap, VecDeque};

use tokio::sync::oneshot;

use super::fair::FairQueue;
use super::{Assignment, Error};
use crate::model::TaskKey;

/// A runner waiting for work.
pub struct Waiter {
    /// The cluster it serves.
    pub cluster: String,
    /// The most tasks it takes at once.
    pub max: usize,
    /// Whether it waits for a task; if not, it is answered (maybe with
    /// nothing) by the group that receives it.
    pub wait: bool,
    /// Where its tasks go.
    pub tx: oneshot::Sender<Result<Vec<Assignment>, Error>>,
}

/// In-memory ready queues (a copy of the store's ready set) and idle runners.
#[derive(Default)]
pub struct Queues {
    ready: HashMap<String, FairQueue>,
    waiters: HashMap<String, VecDeque<Waiter>>,
}

impl Queues {
    /// Adds a ready task (of a job of `priority`) at the back of its
    /// cluster's queue.
    pub fn push(&mut self, cluster: &str, key: TaskKey, priority: i8) {
        match self.ready.get_mut(cluster) {
            Some(q) => q.push_back(key, priority),
            None => self.ready.entry(cluster.to_owned()).or_default().push_back(key, priority),
        }
    }

    /// Puts tasks handed back unstarted at the front of their cluster's queue.
    pub fn push_front(&mut self, cluster: &str, key: TaskKey, priority: i8) {
        self.ready.entry(cluster.to_owned()).or_default().push_front(key, priority);
    }

    /// Parks an idle runner.
    pub fn wait(&mut self, waiter: Waiter) {
        self.waiters.entry(waiter.cluster.clone()).or_default().push_back(waiter);
    }

    /// Puts a runner back first in line.
    pub fn wait_first(&mut self, waiter: Waiter) {
        self.waiters.entry(waiter.cluster.clone()).or_default().push_back(waiter);
    }

    /// How many tasks the next runner of `cluster` gets at most: an even share
    /// of the ready tasks among the waiting runners, within its own maximum.
    pub fn share(&self, cluster: &str, max: usize) -> usize {
        let ready = self.ready.get(cluster).map_or(0, FairQueue::len);
        let waiting = self.waiters.get(cluster).map_or(0, VecDeque::len) + 1;
        ready.div_ceil(waiting).clamp(1, max)
    }

    /// Clusters that have both a ready task and a waiting runner.
    pub fn matchable(&mut self) -> Vec<String> {
        for q in self.waiters.values_mut() {
            q.retain(|w| !w.tx.is_closed());
        }
        self.waiters
            .iter()
            .filter(|(c, w)| !w.is_empty() && self.ready.get(*c).is_some_and(|r| !r.is_empty()))
            .map(|(c, _)| c.clone())
            .collect()
    }

    /// The next ready task of `cluster`.
    pub fn pop_ready(&mut self, cluster: &str) -> Option<TaskKey> {
        self.ready.get_mut(cluster)?.pop_front()
    }

    /// Answers the runners that do not wait with nothing: no task was
    /// ready for them.
    pub fn answer_impatient(&mut self) {
        for q in self.waiters.values_mut() {
            for w in std::mem::take(q) {
                if w.wait {
                    q.push_back(w);
                } else {
                    let _ = w.tx.send(Ok(Vec::new()));
                }
            }
        }
    }

    /// The runner of `cluster` that started waiting last and is still
    /// listening: the one most likely still awake (its thread has not gone
    /// to sleep yet), which matters when tasks come one at a time.
    pub fn pop_waiter(&mut self, cluster: &str) -> Option<Waiter> {
        let q = self.waiters.get_mut(cluster)?;
        while let Some(w) = q.pop_back() {
            if !w.tx.is_closed() {
                return Some(w);
            }
        }
        None
    }
}
