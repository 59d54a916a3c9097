//! How many dependencies each waiting task still waits for, in the writer's
//! memory only. A task with dependencies is created with a live key marked
//! waiting (`Live::Waiting`) and an entry here; each dependency that
//! completes counts it down, and the last one makes it ready: its live key
//! becomes ready, which is the only write. So releasing an edge costs a
//! map update and nothing on disk, whatever the shape of the job.
//!
//! The counts are derived state: at start-up they are recounted from the
//! waiting live keys, the definitions (what each task depends on) and the
//! statuses (which dependencies' subtrees are complete).

use rustc_hash::FxHashMap as HashMap;

use super::Error;
use crate::model::TaskKey;
use crate::store::Unit;

/// Unmet dependencies of every waiting task.
#[derive(Default)]
pub struct Waiting(HashMap<TaskKey, u32>);

impl Waiting {
    /// Records that `key` waits for `unmet` dependencies.
    pub fn add(&mut self, key: TaskKey, unmet: u32) {
        if unmet > 0 {
            self.0.insert(key, unmet);
        }
    }

    /// Whether `key` waits for a dependency.
    pub fn contains(&self, key: &TaskKey) -> bool {
        self.0.contains_key(key)
    }

    /// Counts down one dependency of `key`; answers whether that was its
    /// last (it may run now).
    pub fn release(&mut self, key: TaskKey) -> bool {
        let Some(n) = self.0.get_mut(&key) else { return false };
        *n = n.saturating_sub(1);
        if *n > 0 {
            return false;
        }
        self.0.remove(&key);
        true
    }

    /// Forgets `key` (skipped: it will never run).
    pub fn remove(&mut self, key: &TaskKey) {
        self.0.remove(key);
    }

    /// How many tasks wait.
    pub fn len(&self) -> usize {
        self.0.len()
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
