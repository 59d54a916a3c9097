//! The scheduler: the state machine of jobs and tasks over the store.
//!
//! One writer task owns every change to the job graph. Callers send it
//! commands; it applies all commands that are waiting as one store
//! [`Unit`](crate::store::Unit) (a group), hands ready tasks to waiting
//! runners as soon as the group is applied, and answers every other command
//! once a sync has made the group durable (group commit). Ready tasks wake
//! idle runners directly: nothing polls.

mod automations;
mod children;
mod delays;
mod fair;
mod gates;
mod graph;
mod lease;
mod observe;
mod optional;
mod queue;
mod rebuild;
mod registry;
mod retries;
mod waiting;
mod writer;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

pub use automations::{Changed as AutomationChanged, Missed, Op as AutomationOp};
pub use observe::{FinishedAttempt, FinishedSender};
pub use registry::Registry;

use crate::model::{
    Clock, ConcurrencyLimit, DEFAULT_CLUSTER, Digest, JobId, LogEntry, ModuleInfo, Output, SpanEntry,
    SubtaskSpec, TaskId, TaskKey, TaskLimits, TaskType, TraceParent,
};
use crate::store::{self, Store};

/// The existing clusters and their concurrency limits.
pub(crate) type Clusters = std::collections::HashMap<String, Arc<Vec<ConcurrencyLimit>>>;

/// Job-change notices kept for slow subscribers.
const EVENT_BUFFER: usize = 4096;

/// How long a claim, and the writer out of work, look for what comes next
/// before their thread sleeps.
pub(crate) const SPIN: Duration = Duration::from_micros(50);

/// Most tasks handed to one runner by one claim.
pub const MAX_CLAIM_BATCH: usize = 64;

/// A scheduler failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The store failed; the change was not made.
    #[error("store failure: {0}")]
    Store(String),
    /// The store stopped taking writes after a fault; nothing is
    /// acknowledged until the host restarts.
    #[error("{0}")]
    StoreUnavailable(String),
    /// Too many commands wait for the writer already; try again shortly.
    #[error("{0} requests are waiting for the scheduler, the most it queues; try again shortly")]
    Busy(usize),
    /// The scheduler has stopped (the host is shutting down).
    #[error("the scheduler has stopped")]
    Closed,
    /// No such job.
    #[error("job {0} not found")]
    UnknownJob(JobId),
    /// No such automation.
    #[error("automation {0} not found")]
    UnknownAutomation(crate::model::AutomationId),
    /// The host keeps this many automations already.
    #[error("this host keeps {0} automations, the most it may; delete one first")]
    TooManyAutomations(usize),
    /// No such task.
    #[error("task {} of job {} not found", .0.task, .0.job)]
    UnknownTask(TaskKey),
    /// A report or renewal for a start that is no longer the current one.
    #[error("lease {lease} of task {} is not the task's current attempt (it expired, was handed back or superseded); refused", .key.task)]
    StaleAttempt {
        /// The task.
        key: TaskKey,
        /// The lease token named.
        lease: u64,
    },
    /// The request conflicts with the job's state.
    #[error("{0}")]
    Conflict(String),
    /// A remote host could not be reached or refused a runner's call.
    #[error("host unavailable: {0}")]
    Unavailable(String),
    /// A subtask depends on a handle that was not issued before it.
    #[error("subtask dependency {0} does not name an earlier subtask")]
    BadDependency(u32),
}

impl From<store::Error> for Error {
    fn from(e: store::Error) -> Self {
        match e {
            e if e.is_unavailable() => Error::StoreUnavailable(e.to_string()),
            e => Error::Store(e.to_string()),
        }
    }
}

/// A job to create.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// The job's name.
    pub name: String,
    /// The root task's type.
    pub task_type: TaskType,
    /// The root task's JSON input.
    pub input: String,
    /// The root task's cluster.
    pub cluster: String,
    /// Retries of the root task.
    pub max_retries: u32,
    /// Makes the submission idempotent: a repeat returns the first job.
    pub idempotency_key: Option<String>,
    /// The client's trace context, continued by the job's spans.
    pub traceparent: Option<TraceParent>,
    /// The delay before each retry of the root task, if any.
    pub backoff: Option<crate::model::Backoff>,
    /// The root task starts no earlier than this (Unix ms), if given.
    pub not_before_ms: Option<u64>,
    /// The automation submitting it, if one is.
    pub automation: Option<crate::model::AutomationId>,
    /// Its priority ([`crate::model::MIN_PRIORITY`] to [`crate::model::MAX_PRIORITY`]).
    pub priority: i8,
    /// Root tasks beside the first (the fields above), started with it.
    pub more_roots: Vec<RootSpec>,
}

/// A root task of a job beyond its first.
#[derive(Debug, Clone)]
pub struct RootSpec {
    /// Its type.
    pub task_type: TaskType,
    /// Its JSON input.
    pub input: String,
    /// Its cluster.
    pub cluster: String,
    /// Its retries.
    pub max_retries: u32,
    /// The delay before each retry, if any.
    pub backoff: Option<crate::model::Backoff>,
}

/// The answer to a submission.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The job as it was committed (new, or the earlier submission's).
    pub job: crate::model::Job,
    /// False when an earlier submission with the same idempotency key made it.
    pub created: bool,
}

/// What a job retry did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retried {
    /// Failed tasks queued again with a fresh retry budget.
    pub requeued: u64,
    /// Tasks that are eligible to run again (re-queued ones included).
    pub ready: u64,
}

/// A task handed to a runner.
#[derive(Debug, Clone)]
pub struct Assignment {
    /// The task.
    pub key: TaskKey,
    /// The implementation to run (the newest compatible registered version).
    pub task_type: TaskType,
    /// The module implementing it.
    pub module: Digest,
    /// The limits the module's upload asked for.
    pub limits: TaskLimits,
    /// The JSON input.
    pub input: String,
    /// The tasks it depends on, as (the parent's handle, task), in
    /// `depends_on` order: the outputs it may read.
    pub dependencies: Vec<(u32, TaskId)>,
    /// The task's cluster.
    pub cluster: String,
    /// The attempt number, from 1.
    pub attempt: u32,
    /// The start's fencing token: what its report, renewals and hand-back
    /// name.
    pub lease: u64,
    /// How long the attempt's lease lasts unless extended.
    pub lease_ttl: Duration,
}

/// What a runner reports about one attempt.
#[derive(Debug, Clone)]
pub struct Report {
    /// The task.
    pub key: TaskKey,
    /// The attempt reported on.
    pub attempt: u32,
    /// Its lease token; must still be the task's current one.
    pub lease: u64,
    /// The subtasks it submitted, or why it failed.
    pub outcome: Result<Vec<SubtaskSpec>, String>,
    /// What it returned, when it computed its task (already checked).
    pub output: Output,
    /// The display name it set, if any.
    pub display: Option<String>,
    /// What it logged (captured stdout and stderr included).
    pub logs: Vec<LogEntry>,
    /// Its trace spans.
    pub spans: Vec<SpanEntry>,
    /// The attempt was interrupted by a forced cancel: it fails without
    /// using a retry.
    pub canceled: bool,
    /// The task marked its failure permanent: it fails with no retry.
    pub permanent: bool,
    /// Progress it reported: (label, added total, added done).
    pub progress: Vec<(String, u64, u64)>,
    /// What it used, as its sandbox measured it (none when it never ran).
    pub usage: Option<crate::model::Usage>,
}

/// Answers to the reports of one batch, in order.
pub type Reported = Vec<Result<(), Error>>;

pub(crate) enum Command {
    Submit(JobSpec, oneshot::Sender<Result<Submitted, Error>>),
    Claim(queue::Waiter),
    Report(Vec<Report>, oneshot::Sender<Result<Reported, Error>>),
    Release(Vec<(TaskKey, u64)>, oneshot::Sender<Result<(), Error>>),
    Extend(TaskKey, u64, oneshot::Sender<Result<Duration, Error>>),
    Cancel(JobId, oneshot::Sender<Result<(), Error>>),
    Delete(JobId, oneshot::Sender<Result<(), Error>>),
    Retry(JobId, oneshot::Sender<Result<Retried, Error>>),
    Automation(AutomationOp, oneshot::Sender<Result<AutomationChanged, Error>>),
    /// Ends the writer after its group ([`Scheduler::close`]).
    Close,
}

/// Scheduler settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a lease lasts without renewal.
    pub lease_ttl: Duration,
    /// Attempts a task may lose with its runner before it fails.
    pub max_lost_attempts: u32,
    /// Where accepted attempts are sent for trace export, if anywhere.
    pub finished: Option<FinishedSender>,
    /// The clock schedules run by.
    pub clock: Clock,
    /// What happens to firings missed while the host was down.
    pub missed: Missed,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            lease_ttl: Duration::from_secs(30),
            max_lost_attempts: 10,
            finished: None,
            clock: Clock::system(),
            missed: Missed::Once,
        }
    }
}

/// What the writer has done since the host started.
#[derive(Debug, Default)]
pub struct Stats {
    groups: AtomicU64,
    apply_us: AtomicU64,
    longest_us: AtomicU64,
}

/// A reading of [`Stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsView {
    /// Groups applied.
    pub groups: u64,
    /// Time spent applying them, in µs (from the group's first command to
    /// its hand-off to the log, not waiting for the sync).
    pub apply_us: u64,
    /// The longest one, in µs.
    pub longest_us: u64,
}

impl Stats {
    fn group_applied(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.groups.fetch_add(1, Ordering::Relaxed);
        self.apply_us.fetch_add(us, Ordering::Relaxed);
        self.longest_us.fetch_max(us, Ordering::Relaxed);
    }

    /// The current figures.
    pub fn view(&self) -> StatsView {
        StatsView {
            groups: self.groups.load(Ordering::Relaxed),
            apply_us: self.apply_us.load(Ordering::Relaxed),
            longest_us: self.longest_us.load(Ordering::Relaxed),
        }
    }
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    // A panic while holding the lock leaves a consistent value: every
    // update is a single insert or remove.
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// A handle to the scheduler; cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    tx: mpsc::UnboundedSender<Command>,
    registry: Arc<RwLock<Registry>>,
    clusters: Arc<RwLock<Clusters>>,
    /// The writer holds the sender: its receivers end when the writer does.
    events: tokio::sync::broadcast::WeakSender<JobId>,
    stats: Arc<Stats>,
    /// Counts changes to the registry and the clusters (what remote runners
    /// keep a copy of).
    config: Arc<AtomicU64>,
    /// Room for commands waiting for an answer ([`MAX_WAITING`]).
    waiting: Arc<tokio::sync::Semaphore>,
    /// The clock schedules run by (shared with the writer).
    clock: Clock,
}

/// Commands sent through [`Scheduler::call`] (requests of the API and of
/// remote runners) waiting for the writer at once; one more is refused with
/// [`Error::Busy`], so a flood cannot grow the writer's queue without bound.
/// (In-process runners' claims and reports are bounded by the runner count.)
pub const MAX_WAITING: usize = 16_384;

impl Scheduler {
    /// Loads the registry, re-queues tasks that were running when the host
    /// stopped, and starts the writer.
    pub async fn start(store: Store, settings: Settings) -> Result<Self, Error> {
        let mut registry = Registry::default();
        for (task_type, digest) in store.registry()? {
            registry.register(&task_type, digest);
        }
        for module in store.modules()? {
            registry.set_limits(module.digest, module.limits.clone());
        }
        let registry = Arc::new(RwLock::new(registry));
        let mut clusters: Clusters =
            store.clusters()?.into_iter().map(|c| (c.slug, Arc::new(c.limits))).collect();
        clusters.entry(DEFAULT_CLUSTER.to_owned()).or_default();
        let clusters = Arc::new(RwLock::new(clusters));
        let (tx, rx) = mpsc::unbounded_channel();
        let (events, _) = tokio::sync::broadcast::channel(EVENT_BUFFER);
        let stats = Arc::new(Stats::default());
        let clock = settings.clock.clone();
        let shared = writer::Shared { registry: registry.clone(), clusters: clusters.clone() };
        let weak_events = events.downgrade();
        let writer = writer::Writer::recover(store, shared, settings, events, stats.clone()).await?;
        tokio::spawn(writer.run(rx, tx.downgrade()));
        let waiting = Arc::new(tokio::sync::Semaphore::new(MAX_WAITING));
        let config = Arc::new(AtomicU64::new(1));
        Ok(Scheduler { tx, registry, clusters, events: weak_events, stats, config, waiting, clock })
    }

    /// What the writer has done since the host started.
    pub fn stats(&self) -> StatsView {
        self.stats.view()
    }

    /// Whether a registered implementation can run `task_type`.
    pub fn resolves(&self, task_type: &TaskType) -> bool {
        read(&self.registry).resolve(task_type).is_some()
    }

    /// Every registered task type with its module, sorted by name and version.
    pub fn task_types(&self) -> Vec<(TaskType, Digest)> {
        read(&self.registry).entries()
    }

    /// Whether a subtask of `task_type` (on `cluster`, if given) may be
    /// submitted; `Err` is the message the guest receives.
    pub fn check_subtask(&self, task_type: &TaskType, cluster: Option<&str>) -> Result<(), String> {
        if let Some(c) = cluster {
            crate::model::check_cluster(c)?;
            if !self.has_cluster(c) {
                return Err(format!("unknown cluster {c}: create it first (POST /v1/clusters)"));
            }
        }
        if self.resolves(task_type) {
            Ok(())
        } else {
            Err(format!("unknown task type {task_type}: no registered implementation can run it"))
        }
    }

    /// Ids of jobs as they change (each applied group sends the jobs it
    /// changed). A receiver that falls behind gets `Lagged` and should read
    /// the current state. Once the writer has ended (the scheduler was
    /// closed), the receiver answers `Closed`.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<JobId> {
        match self.events.upgrade() {
            Some(events) => events.subscribe(),
            None => tokio::sync::broadcast::channel(1).1,
        }
    }

    /// The version of the registry and the clusters: it changes whenever
    /// either does.
    pub fn config_version(&self) -> u64 {
        self.config.load(Ordering::Acquire)
    }

    /// Every existing cluster, sorted.
    pub fn cluster_slugs(&self) -> Vec<String> {
        let mut slugs: Vec<String> = read(&self.clusters).keys().cloned().collect();
        slugs.sort();
        slugs
    }

    fn changed(&self) {
        self.config.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether cluster `slug` exists.
    pub fn has_cluster(&self, slug: &str) -> bool {
        read(&self.clusters).contains_key(slug)
    }

    /// Records that `cluster` exists with its concurrency limits (after it
    /// was stored, also when its limits changed).
    pub fn add_cluster(&self, cluster: &crate::model::Cluster) {
        write(&self.clusters).insert(cluster.slug.clone(), Arc::new(cluster.limits.clone()));
        self.changed();
    }

    /// Records that cluster `slug` is gone (before it is deleted).
    pub fn remove_cluster(&self, slug: &str) {
        write(&self.clusters).remove(slug);
        self.changed();
    }

    /// Makes the task types of a stored module runnable.
    pub fn register(&self, module: &ModuleInfo) {
        let mut registry = write(&self.registry);
        for t in &module.task_types {
            registry.register(t, module.digest);
        }
        registry.set_limits(module.digest, module.limits.clone());
        drop(registry);
        self.changed();
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, Error>>) -> Command,
    ) -> Result<T, Error> {
        let _seat = self.waiting.try_acquire().map_err(|_| Error::Busy(MAX_WAITING))?;
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Creates a job; answers once it is on disk.
    pub async fn submit(&self, spec: JobSpec) -> Result<Submitted, Error> {
        self.call(|tx| Command::Submit(spec, tx)).await
    }

    /// Waits for a ready task of `cluster` and starts it.
    pub async fn claim(&self, cluster: &str) -> Result<Assignment, Error> {
        let mut batch = self.claim_batch(cluster, 1).await?;
        batch.pop().ok_or(Error::Closed)
    }

    /// Waits for ready tasks of `cluster` and starts between one and `max`
    /// of them (fewer when other runners wait too).
    pub async fn claim_batch(&self, cluster: &str, max: usize) -> Result<Vec<Assignment>, Error> {
        self.claim_with(cluster, max, true).await
    }

    /// Starts up to `max` ready tasks of `cluster`; answers at once, with
    /// nothing when none is ready.
    pub async fn try_claim_batch(&self, cluster: &str, max: usize) -> Result<Vec<Assignment>, Error> {
        self.claim_with(cluster, max, false).await
    }

    async fn claim_with(&self, cluster: &str, max: usize, wait: bool) -> Result<Vec<Assignment>, Error> {
        let max = max.clamp(1, MAX_CLAIM_BATCH);
        let (tx, mut rx) = oneshot::channel();
        let waiter = queue::Waiter { cluster: cluster.to_owned(), max, wait, tx };
        self.tx.send(Command::Claim(waiter)).map_err(|_| Error::Closed)?;
        // When tasks come one after another the answer comes within
        // microseconds: look for it briefly before this thread sleeps
        // (waking a sleeping thread costs tens of µs on a VM), yielding to
        // the caller's runtime between looks.
        let until = std::time::Instant::now() + SPIN;
        while std::time::Instant::now() < until {
            match rx.try_recv() {
                Ok(answer) => return answer,
                Err(oneshot::error::TryRecvError::Closed) => return Err(Error::Closed),
                Err(oneshot::error::TryRecvError::Empty) => tokio::task::yield_now().await,
            }
        }
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Records the outcome of an attempt; answers once it is on disk.
    pub async fn report(&self, report: Report) -> Result<(), Error> {
        let mut answers = self.report_batch(vec![report]).await?;
        answers.pop().unwrap_or(Err(Error::Closed))
    }

    /// Records the outcomes of several attempts in one group; answers each
    /// (in order) once all are on disk.
    pub async fn report_batch(&self, reports: Vec<Report>) -> Result<Reported, Error> {
        self.call(|tx| Command::Report(reports, tx)).await
    }

    /// Records the outcomes of several attempts in one group without waiting
    /// for the answers; the writer logs the reports it refuses.
    pub fn report_detached(&self, reports: Vec<Report>) -> Result<(), Error> {
        self.tx.send(Command::Report(reports, oneshot::channel().0)).map_err(|_| Error::Closed)
    }

    /// Hands back claimed attempts that never started: their tasks are queued
    /// again without using a retry or counting as lost.
    pub async fn release(&self, attempts: Vec<(TaskKey, u64)>) -> Result<(), Error> {
        self.call(|tx| Command::Release(attempts, tx)).await
    }

    /// Extends the lease `lease` of a running attempt; answers the new
    /// lease length.
    pub async fn extend(&self, key: TaskKey, lease: u64) -> Result<Duration, Error> {
        self.call(|tx| Command::Extend(key, lease, tx)).await
    }

    /// Cancels a job: its queued tasks no longer start.
    pub async fn cancel(&self, job: JobId) -> Result<(), Error> {
        self.call(|tx| Command::Cancel(job, tx)).await
    }

    /// Deletes a job that has ended, with its tasks, logs and spans.
    pub async fn delete(&self, job: JobId) -> Result<(), Error> {
        self.call(|tx| Command::Delete(job, tx)).await
    }

    /// Retries a failed or canceled job.
    pub async fn retry(&self, job: JobId) -> Result<Retried, Error> {
        self.call(|tx| Command::Retry(job, tx)).await
    }

    /// Ends the writer once the commands sent before are applied (a host
    /// that lets its store go): every later call, and every claim still
    /// waiting, answers [`Error::Closed`], so the runners end.
    pub fn close(&self) {
        let _ = self.tx.send(Command::Close);
    }
}

#[cfg(test)]
mod tests;
