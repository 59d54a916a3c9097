//! The subtasks of a computed attempt on their way into the store: checked
//! and numbered at once ([`Children::plan`]), then written in chunks of
//! bounded work ([`Children::write_chunk`]). A set that fits one chunk is
//! committed with its parent's completion; a larger one is written ahead
//! over several of the writer's groups ([`Commit`], behind the store's
//! staged marker), so that no group holds the writer for long whatever one
//! attempt submitted.
//!
//! Each subtask's definition lists what it depends on, written once and
//! never rewritten; the reverse edges live in the writer's memory only
//! ([`Waiting`]), so a completion later costs the same whatever the number
//! of edges, and reads nothing.

use std::collections::HashSet;

use super::Error;
use super::graph::{self, Ready};
use super::waiting::Waiting;
use crate::model::{
    LogEntry, Output, SpanEntry, StoredOutput, SubtaskSpec, TaskDef, TaskId, TaskKey, TaskStatus,
};
use crate::store::{Chunk, Live, Unit};

/// Work one chunk may do: a task counts 4 (its records and live key), and
/// every 16 of its dependencies 1 more. About 5-10 ms of the writer's time
/// in a release build.
pub const CHUNK_WORK: usize = 8192;

/// The work of writing `spec` (see [`CHUNK_WORK`]).
fn work_of(spec: &SubtaskSpec) -> usize {
    4 + spec.depends_on.len() / 16
}

/// A computed attempt's subtasks, checked, with their ids.
pub struct Children {
    parent: TaskKey,
    cluster: String,
    /// The parent's guard (see `optional.rs`): its subtasks inherit it, and
    /// their list is kept when there is one.
    guard: Option<TaskId>,
    specs: Vec<SubtaskSpec>,
    ids: Vec<TaskId>,
    /// The next subtask to write.
    next: usize,
    /// Subtasks with no dependencies, ready once the parent is computed.
    ready: Vec<Ready>,
    staged: bool,
}

impl Children {
    /// Checks `specs`, submitted by `parent` (of `cluster`, inside the
    /// optional subtree of `guard` if any): dependencies name earlier
    /// subtasks only (so the graph stays acyclic), duplicates are dropped
    /// (the first mention keeps its place).
    pub fn plan(
        parent: TaskKey,
        cluster: &str,
        guard: Option<TaskId>,
        mut specs: Vec<SubtaskSpec>,
    ) -> Result<Self, Error> {
        let mut work = 0;
        for (i, spec) in specs.iter_mut().enumerate() {
            if let Some(&bad) = spec.depends_on.iter().find(|&&d| d as usize >= i) {
                return Err(Error::BadDependency(bad));
            }
            // Handles in increasing order (as SDKs pass them) repeat none.
            if !spec.depends_on.is_sorted_by(|a, b| a < b) {
                let mut seen = HashSet::with_capacity(spec.depends_on.len());
                spec.depends_on.retain(|d| seen.insert(*d));
            }
            work += work_of(spec);
        }
        let ids = TaskId::block(specs.len());
        let staged = work > CHUNK_WORK;
        let cluster = cluster.to_owned();
        Ok(Children { parent, cluster, guard, specs, ids, next: 0, ready: Vec::new(), staged })
    }

    /// How many subtasks there are.
    pub fn len(&self) -> usize {
        self.specs.len()
    }

    /// Whether the set is too large for one chunk: it is written ahead, over
    /// several groups.
    pub fn is_staged(&self) -> bool {
        self.staged
    }

    /// Writes the next chunk into `chunk` (the first of a staged set also
    /// writes its marker); answers whether every subtask is written.
    pub fn write_chunk(&mut self, chunk: &mut Chunk, waiting: &mut Waiting) -> bool {
        if self.staged && self.next == 0 {
            chunk.stage(self.parent, &self.ids);
        }
        let mut work = 0;
        while self.next < self.specs.len() && work < CHUNK_WORK {
            work += work_of(&self.specs[self.next]);
            self.write_task(chunk, waiting);
            self.next += 1;
        }
        self.next == self.specs.len()
    }

    /// Writes the definition, status and live key of subtask `next`.
    fn write_task(&mut self, chunk: &mut Chunk, waiting: &mut Waiting) {
        let i = self.next;
        let key = TaskKey { job: self.parent.job, task: self.ids[i] };
        let spec = &mut self.specs[i];
        let cluster = spec.cluster.take().unwrap_or_else(|| self.cluster.clone());
        let depends_on: Vec<TaskId> = spec.depends_on.iter().map(|&d| self.ids[d as usize]).collect();
        let status = TaskStatus::queued(Some(self.parent.task), cluster.clone(), spec.max_retries)
            .with_policy(key.task, spec.optional, self.guard, spec.backoff);
        if depends_on.is_empty() {
            chunk.mark(cluster.clone(), key, Live::Ready);
            self.ready.push((cluster, key));
        } else {
            chunk.mark(cluster, key, Live::Waiting);
            waiting.add(key, &depends_on);
        }
        let def = TaskDef {
            task_type: spec.task_type.clone(),
            input: std::mem::take(&mut spec.input),
            depends_on,
            handles: spec.depends_on.clone(),
        };
        chunk.add_task(key, def, status);
    }

    /// Keeps the list of the subtasks in `unit` when they are inside an
    /// optional subtree (so that they can be skipped); outside, nothing.
    pub fn keep_list(&self, unit: &mut Unit) {
        if self.guard.is_some() {
            unit.put_children(self.parent, self.ids.clone());
        }
    }

    /// What `output` keeps: a handle becomes the id of that subtask (one
    /// the attempt did not submit, which the record already refused, keeps
    /// nothing).
    pub fn resolve(&self, output: Output) -> Option<StoredOutput> {
        match output {
            Output::None | Output::TooLarge(_) => None,
            Output::Bytes(bytes) => Some(StoredOutput::Bytes(bytes)),
            Output::OfSubtask(h) => self.ids.get(h as usize).map(|id| StoredOutput::Of(*id)),
        }
    }

    /// The subtasks that may run once the parent is computed.
    pub fn into_ready(self) -> Vec<Ready> {
        self.ready
    }
}

/// What a computed attempt recorded besides its subtasks, committed with
/// its completion.
pub struct Recorded {
    pub display: Option<String>,
    pub logs: Vec<LogEntry>,
    pub spans: Vec<SpanEntry>,
    pub progress: Vec<(String, u64, u64)>,
    /// Its output, a subtask handle resolved to the subtask's id.
    pub output: Option<StoredOutput>,
}

/// A computed attempt whose large subtask set is being written ahead, one
/// chunk per group of the writer; the last group completes the parent.
pub struct Commit {
    pub key: TaskKey,
    pub attempt: u32,
    children: Children,
    recorded: Recorded,
}

/// Where a commit stands after a step.
pub enum Step {
    /// More chunks to write.
    More(Box<Commit>),
    /// The parent is computed; these tasks became ready.
    Done(Vec<Ready>),
}

impl Commit {
    /// A commit of `children` for `key`'s attempt `attempt`.
    pub fn new(key: TaskKey, attempt: u32, children: Children, recorded: Recorded) -> Self {
        Commit { key, attempt, children, recorded }
    }

    /// Writes the next chunk into `unit`; after the last, completes the
    /// parent in the same unit.
    pub fn step(mut self: Box<Self>, unit: &mut Unit, waiting: &mut Waiting) -> Result<Step, Error> {
        let mut chunk = Chunk::default();
        let done = self.children.write_chunk(&mut chunk, waiting);
        unit.write_ahead(chunk);
        if !done {
            return Ok(Step::More(self));
        }
        unit.unstage(self.key);
        self.children.keep_list(unit);
        graph::record(unit, self.key, self.attempt, self.recorded, true)?;
        let count = self.children.len() as u64;
        let mut ready = self.children.into_ready();
        graph::compute(unit, waiting, self.key, count, &mut ready)?;
        Ok(Step::Done(ready))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;
    use crate::model::{JobId, TaskType};

    fn specs(deps: &[Vec<u32>]) -> Vec<SubtaskSpec> {
        deps.iter()
            .enumerate()
            .map(|(i, d)| SubtaskSpec {
                task_type: TaskType::parse("T").unwrap(),
                input: format!("{i}"),
                depends_on: d.clone(),
                max_retries: 0,
                cluster: None,
                optional: false,
                backoff: None,
            })
            .collect()
    }

    proptest! {
        /// However a set is cut into chunks, every subtask is written once
        /// with its own input and dependencies, no chunk does much more work
        /// than its bound (one subtask's records may straddle it), and the
        /// reverse edges kept in memory free each subtask exactly when its
        /// last dependency completes.
        #[test]
        fn chunks_write_every_subtask_and_edge_once(
            raw in prop::collection::vec(prop::collection::vec(any::<u32>(), 0..60), 1..400),
        ) {
            let deps: Vec<Vec<u32>> =
                raw.iter().enumerate().map(|(i, d)| d.iter().filter(|_| i > 0).map(|x| x % i as u32).collect()).collect();
            let parent = TaskKey { job: JobId::new(), task: TaskId::new() };
            let mut children = Children::plan(parent, "default", None, specs(&deps)).unwrap();
            let mut waiting = Waiting::default();
            let mut written: HashMap<TaskId, TaskDef> = HashMap::new();
            let mut chunks = 0;
            loop {
                let mut chunk = Chunk::default();
                let done = children.write_chunk(&mut chunk, &mut waiting);
                chunks += 1;
                let edges: usize = chunk.tasks().iter().map(|(_, d, _)| d.depends_on.len() / 16).sum();
                let work = 4 * chunk.tasks().len() + edges;
                prop_assert!(work <= CHUNK_WORK + 4 + 100_000 / 16, "a chunk did {work}");
                for (key, def, _) in chunk.tasks() {
                    prop_assert!(written.insert(key.task, def.clone()).is_none(), "written twice");
                }
                if done { break; }
                prop_assert!(chunks < 10_000);
            }
            let ids: Vec<TaskId> = children.ids.clone();
            prop_assert_eq!(written.len(), deps.len());
            let mut last_dep: HashMap<TaskId, usize> = HashMap::new();
            for (i, d) in deps.iter().enumerate() {
                let def = &written[&ids[i]];
                prop_assert_eq!(&def.input, &format!("{i}"));
                let mut unique = d.clone();
                let mut seen = std::collections::HashSet::new();
                unique.retain(|x| seen.insert(*x));
                let want: Vec<TaskId> = unique.iter().map(|&x| ids[x as usize]).collect();
                prop_assert_eq!(&def.depends_on, &want);
                if let Some(&last) = unique.iter().max() {
                    last_dep.insert(ids[i], last as usize);
                }
                prop_assert_eq!(waiting.contains(&TaskKey { job: parent.job, task: ids[i] }), !want.is_empty());
            }
            let mut freed_by: HashMap<TaskId, usize> = HashMap::new();
            for (j, id) in ids.iter().enumerate() {
                for key in waiting.release(TaskKey { job: parent.job, task: *id }) {
                    prop_assert!(freed_by.insert(key.task, j).is_none(), "freed twice");
                }
            }
            prop_assert_eq!(freed_by, last_dep);
            prop_assert_eq!(waiting.len(), 0);
        }
    }
}
