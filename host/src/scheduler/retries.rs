//! A failed attempt: queued again (at once, or after its backoff, see
//! `delays.rs`) while retries remain, else failed for good
//! (`optional.rs`); and the end of a backoff.

use super::Error;
use super::delays::Delays;
use super::graph::{Ready, add_error, job_transition, status_mut};
use super::optional::fail_for_good;
use super::waiting::Waiting;
use crate::model::{TaskKey, TaskState, now_ms};
use crate::store::{Live, Unit};

/// How an attempt's failure came about.
pub struct End {
    /// A forced cancel interrupted it: no retry, and always `failed`.
    pub canceled: bool,
    /// The task marked it permanent: no retry.
    pub permanent: bool,
}

/// Counts a failed attempt; the task is queued again (after its backoff,
/// if it has one) while retries remain, else it fails for good. Answers
/// what became ready.
pub fn fail_attempt(
    unit: &mut Unit,
    waiting: &mut Waiting,
    delays: &mut Delays,
    key: TaskKey,
    message: String,
    end: End,
) -> Result<Vec<Ready>, Error> {
    add_error(unit, key, message, true)?;
    let task = status_mut(unit, key)?;
    task.failures += 1;
    task.finished_ms = Some(now_ms());
    let mut ready = Vec::new();
    if end.canceled || end.permanent || task.failures > task.max_retries {
        fail_for_good(unit, waiting, key, end.canceled, &mut ready)?;
        return Ok(ready);
    }
    task.state = TaskState::Queued;
    let delay = task.backoff.map_or(0, |b| b.delay_ms(task.failures, fastrand::f64()));
    let due = now_ms() + delay;
    task.not_before_ms = (delay > 0).then_some(due);
    let cluster = task.cluster.clone();
    job_transition(unit, key.job, TaskState::Running, TaskState::Queued)?;
    if delay > 0 {
        unit.mark(&cluster, key, Live::Waiting);
        delays.add(due, cluster, key);
    } else {
        unit.mark(&cluster, key, Live::Ready);
        ready.push((cluster, key));
    }
    Ok(ready)
}

/// Makes `key` ready once its backoff, which ended at `due`, is over;
/// answers it, unless it no longer waits for that delay (skipped, retried,
/// deleted since).
pub fn end_delay(unit: &mut Unit, key: TaskKey, due: u64) -> Result<Option<Ready>, Error> {
    let Some(task) = unit.status(key)? else { return Ok(None) };
    if task.state != TaskState::Queued || task.not_before_ms != Some(due) {
        return Ok(None);
    }
    let task = status_mut(unit, key)?;
    task.not_before_ms = None;
    let cluster = task.cluster.clone();
    unit.mark(&cluster, key, Live::Ready);
    Ok(Some((cluster, key)))
}
