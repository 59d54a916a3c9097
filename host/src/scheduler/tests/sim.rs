//! An in-process scheduler on a temporary store, driven the way runners
//! drive it: claim, report success with subtasks or failure, hand back.

use serde_json::{Value, json};

use crate::model::{Digest, Job, JobId, ModuleInfo, SubtaskSpec, Task, TaskState, TaskType};
use crate::scheduler::{Assignment, Error, JobSpec, Report, Scheduler, Settings};
use crate::store::Store;

/// The one task type every test task has.
pub const TYPE: &str = "T";

/// A scheduler and its store, on a directory removed when dropped.
pub struct Sim {
    pub scheduler: Scheduler,
    pub store: Store,
    _dir: tempfile::TempDir,
}

impl Sim {
    pub async fn start(settings: Settings) -> Sim {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let scheduler = scheduler_on(&store, settings).await;
        Sim { scheduler, store, _dir: dir }
    }

    /// Replaces the scheduler with a new one on the same store, as a host
    /// restart does: the new one rebuilds its queues and waiting tasks from
    /// the store, and attempts started by the old one are lost.
    pub async fn restart(&mut self, settings: Settings) {
        // Every command sent so far has been answered (each call awaits its
        // answer), so the old writer is idle and ends when its channel closes.
        drop(std::mem::replace(&mut self.scheduler, scheduler_on(&self.store, settings).await));
    }

    pub async fn submit(&self, input: Value, max_retries: u32) -> JobId {
        self.submit_with_priority(input, max_retries, 0).await
    }

    /// [`Sim::submit`] with a job priority.
    pub async fn submit_with_priority(&self, input: Value, max_retries: u32, priority: i8) -> JobId {
        let spec = JobSpec {
            name: "sim".into(),
            task_type: TaskType::parse(TYPE).unwrap(),
            input: input.to_string(),
            cluster: "default".into(),
            max_retries,
            idempotency_key: None,
            traceparent: None,
            backoff: None,
            not_before_ms: None,
            automation: None,
            priority,
            more_roots: Vec::new(),
        };
        self.scheduler.submit(spec).await.unwrap().job.id
    }

    /// Starts up to `max` ready tasks; answers at once.
    pub async fn claim(&self, max: usize) -> Vec<Assignment> {
        self.scheduler.try_claim_batch("default", max).await.unwrap()
    }

    /// Claims, and reports success with no subtasks, until nothing is
    /// ready; answers how many ran.
    pub async fn run_leaves(&self) -> usize {
        let mut ran = 0;
        loop {
            let batch = self.claim(64).await;
            if batch.is_empty() {
                return ran;
            }
            ran += batch.len();
            let reports = batch.iter().map(|a| report(a, Ok(Vec::new()))).collect();
            for answer in self.scheduler.report_batch(reports).await.unwrap() {
                answer.unwrap();
            }
        }
    }

    pub async fn succeed(&self, a: &Assignment, subtasks: Vec<SubtaskSpec>) -> Result<(), Error> {
        self.scheduler.report(report(a, Ok(subtasks))).await
    }

    pub async fn fail(&self, a: &Assignment, message: &str) -> Result<(), Error> {
        self.scheduler.report(report(a, Err(message.into()))).await
    }

    pub fn job(&self, id: JobId) -> Job {
        self.store.job(id).unwrap().unwrap()
    }

    pub fn tasks(&self, id: JobId) -> Vec<Task> {
        self.store.tasks_of(id).unwrap()
    }

    /// How many tasks of job `id` are in `state`.
    pub fn count(&self, id: JobId, state: TaskState) -> usize {
        self.tasks(id).iter().filter(|t| t.status.state == state).count()
    }
}

/// A scheduler on `store` that knows task type [`TYPE`].
async fn scheduler_on(store: &Store, settings: Settings) -> Scheduler {
    let scheduler = Scheduler::start(store.clone(), settings).await.unwrap();
    scheduler.register(&ModuleInfo {
        digest: Digest([7; 32]),
        size: 0,
        task_types: vec![TaskType::parse(TYPE).unwrap()],
        uploaded_ms: 0,
        limits: Default::default(),
    });
    scheduler
}

pub fn report(a: &Assignment, outcome: Result<Vec<SubtaskSpec>, String>) -> Report {
    Report {
        key: a.key,
        attempt: a.attempt,
        lease: a.lease,
        outcome,
        output: crate::model::Output::None,
        display: None,
        logs: Vec::new(),
        spans: Vec::new(),
        canceled: false,
        permanent: false,
        progress: Vec::new(),
        usage: None,
    }
}

/// A subtask of type [`TYPE`] with input `input`, depending on `deps`.
pub fn spec(input: Value, deps: Vec<u32>) -> SubtaskSpec {
    SubtaskSpec {
        task_type: TaskType::parse(TYPE).unwrap(),
        input: input.to_string(),
        depends_on: deps,
        max_retries: 0,
        cluster: None,
        optional: false,
        backoff: None,
    }
}

/// [`spec`], submitted as optional.
pub fn optional(input: Value, deps: Vec<u32>) -> SubtaskSpec {
    SubtaskSpec { optional: true, ..spec(input, deps) }
}

/// `n` leaves and one more subtask depending on all of them.
pub fn fan_in(n: u32) -> Vec<SubtaskSpec> {
    let mut specs: Vec<SubtaskSpec> = (0..n).map(|i| spec(json!({"leaf": i}), vec![])).collect();
    specs.push(spec(json!("reducer"), (0..n).collect()));
    specs
}

/// `n` subtasks, each depending on the `window` before it.
pub fn dense(n: u32, window: u32) -> Vec<SubtaskSpec> {
    (0..n).map(|i| spec(json!({"dense": i}), (i.saturating_sub(window)..i).collect())).collect()
}

/// With [`crate::scheduler::MAX_WAITING`] commands waiting, one more is
/// refused as busy instead of queued; once they are answered it is served.
#[tokio::test]
async fn commands_past_the_waiting_bound_are_refused_as_busy() {
    let sim = Sim::start(Settings::default()).await;
    let held =
        sim.scheduler.waiting.clone().try_acquire_many_owned(crate::scheduler::MAX_WAITING as u32).unwrap();
    let busy = sim.scheduler.cancel(JobId::new()).await.unwrap_err();
    assert!(matches!(busy, Error::Busy(n) if n == crate::scheduler::MAX_WAITING), "{busy}");
    drop(held);
    let served = sim.scheduler.cancel(JobId::new()).await.unwrap_err();
    assert!(matches!(served, Error::UnknownJob(_)), "{served}");
}

/// A closed scheduler ends its writer: a claim waiting for work and every
/// later call answer `Closed`, and the job changes' receivers end (the
/// runners and event streams of a host that let its store go end on it).
#[tokio::test]
async fn a_closed_scheduler_answers_closed_to_waiting_claims_and_later_calls() {
    let sim = Sim::start(Settings::default()).await;
    let scheduler = sim.scheduler.clone();
    let mut changes = sim.scheduler.subscribe();
    let waiting = tokio::spawn(async move { scheduler.claim("default").await });
    sim.scheduler.close();
    let claimed = waiting.await.unwrap();
    assert!(matches!(claimed, Err(Error::Closed)), "{claimed:?}");
    let ended = changes.recv().await;
    assert!(
        matches!(ended, Err(tokio::sync::broadcast::error::RecvError::Closed)),
        "event streams end: {ended:?}"
    );
    assert!(sim.scheduler.subscribe().try_recv().is_err());
    let later = sim.scheduler.cancel(JobId::new()).await;
    assert!(matches!(later, Err(Error::Closed)), "{later:?}");
}
