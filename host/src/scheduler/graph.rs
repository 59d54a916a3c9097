//! State transitions of the job graph, applied to a store [`Unit`]. Each
//! returns the tasks that became ready; the caller queues them.

use super::{Error, JobSpec, Report};
use crate::model::{
    AttemptError, Job, JobId, JobState, SubtaskSpec, Task, TaskId, TaskKey, TaskState, Version, now_ms,
    truncate_display,
};
use crate::store::{Live, Unit};

/// Attempt errors kept per task; older ones are dropped.
const MAX_KEPT_ERRORS: usize = 20;

/// A task that became eligible to run.
pub type Ready = (String, TaskKey);

/// Creates a job and its queued root task.
/// Answers the job as created and its root task, ready.
pub fn submit_job(unit: &mut Unit, spec: JobSpec) -> (Job, Ready) {
    let id = JobId::new();
    let key = TaskKey { job: id, task: TaskId::new() };
    let root =
        Task::new_queued(key, None, spec.task_type, spec.input, spec.cluster.clone(), spec.max_retries);
    let mut job = Job {
        id,
        name: spec.name,
        root: key.task,
        cluster: spec.cluster.clone(),
        counts: Default::default(),
        canceled: false,
        idempotency_key: spec.idempotency_key,
        progress: Default::default(),
        traceparent: spec.traceparent,
    };
    job.counts.queued = 1;
    if let Some(k) = &job.idempotency_key {
        unit.set_idempotency(k, id);
    }
    unit.insert_job(job.clone());
    unit.insert_task(root);
    unit.mark(&spec.cluster, key, Live::Ready);
    (job, (spec.cluster, key))
}

/// Marks `key` as running its next attempt on implementation `version`.
/// Returns the task as started; its `attempt` is the attempt's fencing token.
pub fn start(unit: &mut Unit, key: TaskKey, version: Version) -> Result<Task, Error> {
    let task = unit.task(key)?.ok_or(Error::UnknownTask(key))?;
    let from = task.state;
    task.state = TaskState::Running;
    task.attempt += 1;
    task.started_ms = Some(now_ms());
    task.ran_version = Some(version);
    let snapshot = task.clone();
    unit.mark(&snapshot.cluster, key, Live::Running);
    job_transition(unit, key.job, from, TaskState::Running)?;
    Ok(snapshot)
}

/// Applies a runner's report of an attempt.
/// Every check happens before the first change, so a refused report leaves
/// the unit untouched.
pub fn finish(unit: &mut Unit, report: Report) -> Result<Vec<Ready>, Error> {
    let key = report.key;
    let task = unit.task_view(key)?.ok_or(Error::UnknownTask(key))?;
    if task.state != TaskState::Running || task.attempt != report.attempt {
        return Err(Error::StaleAttempt { key, attempt: report.attempt });
    }
    let outcome = match report.outcome {
        Ok(subtasks) => Ok(build_children(key, &task.cluster, subtasks)?),
        Err(message) => Err(message),
    };
    if let Some(display) = &report.display {
        unit.task(key)?.ok_or(Error::UnknownTask(key))?.display = Some(truncate_display(display));
    }
    unit.add_logs(key, &report.logs);
    unit.add_spans(key, u64::from(report.attempt) << 32, &report.spans);
    match outcome {
        Ok(children) => {
            if !report.progress.is_empty() {
                let job = unit.job(key.job)?.ok_or(Error::UnknownJob(key.job))?;
                for (label, total, done) in report.progress {
                    let counter = job.progress.entry(label).or_default();
                    counter.0 = counter.0.saturating_add(total);
                    counter.1 = counter.1.saturating_add(done);
                }
            }
            compute(unit, key, children)
        }
        Err(message) => fail_attempt(unit, key, message, !report.canceled),
    }
}

/// Counts a failed attempt; the task is queued again while `may_retry` and
/// retries remain, else it fails.
fn fail_attempt(
    unit: &mut Unit,
    key: TaskKey,
    message: String,
    may_retry: bool,
) -> Result<Vec<Ready>, Error> {
    let task = unit.task(key)?.ok_or(Error::UnknownTask(key))?;
    task.failures += 1;
    let now = now_ms();
    task.errors.push(AttemptError { attempt: task.attempt, message, ran: task.started_ms.map(|s| (s, now)) });
    if task.errors.len() > MAX_KEPT_ERRORS {
        task.errors.remove(0);
    }
    task.finished_ms = Some(now);
    let retry = may_retry && task.failures <= task.max_retries;
    task.state = if retry { TaskState::Queued } else { TaskState::Failed };
    let (to, cluster) = (task.state, task.cluster.clone());
    job_transition(unit, key.job, TaskState::Running, to)?;
    unit.mark(&cluster, key, if retry { Live::Ready } else { Live::Done });
    Ok(if retry { vec![(cluster, key)] } else { Vec::new() })
}

fn compute(unit: &mut Unit, key: TaskKey, children: Vec<Task>) -> Result<Vec<Ready>, Error> {
    let task = unit.task(key)?.ok_or(Error::UnknownTask(key))?;
    task.state = TaskState::Computed;
    task.finished_ms = Some(now_ms());
    let cluster = task.cluster.clone();
    unit.mark(&cluster, key, Live::Done);
    let count = children.len() as u64;
    let mut ready: Vec<Ready> =
        children.iter().filter(|c| c.unmet_deps == 0).map(|c| (c.cluster.clone(), c.key)).collect();
    unit.insert_subtasks(key, children);
    for (cluster, child) in &ready {
        unit.mark(cluster, *child, Live::Ready);
    }
    let job = unit.job(key.job)?.ok_or(Error::UnknownJob(key.job))?;
    job.counts.transition(TaskState::Running, TaskState::Computed);
    job.counts.queued += count;
    propagate(unit, key, count as i64 - 1, &mut ready)?;
    Ok(ready)
}

/// Turns the buffered subtasks of `parent` into queued tasks with their
/// dependency edges. Dependencies can only name earlier subtasks, so the graph
/// stays acyclic.
fn build_children(parent: TaskKey, cluster: &str, specs: Vec<SubtaskSpec>) -> Result<Vec<Task>, Error> {
    let mut children: Vec<Task> = Vec::with_capacity(specs.len());
    for (i, spec) in specs.into_iter().enumerate() {
        let key = TaskKey { job: parent.job, task: TaskId::new() };
        let cluster = spec.cluster.unwrap_or_else(|| cluster.to_owned());
        let mut child =
            Task::new_queued(key, Some(parent.task), spec.task_type, spec.input, cluster, spec.max_retries);
        let mut deps = spec.depends_on;
        deps.sort_unstable();
        deps.dedup();
        for d in deps {
            let dep =
                children.get_mut(d as usize).filter(|_| (d as usize) < i).ok_or(Error::BadDependency(d))?;
            dep.dependents.push(key.task);
            child.depends_on.push(dep.key.task);
            child.unmet_deps += 1;
        }
        children.push(child);
    }
    Ok(children)
}

/// Adds `delta` to the incomplete count of `start` and every ancestor; each
/// that reaches zero is complete, which may make its dependents ready.
fn propagate(unit: &mut Unit, start: TaskKey, delta: i64, ready: &mut Vec<Ready>) -> Result<(), Error> {
    if delta == 0 {
        return Ok(());
    }
    let mut node = Some(start.task);
    while let Some(id) = node {
        let key = TaskKey { job: start.job, task: id };
        let task = unit.task(key)?.ok_or(Error::UnknownTask(key))?;
        task.incomplete = task.incomplete.saturating_add_signed(delta);
        node = task.parent;
        if task.incomplete == 0 {
            let dependents = task.dependents.clone();
            release_dependents(unit, start.job, &dependents, ready)?;
        }
    }
    Ok(())
}

fn release_dependents(
    unit: &mut Unit,
    job: JobId,
    ids: &[TaskId],
    ready: &mut Vec<Ready>,
) -> Result<(), Error> {
    for id in ids {
        let key = TaskKey { job, task: *id };
        let dep = unit.task(key)?.ok_or(Error::UnknownTask(key))?;
        dep.unmet_deps = dep.unmet_deps.saturating_sub(1);
        if dep.unmet_deps == 0 && dep.state == TaskState::Queued {
            let cluster = dep.cluster.clone();
            unit.mark(&cluster, key, Live::Ready);
            ready.push((cluster, key));
        }
    }
    Ok(())
}

/// Re-queues a task whose attempt was lost with its runner (host crash,
/// expired lease) without counting it as a failure; past `budget` such losses
/// the task fails. `attempt` names the lost attempt; `None` takes whichever is
/// running.
pub fn requeue_lost(
    unit: &mut Unit,
    key: TaskKey,
    attempt: Option<u32>,
    budget: u32,
) -> Result<Option<Ready>, Error> {
    let Some(task) = unit.task_view(key)? else { return Ok(None) };
    if task.state != TaskState::Running || attempt.is_some_and(|a| a != task.attempt) {
        return Ok(None);
    }
    let task = unit.task(key)?.ok_or(Error::UnknownTask(key))?;
    task.lost += 1;
    let cluster = task.cluster.clone();
    if task.lost > budget {
        let message = format!(
            "attempt {} was lost with its runner (lease expired or host restarted); {} attempts were lost, more than the limit of {budget}",
            task.attempt, task.lost
        );
        let now = now_ms();
        task.errors.push(AttemptError {
            attempt: task.attempt,
            message,
            ran: task.started_ms.map(|s| (s, now)),
        });
        task.state = TaskState::Failed;
        task.finished_ms = Some(now);
        unit.mark(&cluster, key, Live::Done);
        job_transition(unit, key.job, TaskState::Running, TaskState::Failed)?;
        return Ok(None);
    }
    task.state = TaskState::Queued;
    unit.mark(&cluster, key, Live::Ready);
    job_transition(unit, key.job, TaskState::Running, TaskState::Queued)?;
    Ok(Some((cluster, key)))
}

/// Queues again a task whose attempt was claimed but never started (handed
/// back by its runner): the attempt is undone, no retry or loss is counted.
pub fn release(unit: &mut Unit, key: TaskKey, attempt: u32) -> Result<Option<Ready>, Error> {
    let Some(task) = unit.task_view(key)? else { return Ok(None) };
    if task.state != TaskState::Running || task.attempt != attempt {
        return Ok(None);
    }
    let task = unit.task(key)?.ok_or(Error::UnknownTask(key))?;
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
    let job = unit.job_view(id)?.ok_or(Error::UnknownJob(id))?.clone();
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
    let job = unit.job(id)?.ok_or(Error::UnknownJob(id))?;
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
pub fn retry(unit: &mut Unit, id: JobId) -> Result<(u64, Vec<Ready>), Error> {
    let job = unit.job(id)?.ok_or(Error::UnknownJob(id))?;
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
        let state = unit.task_view(key)?.ok_or(Error::UnknownTask(key))?.state;
        if state != TaskState::Failed && state != TaskState::Queued {
            continue;
        }
        let task = unit.task(key)?.ok_or(Error::UnknownTask(key))?;
        if task.state == TaskState::Failed {
            task.state = TaskState::Queued;
            task.failures = 0;
            task.lost = 0;
            requeued += 1;
            job_transition(unit, id, TaskState::Failed, TaskState::Queued)?;
        }
        let task = unit.task(key)?.ok_or(Error::UnknownTask(key))?;
        if task.unmet_deps == 0 {
            let cluster = task.cluster.clone();
            unit.mark(&cluster, key, Live::Ready);
            ready.push((cluster, key));
        }
    }
    Ok((requeued, ready))
}

/// Fails a task that cannot run at all (no compatible implementation).
pub fn fail_unrunnable(unit: &mut Unit, key: TaskKey, message: String) -> Result<(), Error> {
    let task = unit.task(key)?.ok_or(Error::UnknownTask(key))?;
    let from = task.state;
    task.state = TaskState::Failed;
    task.errors.push(AttemptError { attempt: task.attempt, message, ran: None });
    let cluster = task.cluster.clone();
    unit.mark(&cluster, key, Live::Done);
    job_transition(unit, key.job, from, TaskState::Failed)
}

fn job_transition(unit: &mut Unit, job: JobId, from: TaskState, to: TaskState) -> Result<(), Error> {
    let job = unit.job(job)?.ok_or(Error::UnknownJob(job))?;
    job.counts.transition(from, to);
    Ok(())
}
