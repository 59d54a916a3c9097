//! One cluster's ready tasks, served by job priority, then fairly among
//! jobs of the same priority: round-robin, one task of each job with ready
//! tasks per turn, so a job submitted behind a large fan-out starts with
//! the next claim instead of after the fan-out. Within a job, tasks keep
//! their order. A job's priority is fixed when it is submitted.

use std::cmp::Reverse;
use std::collections::{BTreeMap, VecDeque};

use rustc_hash::FxHashMap as HashMap;

use crate::model::{JobId, TaskKey};

/// Ready tasks by job, and the jobs in their turn order per priority.
#[derive(Default)]
pub struct FairQueue {
    /// Jobs with ready tasks, highest priority first.
    turns: BTreeMap<Reverse<i8>, VecDeque<JobId>>,
    tasks: HashMap<JobId, (i8, VecDeque<TaskKey>)>,
    len: usize,
}

impl FairQueue {
    /// Adds `key` (of a job of `priority`) after its job's other ready
    /// tasks; a job with none so far takes its turn after every job of its
    /// priority already waiting.
    pub fn push_back(&mut self, key: TaskKey, priority: i8) {
        let (_, queue) = self.tasks.entry(key.job).or_insert_with(|| (priority, VecDeque::new()));
        if queue.is_empty() {
            self.turns.entry(Reverse(priority)).or_default().push_back(key.job);
        }
        queue.push_back(key);
        self.len += 1;
    }

    /// Adds `key` (handed back unstarted) first of its job's, and its job
    /// first in turn among its priority if it had no other ready task.
    pub fn push_front(&mut self, key: TaskKey, priority: i8) {
        let (_, queue) = self.tasks.entry(key.job).or_insert_with(|| (priority, VecDeque::new()));
        if queue.is_empty() {
            self.turns.entry(Reverse(priority)).or_default().push_front(key.job);
        }
        queue.push_front(key);
        self.len += 1;
    }

    /// The next task: the first of the job whose turn it is among the jobs
    /// of the highest priority.
    pub fn pop_front(&mut self) -> Option<TaskKey> {
        let mut level = self.turns.first_entry()?;
        let job = level.get_mut().pop_front()?;
        let (_, queue) = self.tasks.get_mut(&job)?;
        let key = queue.pop_front()?;
        if queue.is_empty() {
            self.tasks.remove(&job);
        } else {
            level.get_mut().push_back(job);
        }
        if level.get().is_empty() {
            level.remove();
        }
        self.len -= 1;
        Some(key)
    }

    /// How many tasks are ready.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no task is ready.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TaskId;

    fn keys(job: JobId, n: usize) -> Vec<TaskKey> {
        (0..n).map(|_| TaskKey { job, task: TaskId::new() }).collect()
    }

    #[test]
    fn jobs_take_turns_and_keep_their_own_order() {
        let (a, b) = (JobId::new(), JobId::new());
        let (big, small) = (keys(a, 1000), keys(b, 2));
        let mut q = FairQueue::default();
        big.iter().for_each(|k| q.push_back(*k, 0));
        small.iter().for_each(|k| q.push_back(*k, 0));
        let first: Vec<TaskKey> = (0..4).filter_map(|_| q.pop_front()).collect();
        assert_eq!(first, [big[0], small[0], big[1], small[1]], "the small job starts at once");
        assert_eq!(q.len(), 998);
        let rest: Vec<TaskKey> = std::iter::from_fn(|| q.pop_front()).collect();
        assert_eq!(rest, big[2..], "the big job keeps its order");
        assert!(q.is_empty());
    }

    #[test]
    fn a_handed_back_task_comes_first_again() {
        let a = JobId::new();
        let ks = keys(a, 2);
        let mut q = FairQueue::default();
        q.push_back(ks[1], 0);
        q.push_front(ks[0], 0);
        assert_eq!((q.pop_front(), q.pop_front(), q.pop_front()), (Some(ks[0]), Some(ks[1]), None));
    }

    #[test]
    fn higher_priorities_are_served_first_and_equal_ones_take_turns() {
        let (low, high, urgent, also_high) = (JobId::new(), JobId::new(), JobId::new(), JobId::new());
        let (l, h, u, a) = (keys(low, 3), keys(high, 2), keys(urgent, 1), keys(also_high, 2));
        let mut q = FairQueue::default();
        l.iter().for_each(|k| q.push_back(*k, -1));
        h.iter().for_each(|k| q.push_back(*k, 5));
        a.iter().for_each(|k| q.push_back(*k, 5));
        u.iter().for_each(|k| q.push_back(*k, 10));
        let order: Vec<TaskKey> = std::iter::from_fn(|| q.pop_front()).collect();
        assert_eq!(order, [u[0], h[0], a[0], h[1], a[1], l[0], l[1], l[2]]);
        assert!(q.is_empty() && q.turns.is_empty() && q.tasks.is_empty());
    }
}
