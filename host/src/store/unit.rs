//! A unit of work: the writes of one group commit. Reads see the unit's own
//! pending writes first, then the database. Nothing reaches disk until
//! [`Store::commit`](super::Store::commit) (or the writer's
//! [`Store::apply`](super::Store::apply)) applies the whole unit.
//!
//! A task is three kinds of record: its status (small, rewritten as it
//! runs), its definition (type, input, dependencies; written once) and the
//! lists of siblings that depend on it (written once, per chunk of its
//! siblings' creation). A completion rewrites statuses only, so its cost
//! never grows with the size of the job or the number of edges.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rustc_hash::FxHashMap as HashMap;

use super::chunk::Chunk;
use super::kv::Kv;
use super::kv::KvWrite;
use super::records::{
    self, AutomationRecord, DefRecord, ErrorRecord, IdsRecord, JobRecord, LogRecord, OutputRecord,
    SpanRecord, TaskRecord,
};
use super::{Error, keys};
use crate::model::{
    AttemptError, Automation, AutomationId, Job, JobId, LogEntry, MAX_KEPT_ERRORS, SpanEntry, StoredOutput,
    TaskDef, TaskId, TaskKey, TaskStatus,
};

/// Where a live task stands, as recorded by [`Unit::mark`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Live {
    /// Queued, with dependencies not complete yet.
    Waiting,
    /// Eligible to run.
    Ready,
    /// An attempt is executing.
    Running,
    /// Not live: computed or failed.
    Idle,
}

impl Live {
    /// The value of the live key (`None`: no key).
    pub(super) fn value(self) -> Option<Vec<u8>> {
        match self {
            Live::Waiting => Some(vec![keys::WAITING_MARK]),
            Live::Ready => Some(Vec::new()),
            Live::Running => Some(vec![keys::RUNNING_MARK]),
            Live::Idle => None,
        }
    }

    /// The mark a live key's value stands for.
    pub(super) fn of_value(value: &[u8]) -> Option<Live> {
        match value {
            [] => Some(Live::Ready),
            [keys::RUNNING_MARK] => Some(Live::Running),
            [keys::WAITING_MARK] => Some(Live::Waiting),
            _ => None,
        }
    }
}

/// A decoded record and whether the unit must write it back.
struct Cached<T> {
    value: T,
    dirty: bool,
}

/// Pending writes, plus decoded records read so far.
pub struct Unit {
    kv: Kv,
    jobs: HashMap<JobId, Cached<Job>>,
    statuses: HashMap<TaskKey, Cached<TaskStatus>>,
    defs: HashMap<TaskKey, Arc<TaskDef>>,
    /// Subtask lists this unit writes (read back by [`Unit::children`]).
    children: HashMap<TaskKey, Vec<TaskId>>,
    raw: Vec<KvWrite>,
    /// Groups logged ahead of the unit's own (chunks of a large subtask set).
    ahead: Vec<Vec<KvWrite>>,
    log_seq: Arc<Sequence>,
    /// Bytes of the writes in `raw` and `ahead` counted so far, and how many
    /// of each were counted (both only grow until the unit is applied).
    counted: (usize, usize, usize),
}

/// Numbers log lines in write order, across restarts: each number is above
/// the last and at least the current time in ms shifted left by 16 bits.
#[derive(Debug, Default)]
pub struct Sequence(AtomicU64);

impl Sequence {
    /// The next number.
    pub fn next(&self) -> u64 {
        let floor = crate::model::now_ms() << 16;
        let previous =
            self.0.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| Some(floor.max(last + 1)));
        let last = previous.unwrap_or_else(|last| last);
        floor.max(last + 1)
    }
}

fn malformed(what: &'static str) -> Error {
    Error::Corrupt { what, reason: "malformed key".into() }
}

impl Unit {
    pub(super) fn new(kv: Kv, log_seq: Arc<Sequence>) -> Self {
        Unit {
            kv,
            jobs: HashMap::default(),
            statuses: HashMap::default(),
            defs: HashMap::default(),
            children: HashMap::default(),
            raw: Vec::new(),
            ahead: Vec::new(),
            log_seq,
            counted: (0, 0, 0),
        }
    }

    /// The jobs this unit changes.
    pub fn dirty_jobs(&self) -> Vec<JobId> {
        self.jobs.iter().filter(|(_, c)| c.dirty).map(|(id, _)| *id).collect()
    }

    /// About how many bytes the unit writes (keys and values written
    /// through it, plus a record's worth per changed job and task).
    /// Each write is counted once, however often this is asked.
    pub fn pending_bytes(&mut self) -> usize {
        let size = |(k, v): &KvWrite| k.len() + v.as_ref().map_or(0, Vec::len);
        let (bytes, raw, ahead) = &mut self.counted;
        *bytes += self.raw[*raw..].iter().map(size).sum::<usize>();
        *bytes += self.ahead[*ahead..].iter().flatten().map(size).sum::<usize>();
        (*raw, *ahead) = (self.raw.len(), self.ahead.len());
        *bytes + 256 * (self.jobs.len() + self.statuses.len())
    }

    /// Whether the unit writes nothing.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
            && self.ahead.is_empty()
            && !self.jobs.values().any(|c| c.dirty)
            && !self.statuses.values().any(|c| c.dirty)
    }

    fn load_job(&mut self, id: JobId) -> Result<Option<&mut Cached<Job>>, Error> {
        if !self.jobs.contains_key(&id) {
            let Some(bytes) = self.kv.get(keys::job(id))? else { return Ok(None) };
            let value = records::decode::<JobRecord>("job", &bytes)?.into_job(id);
            self.jobs.insert(id, Cached { value, dirty: false });
        }
        Ok(self.jobs.get_mut(&id))
    }

    fn load_status(&mut self, key: TaskKey) -> Result<Option<&mut Cached<TaskStatus>>, Error> {
        if !self.statuses.contains_key(&key) {
            let Some(bytes) = self.kv.get(keys::task(key))? else { return Ok(None) };
            let value = records::decode::<TaskRecord>("task", &bytes)?.into_status()?;
            self.statuses.insert(key, Cached { value, dirty: false });
        }
        Ok(self.statuses.get_mut(&key))
    }

    /// The job `id`, to read.
    pub fn job(&mut self, id: JobId) -> Result<Option<&Job>, Error> {
        Ok(self.load_job(id)?.map(|c| &c.value))
    }

    /// The job `id`, to change; it is written back with the unit.
    pub fn job_mut(&mut self, id: JobId) -> Result<Option<&mut Job>, Error> {
        Ok(self.load_job(id)?.map(|c| {
            c.dirty = true;
            &mut c.value
        }))
    }

    /// The status of task `key`, to read.
    pub fn status(&mut self, key: TaskKey) -> Result<Option<&TaskStatus>, Error> {
        Ok(self.load_status(key)?.map(|c| &c.value))
    }

    /// The status of task `key`, to change; it is written back with the unit.
    pub fn status_mut(&mut self, key: TaskKey) -> Result<Option<&mut TaskStatus>, Error> {
        Ok(self.load_status(key)?.map(|c| {
            c.dirty = true;
            &mut c.value
        }))
    }

    /// The definition of task `key`.
    pub fn def(&mut self, key: TaskKey) -> Result<Option<Arc<TaskDef>>, Error> {
        if let Some(def) = self.defs.get(&key) {
            return Ok(Some(def.clone()));
        }
        let Some(bytes) = self.kv.get(keys::def(key))? else { return Ok(None) };
        let def = Arc::new(records::decode::<DefRecord>("def", &bytes)?.into_def()?);
        self.defs.insert(key, def.clone());
        Ok(Some(def))
    }

    /// The subtasks of `key`, if their list was kept ([`Unit::put_children`]).
    pub fn children(&self, key: TaskKey) -> Result<Vec<TaskId>, Error> {
        if let Some(list) = self.children.get(&key) {
            return Ok(list.clone());
        }
        match self.kv.get(keys::children(key))? {
            Some(v) => Ok(records::decode::<IdsRecord>("children", &v)?.into_ids()),
            None => Ok(Vec::new()),
        }
    }

    /// Keeps the list of `key`'s subtasks (written once, when it is
    /// computed; only inside optional subtrees, which may need skipping).
    pub fn put_children(&mut self, key: TaskKey, list: Vec<TaskId>) {
        self.raw.push((keys::children(key), Some(records::encode(&IdsRecord::new(&list)))));
        self.children.insert(key, list);
    }

    /// The ids of every task of `job` (tasks created in this unit included,
    /// subtasks of a commit still being written excluded), in id order.
    pub fn task_keys_of(&self, job: JobId) -> Result<Vec<TaskKey>, Error> {
        let staged = super::staged::staged_of(&self.kv, job)?;
        let mut keys: Vec<TaskKey> = self.statuses.keys().filter(|k| k.job == job).copied().collect();
        for item in self.kv.scan_prefix(keys::tasks_of(job)) {
            let (k, _) = item?;
            let key = keys::task_key_at(&k, 1).ok_or_else(|| malformed("task"))?;
            if !self.statuses.contains_key(&key) && !staged.contains(&key.task) {
                keys.push(key);
            }
        }
        keys.sort();
        Ok(keys)
    }

    /// Deletes job `job` with everything it holds: its record, its tasks
    /// (statuses, definitions, errors, subtask lists, live keys, outputs,
    /// and the dependents lists earlier builds wrote),
    /// logs, spans, and its idempotency key.
    pub fn delete_job(&mut self, job: &Job) -> Result<(), Error> {
        let mut removed = Vec::new();
        for item in self.kv.scan_prefix(keys::tasks_of(job.id)) {
            let (k, v) = item?;
            let key = keys::task_key_at(&k, 1).ok_or_else(|| malformed("task"))?;
            let record = records::decode::<TaskRecord>("task", &v)?;
            removed.push(keys::live(record.cluster(), key));
            removed.push(k.to_vec());
            self.statuses.remove(&key);
            self.defs.remove(&key);
        }
        let prefixes = [
            keys::defs_of(job.id),
            keys::errors_of(job.id),
            keys::dependents_of(job.id),
            keys::children_of(job.id),
            keys::logs_of(job.id),
            keys::spans_of(job.id),
            keys::outputs_of(job.id),
        ];
        for prefix in prefixes {
            for item in self.kv.scan_prefix(prefix) {
                removed.push(item?.0.to_vec());
            }
        }
        if let Some(k) = &job.idempotency_key {
            removed.push(keys::idempotency(k));
        }
        if let Some(automation) = job.automation {
            removed.push(keys::fired(automation, job.id));
        }
        removed.push(keys::job(job.id));
        self.jobs.remove(&job.id);
        self.raw.extend(removed.into_iter().map(|k| (k, None)));
        Ok(())
    }

    /// Adds a new job.
    pub fn insert_job(&mut self, job: Job) {
        self.jobs.insert(job.id, Cached { value: job, dirty: true });
    }

    /// Adds a new task.
    pub fn insert_task(&mut self, key: TaskKey, def: TaskDef, status: TaskStatus) {
        self.raw.push((keys::def(key), Some(records::encode(&DefRecord::from(&def)))));
        self.defs.insert(key, Arc::new(def));
        self.statuses.insert(key, Cached { value: status, dirty: true });
    }

    /// Adds the tasks and live keys of `chunk` to the
    /// unit's own batch (a subtask set small enough to commit at once).
    pub fn absorb(&mut self, chunk: Chunk) {
        for (key, def, status) in chunk.tasks {
            self.insert_task(key, def, status);
        }
        for (cluster, key, live) in chunk.live {
            self.mark(&cluster, key, live);
        }
        self.raw.extend(chunk.raw);
    }

    /// Logs `chunk` as a group of its own ahead of the unit's batch: part of
    /// a large subtask set, behind the marker its first chunk wrote. Its
    /// tasks are read back through the unit like any other (a later change
    /// to one is written with the unit's batch, after the chunk).
    pub fn write_ahead(&mut self, chunk: Chunk) {
        self.ahead.push(chunk.writes());
        for (key, def, status) in chunk.tasks {
            self.defs.insert(key, Arc::new(def));
            self.statuses.insert(key, Cached { value: status, dirty: false });
        }
    }

    /// Records whether `key` (of `cluster`) is ready, running, or neither.
    /// One key per live task holds both, so a start is a single write.
    pub fn mark(&mut self, cluster: &str, key: TaskKey, mark: Live) {
        self.raw.push((keys::live(cluster, key), mark.value()));
    }

    /// Keeps `error` as the error numbered `seq` of task `key`, and drops
    /// the one that falls out of the last [`MAX_KEPT_ERRORS`].
    pub fn add_error(&mut self, key: TaskKey, seq: u32, error: &AttemptError) {
        self.raw.push((keys::error(key, seq), Some(records::encode(&ErrorRecord::from(error)))));
        if let Some(old) = seq.checked_sub(MAX_KEPT_ERRORS) {
            self.raw.push((keys::error(key, old), None));
        }
    }

    /// Keeps the output of computed task `key`.
    pub fn put_output(&mut self, key: TaskKey, output: &StoredOutput) {
        self.raw.push((keys::output(key), Some(records::encode(&OutputRecord::from(output)))));
    }

    /// Removes the marker of `parent`'s staged subtasks: the unit commits them.
    pub fn unstage(&mut self, parent: TaskKey) {
        self.raw.push((keys::staged(parent), None));
    }

    /// Stores automation `a` (new or changed).
    pub fn put_automation(&mut self, a: &Automation) {
        self.raw.push((keys::automation(a.id), Some(records::encode(&AutomationRecord::from(a)))));
    }

    /// Deletes automation `id` (the jobs it fired stay findable by it).
    pub fn delete_automation(&mut self, id: AutomationId) {
        self.raw.push((keys::automation(id), None));
    }

    /// Records that `automation` fired `job`.
    pub fn add_fired(&mut self, automation: AutomationId, job: JobId) {
        self.raw.push((keys::fired(automation, job), Some(Vec::new())));
    }

    /// The jobs `automation` fired, oldest first (committed ones only).
    pub fn fired_by(&self, automation: AutomationId) -> Result<Vec<JobId>, Error> {
        let mut jobs = Vec::new();
        for item in self.kv.scan_prefix(keys::fired_by(automation)) {
            let (k, _) = item?;
            let job: [u8; 16] =
                k.get(17..33).and_then(|b| b.try_into().ok()).ok_or_else(|| malformed("fired"))?;
            jobs.push(JobId::from_bytes(job));
        }
        Ok(jobs)
    }

    /// Maps an idempotency key to the job it created.
    pub fn set_idempotency(&mut self, client_key: &str, job: JobId) {
        self.raw.push((keys::idempotency(client_key), Some(job.as_bytes().to_vec())));
    }

    /// Appends log lines of `key`, after every line written before (the
    /// log of a job is in write order, so it can be followed).
    pub fn add_logs(&mut self, key: TaskKey, entries: &[LogEntry]) {
        for e in entries {
            let seq = self.log_seq.next();
            self.raw.push((keys::log(key.job, seq), Some(records::encode(&LogRecord::new(key.task, e)))));
        }
    }

    /// Appends spans of `key`, numbered from `first_seq`.
    pub fn add_spans(&mut self, key: TaskKey, first_seq: u64, spans: &[SpanEntry]) {
        for (i, s) in spans.iter().enumerate() {
            self.raw
                .push((keys::span(key, first_seq + i as u64), Some(records::encode(&SpanRecord::from(s)))));
        }
    }

    /// The unit's writes as groups for the log: the chunks written ahead,
    /// in order, then one batch with everything else.
    pub(super) fn into_groups(self) -> Vec<Vec<KvWrite>> {
        let mut groups = self.ahead;
        let mut last = Vec::with_capacity(self.raw.len() + self.statuses.len() + self.jobs.len());
        for (id, job) in self.jobs.iter().filter(|(_, c)| c.dirty) {
            last.push((keys::job(*id), Some(records::encode(&JobRecord::from(&job.value)))));
        }
        for (key, status) in self.statuses.iter().filter(|(_, c)| c.dirty) {
            last.push((keys::task(*key), Some(records::encode(&TaskRecord::from(&status.value)))));
        }
        last.extend(self.raw);
        groups.push(last);
        groups
    }

    /// The job an idempotency key created, including one created in this unit.
    pub fn idempotent_job(&self, client_key: &str) -> Result<Option<JobId>, Error> {
        let k = keys::idempotency(client_key);
        let pending = self.raw.iter().rev().find(|(key, _)| *key == k).and_then(|(_, v)| v.clone());
        let value = match pending {
            Some(v) => Some(v),
            None => self.kv.get(&k)?.map(|v| v.to_vec()),
        };
        Ok(value.and_then(|v| <[u8; 16]>::try_from(v.as_slice()).ok()).map(JobId::from_bytes))
    }
}
