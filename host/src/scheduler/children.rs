//! The subtasks of a computed attempt on their way into the store: checked
//! and numbered at once ([`Children::plan`]), then written in chunks of
//! bounded work ([`Children::write_chunk`]). A set that fits one chunk is
//! committed with its parent's completion; a larger one is written ahead
//! over several of the writer's groups ([`Commit`], behind the store's
//! staged marker), so that no group holds the writer for long whatever one
//! attempt submitted.
//!
//! Each subtask's definition lists what it depends on; each dependency gets
//! the list of its dependents from every chunk that named it. Both are
//! written once and never rewritten, so a completion later costs the same
//! whatever the number of edges.

use std::collections::{BTreeMap, HashSet};

use super::Error;
use super::graph::{self, Ready};
use super::waiting::Waiting;
use crate::model::{
    LogEntry, Output, SpanEntry, StoredOutput, SubtaskSpec, TaskDef, TaskId, TaskKey, TaskStatus,
};
use crate::store::{Chunk, Live, Unit};

/// Work one chunk may do: a task counts 4 (its records and live key), a
/// dependents list 1, and every 16 edges 1. About 5-10 ms of the writer's
/// time in a release build.
pub const CHUNK_WORK: usize = 8192;

/// A computed attempt's subtasks, checked, with their ids.
pub struct Children {
    parent: TaskKey,
    cluster: String,
    /// The parent's guard (see `optional.rs`): its subtasks inherit it, and
    /// their list is kept when there is one.
    guard: Option<TaskId>,
    specs: Vec<SubtaskSpec>,
    ids: Vec<TaskId>,
    /// The next subtask to write, whether its records are written, and how
    /// many of its dependencies have had it added to their dependents lists.
    next: usize,
    written: bool,
    next_dep: usize,
    /// The next chunk's number.
    seq: u32,
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
            let mut seen = HashSet::with_capacity(spec.depends_on.len());
            spec.depends_on.retain(|d| seen.insert(*d));
            work += 4 + spec.depends_on.len() + spec.depends_on.len() / 16;
        }
        let ids = (0..specs.len()).map(|_| TaskId::new()).collect();
        let staged = work > CHUNK_WORK;
        let (next, written, next_dep, seq, ready) = (0, false, 0, 0, Vec::new());
        let cluster = cluster.to_owned();
        Ok(Children { parent, cluster, guard, specs, ids, next, written, next_dep, seq, ready, staged })
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
        if self.staged && self.seq == 0 {
            chunk.stage(self.parent, &self.ids);
        }
        let mut lists: BTreeMap<u32, Vec<TaskId>> = BTreeMap::new();
        let (mut work, mut edges) = (0, 0usize);
        while self.next < self.specs.len() && work < CHUNK_WORK {
            if !self.written {
                self.write_task(chunk, waiting);
                self.written = true;
                work += 4;
            }
            let (i, deps) = (self.next, &self.specs[self.next].depends_on);
            while self.next_dep < deps.len() && work < CHUNK_WORK {
                let list = lists.entry(deps[self.next_dep]).or_insert_with(|| {
                    work += 1;
                    Vec::new()
                });
                list.push(self.ids[i]);
                edges += 1;
                work += usize::from(edges.is_multiple_of(16));
                self.next_dep += 1;
            }
            if self.next_dep == deps.len() {
                (self.next, self.written, self.next_dep) = (i + 1, false, 0);
            }
        }
        for (dep, list) in lists {
            let key = TaskKey { job: self.parent.job, task: self.ids[dep as usize] };
            chunk.add_dependents(key, self.seq, list);
        }
        self.seq += 1;
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
            waiting.add(key, depends_on.len() as u32);
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
        /// with its own input and dependencies, the dependents lists are
        /// exactly the reverse edges, and no chunk does much more work than
        /// its bound (one subtask's records may straddle it).
        #[test]
        fn chunks_write_every_subtask_and_edge_once(
            raw in prop::collection::vec(prop::collection::vec(any::<u32>(), 0..60), 1..400),
        ) {
            let deps: Vec<Vec<u32>> =
                raw.iter().enumerate().map(|(i, d)| d.iter().filter(|_| i > 0).map(|x| x % i as u32).collect()).collect();
            let parent = TaskKey { job: JobId::new(), task: TaskId::new() };
            let mut children = Children::plan(parent, "default", None, specs(&deps)).unwrap();
            let mut waiting = Waiting::default();
            let (mut written, mut dependents): (HashMap<TaskId, TaskDef>, HashMap<TaskId, Vec<TaskId>>) = Default::default();
            let mut chunks = 0;
            loop {
                let mut chunk = Chunk::default();
                let done = children.write_chunk(&mut chunk, &mut waiting);
                chunks += 1;
                let edges: usize = chunk.dependents().iter().map(|(_, _, l)| l.len()).sum();
                let work = 4 * chunk.tasks().len() + chunk.dependents().len() + edges / 16;
                prop_assert!(work <= CHUNK_WORK + 4 + 1, "a chunk did {work}");
                for (key, def, _) in chunk.tasks() {
                    prop_assert!(written.insert(key.task, def.clone()).is_none(), "written twice");
                }
                for (key, _, list) in chunk.dependents() {
                    dependents.entry(key.task).or_default().extend(list.iter().copied());
                }
                if done { break; }
                prop_assert!(chunks < 10_000);
            }
            let ids: Vec<TaskId> = children.ids.clone();
            prop_assert_eq!(written.len(), deps.len());
            let mut reverse: HashMap<TaskId, Vec<TaskId>> = HashMap::new();
            for (i, d) in deps.iter().enumerate() {
                let def = &written[&ids[i]];
                prop_assert_eq!(&def.input, &format!("{i}"));
                let mut unique = d.clone();
                let mut seen = std::collections::HashSet::new();
                unique.retain(|x| seen.insert(*x));
                let want: Vec<TaskId> = unique.iter().map(|&x| ids[x as usize]).collect();
                prop_assert_eq!(&def.depends_on, &want);
                for dep in &want {
                    reverse.entry(*dep).or_default().push(ids[i]);
                }
                prop_assert_eq!(waiting.contains(&TaskKey { job: parent.job, task: ids[i] }), !want.is_empty());
            }
            for list in dependents.values_mut() { list.sort(); }
            for list in reverse.values_mut() { list.sort(); }
            prop_assert_eq!(dependents, reverse);
        }
    }
}
