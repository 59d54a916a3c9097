//! Runs a claimed batch one task after another on the runner's own thread,
//! renewing every lease of the batch alongside (the attempts yield to the
//! runner's executor at every epoch tick and in every host call, so a busy
//! guest cannot starve renewal). A batch that runs past [`HAND_BACK_AFTER`]
//! hands its unstarted tasks back so idle runners can take them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::WorkSource;
use crate::model::{Output, TaskKey};
use crate::sandbox::{Dependencies, Execution, Sandbox, SubtaskCheck};
use crate::scheduler::{Assignment, Report};

/// Past this, the rest of a batch is handed back instead of started.
const HAND_BACK_AFTER: Duration = Duration::from_millis(20);

/// How long a runner waits after the sandbox had no room for an attempt.
const NO_ROOM_PAUSE: Duration = Duration::from_millis(50);

/// Runs `batch`; answers the reports of the attempts that ran. Unstarted ones
/// have been handed back.
pub async fn execute<S: WorkSource>(
    source: &S,
    sandbox: &Arc<Sandbox>,
    batch: Vec<Assignment>,
) -> Vec<Report> {
    let attempts: Vec<(TaskKey, u64)> = batch.iter().map(|a| (a.key, a.lease)).collect();
    let ttl = batch.iter().map(|a| a.lease_ttl).min().unwrap_or(Duration::from_secs(30));
    let (reports, unstarted, no_room) = tokio::select! {
        done = run_in_order(source, sandbox, batch) => done,
        never = renew(source, &attempts, ttl) => match never {},
    };
    if !unstarted.is_empty()
        && let Err(e) = source.release(unstarted).await
    {
        tracing::warn!(error = %e, "could not hand back unstarted tasks; their leases will expire");
    }
    if no_room {
        // The host's problem, not the tasks': they go back to the queue
        // without using a retry, and this runner lets the pool drain.
        tracing::warn!("the sandbox pool was full; handed the rest of a batch back");
        tokio::time::sleep(NO_ROOM_PAUSE).await;
    }
    reports
}

/// Renews the leases of `attempts` a third into each lease, forever. (An
/// interval's immediate first tick would wait for the timer wheel: up to
/// 1 ms before the first task.)
async fn renew<S: WorkSource>(
    source: &S,
    attempts: &[(TaskKey, u64)],
    ttl: Duration,
) -> std::convert::Infallible {
    let period = ttl / 3;
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        ticks.tick().await;
        for &(key, lease) in attempts {
            if let Err(e) = source.extend(key, lease).await {
                tracing::warn!(error = %e, "lease renewal refused; the attempt's report will be too");
            }
        }
    }
}

/// Runs the batch in order until it is done or past its time; answers the
/// reports, the attempts never started (one the sandbox had no room for
/// counts as never started), and whether the sandbox had no room.
async fn run_in_order<S: WorkSource>(
    source: &S,
    sandbox: &Arc<Sandbox>,
    batch: Vec<Assignment>,
) -> (Vec<Report>, Vec<(TaskKey, u64)>, bool) {
    let started = Instant::now();
    let check = source.subtask_check();
    let mut reports = Vec::with_capacity(batch.len());
    let mut rest = batch.into_iter();
    while let Some(a) = rest.next() {
        let hand_back = (!reports.is_empty() && started.elapsed() > HAND_BACK_AFTER) || source.stopping();
        if hand_back {
            let mut unstarted = vec![(a.key, a.lease)];
            unstarted.extend(rest.map(|a| (a.key, a.lease)));
            return (reports, unstarted, false);
        }
        let (key, lease) = (a.key, a.lease);
        match run_one(source, sandbox, &check, a).await {
            Some(report) => reports.push(report),
            None => {
                let mut unstarted = vec![(key, lease)];
                unstarted.extend(rest.map(|a| (a.key, a.lease)));
                return (reports, unstarted, true);
            }
        }
    }
    (reports, Vec::new(), false)
}

/// Runs `a`; `None` when the sandbox had no room for it.
async fn run_one<S: WorkSource>(
    source: &S,
    sandbox: &Arc<Sandbox>,
    check: &SubtaskCheck,
    a: Assignment,
) -> Option<Report> {
    let (key, attempt, lease) = (a.key, a.attempt, a.lease);
    let fetch = source.module_artifact(&a.module, sandbox.engine_tag());
    let prepared = match sandbox.prepare(&a.module, fetch, source.module_bytes(&a.module)).await {
        Ok(p) => p,
        Err(e) => return Some(failure(&a, format!("could not load the task's module: {e}"))),
    };
    let exec = Execution {
        job: key.job,
        task: key.task,
        attempt,
        task_type: a.task_type,
        input: a.input,
        limits: a.limits,
        check: check.clone(),
        dependencies: Dependencies::of(key.job, &a.dependencies, || source.outputs()),
        cache: source.cache(),
        lease,
        secrets: source.secrets(),
    };
    let result = sandbox.execute(&prepared, exec).await;
    if result.no_room {
        return None;
    }
    Some(Report {
        key,
        attempt,
        lease,
        outcome: result.outcome,
        output: result.output,
        display: result.display,
        logs: result.logs,
        spans: result.spans,
        canceled: result.canceled,
        permanent: result.permanent,
        progress: result.progress,
        usage: Some(result.usage),
    })
}

fn failure(a: &Assignment, message: String) -> Report {
    Report {
        key: a.key,
        attempt: a.attempt,
        lease: a.lease,
        outcome: Err(message),
        output: Output::None,
        display: None,
        logs: Vec::new(),
        spans: Vec::new(),
        canceled: false,
        permanent: false,
        progress: Vec::new(),
        usage: None,
    }
}
