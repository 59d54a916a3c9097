//! The single writer: applies commands in groups, commits each group with one
//! flush, then answers callers and hands out ready tasks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

use super::graph::{self, Ready};
use super::observe::Observer;
use super::queue::Queues;
use super::{Assignment, Command, Error, Registry, Settings};
use crate::model::{JobId, TaskKey, TaskState};
use crate::store::{Store, Unit};

/// Most commands applied in one group commit.
const MAX_GROUP: usize = 4096;

/// An answer to send once the group it belongs to is committed.
type Deferred = Box<dyn FnOnce(Result<(), &Error>) + Send>;

fn defer<T: Send + 'static>(tx: oneshot::Sender<Result<T, Error>>, value: Result<T, Error>) -> Deferred {
    Box::new(move |committed| {
        let _ = tx.send(committed.map_err(Clone::clone).and(value));
    })
}

pub struct Writer {
    store: Store,
    registry: Arc<RwLock<Registry>>,
    settings: Settings,
    queues: Queues,
    /// Running attempts and when their leases expire.
    leases: HashMap<TaskKey, Lease>,
    /// Commands the writer sends itself (hand-backs of unclaimed batches).
    loopback: Option<mpsc::WeakUnboundedSender<Command>>,
    /// Where changed jobs are announced.
    events: broadcast::Sender<JobId>,
    /// Where accepted attempts go for trace export, if anywhere.
    observer: Option<Observer>,
}

#[derive(Clone, Copy)]
struct Lease {
    attempt: u32,
    expires: Instant,
}

impl Writer {
    /// Rebuilds the ready queues from the store and re-queues every task that
    /// was running when the host stopped.
    pub async fn recover(
        store: Store,
        registry: Arc<RwLock<Registry>>,
        settings: Settings,
        events: broadcast::Sender<JobId>,
    ) -> Result<Self, Error> {
        let mut queues = Queues::default();
        let mut lost = Vec::new();
        for (cluster, key, running) in store.live_tasks()? {
            if running {
                lost.push(key);
            } else {
                queues.push(&cluster, key);
            }
        }
        let mut unit = store.unit();
        let mut ready = Vec::new();
        for key in &lost {
            ready.extend(graph::requeue_lost(&mut unit, *key, None, settings.max_lost_attempts)?);
        }
        store.commit(unit).await?;
        for (cluster, key) in ready {
            queues.push(&cluster, key);
        }
        if !lost.is_empty() {
            tracing::info!(tasks = lost.len(), "re-queued tasks that were running when the host stopped");
        }
        let observer = settings.finished.clone().map(Observer::new);
        Ok(Writer {
            store,
            registry,
            settings,
            queues,
            leases: HashMap::new(),
            loopback: None,
            events,
            observer,
        })
    }

    /// Applies commands in groups until every handle is dropped. Each group is
    /// one atomic batch. Assignments are handed out as soon as their group is
    /// applied (a lost start is recovered like any lost attempt); every other
    /// answer waits for the flusher, which makes all groups applied so far
    /// durable with one flush while the writer goes on with the next ones.
    pub async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Command>,
        loopback: mpsc::WeakUnboundedSender<Command>,
    ) {
        self.loopback = Some(loopback);
        let broken = Arc::new(AtomicBool::new(false));
        let (flush_tx, flush_rx) = mpsc::unbounded_channel();
        tokio::spawn(flusher(self.store.clone(), flush_rx, broken.clone()));
        let mut group = Vec::with_capacity(64);
        loop {
            let next_expiry = self.leases.values().map(|l| l.expires).min();
            tokio::select! {
                n = rx.recv_many(&mut group, MAX_GROUP) => if n == 0 { return },
                () = sleep_until(next_expiry) => {}
            }
            if broken.load(Ordering::Acquire) {
                return;
            }
            // Back-pressure: while the store's checkpoint is far behind, wait.
            self.store.room().await;
            let mut unit = self.store.unit();
            let (mut durable, mut early) = (Vec::with_capacity(group.len()), Vec::new());
            for command in group.drain(..) {
                durable.extend(self.apply(&mut unit, command));
            }
            self.expire_leases(&mut unit);
            self.dispatch(&mut unit, &mut early);
            let changed = unit.dirty_jobs();
            if let Err(e) = self.store.apply(unit) {
                let e = Error::from(e);
                tracing::error!(error = %e, "applying a group failed; the scheduler stops so a restart can recover");
                for answer in early.into_iter().chain(durable) {
                    answer(Err(&e));
                }
                return;
            }
            for answer in early {
                answer(Ok(()));
            }
            if let Some(observer) = &mut self.observer {
                observer.publish();
            }
            for job in changed {
                let _ = self.events.send(job);
            }
            if !durable.is_empty() {
                let _ = flush_tx.send(durable);
            }
        }
    }

    fn apply(&mut self, unit: &mut Unit, command: Command) -> Option<Deferred> {
        Some(match command {
            Command::Submit(spec, tx) => {
                let result = self.submit(unit, spec);
                defer(tx, result)
            }
            Command::Claim(waiter) => {
                self.queues.wait(waiter);
                return None;
            }
            Command::Report(reports, tx) => {
                let answers = reports.into_iter().map(|r| self.report(unit, r)).collect();
                defer(tx, Ok(answers))
            }
            Command::Release(attempts, tx) => {
                for (key, attempt) in attempts {
                    self.release(unit, key, attempt);
                }
                defer(tx, Ok(()))
            }
            Command::Extend(key, attempt, tx) => defer(tx, self.extend(key, attempt)),
            Command::Cancel(job, tx) => defer(tx, graph::cancel(unit, job)),
            Command::Delete(job, tx) => defer(tx, graph::delete(unit, job)),
            Command::Retry(job, tx) => {
                let result = graph::retry(unit, job).map(|(requeued, ready)| {
                    let retried = super::Retried { requeued, ready: ready.len() as u64 };
                    self.enqueue(ready);
                    retried
                });
                defer(tx, result)
            }
        })
    }

    fn report(&mut self, unit: &mut Unit, report: super::Report) -> Result<(), Error> {
        let key = report.key;
        let seen = self.observer.as_ref().and_then(|_| Observer::capture(unit, &report));
        let ready = graph::finish(unit, report)?;
        if let (Some(observer), Some(seen)) = (&mut self.observer, seen) {
            observer.accepted(seen);
        }
        // A refused report leaves the attempt running; its lease still
        // expires if no acceptable report follows.
        self.leases.remove(&key);
        self.enqueue(ready);
        Ok(())
    }

    /// Queues an unstarted attempt's task again, at the front of its queue.
    fn release(&mut self, unit: &mut Unit, key: TaskKey, attempt: u32) {
        if self.leases.get(&key).is_none_or(|l| l.attempt != attempt) {
            return;
        }
        self.leases.remove(&key);
        match graph::release(unit, key, attempt) {
            Ok(Some((cluster, key))) => self.queues.push_front(&cluster, key),
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, task = ?key, "could not release an attempt"),
        }
    }

    fn submit(&mut self, unit: &mut Unit, spec: super::JobSpec) -> Result<super::Submitted, Error> {
        // A key whose job was deleted since makes a new job.
        if let Some(k) = &spec.idempotency_key
            && let Some(id) = unit.idempotent_job(k)?
            && let Some(job) = unit.job_view(id)?
        {
            return Ok(super::Submitted { job: job.clone(), created: false });
        }
        let (job, (cluster, key)) = graph::submit_job(unit, spec);
        self.queues.push(&cluster, key);
        Ok(super::Submitted { job, created: true })
    }

    fn extend(&mut self, key: TaskKey, attempt: u32) -> Result<Duration, Error> {
        match self.leases.get_mut(&key) {
            Some(lease) if lease.attempt == attempt => {
                lease.expires = Instant::now() + self.settings.lease_ttl;
                Ok(self.settings.lease_ttl)
            }
            _ => Err(Error::StaleAttempt { key, attempt }),
        }
    }

    /// Re-queues (or, past the budget, fails) attempts whose lease expired.
    fn expire_leases(&mut self, unit: &mut Unit) {
        let now = Instant::now();
        let expired: Vec<(TaskKey, Lease)> =
            self.leases.iter().filter(|(_, l)| l.expires <= now).map(|(k, l)| (*k, *l)).collect();
        for (key, lease) in expired {
            self.leases.remove(&key);
            tracing::warn!(task = %key.task, attempt = lease.attempt, "lease expired; the attempt is lost");
            match graph::requeue_lost(unit, key, Some(lease.attempt), self.settings.max_lost_attempts) {
                Ok(ready) => self.enqueue(ready.into_iter().collect()),
                Err(e) => tracing::error!(error = %e, task = ?key, "could not re-queue a lost attempt"),
            }
        }
    }

    fn enqueue(&mut self, ready: Vec<Ready>) {
        for (cluster, key) in ready {
            self.queues.push(&cluster, key);
        }
    }

    /// Hands ready tasks to waiting runners, skipping tasks of halted jobs.
    fn dispatch(&mut self, unit: &mut Unit, answers: &mut Vec<Deferred>) {
        for cluster in self.queues.matchable() {
            while let Some(waiter) = self.queues.pop_waiter(&cluster) {
                let share = self.queues.share(&cluster, waiter.max);
                let batch = self.startable(unit, &cluster, share);
                if batch.is_empty() {
                    self.queues.wait_first(waiter);
                    break;
                }
                answers.push(self.hand_over(waiter, batch));
            }
        }
    }

    /// Answers a claim; if the claimer has given up meanwhile (a long-poll
    /// timed out), its tasks are handed back at once instead of waiting for
    /// their leases to expire.
    fn hand_over(&self, waiter: super::queue::Waiter, batch: Vec<Assignment>) -> Deferred {
        let loopback = self.loopback.clone();
        Box::new(move |committed| {
            let attempts: Vec<(TaskKey, u32)> = batch.iter().map(|a| (a.key, a.attempt)).collect();
            let answer = committed.map_err(Clone::clone).map(|()| batch);
            if waiter.tx.send(answer).is_err()
                && let Some(tx) = loopback.and_then(|l| l.upgrade())
            {
                let _ = tx.send(Command::Release(attempts, oneshot::channel().0));
            }
        })
    }

    /// Pops ready tasks of `cluster` until `n` have started or none is left.
    fn startable(&mut self, unit: &mut Unit, cluster: &str, n: usize) -> Vec<Assignment> {
        let mut batch = Vec::with_capacity(n);
        while batch.len() < n
            && let Some(key) = self.queues.pop_ready(cluster)
        {
            match self.start(unit, key) {
                Ok(Some(assignment)) => batch.push(assignment),
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, task = ?key, "could not start a ready task"),
            }
        }
        batch
    }

    /// Starts `key` if its job is not halted and an implementation exists.
    fn start(&mut self, unit: &mut Unit, key: TaskKey) -> Result<Option<Assignment>, Error> {
        // A task of a deleted job may still be in the queue: skip it.
        let Some(job) = unit.job_view(key.job)? else { return Ok(None) };
        if job.state().is_halted() {
            return Ok(None);
        }
        let Some(task) = unit.task_view(key)? else { return Ok(None) };
        if task.state != TaskState::Queued {
            return Ok(None);
        }
        let requested = task.task_type.clone();
        let resolved = {
            let registry = self.registry.read().map_err(|_| Error::Closed)?;
            registry.resolve(&requested).map(|(v, d)| (v, d, registry.limits(&d)))
        };
        let Some((version, module, limits)) = resolved else {
            let message = format!("no registered implementation can run {requested}");
            graph::fail_unrunnable(unit, key, message)?;
            return Ok(None);
        };
        let task = graph::start(unit, key, version)?;
        let expires = Instant::now() + self.settings.lease_ttl;
        self.leases.insert(key, Lease { attempt: task.attempt, expires });
        Ok(Some(Assignment {
            key,
            task_type: crate::model::TaskType { name: requested.name, version },
            module,
            limits,
            input: task.input,
            cluster: task.cluster,
            attempt: task.attempt,
            lease_ttl: self.settings.lease_ttl,
        }))
    }
}

/// Makes applied groups durable: one flush for every group applied while the
/// previous flush ran, then their answers.
async fn flusher(store: Store, mut rx: mpsc::UnboundedReceiver<Vec<Deferred>>, broken: Arc<AtomicBool>) {
    let mut groups = Vec::new();
    while rx.recv_many(&mut groups, MAX_GROUP).await > 0 {
        let flushed = store.flush().await.map_err(Error::from);
        if let Err(e) = &flushed {
            tracing::error!(error = %e, "flush failed; the scheduler stops so a restart can recover");
            broken.store(true, Ordering::Release);
        }
        for answer in groups.drain(..).flatten() {
            answer(flushed.as_ref().map(|_| ()));
        }
    }
}

/// Sleeps until `deadline`, or forever when there is none.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
