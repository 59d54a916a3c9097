//! Runners: claim an eligible task, run it in the sandbox, report the outcome.
//!
//! The loop in [`run`] is the one execution path. Where work comes from and
//! where outcomes go is a [`WorkSource`]: the in-process source talks to the
//! scheduler directly; a remote runner's source would speak HTTP.

mod local;

use std::sync::Arc;
use std::time::Duration;

pub use local::{LocalSource, registry_check};

use crate::model::{Digest, TaskKey};
use crate::sandbox::{Execution, Sandbox, SubtaskCheck};
use crate::scheduler::{self, Assignment, Report};

/// Where a runner gets work and sends results.
pub trait WorkSource: Send + Sync + 'static {
    /// Waits for the next task.
    fn claim(&self) -> impl Future<Output = Result<Assignment, scheduler::Error>> + Send;
    /// Extends the lease of a running attempt.
    fn extend(
        &self,
        key: TaskKey,
        attempt: u32,
    ) -> impl Future<Output = Result<Duration, scheduler::Error>> + Send;
    /// Reports an attempt's outcome.
    fn report(&self, report: Report) -> impl Future<Output = Result<(), scheduler::Error>> + Send;
    /// The bytes of a module this runner has not prepared yet.
    fn module_bytes(&self, digest: &Digest) -> Option<Vec<u8>>;
    /// How submitted subtasks are checked.
    fn subtask_check(&self) -> SubtaskCheck;
}

/// Runs tasks from `source` until it closes. A finished attempt's report is
/// sent in the background while the runner already claims its next task, so
/// the hand-off does not wait for the report to reach disk.
pub async fn run<S: WorkSource>(source: Arc<S>, sandbox: Arc<Sandbox>) {
    loop {
        let assignment = match source.claim().await {
            Ok(a) => a,
            Err(scheduler::Error::Closed) => return,
            Err(e) => {
                tracing::error!(error = %e, "claim failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let report = execute(source.clone(), sandbox.clone(), assignment).await;
        let reporter = source.clone();
        tokio::spawn(async move {
            match reporter.report(report).await {
                Ok(()) | Err(scheduler::Error::Closed) => {}
                Err(e) => tracing::warn!(error = %e, "report refused"),
            }
        });
    }
}

/// Runs one assignment on a blocking thread, renewing its lease from here
/// (a busy guest cannot starve renewal), and turns the result into a report.
async fn execute<S: WorkSource>(source: Arc<S>, sandbox: Arc<Sandbox>, a: Assignment) -> Report {
    let (key, attempt) = (a.key, a.attempt);
    // The first renewal is due a third into the lease. (An interval's
    // immediate first tick would wait for the timer wheel: up to 1 ms.)
    let period = a.lease_ttl / 3;
    let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let runner_source = source.clone();
    let mut handle = tokio::task::spawn_blocking(move || {
        let source = runner_source;
        let prepared = sandbox.prepare(&a.module, || source.module_bytes(&a.module))?;
        let exec = Execution {
            job: a.key.job,
            task: a.key.task,
            attempt: a.attempt,
            task_type: a.task_type,
            input: a.input,
            check: source.subtask_check(),
        };
        Ok::<_, crate::sandbox::Error>(sandbox.execute(&prepared, exec))
    });
    let joined = loop {
        tokio::select! {
            joined = &mut handle => break joined,
            _ = renew.tick() => {
                if let Err(e) = source.extend(key, attempt).await {
                    tracing::warn!(error = %e, "lease renewal refused; the attempt's report will be too");
                }
            }
        }
    };
    let result = match joined {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return failure(key, attempt, format!("could not load the task's module: {e}")),
        Err(e) => return failure(key, attempt, format!("the runner crashed while executing: {e}")),
    };
    Report {
        key,
        attempt,
        outcome: result.outcome,
        display: result.display,
        logs: result.logs,
        spans: result.spans,
    }
}

fn failure(key: TaskKey, attempt: u32, message: String) -> Report {
    Report { key, attempt, outcome: Err(message), display: None, logs: Vec::new(), spans: Vec::new() }
}
