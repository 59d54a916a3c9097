//! State transitions of the job graph, applied to a store [`Unit`]. Each
//! returns (or adds to a list) the tasks that became ready; the caller
//! queues them.
//!
//! Completion is counted per task: a task's status holds how many of its
//! subtrees are open (itself until computed, plus each child whose subtree
//! is not complete). When that reaches zero the task's subtree is complete:
//! its dependents lose one unmet dependency ([`Waiting`], in memory) and its
//! parent one open subtree, which may complete the parent in turn. Every
//! task completes once, so a job costs work linear in its tasks plus its
//! edges, whatever its depth or shape. Failed-optional and skipped tasks
//! settle the same way ([`settle`], see `optional.rs`).

use super::children::{Children, Commit, Recorded};
use super::delays::Delays;
use super::optional::{adds_are_skipped, fail_for_good, skip_below};
use super::retries::{self, End};
use super::waiting::Waiting;
use super::{Error, JobSpec, Report, RootSpec};
use crate::model::{
    AttemptError, Job, JobId, JobState, TaskDef, TaskId, TaskKey, TaskState, TaskStatus, Usage, Version,
    now_ms, truncate_display,
};
use crate::store::{Chunk, Live, Unit};

/// A task that became eligible to run.
pub type Ready = (String, TaskKey);

/// Creates a job and its queued root tasks. Answers the job as created and
/// its root tasks, with the time they may start (Unix ms) when that is
/// later than now (`not_before`): until then they wait, like a backoff.
pub fn submit_job(unit: &mut Unit, spec: JobSpec) -> (Job, Vec<Ready>, Option<u64>) {
    let id = JobId::new();
    let later = spec.not_before_ms.filter(|t| *t > now_ms());
    let first = RootSpec {
        task_type: spec.task_type,
        input: spec.input,
        cluster: spec.cluster.clone(),
        max_retries: spec.max_retries,
        backoff: spec.backoff,
    };
    let roots: Vec<Ready> =
        std::iter::once(first).chain(spec.more_roots).map(|root| add_root(unit, id, root, later)).collect();
    let mut job = Job {
        id,
        name: spec.name,
        root: roots[0].1.task,
        other_roots: roots[1..].iter().map(|(_, k)| k.task).collect(),
        cluster: spec.cluster.clone(),
        counts: Default::default(),
        canceled: false,
        idempotency_key: spec.idempotency_key,
        progress: Default::default(),
        traceparent: spec.traceparent,
        automation: spec.automation,
        priority: spec.priority,
        stats: Default::default(),
    };
    job.counts.queued = roots.len() as u64;
    if let Some(k) = &job.idempotency_key {
        unit.set_idempotency(k, id);
    }
    unit.insert_job(job.clone());
    (job, roots, later)
}

/// Adds a queued root task of job `id`, waiting until `later` if given.
fn add_root(unit: &mut Unit, id: JobId, root: RootSpec, later: Option<u64>) -> Ready {
    let key = TaskKey { job: id, task: TaskId::new() };
    let def =
        TaskDef { task_type: root.task_type, input: root.input, depends_on: Vec::new(), handles: Vec::new() };
    let mut status = TaskStatus::queued(None, root.cluster.clone(), root.max_retries).with_policy(
        key.task,
        false,
        None,
        root.backoff,
    );
    status.not_before_ms = later;
    unit.insert_task(key, def, status);
    unit.mark(&root.cluster, key, if later.is_some() { Live::Waiting } else { Live::Ready });
    (root.cluster, key)
}

pub(super) fn status_mut(unit: &mut Unit, key: TaskKey) -> Result<&mut TaskStatus, Error> {
    unit.status_mut(key)?.ok_or(Error::UnknownTask(key))
}

fn job_mut(unit: &mut Unit, id: JobId) -> Result<&mut Job, Error> {
    unit.job_mut(id)?.ok_or(Error::UnknownJob(id))
}

/// Marks `key` as running its next attempt on implementation `version`,
/// fenced by `lease`. Returns the attempt number.
pub fn start(unit: &mut Unit, key: TaskKey, version: Version, lease: u64) -> Result<u32, Error> {
    let task = status_mut(unit, key)?;
    let from = task.state;
    task.state = TaskState::Running;
    task.attempt += 1;
    task.lease = lease;
    let now = now_ms();
    task.started_ms = Some(now);
    task.ran_version = Some(version);
    let (attempt, cluster) = (task.attempt, task.cluster.clone());
    unit.mark(&cluster, key, Live::Running);
    job_transition(unit, key.job, from, TaskState::Running)?;
    job_mut(unit, key.job)?.stats.started(now);
    Ok(attempt)
}

/// What applying a report led to.
pub enum Finished {
    /// The attempt is recorded; these tasks became ready.
    Done(Vec<Ready>),
    /// The attempt computed a large subtask set, to be written in steps.
    Committing(Box<Commit>),
}

/// Applies a runner's report of an attempt. Every check happens before the
/// first change, so a refused report leaves the unit untouched.
pub fn finish(
    unit: &mut Unit,
    waiting: &mut Waiting,
    delays: &mut Delays,
    report: Report,
) -> Result<Finished, Error> {
    let key = report.key;
    let task = unit.status(key)?.ok_or(Error::UnknownTask(key))?;
    if task.state != TaskState::Running || task.lease != report.lease {
        return Err(Error::StaleAttempt { key, lease: report.lease });
    }
    let (cluster, guard, started) = (task.cluster.clone(), task.guard, task.started_ms);
    let used = (started, report.usage);
    let recorded = Recorded {
        display: report.display,
        logs: report.logs,
        spans: report.spans,
        progress: report.progress,
        output: None,
    };
    let subtasks = match report.outcome {
        Ok(subtasks) => subtasks,
        Err(message) => {
            attempt_used(unit, key, used)?;
            record(unit, key, report.attempt, recorded, false)?;
            let end = End { canceled: report.canceled, permanent: report.permanent };
            return Ok(Finished::Done(retries::fail_attempt(unit, waiting, delays, key, message, end)?));
        }
    };
    let mut children = Children::plan(key, &cluster, guard, subtasks)?;
    attempt_used(unit, key, used)?;
    let recorded = Recorded { output: children.resolve(report.output), ..recorded };
    if children.is_staged() {
        return Ok(Finished::Committing(Box::new(Commit::new(key, report.attempt, children, recorded))));
    }
    let mut chunk = Chunk::default();
    children.write_chunk(&mut chunk, waiting);
    unit.absorb(chunk);
    children.keep_list(unit);
    record(unit, key, report.attempt, recorded, true)?;
    let count = children.len() as u64;
    let mut ready = children.into_ready();
    compute(unit, waiting, key, count, &mut ready)?;
    Ok(Finished::Done(ready))
}

/// Keeps what the reported attempt of `key` (started at `started`) used,
/// on the task and in its job's stats; called once the report is accepted.
fn attempt_used(
    unit: &mut Unit,
    key: TaskKey,
    (started, usage): (Option<u64>, Option<Usage>),
) -> Result<(), Error> {
    status_mut(unit, key)?.usage = usage;
    let now = now_ms();
    job_mut(unit, key.job)?.stats.ended(started.unwrap_or(now), now, usage);
    Ok(())
}

/// Writes what attempt `attempt` of `key` recorded: its display name, logs
/// and spans, and (when it `computed`) its progress and output.
pub fn record(unit: &mut Unit, key: TaskKey, attempt: u32, r: Recorded, computed: bool) -> Result<(), Error> {
    if let Some(display) = &r.display {
        status_mut(unit, key)?.display = Some(truncate_display(display));
    }
    unit.add_logs(key, &r.logs);
    unit.add_spans(key, u64::from(attempt) << 32, &r.spans);
    if let Some(output) = r.output.as_ref().filter(|_| computed) {
        unit.put_output(key, output);
    }
    if computed && !r.progress.is_empty() {
        let job = job_mut(unit, key.job)?;
        for (label, total, done) in r.progress {
            if !job.add_progress(label, total, done) {
                tracing::warn!(job = %key.job, "a job keeps at most {} progress labels; a new one was dropped", crate::model::MAX_JOB_PROGRESS_LABELS);
            }
        }
    }
    Ok(())
}

/// Keeps `message` as the error of `key`'s current attempt; `ran` says the
/// attempt started.
pub(super) fn add_error(unit: &mut Unit, key: TaskKey, message: String, ran: bool) -> Result<(), Error> {
    let task = status_mut(unit, key)?;
    let now = now_ms();
    let error = AttemptError {
        attempt: task.attempt,
        message,
        ran: task.started_ms.filter(|_| ran).map(|s| (s, now)),
        usage: task.usage.filter(|_| ran),
    };
    let seq = task.errors;
    task.errors += 1;
    unit.add_error(key, seq, &error);
    Ok(())
}

/// Marks `key` computed with `count` new subtasks (already written); if
/// that completes its subtree, releases what waited for it into `ready`.
pub fn compute(
    unit: &mut Unit,
    waiting: &mut Waiting,
    key: TaskKey,
    count: u64,
    ready: &mut Vec<Ready>,
) -> Result<(), Error> {
    let task = status_mut(unit, key)?;
    task.state = TaskState::Computed;
    task.finished_ms = Some(now_ms());
    task.open += count;
    let cluster = task.cluster.clone();
    unit.mark(&cluster, key, Live::Idle);
    let job = job_mut(unit, key.job)?;
    job.counts.transition(TaskState::Running, TaskState::Computed);
    job.counts.queued += count;
    if count > 0 && adds_are_skipped(unit, key)? {
        skip_below(unit, waiting, key, ready)?;
    }
    settle(unit, waiting, key, ready)
}

/// Closes `key`'s own open count (it computed, failed-optional or was
/// skipped); if that completes its subtree, releases what waited for it.
pub(super) fn settle(
    unit: &mut Unit,
    waiting: &mut Waiting,
    key: TaskKey,
    ready: &mut Vec<Ready>,
) -> Result<(), Error> {
    let task = status_mut(unit, key)?;
    task.open = task.open.saturating_sub(1);
    if task.open == 0 {
        subtree_complete(unit, waiting, key, ready)?;
    }
    Ok(())
}

/// `start`'s subtree is complete: releases its dependents, and closes one
/// open subtree of each ancestor up to the first that stays open.
fn subtree_complete(
    unit: &mut Unit,
    waiting: &mut Waiting,
    start: TaskKey,
    ready: &mut Vec<Ready>,
) -> Result<(), Error> {
    let mut node = Some(start);
    while let Some(key) = node {
        release_dependents(unit, waiting, key, ready)?;
        node = match status_mut(unit, key)?.parent {
            Some(parent) => {
                let parent = TaskKey { job: key.job, task: parent };
                let p = status_mut(unit, parent)?;
                p.open = p.open.saturating_sub(1);
                (p.open == 0).then_some(parent)
            }
            None => None,
        };
    }
    Ok(())
}

/// Counts `key` off the unmet dependencies of its dependents (from the
/// writer's memory: nothing is read); those it was the last for become
/// ready (a waiting task is always queued: it has never run).
fn release_dependents(
    unit: &mut Unit,
    waiting: &mut Waiting,
    key: TaskKey,
    ready: &mut Vec<Ready>,
) -> Result<(), Error> {
    for dep in waiting.release(key) {
        let cluster = unit.status(dep)?.ok_or(Error::UnknownTask(dep))?.cluster.clone();
        unit.mark(&cluster, dep, Live::Ready);
        ready.push((cluster, dep));
    }
    Ok(())
}

/// Re-queues a task whose attempt was lost with its runner (host crash,
/// expired lease) without counting it as a failure; past `budget` such losses
/// the task fails for good. `lease` names the lost start; `None` takes
/// whichever is running. Answers what became ready.
pub fn requeue_lost(
    unit: &mut Unit,
    waiting: &mut Waiting,
    key: TaskKey,
    lease: Option<u64>,
    budget: u32,
) -> Result<Vec<Ready>, Error> {
    let Some(task) = unit.status(key)? else { return Ok(Vec::new()) };
    if task.state != TaskState::Running || lease.is_some_and(|l| l != task.lease) {
        return Ok(Vec::new());
    }
    let task = status_mut(unit, key)?;
    task.lost += 1;
    // Its runner never reported what it used.
    task.usage = None;
    let (lost, attempt, cluster) = (task.lost, task.attempt, task.cluster.clone());
    if lost > budget {
        let message = format!(
            "attempt {attempt} was lost with its runner (lease expired or host restarted); {lost} attempts were lost, more than the limit of {budget}"
        );
        add_error(unit, key, message, true)?;
        let mut ready = Vec::new();
        fail_for_good(unit, waiting, key, false, &mut ready)?;
        return Ok(ready);
    }
    status_mut(unit, key)?.state = TaskState::Queued;
    unit.mark(&cluster, key, Live::Ready);
    job_transition(unit, key.job, TaskState::Running, TaskState::Queued)?;
    Ok(vec![(cluster, key)])
}

/// Queues again a task whose attempt was claimed but never started (handed
/// back by its runner): the attempt is undone, no retry or loss is counted
/// (its lease token is not given to another start).
pub fn release(unit: &mut Unit, key: TaskKey, lease: u64) -> Result<Option<Ready>, Error> {
    let Some(task) = unit.status(key)? else { return Ok(None) };
    if task.state != TaskState::Running || task.lease != lease {
        return Ok(None);
    }
    let task = status_mut(unit, key)?;
    task.state = TaskState::Queued;
    task.attempt -= 1;
    task.started_ms = None;
    let cluster = task.cluster.clone();
    unit.mark(&cluster, key, Live::Ready);
    job_transition(unit, key.job, TaskState::Running, TaskState::Queued)?;
    Ok(Some((cluster, key)))
}

/// Deletes a job that has ended, with its tasks, logs and spans.
pub fn delete(unit: &mut Unit, id: JobId) -> Result<(), Error> {
    let job = unit.job(id)?.ok_or(Error::UnknownJob(id))?.clone();
    if !job.has_ended() {
        return Err(Error::Conflict(format!(
            "job {id} is {} with work left; only a job that has ended can be deleted (cancel it first)",
            job.state().as_str()
        )));
    }
    unit.delete_job(&job)?;
    Ok(())
}

/// Cancels a job: none of its queued tasks start until it is retried.
pub fn cancel(unit: &mut Unit, id: JobId) -> Result<(), Error> {
    let job = job_mut(unit, id)?;
    if job.state() == JobState::Completed {
        return Err(Error::Conflict(format!("job {id} is completed; there is nothing left to cancel")));
    }
    job.canceled = true;
    Ok(())
}

/// Retries a failed or canceled job: failed tasks are queued again with a
/// fresh retry budget, and queued tasks become eligible again. Computed tasks
/// stay computed. Returns how many failed tasks were re-queued, and the tasks
/// that are ready to run again.
pub fn retry(unit: &mut Unit, waiting: &Waiting, id: JobId) -> Result<(u64, Vec<Ready>), Error> {
    let job = job_mut(unit, id)?;
    let state = job.state();
    if !state.is_halted() {
        return Err(Error::Conflict(format!(
            "job {id} is {}; only failed or canceled jobs can be retried",
            state.as_str()
        )));
    }
    job.canceled = false;
    let (mut requeued, mut ready) = (0, Vec::new());
    for key in unit.task_keys_of(id)? {
        let task = unit.status(key)?.ok_or(Error::UnknownTask(key))?;
        let (state, cluster) = (task.state, task.cluster.clone());
        if state == TaskState::Failed {
            let task = status_mut(unit, key)?;
            task.state = TaskState::Queued;
            task.failures = 0;
            task.lost = 0;
            task.not_before_ms = None;
            requeued += 1;
            job_transition(unit, id, TaskState::Failed, TaskState::Queued)?;
        } else if state != TaskState::Queued || waiting.contains(&key) {
            continue;
        }
        // A retry resumes now: a backoff still running is over.
        if unit.status(key)?.is_some_and(|t| t.not_before_ms.is_some()) {
            status_mut(unit, key)?.not_before_ms = None;
        }
        unit.mark(&cluster, key, Live::Ready);
        ready.push((cluster, key));
    }
    Ok((requeued, ready))
}

/// Fails a task that cannot run at all (no compatible implementation);
/// answers what became ready (inside an optional subtree, its dependents).
pub fn fail_unrunnable(
    unit: &mut Unit,
    waiting: &mut Waiting,
    key: TaskKey,
    message: String,
) -> Result<Vec<Ready>, Error> {
    add_error(unit, key, message, false)?;
    let mut ready = Vec::new();
    fail_for_good(unit, waiting, key, false, &mut ready)?;
    Ok(ready)
}

pub(super) fn job_transition(
    unit: &mut Unit,
    job: JobId,
    from: TaskState,
    to: TaskState,
) -> Result<(), Error> {
    job_mut(unit, job)?.counts.transition(from, to);
    Ok(())
}
