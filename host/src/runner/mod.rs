//! Runners: claim eligible tasks, run them in the sandbox, report the outcomes.
//!
//! The loop in [`run`] is the one execution path. Where work comes from and
//! where outcomes go is a [`WorkSource`]: the in-process source
//! (`local.rs`) talks to the scheduler directly, a remote runner's
//! (`remote.rs`) speaks the runner protocol over HTTP.
//!
//! Short tasks are claimed in batches: a runner learns how long its tasks take
//! and claims as many as fill a couple of milliseconds, so the hand-off cost
//! is shared; a batch that runs long hands its unstarted tasks back.

mod batch;
mod cache;
mod host_api;
mod local;
mod outputs;
mod pace;
mod remote;
mod secrets;

use std::sync::Arc;
use std::time::Duration;

pub use local::{LocalSource, registry_check};
pub use remote::RemoteSource;

use crate::model::{Digest, TaskKey};
use crate::sandbox::{CacheAccess, OutputReader, Sandbox, SecretReader, SubtaskCheck};
use crate::scheduler::{self, Assignment, Report, Reported};

/// Where a runner gets work and sends results.
pub trait WorkSource: Send + Sync + 'static {
    /// Waits for ready tasks and claims between one and `max` of them.
    fn claim(&self, max: usize) -> impl Future<Output = Result<Vec<Assignment>, scheduler::Error>> + Send;
    /// Extends the lease `lease` of a claimed attempt.
    fn extend(
        &self,
        key: TaskKey,
        lease: u64,
    ) -> impl Future<Output = Result<Duration, scheduler::Error>> + Send;
    /// Reports the outcomes of attempts; answers each in order, or nothing
    /// when the source does not wait for the answers (the in-process one:
    /// the scheduler logs refused reports itself).
    fn report(&self, reports: Vec<Report>)
    -> impl Future<Output = Result<Reported, scheduler::Error>> + Send;
    /// Hands back claimed attempts that were never started.
    fn release(
        &self,
        attempts: Vec<(TaskKey, u64)>,
    ) -> impl Future<Output = Result<(), scheduler::Error>> + Send;
    /// The bytes of a module this runner has not prepared yet.
    fn module_bytes(&self, digest: &Digest) -> impl Future<Output = Option<Vec<u8>>> + Send;
    /// The host's precompiled artifact of a module, if its engine's tag is
    /// `engine` (see `Sandbox::engine_tag`): loading it saves compiling
    /// the module here. None for a source that shares the host's sandbox.
    fn module_artifact(&self, digest: &Digest, engine: &str) -> impl Future<Output = Option<Vec<u8>>> + Send;
    /// How submitted subtasks are checked.
    fn subtask_check(&self) -> SubtaskCheck;
    /// Where attempts read their dependencies' outputs.
    fn outputs(&self) -> Arc<dyn OutputReader>;
    /// Where attempts find their jobs' caches.
    fn cache(&self) -> Option<Arc<dyn CacheAccess>>;
    /// Where attempts read the secrets their modules were granted.
    fn secrets(&self) -> Option<Arc<dyn SecretReader>>;
    /// Whether the runner is stopping: tasks of a batch not started yet are
    /// handed back instead.
    fn stopping(&self) -> bool {
        false
    }
}

/// Runs tasks from `source` until it closes. A finished batch's reports are
/// sent in the background while the runner already claims its next tasks, so
/// the hand-off does not wait for the reports to reach disk.
pub async fn run<S: WorkSource>(source: Arc<S>, sandbox: Arc<Sandbox>) {
    let mut pace = pace::Pace::default();
    let mut reporting = tokio::task::JoinSet::new();
    loop {
        while reporting.try_join_next().is_some() {}
        let assignments = match source.claim(pace.batch_size()).await {
            Ok(a) => a,
            Err(scheduler::Error::Closed) => break,
            Err(e) => {
                tracing::error!(error = %e, "claim failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let started = std::time::Instant::now();
        let reports = batch::execute(&*source, &sandbox, assignments).await;
        pace.observe(started.elapsed(), reports.len());
        let reporter = source.clone();
        reporting.spawn(async move { send_reports(&*reporter, reports).await });
        // Let the report reach the scheduler before the next claim: the
        // task it makes ready can then go out in the group of the claim.
        tokio::task::yield_now().await;
    }
    // Reports still on their way are part of a graceful stop.
    reporting.join_all().await;
}

/// Runs the loop of one in-process runner on a thread of its own, with its
/// own single-threaded executor: a task handed over wakes that thread
/// directly, its attempt runs there, and its report goes straight to the
/// scheduler (two thread hand-offs per task). The thread ends when the
/// source closes.
pub fn spawn_thread<S: WorkSource>(
    name: String,
    source: Arc<S>,
    sandbox: Arc<Sandbox>,
) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name(name).spawn(move || runtime.block_on(run(source, sandbox)))?;
    Ok(())
}

async fn send_reports<S: WorkSource>(source: &S, reports: Vec<Report>) {
    match source.report(reports).await {
        Ok(answers) => {
            for refused in answers.into_iter().filter_map(Result::err) {
                tracing::warn!(error = %refused, "report refused");
            }
        }
        Err(scheduler::Error::Closed) => {}
        Err(e) => tracing::warn!(error = %e, "reports not recorded"),
    }
}
