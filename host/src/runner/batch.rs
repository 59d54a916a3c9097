//! Runs a claimed batch one task after another on a blocking thread, renewing
//! every lease of the batch from the async side (a busy guest cannot starve
//! renewal). A batch that runs past [`HAND_BACK_AFTER`] hands its unstarted
//! tasks back so idle runners can take them.

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
    source: Arc<S>,
    sandbox: Arc<Sandbox>,
    batch: Vec<Assignment>,
) -> Vec<Report> {
    let attempts: Vec<(TaskKey, u32)> = batch.iter().map(|a| (a.key, a.attempt)).collect();
    let ttl = batch.iter().map(|a| a.lease_ttl).min().unwrap_or(Duration::from_secs(30));
    // The first renewal is due a third into the lease. (An interval's
    // immediate first tick would wait for the timer wheel: up to 1 ms.)
    let period = ttl / 3;
    let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let runner_source = source.clone();
    let mut handle = tokio::task::spawn_blocking(move || run_in_order(&*runner_source, &sandbox, batch));
    let joined = loop {
        tokio::select! {
            joined = &mut handle => break joined,
            _ = renew.tick() => renew_all(&*source, &attempts).await,
        }
    };
    match joined {
        Ok((reports, unstarted)) => {
            if !unstarted.is_empty()
                && let Err(e) = source.release(unstarted).await
            {
                tracing::warn!(error = %e, "could not hand back unstarted tasks; their leases will expire");
            }
            reports
        }
        Err(e) => {
            let message = format!("the runner crashed while executing: {e}");
            attempts.into_iter().map(|(key, attempt)| failure(key, attempt, message.clone())).collect()
        }
    }
}

async fn renew_all<S: WorkSource>(source: &S, attempts: &[(TaskKey, u32)]) {
    for &(key, attempt) in attempts {
        if let Err(e) = source.extend(key, attempt).await {
            tracing::warn!(error = %e, "lease renewal refused; the attempt's report will be too");
        }
    }
}

/// Runs the batch in order until it is done or past its time; answers the
/// reports and the attempts never started.
fn run_in_order<S: WorkSource>(
    source: &S,
    sandbox: &Sandbox,
    batch: Vec<Assignment>,
) -> (Vec<Report>, Vec<(TaskKey, u32)>) {
    let started = Instant::now();
    let check = source.subtask_check();
    let mut reports = Vec::with_capacity(batch.len());
    let mut rest = batch.into_iter();
    for a in rest.by_ref() {
        let hand_back = (!reports.is_empty() && started.elapsed() > HAND_BACK_AFTER) || source.stopping();
        if hand_back {
            let mut unstarted = vec![(a.key, a.attempt)];
            unstarted.extend(rest.map(|a| (a.key, a.attempt)));
            return (reports, unstarted);
        }
        reports.push(run_one(source, sandbox, &check, a));
    }
    (reports, Vec::new())
}

fn run_one<S: WorkSource>(source: &S, sandbox: &Sandbox, check: &SubtaskCheck, a: Assignment) -> Report {
    let (key, attempt) = (a.key, a.attempt);
    let prepared = match sandbox.prepare(&a.module, || source.module_bytes(&a.module)) {
        Ok(p) => p,
        Err(e) => return failure(key, attempt, format!("could not load the task's module: {e}")),
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
    let result = sandbox.execute(&prepared, exec);
    Report {
        key,
        attempt,
        outcome: result.outcome,
        display: result.display,
        logs: result.logs,
        spans: result.spans,
        canceled: result.canceled,
        progress: result.progress,
    }
}

fn failure(key: TaskKey, attempt: u32, message: String) -> Report {
    Report {
        key,
        attempt,
        outcome: Err(message),
        display: None,
        logs: Vec::new(),
        spans: Vec::new(),
        canceled: false,
        progress: Vec::new(),
    }
}
