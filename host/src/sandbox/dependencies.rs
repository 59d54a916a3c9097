//! What an attempt may read of other tasks: the outputs of the tasks it
//! depends on, named by the handles its parent submitted them under. Where
//! the outputs come from is the runner's [`OutputReader`]: the store for an
//! in-process runner, the host's API for a remote one.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::model::{JobId, TaskId, TaskKey};

/// Reads computed tasks' outputs (links followed); `Ok(None)` when the task
/// left none.
pub trait OutputReader: Send + Sync {
    fn read(&self, key: TaskKey) -> BoxFuture<'static, Result<Option<Vec<u8>>, String>>;
}

/// The dependencies of one attempt.
pub struct Dependencies {
    job: JobId,
    /// Handles in the order of the task's `depends_on`.
    order: Vec<u32>,
    /// (handle, task), sorted by handle.
    by_handle: Vec<(u32, TaskId)>,
    reader: Arc<dyn OutputReader>,
}

/// A reader for an attempt that depends on nothing.
struct Nothing;

impl OutputReader for Nothing {
    fn read(&self, _: TaskKey) -> BoxFuture<'static, Result<Option<Vec<u8>>, String>> {
        Box::pin(async { Err("this task depends on no task".to_owned()) })
    }
}

impl Default for Dependencies {
    fn default() -> Self {
        Dependencies {
            job: JobId::default(),
            order: Vec::new(),
            by_handle: Vec::new(),
            reader: Arc::new(Nothing),
        }
    }
}

impl Dependencies {
    /// `deps` as (handle, task) in `depends_on` order, of a task of `job`.
    pub fn new(job: JobId, deps: &[(u32, TaskId)], reader: Arc<dyn OutputReader>) -> Self {
        let order = deps.iter().map(|(h, _)| *h).collect();
        let mut by_handle = deps.to_vec();
        by_handle.sort_unstable_by_key(|(h, _)| *h);
        Dependencies { job, order, by_handle, reader }
    }

    /// What an attempt of a task of `job` with `deps` may read (shared and
    /// empty when it depends on nothing, which costs no allocation).
    pub fn of(
        job: JobId,
        deps: &[(u32, TaskId)],
        reader: impl FnOnce() -> Arc<dyn OutputReader>,
    ) -> Arc<Dependencies> {
        static NONE: std::sync::LazyLock<Arc<Dependencies>> = std::sync::LazyLock::new(Arc::default);
        if deps.is_empty() {
            return NONE.clone();
        }
        Arc::new(Dependencies::new(job, deps, reader()))
    }

    /// The handles, in `depends_on` order.
    pub fn handles(&self) -> &[u32] {
        &self.order
    }

    /// The output of the dependency submitted as `handle`.
    pub fn output_of(&self, handle: u32) -> BoxFuture<'static, Result<Option<Vec<u8>>, String>> {
        match self.by_handle.binary_search_by_key(&handle, |(h, _)| *h) {
            Ok(i) => self.reader.read(TaskKey { job: self.job, task: self.by_handle[i].1 }),
            Err(_) => {
                let message = format!(
                    "this task does not depend on subtask handle {handle}; its dependencies are {:?}",
                    self.order
                );
                Box::pin(async move { Err(message) })
            }
        }
    }
}
