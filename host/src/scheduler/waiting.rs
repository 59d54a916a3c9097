//! The waiting tasks of every job, in the writer's memory only: how many
//! dependencies each still waits for, and the reverse edges (which waiting
//! tasks each unfinished dependency holds back). A task with dependencies
//! is created with a live key marked waiting (`Live::Waiting`) and an entry
//! here; each dependency whose subtree completes counts its dependents
//! down, and the last one makes a dependent ready: its live key becomes
//! ready, which is the only write. So releasing an edge costs a map update
//! and reads nothing from the store, whatever the shape of the job or the
//! store's backend.
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
    /// Unmet dependencies of each waiting task.
    unmet: HashMap<TaskId, u32>,
    /// The tasks that wait for each unfinished dependency (a task skipped
    /// meanwhile may still be listed: releasing it does nothing).
    held: HashMap<TaskId, Vec<TaskId>>,
}

/// Unmet dependencies and reverse edges of every waiting task, by job.
#[derive(Default)]
pub struct Waiting {
    jobs: HashMap<JobId, Job>,
    tasks: usize,
}

impl Waiting {
    /// Records that `key` waits for each of `unmet` (dependencies whose
    /// subtree is not complete); nothing when there are none.
    pub fn add(&mut self, key: TaskKey, unmet: &[TaskId]) {
        if unmet.is_empty() {
            return;
        }
        let job = self.jobs.entry(key.job).or_default();
        if job.unmet.insert(key.task, unmet.len() as u32).is_some() {
            return;
        }
        self.tasks += 1;
        for dep in unmet {
            job.held.entry(*dep).or_default().push(key.task);
        }
    }

    /// Whether `key` waits for a dependency.
    pub fn contains(&self, key: &TaskKey) -> bool {
        self.jobs.get(&key.job).is_some_and(|j| j.unmet.contains_key(&key.task))
    }

    /// `key`'s subtree is complete: counts it off every task that waited
    /// for it, and answers those it was the last dependency of (they may
    /// run now).
    pub fn release(&mut self, key: TaskKey) -> Vec<TaskKey> {
        let Some(job) = self.jobs.get_mut(&key.job) else { return Vec::new() };
        let Some(held) = job.held.remove(&key.task) else { return Vec::new() };
        let mut freed = Vec::new();
        for task in held {
            let Some(n) = job.unmet.get_mut(&task) else { continue };
            *n = n.saturating_sub(1);
            if *n == 0 {
                job.unmet.remove(&task);
                freed.push(TaskKey { job: key.job, task });
            }
        }
        self.tasks -= freed.len();
        self.drop_if_idle(key.job);
        freed
    }

    /// Forgets `key` (skipped: it will never run).
    pub fn remove(&mut self, key: &TaskKey) {
        if let Some(job) = self.jobs.get_mut(&key.job)
            && job.unmet.remove(&key.task).is_some()
        {
            self.tasks -= 1;
            self.drop_if_idle(key.job);
        }
    }

    /// Forgets every waiting task of `job` (deleted).
    pub fn forget_job(&mut self, job: JobId) {
        if let Some(gone) = self.jobs.remove(&job) {
            self.tasks -= gone.unmet.len();
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
        if self.jobs.get(&job).is_some_and(|j| j.unmet.is_empty()) {
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
