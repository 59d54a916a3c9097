//! A chunk of new subtasks: their statuses, definitions and live keys,
//! built by the scheduler and either committed with a
//! unit's own batch ([`Unit::absorb`](super::Unit::absorb)) or logged ahead
//! of it as a group of its own ([`Unit::write_ahead`](super::Unit::write_ahead)),
//! behind the marker of the set it belongs to (see `staged.rs`).

use super::keys;
use super::kv::KvWrite;
use super::records::{self, DefRecord, TaskRecord};
use super::unit::Live;
use crate::model::{TaskDef, TaskId, TaskKey, TaskStatus};

/// New tasks and what belongs to them.
#[derive(Default)]
pub struct Chunk {
    pub(super) tasks: Vec<(TaskKey, TaskDef, TaskStatus)>,
    pub(super) live: Vec<(String, TaskKey, Live)>,
    pub(super) raw: Vec<KvWrite>,
}

impl Chunk {
    /// Adds a new task.
    pub fn add_task(&mut self, key: TaskKey, def: TaskDef, status: TaskStatus) {
        self.tasks.push((key, def, status));
    }

    /// Sets a new task's live key: ready, or waiting for dependencies.
    pub fn mark(&mut self, cluster: String, key: TaskKey, live: Live) {
        self.live.push((cluster, key, live));
    }

    /// Writes the marker of a staged set: `children` of `parent` are being
    /// written ahead of the commit that completes `parent`.
    pub fn stage(&mut self, parent: TaskKey, children: &[TaskId]) {
        let ids: Vec<u8> = children.iter().flat_map(|c| *c.as_bytes()).collect();
        self.raw.push((keys::staged(parent), Some(ids)));
    }

    /// The new tasks, in order.
    pub fn tasks(&self) -> &[(TaskKey, TaskDef, TaskStatus)] {
        &self.tasks
    }

    /// The chunk as raw writes.
    pub(super) fn writes(&self) -> Vec<KvWrite> {
        let mut out = self.raw.clone();
        for (key, def, status) in &self.tasks {
            out.push((keys::def(*key), Some(records::encode(&DefRecord::from(def)))));
            out.push((keys::task(*key), Some(records::encode(&TaskRecord::from(status)))));
        }
        for (cluster, key, live) in &self.live {
            out.push((keys::live(cluster, *key), live.value()));
        }
        out
    }
}
