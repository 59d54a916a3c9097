//! Start-up: the ready queues, the waiting counts and the backoff delays
//! rebuilt from the store's live keys, and the attempts that were running
//! when the host stopped queued again (they are lost: their runners are
//! gone with the old process).

use super::Error;
use super::delays::Delays;
use super::graph;
use super::queue::Queues;
use super::waiting::Waiting;
use crate::model::{JobId, TaskKey};
use crate::store::{Live, Store, Unit};

/// What start-up finds in the store: ready tasks, waiting counts, delays.
pub(super) struct Found<'a> {
    pub queues: &'a mut Queues,
    pub waiting: &'a mut Waiting,
    pub delays: &'a mut Delays,
}

/// Rebuilds the ready queues, the waiting counts and the backoff delays
/// from the live keys, and re-queues (in `unit`) the attempts that were
/// running when the host stopped; answers the tasks to queue (with their
/// job's priority) once `unit` is committed.
pub(super) fn rebuild(
    store: &Store,
    unit: &mut Unit,
    found: &mut Found<'_>,
    lost_budget: u32,
) -> Result<Vec<(String, TaskKey, i8)>, Error> {
    let (mut lost, mut ready) = (Vec::new(), Vec::new());
    for (cluster, key, live) in store.live_tasks()? {
        match live {
            Live::Running => lost.push(key),
            Live::Ready => {
                let priority = priority_of(unit, key.job);
                found.queues.push(&cluster, key, priority)
            }
            // A task whose last dependency completed is marked ready in the
            // same group, so this finds none ready; still, one would be. A
            // task waiting out a backoff waits for no dependency.
            Live::Waiting if found.waiting.recount(unit, key)? == 0 => {
                match unit.status(key)?.and_then(|s| s.not_before_ms) {
                    Some(due) => found.delays.add(due, cluster, key),
                    None => {
                        unit.mark(&cluster, key, Live::Ready);
                        ready.push((cluster, key));
                    }
                }
            }
            Live::Waiting | Live::Idle => {}
        }
    }
    for key in &lost {
        ready.extend(graph::requeue_lost(unit, found.waiting, *key, None, lost_budget)?);
    }
    if !lost.is_empty() {
        tracing::info!(tasks = lost.len(), "re-queued tasks that were running when the host stopped");
    }
    if found.waiting.len() > 0 {
        tracing::info!(tasks = found.waiting.len(), "recounted the dependencies of waiting tasks");
    }
    if found.delays.len() > 0 {
        tracing::info!(tasks = found.delays.len(), "found tasks waiting out a retry's backoff");
    }
    Ok(ready.into_iter().map(|(c, k)| (c, k, priority_of(unit, k.job))).collect())
}

/// The priority of `job` (0 when it is gone).
pub(super) fn priority_of(unit: &mut Unit, job: JobId) -> i8 {
    unit.job(job).ok().flatten().map_or(0, |j| j.priority)
}
