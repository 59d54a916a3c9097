//! The waiting tasks of every job, in the writer's memory only: how many
//! dependencies each still waits for, and the reverse edges (which waiting
//! tasks each unfinished dependency holds back). A task with dependencies
//! is created with a live key marked waiting (`Live::Waiting`) and an entry
//! here; each dependency whose subtree completes counts its dependents
//! down, and the last one makes a dependent ready: its live key becomes
//! ready, which is the only write. So releasing an edge reads nothing from
//! the store, whatever the shape of the job or the store's backend. A task
//! and its dependencies are siblings, numbered as one block of ids, so the
//! counts and reverse edges of a block are vectors by offset in it, and an
//! edge costs no hashing; dependencies of no one block (sets written by
//! older hosts, found at start-up) are kept in maps by id.
//!
//! The store keeps only the forward edges (each definition's `depends_on`);
//! this is derived state: at start-up it is rebuilt from the waiting live
//! keys, their definitions and the statuses of what they depend on
//! ([`Waiting::recount`]). A job's entry goes when its last waiting task
//! is released or skipped, or when the job is deleted.

use rustc_hash::FxHashMap as HashMap;

use super::Error;
use crate::model::{JobId, TaskId, TaskKey};
use crate::store::Unit;

/// The waiting tasks of one job.
#[derive(Default)]
struct Job {
    /// Tasks waiting for siblings of their own block ([`TaskId::block`]:
    /// every subtask set written by this host), by the block's first id.
    blocks: HashMap<TaskId, Block>,
    /// Tasks waiting for tasks of no one block (written by hosts that
    /// numbered subtasks one by one), by id.
    loose: Loose,
}

/// The waiting tasks of one block, by offset in it: an edge costs a vector
/// slot, no hashing, whether it is added or released.
#[derive(Default)]
struct Block {
    /// Unmet dependencies of the task at each offset (0: it does not wait).
    unmet: Vec<u32>,
    /// For each offset, the offsets of the tasks it holds back (a task
    /// skipped meanwhile may still be listed: releasing it does nothing).
    held: Vec<Vec<u32>>,
    /// How many of its tasks wait.
    waiting: usize,
}

impl Block {
    fn fit(&mut self, at: u32) {
        let len = at as usize + 1;
        if self.unmet.len() < len {
            self.unmet.resize(len, 0);
            self.held.resize_with(len, Vec::new);
        }
    }

    /// The task at `me` waits for the tasks at `deps`; false when it
    /// already did.
    fn add(&mut self, me: u32, deps: impl Iterator<Item = u32>) -> bool {
        self.fit(me);
        if self.unmet[me as usize] > 0 {
            return false;
        }
        let mut count = 0;
        for dep in deps {
            self.fit(dep);
            self.held[dep as usize].push(me);
            count += 1;
        }
        self.unmet[me as usize] = count;
        self.waiting += 1;
        true
    }

    /// The task at `at` completed: the offsets it was the last unmet
    /// dependency of.
    fn release(&mut self, at: u32, freed: &mut Vec<u32>) {
        let Some(held) = self.held.get_mut(at as usize) else { return };
        for task in std::mem::take(held) {
            let n = &mut self.unmet[task as usize];
            if *n > 0 {
                *n -= 1;
                if *n == 0 {
                    self.waiting -= 1;
                    freed.push(task);
                }
            }
        }
    }

    /// Whether the task at `at` waits.
    fn waits(&self, at: u32) -> bool {
        self.unmet.get(at as usize).is_some_and(|n| *n > 0)
    }

    /// The task at `at` no longer waits; whether it did.
    fn remove(&mut self, at: u32) -> bool {
        match self.unmet.get_mut(at as usize) {
            Some(n) if *n > 0 => {
                *n = 0;
                self.waiting -= 1;
                true
            }
            _ => false,
        }
    }
}

/// Waiting tasks by id, for dependencies of no one block.
#[derive(Default)]
struct Loose {
    /// Unmet dependencies of each waiting task.
    unmet: HashMap<TaskId, u32>,
    /// The tasks that wait for each unfinished dependency (a task skipped
    /// meanwhile may still be listed: releasing it does nothing).
    held: HashMap<TaskId, Vec<TaskId>>,
}

impl Loose {
    fn add(&mut self, task: TaskId, unmet: &[TaskId]) -> bool {
        if self.unmet.insert(task, unmet.len() as u32).is_some() {
            return false;
        }
        for dep in unmet {
            self.held.entry(*dep).or_default().push(task);
        }
        true
    }

    fn release(&mut self, dep: TaskId, freed: &mut Vec<TaskId>) {
        let Some(held) = self.held.remove(&dep) else { return };
        for task in held {
            let Some(n) = self.unmet.get_mut(&task) else { continue };
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.unmet.remove(&task);
                freed.push(task);
            }
        }
    }
}

/// Unmet dependencies and reverse edges of every waiting task, by job.
#[derive(Default)]
pub struct Waiting {
    jobs: HashMap<JobId, Job>,
    tasks: usize,
}

/// The block `task` and every one of `deps` belong to, if one does.
fn one_block(task: TaskId, deps: &[TaskId]) -> Option<TaskId> {
    let (base, _) = task.in_block();
    deps.iter().all(|d| d.in_block().0 == base).then_some(base)
}

impl Waiting {
    /// Records that `key` waits for each of `unmet` (dependencies whose
    /// subtree is not complete); nothing when there are none.
    pub fn add(&mut self, key: TaskKey, unmet: &[TaskId]) {
        if unmet.is_empty() {
            return;
        }
        let job = self.jobs.entry(key.job).or_default();
        let added = match one_block(key.task, unmet) {
            Some(base) => {
                let offsets = unmet.iter().map(|d| d.in_block().1);
                job.blocks.entry(base).or_default().add(key.task.in_block().1, offsets)
            }
            None => job.loose.add(key.task, unmet),
        };
        self.tasks += usize::from(added);
    }

    /// Whether `key` waits for a dependency.
    pub fn contains(&self, key: &TaskKey) -> bool {
        let Some(job) = self.jobs.get(&key.job) else { return false };
        let (base, at) = key.task.in_block();
        job.blocks.get(&base).is_some_and(|b| b.waits(at)) || job.loose.unmet.contains_key(&key.task)
    }

    /// `key`'s subtree is complete: counts it off every task that waited
    /// for it, and answers those it was the last dependency of (they may
    /// run now).
    pub fn release(&mut self, key: TaskKey) -> Vec<TaskKey> {
        let Some(job) = self.jobs.get_mut(&key.job) else { return Vec::new() };
        let (base, at) = key.task.in_block();
        let mut freed = Vec::new();
        if let Some(block) = job.blocks.get_mut(&base) {
            let mut offsets = Vec::new();
            block.release(at, &mut offsets);
            freed.extend(offsets.into_iter().filter_map(|o| base.offset(o)));
            if block.waiting == 0 {
                job.blocks.remove(&base);
            }
        }
        job.loose.release(key.task, &mut freed);
        self.tasks -= freed.len();
        self.drop_if_idle(key.job);
        freed.into_iter().map(|task| TaskKey { job: key.job, task }).collect()
    }

    /// Forgets `key` (skipped: it will never run).
    pub fn remove(&mut self, key: &TaskKey) {
        let Some(job) = self.jobs.get_mut(&key.job) else { return };
        let (base, at) = key.task.in_block();
        let mut removed = job.loose.unmet.remove(&key.task).is_some();
        if let Some(block) = job.blocks.get_mut(&base) {
            removed |= block.remove(at);
            if block.waiting == 0 {
                job.blocks.remove(&base);
            }
        }
        if removed {
            self.tasks -= 1;
            self.drop_if_idle(key.job);
        }
    }

    /// Forgets every waiting task of `job` (deleted).
    pub fn forget_job(&mut self, job: JobId) {
        if let Some(gone) = self.jobs.remove(&job) {
            self.tasks -= gone.loose.unmet.len() + gone.blocks.values().map(|b| b.waiting).sum::<usize>();
        }
    }

    /// How many tasks wait.
    pub fn len(&self) -> usize {
        self.tasks
    }

    /// Recounts the unmet dependencies of `key` (found waiting at start-up):
    /// those whose subtree is not complete. Answers how many there are.
    pub fn recount(&mut self, unit: &mut Unit, key: TaskKey) -> Result<usize, Error> {
        let def = unit.def(key)?.ok_or(Error::UnknownTask(key))?;
        let mut unmet = Vec::new();
        for dep in &def.depends_on {
            let dep_key = TaskKey { job: key.job, task: *dep };
            if unit.status(dep_key)?.is_none_or(|s| s.open > 0) {
                unmet.push(*dep);
            }
        }
        self.add(key, &unmet);
        Ok(unmet.len())
    }

    /// Drops `job`'s entry once none of its tasks waits (with the reverse
    /// edges of skipped tasks left in it).
    fn drop_if_idle(&mut self, job: JobId) {
        if self.jobs.get(&job).is_some_and(|j| j.blocks.is_empty() && j.loose.unmet.is_empty()) {
            self.jobs.remove(&job);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(job: JobId) -> TaskKey {
        TaskKey { job, task: TaskId::new() }
    }

    #[test]
    fn the_last_dependency_frees_a_task_and_only_once() {
        let job = JobId::new();
        let (a, b, c, d) = (key(job), key(job), key(job), key(job));
        let mut waiting = Waiting::default();
        waiting.add(c, &[a.task, b.task]);
        waiting.add(c, &[a.task, b.task]);
        waiting.add(d, &[b.task]);
        waiting.add(key(job), &[]);
        assert_eq!(waiting.len(), 2, "a task with no unmet dependency does not wait");
        assert!(waiting.release(a).is_empty() && waiting.contains(&c));
        let mut freed = waiting.release(b);
        freed.sort_by_key(|k| k.task);
        let mut want = vec![c, d];
        want.sort_by_key(|k| k.task);
        assert_eq!(freed, want);
        assert!(waiting.release(b).is_empty(), "a dependency releases once");
        assert!(waiting.len() == 0 && waiting.jobs.is_empty(), "an idle job keeps nothing");
    }

    #[test]
    fn siblings_of_one_block_wait_and_are_freed_by_offset() {
        let job = JobId::new();
        let ids = TaskId::block(5);
        let k = |i: usize| TaskKey { job, task: ids[i] };
        let mut waiting = Waiting::default();
        waiting.add(k(2), &[ids[0], ids[1]]);
        waiting.add(k(2), &[ids[0], ids[1]]);
        waiting.add(k(3), &[ids[1]]);
        waiting.add(k(4), &[ids[3], ids[2]]);
        assert_eq!(waiting.len(), 3);
        assert_eq!(waiting.jobs[&job].blocks.len(), 1, "one block, nothing by id");
        assert!(waiting.jobs[&job].loose.unmet.is_empty());
        assert!(waiting.release(k(0)).is_empty() && waiting.contains(&k(2)));
        let mut freed = waiting.release(k(1));
        freed.sort();
        assert_eq!(freed, vec![k(2), k(3)]);
        assert!(waiting.release(k(1)).is_empty(), "a dependency releases once");
        assert!(waiting.release(k(3)).is_empty());
        waiting.remove(&k(4));
        assert!(!waiting.contains(&k(4)) && waiting.release(k(2)).is_empty(), "a skipped task is not freed");
        assert!(waiting.len() == 0 && waiting.jobs.is_empty(), "an idle job keeps nothing");
        waiting.add(k(1), &[ids[0]]);
        waiting.forget_job(job);
        assert!(waiting.len() == 0 && !waiting.contains(&k(1)));
    }

    #[test]
    fn dependencies_of_no_one_block_are_kept_by_id() {
        let job = JobId::new();
        let (ids, other) = (TaskId::block(2), TaskId::block(1));
        let k = |task| TaskKey { job, task };
        let mut waiting = Waiting::default();
        waiting.add(k(ids[1]), &[ids[0], other[0]]);
        assert_eq!((waiting.jobs[&job].blocks.len(), waiting.jobs[&job].loose.unmet.len()), (0, 1));
        assert!(waiting.release(k(other[0])).is_empty());
        assert_eq!(waiting.release(k(ids[0])), vec![k(ids[1])]);
        assert!(waiting.jobs.is_empty());
    }

    #[test]
    fn skipped_tasks_and_deleted_jobs_are_forgotten() {
        let (job, other) = (JobId::new(), JobId::new());
        let (a, b, c) = (key(job), key(job), key(job));
        let mut waiting = Waiting::default();
        waiting.add(b, &[a.task]);
        waiting.add(c, &[a.task]);
        waiting.remove(&b);
        assert_eq!(waiting.release(a), vec![c], "a skipped task is not freed");
        let (x, y) = (key(other), key(other));
        waiting.add(y, &[x.task]);
        waiting.forget_job(other);
        assert!(!waiting.contains(&y) && waiting.release(x).is_empty() && waiting.len() == 0);
    }
}
