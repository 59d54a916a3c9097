//! Runs a claimed batch one task after another on the runner's own thread,
//! renewing every lease of the batch alongside (the attempts yield to the
//! runner's executor at every epoch tick and in every host call, so a busy
//! guest cannot starve renewal). A batch that runs past [`HAND_BACK_AFTER`]
//! hands its unstarted tasks back so idle runners can take them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::WorkSource;
use crate::model::TaskKey;
use crate::sandbox::{Execution, Sandbox, SubtaskCheck};
use crate::scheduler::{Assignment, Report};

/// Past this, the rest of a batch is handed back instead of started.
const HAND_BACK_AFTER: Duration = Duration::from_millis(20);

/// Runs `batch`; answers the reports of the attempts that ran. Unstarted ones
/// have been handed back.
pub async fn execute<S: WorkSource>(
    source: &S,
    sandbox: &Arc<Sandbox>,
    batch: Vec<Assignment>,
) -> Vec<Report> {
    let attempts: Vec<(TaskKey, u64)> = batch.iter().map(|a| (a.key, a.lease)).collect();
    let ttl = batch.iter().map(|a| a.lease_ttl).min().unwrap_or(Duration::from_secs(30));
    let (reports, unstarted) = tokio::select! {
        done = run_in_order(source, sandbox, batch) => done,
        never = renew(source, &attempts, ttl) => match never {},
    };
    if !unstarted.is_empty()
        && let Err(e) = source.release(unstarted).await
    {
        tracing::warn!(error = %e, "could not hand back unstarted tasks; their leases will expire");
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
/// reports and the attempts never started.
async fn run_in_order<S: WorkSource>(
    source: &S,
    sandbox: &Arc<Sandbox>,
    batch: Vec<Assignment>,
) -> (Vec<Report>, Vec<(TaskKey, u64)>) {
    let started = Instant::now();
    let check = source.subtask_check();
    let mut reports = Vec::with_capacity(batch.len());
    let mut rest = batch.into_iter();
    while let Some(a) = rest.next() {
        let hand_back = (!reports.is_empty() && started.elapsed() > HAND_BACK_AFTER) || source.stopping();
        if hand_back {
            let mut unstarted = vec![(a.key, a.lease)];
            unstarted.extend(rest.map(|a| (a.key, a.lease)));
            return (reports, unstarted);
        }
        reports.push(run_one(source, sandbox, &check, a).await);
    }
    (reports, Vec::new())
}

async fn run_one<S: WorkSource>(
    source: &S,
    sandbox: &Arc<Sandbox>,
    check: &SubtaskCheck,
    a: Assignment,
) -> Report {
    let (key, attempt, lease) = (a.key, a.attempt, a.lease);
    let prepared = match sandbox.prepare(&a.module, source.module_bytes(&a.module)).await {
        Ok(p) => p,
        Err(e) => return failure(&a, format!("could not load the task's module: {e}")),
    };
    let exec = Execution {
        job: key.job,
        task: key.task,
        attempt,
        task_type: a.task_type,
        input: a.input,
        limits: a.limits,
        check: check.clone(),
    };
    let result = sandbox.execute(&prepared, exec).await;
    Report {
        key,
        attempt,
        lease,
        outcome: result.outcome,
        display: result.display,
        logs: result.logs,
        spans: result.spans,
        canceled: result.canceled,
        progress: result.progress,
    }
}

fn failure(a: &Assignment, message: String) -> Report {
    Report {
        key: a.key,
        attempt: a.attempt,
        lease: a.lease,
        outcome: Err(message),
        display: None,
        logs: Vec::new(),
        spans: Vec::new(),
        canceled: false,
        progress: Vec::new(),
    }
}
