//! Large sets of new subtasks are logged ahead of the record that commits
//! their parent, in chunks, so that one report with 100,000 subtasks does not
//! become one huge log record (encoded and held whole in memory).
//!
//! Atomicity is kept with a marker: the first chunk writes `p + parent`
//! listing the subtasks; the unit's own batch, which completes the parent,
//! removes it. A marker found at start-up means the unit never committed:
//! its subtasks are deleted, and the parent (still running on disk) is
//! re-queued like any lost attempt.

use std::collections::HashMap;

use super::kv::Kv;
use super::records::{self, TaskRecord};
use super::wal::KvWrite;
use super::{Error, keys};
use crate::model::{TaskId, TaskKey};

/// Subtasks per chunk.
pub const CHUNK: usize = 2048;

/// Fewer new subtasks than this are written with the rest of the unit.
pub const THRESHOLD: usize = 4096;

/// A set of subtasks written ahead of their parent's commit.
#[derive(Default)]
pub struct Staged {
    /// The parent whose commit completes the set.
    pub parent: Option<TaskKey>,
    /// The subtasks, in order.
    pub children: Vec<TaskKey>,
    /// Other writes that belong to the subtasks (their live keys).
    pub raw: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl Staged {
    /// The marker's value: the subtasks' ids.
    pub fn marker_value(&self) -> Vec<u8> {
        self.children.iter().flat_map(|k| *k.task.as_bytes()).collect()
    }
}

/// Which staged set (by index) each staged subtask belongs to.
pub type StagedIndex = HashMap<TaskKey, usize>;

/// Deletes the subtasks of every marker left by a unit that never committed.
/// Answers how many subtasks were deleted.
pub fn discard_uncommitted(kv: &Kv) -> Result<usize, Error> {
    let mut writes = Vec::new();
    let mut deleted = 0;
    for item in kv.scan_prefix([keys::STAGED]) {
        let (marker, ids) = item?;
        let parent = keys::task_key_at(&marker, 1).ok_or_else(|| corrupt("malformed marker key"))?;
        for id in ids.chunks(16) {
            let bytes: [u8; 16] = id.try_into().map_err(|_| corrupt("malformed marker value"))?;
            let key = TaskKey { job: parent.job, task: TaskId::from_bytes(bytes) };
            deleted += discard(kv, &mut writes, key)?;
        }
        writes.push((marker.to_vec(), None));
    }
    if !writes.is_empty() {
        kv.apply(vec![writes])?;
        kv.sync_blocking()?;
    }
    Ok(deleted)
}

fn discard(kv: &Kv, writes: &mut Vec<KvWrite>, key: TaskKey) -> Result<usize, Error> {
    let Some(bytes) = kv.get(keys::task(key))? else { return Ok(0) };
    let task = records::decode::<TaskRecord>("task", &bytes)?.into_task(key)?;
    writes.push((keys::live(&task.cluster, key), None));
    writes.push((keys::task(key), None));
    Ok(1)
}

fn corrupt(reason: &str) -> Error {
    Error::Corrupt { what: "staged subtasks", reason: reason.into() }
}
