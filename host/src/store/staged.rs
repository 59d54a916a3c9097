//! Large sets of new subtasks are logged ahead of the record that commits
//! their parent, in chunks (see `chunk.rs`), over several of the writer's
//! groups, so that one report with 100,000 subtasks and a million edges
//! neither becomes one huge log record nor holds the writer for long.
//!
//! Atomicity is kept with a marker: the first chunk writes `p + parent`
//! listing the subtasks; the batch that completes the parent removes it.
//! While a marker exists its subtasks are not part of the job: reads of the
//! job's tasks leave them out ([`staged_of`]). A marker found at start-up
//! means the unit never committed: its subtasks are deleted, and the parent
//! (still running on disk) is re-queued like any lost attempt.

use std::collections::HashSet;

use super::kv::Kv;
use super::kv::KvWrite;
use super::records::{self, TaskRecord};
use super::{Error, keys};
use crate::model::{JobId, TaskId, TaskKey};

/// The ids of the subtasks of `job` written ahead of a commit that has not
/// happened yet (empty but while a large report is being applied).
pub fn staged_of(kv: &Kv, job: JobId) -> Result<HashSet<TaskId>, Error> {
    let mut out = HashSet::new();
    for item in kv.scan_prefix(keys::staged_of(job)) {
        let (_, ids) = item?;
        for id in ids.chunks(16) {
            out.insert(TaskId::from_bytes(id.try_into().map_err(|_| corrupt("malformed marker value"))?));
        }
    }
    Ok(out)
}

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
    let record = records::decode::<TaskRecord>("task", &bytes)?;
    writes.push((keys::live(record.cluster(), key), None));
    writes.push((keys::task(key), None));
    writes.push((keys::def(key), None));
    for item in kv.scan_prefix(keys::dependents_of_task(key)) {
        writes.push((item?.0.to_vec(), None));
    }
    Ok(1)
}

fn corrupt(reason: &str) -> Error {
    Error::Corrupt { what: "staged subtasks", reason: reason.into() }
}
