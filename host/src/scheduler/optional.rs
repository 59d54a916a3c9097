//! Failures for good, and what optional tasks make of them.
//!
//! A task fails for good when it runs out of retries (or of lost attempts,
//! or cannot run at all). Outside any optional subtree it is `failed`, and
//! so is its job. Inside one (its status's `guard`, the innermost optional
//! task at or above it) it is `failed_optional`: the guard is poisoned, every
//! task of the guard's subtree that is still queued becomes `skipped`, and
//! tasks added to the subtree later (subtasks of a running task that then
//! computes) are skipped as they come. Failed-optional and skipped tasks
//! settle like computed ones (their open count reaches zero), so their
//! dependents run and their job completes. A poisoned guard stays
//! poisoned; a job retry re-queues only `failed` tasks.
//!
//! The walk over a subtree follows the subtask lists the store keeps for
//! tasks inside optional subtrees (`Unit::children`); each guard is walked
//! once, when it is poisoned.

use super::Error;
use super::graph::{Ready, settle, status_mut};
use super::waiting::Waiting;
use crate::model::{TaskId, TaskKey, TaskState, now_ms};
use crate::store::{Live, Unit};

/// Ends `key` (running or queued) for good: `failed`, or `failed_optional`
/// inside an optional subtree, which it then poisons. A `forced` end (a
/// forced cancel interrupted the attempt) is always `failed`, so that a
/// retry of the canceled job runs it again.
pub fn fail_for_good(
    unit: &mut Unit,
    waiting: &mut Waiting,
    key: TaskKey,
    forced: bool,
    ready: &mut Vec<Ready>,
) -> Result<(), Error> {
    let task = status_mut(unit, key)?;
    let (from, guard) = (task.state, task.guard.filter(|_| !forced));
    task.state = if guard.is_some() { TaskState::FailedOptional } else { TaskState::Failed };
    task.finished_ms = Some(now_ms());
    task.not_before_ms = None;
    let (to, cluster) = (task.state, task.cluster.clone());
    unit.mark(&cluster, key, Live::Idle);
    super::graph::job_transition(unit, key.job, from, to)?;
    let Some(guard) = guard else { return Ok(()) };
    poison(unit, waiting, TaskKey { job: key.job, task: guard }, ready)?;
    settle(unit, waiting, key, ready)
}

/// Poisons optional task `guard`: skips what is queued in its subtree.
fn poison(
    unit: &mut Unit,
    waiting: &mut Waiting,
    guard: TaskKey,
    ready: &mut Vec<Ready>,
) -> Result<(), Error> {
    let task = status_mut(unit, guard)?;
    if task.poisoned {
        return Ok(());
    }
    task.poisoned = true;
    skip_below(unit, waiting, guard, ready)
}

/// Whether tasks added below `key` are skipped: its guard is poisoned.
/// Only reads (no status is written back).
pub fn adds_are_skipped(unit: &mut Unit, key: TaskKey) -> Result<bool, Error> {
    let Some(guard) = unit.status(key)?.and_then(|s| s.guard) else { return Ok(false) };
    let guard = TaskKey { job: key.job, task: guard };
    Ok(unit.status(guard)?.is_some_and(|s| s.poisoned))
}

/// Skips every queued task below `top` and poisons every optional one
/// that is not queued (so what it adds later is skipped too); then
/// settles the skipped ones. The skipping comes first, so that a settled
/// task releases no dependent that is about to be skipped.
pub fn skip_below(
    unit: &mut Unit,
    waiting: &mut Waiting,
    top: TaskKey,
    ready: &mut Vec<Ready>,
) -> Result<(), Error> {
    let mut stack: Vec<TaskId> = unit.children(top)?;
    let mut skipped = Vec::new();
    while let Some(id) = stack.pop() {
        let key = TaskKey { job: top.job, task: id };
        let Some(task) = unit.status(key)? else { return Err(Error::UnknownTask(key)) };
        match task.state {
            TaskState::Queued => {
                let task = status_mut(unit, key)?;
                task.state = TaskState::Skipped;
                task.finished_ms = Some(now_ms());
                task.not_before_ms = None;
                let cluster = task.cluster.clone();
                unit.mark(&cluster, key, Live::Idle);
                waiting.remove(&key);
                super::graph::job_transition(unit, key.job, TaskState::Queued, TaskState::Skipped)?;
                skipped.push(key);
            }
            TaskState::Computed | TaskState::Running => {
                if task.optional && !task.poisoned {
                    status_mut(unit, key)?.poisoned = true;
                }
                stack.extend(unit.children(key)?);
            }
            TaskState::Failed | TaskState::FailedOptional | TaskState::Skipped => {}
        }
    }
    for key in skipped {
        settle(unit, waiting, key, ready)?;
    }
    Ok(())
}
