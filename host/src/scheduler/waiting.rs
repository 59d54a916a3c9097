//! How many dependencies each waiting task still waits for, in the writer's
//! memory only. A task with dependencies is created with a live key marked
//! waiting (`Live::Waiting`) and an entry here; each dependency that
//! completes counts it down, and the last one makes it ready: its live key
//! becomes ready, which is the only write. So releasing an edge costs a
//! map update and nothing on disk, whatever the shape of the job.
//!
//! Each job's number of waiting tasks lets a completion in a job where
//! nothing waits skip reading its dependents lists.
//!
//! The counts are derived state: at start-up they are recounted from the
//! waiting live keys, the definitions (what each task depends on) and the
//! statuses (which dependencies' subtrees are complete).

use rustc_hash::FxHashMap as HashMap;

use super::Error;
use crate::model::{JobId, TaskKey};
use crate::store::Unit;

/// Unmet dependencies of every waiting task, and how many tasks of each
/// job wait.
#[derive(Default)]
pub struct Waiting {
    unmet: HashMap<TaskKey, u32>,
    per_job: HashMap<JobId, u32>,
}

impl Waiting {
    /// Records that `key` waits for `unmet` dependencies.
    pub fn add(&mut self, key: TaskKey, unmet: u32) {
        if unmet > 0 && self.unmet.insert(key, unmet).is_none() {
            *self.per_job.entry(key.job).or_default() += 1;
        }
    }

    /// Whether `key` waits for a dependency.
    pub fn contains(&self, key: &TaskKey) -> bool {
        self.unmet.contains_key(key)
    }

    /// Whether any task of `job` waits: when none does, a completion has no
    /// dependent to release, and its dependents need not be read.
    pub fn waits_in(&self, job: JobId) -> bool {
        self.per_job.contains_key(&job)
    }

    /// Counts down one dependency of `key`; answers whether that was its
    /// last (it may run now).
    pub fn release(&mut self, key: TaskKey) -> bool {
        let Some(n) = self.unmet.get_mut(&key) else { return false };
        *n = n.saturating_sub(1);
        if *n > 0 {
            return false;
        }
        self.remove(&key);
        true
    }

    /// Forgets `key` (skipped: it will never run).
    pub fn remove(&mut self, key: &TaskKey) {
        if self.unmet.remove(key).is_some()
            && let Some(n) = self.per_job.get_mut(&key.job)
        {
            *n -= 1;
            if *n == 0 {
                self.per_job.remove(&key.job);
            }
        }
    }

    /// How many tasks wait.
    pub fn len(&self) -> usize {
        self.unmet.len()
    }

    /// Recounts the unmet dependencies of `key` (found waiting at start-up):
    /// those whose subtree is not complete. Answers the count.
    pub fn recount(&mut self, unit: &mut Unit, key: TaskKey) -> Result<u32, Error> {
        let def = unit.def(key)?.ok_or(Error::UnknownTask(key))?;
        let mut unmet = 0;
        for dep in &def.depends_on {
            let dep = TaskKey { job: key.job, task: *dep };
            if unit.status(dep)?.is_none_or(|s| s.open > 0) {
                unmet += 1;
            }
        }
        self.add(key, unmet);
        Ok(unmet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TaskId;

    #[test]
    fn a_job_waits_while_any_of_its_tasks_does() {
        let (job, other) = (JobId::new(), JobId::new());
        let (a, b) = (TaskKey { job, task: TaskId::new() }, TaskKey { job, task: TaskId::new() });
        let mut waiting = Waiting::default();
        waiting.add(a, 2);
        waiting.add(a, 2);
        waiting.add(b, 1);
        waiting.add(TaskKey { job: other, task: TaskId::new() }, 0);
        assert!(waiting.waits_in(job) && !waiting.waits_in(other), "no unmet dependency: not waiting");
        assert!(!waiting.release(a) && waiting.release(a));
        assert!(waiting.waits_in(job), "b still waits");
        waiting.remove(&b);
        waiting.remove(&b);
        assert!(!waiting.waits_in(job) && waiting.len() == 0);
    }
}
