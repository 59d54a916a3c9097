//! Schema 2 to schema 3, at start-up. Schema 2 kept a task in one record:
//! its definition, both edge lists, its errors and an `incomplete` count of
//! the tasks of its subtree not computed yet, so every completion rewrote
//! the records of everything above and after it. Schema 3 splits that into
//! a status, a definition and error records (see `unit.rs`), and counts
//! `open` subtrees per task instead of tasks. The old dependents list is
//! dropped: the scheduler rebuilds the reverse edges of waiting tasks from
//! their definitions (`scheduler/waiting.rs`).
//!
//! The conversion is per task and idempotent: a task's `open` count only
//! asks whether each child's subtree is complete, which a child of either
//! schema answers, so a migration interrupted by a crash simply runs again.

use std::collections::HashMap;

use super::kv::Kv;
use super::kv::KvWrite;
use super::records::{self, DefRecord, ErrorRecord, LegacyTask, Stored, TaskRecord};
use super::unit::Live;
use super::{Error, keys};
use crate::model::{JobId, TaskKey, TaskState};

/// Tasks converted per log group.
const BATCH: usize = 2048;

fn parent(found: &Stored) -> Option<crate::model::TaskId> {
    match found {
        Stored::Current(s) => s.parent,
        Stored::Legacy(t) => t.status.parent,
    }
}

fn subtree_complete(found: &Stored) -> bool {
    match found {
        Stored::Current(s) => s.open == 0,
        Stored::Legacy(t) => t.incomplete == 0,
    }
}

/// Converts every schema-2 task record; answers how many there were.
pub fn to_schema_3(kv: &Kv) -> Result<usize, Error> {
    let mut jobs = Vec::new();
    for item in kv.scan_prefix([keys::JOB]) {
        let (k, _) = item?;
        jobs.push(JobId::from_bytes(k[1..17].try_into().map_err(|_| malformed())?));
    }
    let mut converted = 0;
    for job in jobs {
        converted += migrate_job(kv, job)?;
    }
    if converted > 0 {
        kv.sync_blocking()?;
        tracing::info!(tasks = converted, "migrated task records to store schema 3");
    }
    Ok(converted)
}

fn migrate_job(kv: &Kv, job: JobId) -> Result<usize, Error> {
    let mut found: Vec<(TaskKey, Stored)> = Vec::new();
    for item in kv.scan_prefix(keys::tasks_of(job)) {
        let (k, v) = item?;
        let key = keys::task_key_at(&k, 1).ok_or_else(malformed)?;
        found.push((key, records::decode::<TaskRecord>("task", &v)?.into_stored()?));
    }
    if !found.iter().any(|(_, f)| matches!(f, Stored::Legacy(_))) {
        return Ok(0);
    }
    let mut incomplete_children: HashMap<crate::model::TaskId, u64> = HashMap::new();
    for (_, f) in &found {
        if let Some(p) = parent(f)
            && !subtree_complete(f)
        {
            *incomplete_children.entry(p).or_default() += 1;
        }
    }
    let mut writes = Vec::new();
    let mut converted = 0;
    for (key, f) in found {
        let Stored::Legacy(old) = f else { continue };
        let children = incomplete_children.get(&key.task).copied().unwrap_or(0);
        convert(key, *old, children, &mut writes);
        converted += 1;
        if converted % BATCH == 0 {
            kv.apply(vec![std::mem::take(&mut writes)])?;
        }
    }
    kv.apply(vec![writes])?;
    Ok(converted)
}

/// The schema-3 records of `old`, whose subtasks have `open_children`
/// incomplete subtrees.
fn convert(key: TaskKey, old: LegacyTask, open_children: u64, writes: &mut Vec<KvWrite>) {
    let mut status = old.status;
    status.open = u64::from(status.state != TaskState::Computed) + open_children;
    if status.state == TaskState::Queued && old.unmet_deps > 0 {
        writes.push((keys::live(&status.cluster, key), Live::Waiting.value()));
    }
    writes.push((keys::task(key), Some(records::encode(&TaskRecord::from(&status)))));
    writes.push((keys::def(key), Some(records::encode(&DefRecord::from(&old.def)))));
    for (seq, error) in old.errors.iter().enumerate() {
        writes.push((keys::error(key, seq as u32), Some(records::encode(&ErrorRecord::from(error)))));
    }
}

fn malformed() -> Error {
    Error::Corrupt { what: "job", reason: "malformed key".into() }
}
