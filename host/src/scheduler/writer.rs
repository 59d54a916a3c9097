//! The single writer: applies commands in groups, hands out ready tasks as
//! soon as a group is applied, and passes every other answer to the
//! flusher, which sends it once a sync made the group durable.
//!
//! No group does unbounded work: a report with a large subtask set is
//! committed in chunks, one per group ([`Commit`]), with other commands
//! applied in between. Leases expire only after every command already
//! queued (renewals among them) has been applied, so time the writer spent
//! busy never counts against a lease.

use std::collections::VecDeque;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustc_hash::FxHashSet as HashSet;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

use super::automations::Automations;
use super::children::{Commit, Step};
use super::delays::Delays;
use super::gates::{Gates, Group};
use super::graph::{self, Finished, Ready};
use super::lease::Leases;
use super::observe::{FinishedAttempt, Observer};
use super::queue::Queues;
use super::rebuild::{Found, priority_of, rebuild};
use super::waiting::Waiting;
use super::{Assignment, Command, Error, Registry, Settings, Stats};
use crate::model::{JobId, TaskDef, TaskKey, TaskState, TaskType};
use crate::store::{Store, Unit};

/// Most commands applied in one group commit.
const MAX_GROUP: usize = 4096;

/// Bytes past which a group takes no more commands (checked every 16, each
/// under the 4 MiB request bound): a group is one log record, and every
/// record must stay well within what replay reads back.
const GROUP_BYTES: usize = 64 << 20;

/// Longest a write nobody waits for stays unsynced.
const LAZY_SYNC: Duration = Duration::from_millis(2);

/// A gap this long after a command ends the group being collected.
const QUIET: Duration = Duration::from_micros(5);

/// An answer to send once the group it belongs to is committed.
type Deferred = Box<dyn FnOnce(Result<(), &Error>) + Send>;

fn defer<T: Send + 'static>(tx: oneshot::Sender<Result<T, Error>>, value: Result<T, Error>) -> Deferred {
    Box::new(move |committed| {
        let _ = tx.send(committed.map_err(Clone::clone).and(value));
    })
}

/// A commit in progress and what waits for it.
struct Committing {
    commit: Box<Commit>,
    /// Answers sent once the commit is durable.
    waiting: Vec<Deferred>,
    /// What the trace exporter gets of the attempt.
    seen: Option<FinishedAttempt>,
}

/// What the writer shares with the scheduler's handles.
pub struct Shared {
    /// Which module implements which task type.
    pub registry: Arc<RwLock<Registry>>,
    /// The clusters and their concurrency limits.
    pub clusters: Arc<RwLock<super::Clusters>>,
}

pub struct Writer {
    store: Store,
    registry: Arc<RwLock<Registry>>,
    clusters: Arc<RwLock<super::Clusters>>,
    /// Running attempts per limited group, and the tasks waiting for room.
    gates: Gates,
    settings: Settings,
    queues: Queues,
    /// Running attempts and when their leases expire.
    leases: Leases,
    /// Unmet dependencies of the tasks that wait for some.
    waiting: Waiting,
    /// Tasks waiting out a retry backoff.
    delays: Delays,
    /// Automations and their next firings.
    automations: Automations,
    /// Large commits, oldest first; one chunk is written per group.
    commits: VecDeque<Committing>,
    /// Tasks whose report is being committed (a repeat is refused).
    committing: HashSet<TaskKey>,
    /// Commands the writer sends itself (hand-backs of unclaimed batches).
    loopback: Option<mpsc::WeakUnboundedSender<Command>>,
    /// Where changed jobs are announced.
    events: broadcast::Sender<JobId>,
    /// Where accepted attempts go for trace export, if anywhere.
    observer: Option<Observer>,
    stats: Arc<Stats>,
    /// Asked to end after the current group.
    closed: bool,
}

impl Writer {
    /// Rebuilds the ready queues from the store and re-queues every task that
    /// was running when the host stopped.
    pub async fn recover(
        store: Store,
        shared: Shared,
        settings: Settings,
        events: broadcast::Sender<JobId>,
        stats: Arc<Stats>,
    ) -> Result<Self, Error> {
        let (mut queues, mut waiting, mut delays) =
            (Queues::default(), Waiting::default(), Delays::default());
        let mut unit = store.unit();
        let mut found = Found { queues: &mut queues, waiting: &mut waiting, delays: &mut delays };
        let ready = rebuild(&store, &mut unit, &mut found, settings.max_lost_attempts)?;
        let automations = Automations::load(&store, &mut unit, settings.clock.now_ms(), settings.missed)?;
        store.commit(unit).await?;
        for (cluster, key, priority) in ready {
            queues.push(&cluster, key, priority);
        }
        let observer = settings.finished.clone().map(Observer::new);
        let leases = Leases::new(settings.lease_ttl, store.epoch());
        Ok(Writer {
            store,
            registry: shared.registry,
            clusters: shared.clusters,
            gates: Gates::default(),
            settings,
            queues,
            leases,
            waiting,
            delays,
            automations,
            commits: VecDeque::new(),
            committing: HashSet::default(),
            loopback: None,
            events,
            observer,
            stats,
            closed: false,
        })
    }

    /// Applies commands in groups until every handle is dropped or the
    /// scheduler is closed. Each group is
    /// one atomic batch. Assignments are handed out as soon as their group is
    /// applied (a lost start is recovered like any lost attempt); every other
    /// answer waits for the flusher, which makes all groups applied so far
    /// durable with one sync while the writer goes on with the next ones.
    pub async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Command>,
        loopback: mpsc::WeakUnboundedSender<Command>,
    ) {
        self.loopback = Some(loopback);
        let (flush_tx, flush_rx) = mpsc::unbounded_channel();
        tokio::spawn(flusher(self.store.clone(), flush_rx));
        let mut group = Vec::with_capacity(64);
        // Whether the last group handed tasks out: their reports may come
        // within microseconds.
        let mut handed_out = false;
        loop {
            let next_expiry = earliest(
                earliest(self.leases.next_expiry(), self.delays.next_due()),
                self.automations.next_due(&self.settings.clock),
            );
            // Commands a full group left behind are applied next, at once.
            let busy = !self.commits.is_empty() || !group.is_empty();
            if !receive(&mut rx, &mut group, busy, handed_out, next_expiry).await {
                return;
            }
            // Back-pressure: while the store's checkpoint is far behind, wait.
            self.store.room().await;
            let started = std::time::Instant::now();
            let mut unit = self.store.unit();
            let (mut durable, mut early) = (Vec::with_capacity(group.len()), Vec::new());
            let mut commands = std::mem::take(&mut group).into_iter();
            for (i, command) in commands.by_ref().enumerate() {
                durable.extend(self.apply(&mut unit, command));
                if i % 16 == 15 && unit.pending_bytes() >= GROUP_BYTES {
                    break;
                }
            }
            group.extend(commands);
            self.step_commit(&mut unit, &mut durable);
            self.expire_leases(&mut rx, &mut unit, &mut durable);
            self.end_delays(&mut unit);
            let fired = self.automations.fire_due(&mut unit, self.settings.clock.now_ms());
            self.enqueue(&mut unit, fired);
            self.dispatch(&mut unit, &mut early);
            handed_out = !early.is_empty();
            // Assignments go out before the group is encoded and logged: a
            // report of theirs is applied in a later group, after this one.
            for answer in early {
                answer(Ok(()));
            }
            let changed = unit.dirty_jobs();
            let wrote = match self.store.apply(unit) {
                Ok(wrote) => wrote,
                Err(e) => {
                    // The store is faulted (`store/fault.rs`): every later
                    // group is refused too, until the host exits.
                    let e = Error::from(e);
                    for answer in durable {
                        answer(Err(&e));
                    }
                    if self.closed {
                        return;
                    }
                    continue;
                }
            };
            self.stats.group_applied(started.elapsed());
            if let Some(observer) = &mut self.observer {
                observer.publish();
            }
            for job in changed {
                let _ = self.events.send(job);
            }
            // An empty list asks for a sync nobody waits for.
            if wrote || !durable.is_empty() {
                let _ = flush_tx.send(durable);
            }
            if self.closed {
                return;
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
            Command::Close => {
                self.closed = true;
                return None;
            }
            Command::Report(reports, tx) => {
                let committing = self.commits.len();
                let answers = reports.into_iter().map(|r| self.report(unit, r)).collect();
                // Nobody waits for a detached batch's answer (see `flusher`).
                let detached = tx.is_closed();
                let answer = defer(tx, Ok(answers));
                // A batch that started a commit is answered when its last
                // commit is durable.
                if self.commits.len() > committing
                    && let Some(last) = self.commits.back_mut()
                {
                    last.waiting.push(answer);
                    return None;
                }
                if detached {
                    return None;
                }
                answer
            }
            Command::Release(attempts, tx) => {
                for (key, lease) in attempts {
                    self.release(unit, key, lease);
                }
                defer(tx, Ok(()))
            }
            Command::Extend(key, lease, tx) => {
                let renewed = self.leases.renew(key, lease).ok_or(Error::StaleAttempt { key, lease });
                defer(tx, renewed)
            }
            Command::Cancel(job, tx) => defer(tx, graph::cancel(unit, job)),
            Command::Delete(job, tx) => {
                let deleted = graph::delete(unit, job);
                if deleted.is_ok() {
                    self.waiting.forget_job(job);
                }
                defer(tx, deleted)
            }
            Command::Retry(job, tx) => {
                let result = graph::retry(unit, &self.waiting, job).map(|(requeued, ready)| {
                    let retried = super::Retried { requeued, ready: ready.len() as u64 };
                    self.enqueue(unit, ready);
                    retried
                });
                defer(tx, result)
            }
            Command::Automation(op, tx) => {
                let result = self.automations.apply(unit, op, self.settings.clock.now_ms());
                defer(tx, result)
            }
        })
    }

    fn report(&mut self, unit: &mut Unit, report: super::Report) -> Result<(), Error> {
        let key = report.key;
        if self.committing.contains(&key) {
            return Err(Error::StaleAttempt { key, lease: report.lease });
        }
        let seen = self.observer.as_ref().and_then(|_| Observer::capture(unit, &report));
        let finished = graph::finish(unit, &mut self.waiting, &mut self.delays, report).inspect_err(|e| {
            tracing::warn!(error = %e, task = %key.task, "report refused");
        })?;
        // A refused report leaves the attempt running; its lease still
        // expires if no acceptable report follows.
        self.leases.end(key, None);
        self.attempt_ended(unit, key);
        match finished {
            Finished::Done(ready) => {
                if let (Some(observer), Some(seen)) = (&mut self.observer, seen) {
                    observer.accepted(seen);
                }
                self.enqueue(unit, ready);
            }
            Finished::Committing(commit) => {
                self.committing.insert(key);
                self.commits.push_back(Committing { commit, waiting: Vec::new(), seen });
            }
        }
        Ok(())
    }

    /// Writes the next chunk of the oldest commit; when it completes, its
    /// answers join the group's and its ready tasks are queued.
    fn step_commit(&mut self, unit: &mut Unit, durable: &mut Vec<Deferred>) {
        let Some(Committing { commit, waiting, seen }) = self.commits.pop_front() else { return };
        let key = commit.key;
        match commit.step(unit, &mut self.waiting) {
            Ok(Step::More(commit)) => self.commits.push_front(Committing { commit, waiting, seen }),
            Ok(Step::Done(ready)) => {
                self.committing.remove(&key);
                if let (Some(observer), Some(seen)) = (&mut self.observer, seen) {
                    observer.accepted(seen);
                }
                self.enqueue(unit, ready);
                durable.extend(waiting);
            }
            Err(e) => {
                // The store refused a read: the marker stays, so the next
                // start deletes what was written and re-queues the task.
                tracing::error!(error = %e, task = %key.task, "could not commit a report's subtasks");
                self.committing.remove(&key);
                for answer in waiting {
                    answer(Err(&e));
                }
            }
        }
    }

    /// Queues an unstarted attempt's task again, at the front of its queue.
    fn release(&mut self, unit: &mut Unit, key: TaskKey, lease: u64) {
        if !self.leases.end(key, Some(lease)) {
            return;
        }
        self.attempt_ended(unit, key);
        match graph::release(unit, key, lease) {
            Ok(Some((cluster, key))) => {
                let priority = priority_of(unit, key.job);
                self.queues.push_front(&cluster, key, priority)
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, task = ?key, "could not release an attempt"),
        }
    }

    fn submit(&mut self, unit: &mut Unit, spec: super::JobSpec) -> Result<super::Submitted, Error> {
        // A key whose job was deleted since makes a new job.
        if let Some(k) = &spec.idempotency_key
            && let Some(id) = unit.idempotent_job(k)?
            && let Some(job) = unit.job(id)?
        {
            return Ok(super::Submitted { job: job.clone(), created: false });
        }
        let (job, roots, later) = graph::submit_job(unit, spec);
        for (cluster, key) in roots {
            match later {
                Some(due) => self.delays.add(due, cluster, key),
                None => self.queues.push(&cluster, key, job.priority),
            }
        }
        Ok(super::Submitted { job, created: true })
    }

    /// Re-queues (or, past the budget, fails) attempts whose lease expired.
    /// Every command already queued is applied first: a renewal that waited
    /// behind a busy writer still counts. (If more than a group's worth is
    /// queued, expiry waits for the next group.)
    fn expire_leases(
        &mut self,
        rx: &mut mpsc::UnboundedReceiver<Command>,
        unit: &mut Unit,
        durable: &mut Vec<Deferred>,
    ) {
        let now = Instant::now();
        if !self.leases.any_expired(now) {
            return;
        }
        for _ in 0..MAX_GROUP {
            let Ok(command) = rx.try_recv() else { break };
            durable.extend(self.apply(unit, command));
        }
        if !rx.is_empty() {
            return;
        }
        for (key, lease) in self.leases.take_expired(now) {
            self.attempt_ended(unit, key);
            tracing::warn!(task = %key.task, lease = lease.token, "lease expired; the attempt is lost");
            let budget = self.settings.max_lost_attempts;
            match graph::requeue_lost(unit, &mut self.waiting, key, Some(lease.token), budget) {
                Ok(ready) => self.enqueue(unit, ready),
                Err(e) => tracing::error!(error = %e, task = ?key, "could not re-queue a lost attempt"),
            }
        }
    }

    /// Makes ready the tasks whose backoff is over.
    fn end_delays(&mut self, unit: &mut Unit) {
        for (due, cluster, key) in self.delays.take_due(crate::model::now_ms()) {
            match super::retries::end_delay(unit, key, due) {
                Ok(ready) => self.enqueue(unit, ready.into_iter().collect()),
                Err(e) => {
                    tracing::error!(error = %e, task = ?key, cluster, "could not end a retry's backoff")
                }
            }
        }
    }

    /// An attempt of `key` ended: tasks waiting for room in its
    /// concurrency groups go back to the front of their queues.
    fn attempt_ended(&mut self, unit: &mut Unit, key: TaskKey) {
        let clusters = &self.clusters;
        for (cluster, k) in self.gates.release(key, |c| super::read(clusters).get(c).cloned()) {
            self.queues.push_front(&cluster, k, priority_of(unit, k.job));
        }
    }

    fn enqueue(&mut self, unit: &mut Unit, ready: Vec<Ready>) {
        for (cluster, key) in ready {
            self.queues.push(&cluster, key, priority_of(unit, key.job));
        }
    }

    /// Hands ready tasks to waiting runners, skipping tasks of halted jobs.
    fn dispatch(&mut self, unit: &mut Unit, answers: &mut Vec<Deferred>) {
        for cluster in self.queues.matchable() {
            while let Some(waiter) = self.queues.pop_waiter(&cluster) {
                let share = self.queues.share(&cluster, waiter.max);
                let batch = self.start_ready(unit, &cluster, share);
                if batch.is_empty() {
                    self.queues.wait_first(waiter);
                    break;
                }
                answers.push(self.hand_over(waiter, batch));
            }
        }
        self.queues.answer_impatient();
    }

    /// Answers a claim; if the claimer has given up meanwhile (a long-poll
    /// timed out), its tasks are handed back at once instead of waiting for
    /// their leases to expire.
    fn hand_over(&self, waiter: super::queue::Waiter, batch: Vec<Assignment>) -> Deferred {
        let loopback = self.loopback.clone();
        Box::new(move |committed| {
            let attempts: Vec<(TaskKey, u64)> = batch.iter().map(|a| (a.key, a.lease)).collect();
            let answer = committed.map_err(Clone::clone).map(|()| batch);
            if waiter.tx.send(answer).is_err()
                && let Some(tx) = loopback.and_then(|l| l.upgrade())
            {
                let _ = tx.send(Command::Release(attempts, oneshot::channel().0));
            }
        })
    }

    /// Pops ready tasks of `cluster` and starts them until `n` have started
    /// or none is left.
    fn start_ready(&mut self, unit: &mut Unit, cluster: &str, n: usize) -> Vec<Assignment> {
        let mut batch = Vec::with_capacity(n);
        while batch.len() < n
            && let Some(key) = self.queues.pop_ready(cluster)
        {
            match self.start(unit, key) {
                Ok(Some(assignment)) => batch.push(assignment),
                Ok(None) => {}
                // The store cannot be read now: the task stays first in its
                // queue, and nothing more starts in this group.
                Err(e @ Error::StoreUnavailable(_)) => {
                    tracing::warn!(error = %e, task = ?key, "could not start a ready task; it stays queued");
                    let priority = super::rebuild::priority_of(unit, key.job);
                    self.queues.push_front(cluster, key, priority);
                    break;
                }
                Err(e) => tracing::error!(error = %e, task = ?key, "could not start a ready task"),
            }
        }
        batch
    }

    /// The concurrency groups `key` starts in; `None` when one of them is
    /// full, and the task is parked until it has room.
    fn admit(&mut self, key: TaskKey, cluster: &str, def: &TaskDef) -> Option<Vec<Group>> {
        let clusters = super::read(&self.clusters);
        let Some(limits) = clusters.get(cluster).filter(|l| !l.is_empty()).cloned() else {
            return Some(Vec::new());
        };
        drop(clusters);
        match self.gates.admit(&limits, cluster, &def.task_type.name, &def.input) {
            Ok(groups) => Some(groups),
            Err(full) => {
                self.gates.park(full, key);
                None
            }
        }
    }

    /// Starts `key` if its job is not halted and an implementation exists.
    fn start(&mut self, unit: &mut Unit, key: TaskKey) -> Result<Option<Assignment>, Error> {
        // A task of a deleted job may still be in the queue: skip it.
        let Some(job) = unit.job(key.job)? else { return Ok(None) };
        if job.state().is_halted() {
            return Ok(None);
        }
        let task = unit.status(key)?.ok_or(Error::UnknownTask(key))?;
        if task.state != TaskState::Queued {
            return Ok(None);
        }
        let cluster = task.cluster.clone();
        let def = unit.def(key)?.ok_or(Error::UnknownTask(key))?;
        let requested = &def.task_type;
        let resolved = {
            let registry = super::read(&self.registry);
            registry.resolve(requested).map(|(v, d)| (v, d, registry.limits(&d)))
        };
        let Some((version, module, limits)) = resolved else {
            let message = format!("no registered implementation can run {requested}");
            let ready = graph::fail_unrunnable(unit, &mut self.waiting, key, message)?;
            self.enqueue(unit, ready);
            return Ok(None);
        };
        let Some(groups) = self.admit(key, &cluster, &def) else { return Ok(None) };
        let lease = self.leases.token();
        let attempt = graph::start(unit, key, version, lease)?;
        self.leases.grant(key, lease);
        self.gates.hold(key, groups);
        Ok(Some(Assignment {
            key,
            task_type: TaskType { name: requested.name.clone(), version },
            module,
            limits,
            input: def.input.clone(),
            dependencies: def.handles.iter().copied().zip(def.depends_on.iter().copied()).collect(),
            cluster,
            attempt,
            lease,
            lease_ttl: self.settings.lease_ttl,
        }))
    }
}

/// The earlier of two deadlines.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Fills `group` with the next commands: waits for one (or for the next
/// lease expiry) unless `busy` (a commit is in progress), when it only takes
/// what is already queued. After a group that `handed_out` tasks it first
/// looks for a while without sleeping (see below). Answers false once every
/// handle is gone.
async fn receive(
    rx: &mut mpsc::UnboundedReceiver<Command>,
    group: &mut Vec<Command>,
    busy: bool,
    handed_out: bool,
    next_expiry: Option<Instant>,
) -> bool {
    if busy {
        // Let the flusher and the API run between the chunks.
        tokio::task::yield_now().await;
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(command) => group.push(command),
                Err(mpsc::error::TryRecvError::Empty) => return true,
                Err(mpsc::error::TryRecvError::Disconnected) => return false,
            }
        }
        return true;
    }
    // Tasks just went out: look for the next command briefly before
    // sleeping, and once one came, take what follows it closely (a
    // runner's report and its next claim belong in one group: the task the
    // report frees then goes to that runner, whose thread is awake). The
    // looking yields to the runtime each time, so the API's requests on
    // this thread still run; and it happens only after a hand-off.
    let mut until = std::time::Instant::now() + if handed_out { super::SPIN } else { Duration::ZERO };
    while std::time::Instant::now() < until && group.len() < MAX_GROUP {
        match rx.try_recv() {
            Ok(command) => {
                group.push(command);
                until = std::time::Instant::now() + QUIET;
            }
            Err(mpsc::error::TryRecvError::Disconnected) => return !group.is_empty(),
            Err(mpsc::error::TryRecvError::Empty) => tokio::task::yield_now().await,
        }
    }
    if !group.is_empty() {
        return true;
    }
    tokio::select! {
        n = rx.recv_many(group, MAX_GROUP) => n > 0,
        () = sleep_until(next_expiry) => true,
    }
}

/// Makes applied groups durable: one sync for every group applied while the
/// previous sync ran, then their answers. Groups whose writes nobody waits
/// for (the reports of in-process runners, which do not wait for the
/// answer) are synced within [`LAZY_SYNC`], together with whatever comes
/// meanwhile, instead of each with a sync of its own.
async fn flusher(store: Store, mut rx: mpsc::UnboundedReceiver<Vec<Deferred>>) {
    let mut groups = Vec::new();
    while rx.recv_many(&mut groups, MAX_GROUP).await > 0 {
        if groups.iter().all(Vec::is_empty) {
            let _ = tokio::time::timeout(LAZY_SYNC, until_answers(&mut rx, &mut groups)).await;
        }
        // A failure raises the store's fault (logged there).
        let flushed = store.flush().await.map_err(Error::from);
        for answer in groups.drain(..).flatten() {
            answer(flushed.as_ref().map(|_| ()));
        }
    }
}

/// Receives groups until one has answers to send (or the writer is gone).
async fn until_answers(rx: &mut mpsc::UnboundedReceiver<Vec<Deferred>>, groups: &mut Vec<Vec<Deferred>>) {
    while rx.recv_many(groups, MAX_GROUP).await > 0 {
        if groups.iter().any(|g| !g.is_empty()) {
            return;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TaskId;

    /// A renewal that waited in the queue while the writer was busy past a
    /// lease's deadline is applied before the lease is expired.
    #[tokio::test(start_paused = true)]
    async fn renewals_queued_behind_a_busy_writer_are_applied_before_leases_expire() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (events, _) = broadcast::channel(16);
        let settings = Settings::default();
        let shared = Shared { registry: Arc::default(), clusters: Arc::default() };
        let mut writer =
            Writer::recover(store.clone(), shared, settings.clone(), events, Arc::default()).await.unwrap();
        let key = TaskKey { job: JobId::new(), task: TaskId::new() };
        let token = writer.leases.token();
        writer.leases.grant(key, token);
        let (tx, mut rx) = mpsc::unbounded_channel();
        // The runner renewed in time, but the writer was busy until after
        // the deadline: the renewal is still queued.
        tokio::time::advance(settings.lease_ttl - Duration::from_secs(1)).await;
        let (answer_tx, answer) = oneshot::channel();
        tx.send(Command::Extend(key, token, answer_tx)).unwrap();
        tokio::time::advance(Duration::from_secs(2)).await;
        let (mut unit, mut durable) = (store.unit(), Vec::new());
        writer.expire_leases(&mut rx, &mut unit, &mut durable);
        assert!(writer.leases.holds(&key), "the lease expired despite its queued renewal");
        for d in durable {
            d(Ok(()));
        }
        assert_eq!(answer.await.unwrap().unwrap(), settings.lease_ttl);
    }
}
