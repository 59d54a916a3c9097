//! A unit of work: the writes of one group commit. Reads see the unit's own
//! pending writes first, then the database. Nothing reaches disk until
//! [`Store::commit`](super::Store::commit) applies the whole unit atomically.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::kv::Kv;
use super::records::{self, JobRecord, LogRecord, SpanRecord, TaskRecord};
use super::staged::{self, Staged, StagedIndex};
use super::wal::KvWrite;
use super::{Error, keys};
use crate::model::{Job, JobId, LogEntry, SpanEntry, Task, TaskKey};

/// Where a live task stands, as recorded by [`Unit::mark`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Live {
    /// Eligible to run.
    Ready,
    /// An attempt is executing.
    Running,
    /// Neither: finished, failed, or waiting for dependencies.
    Done,
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
    tasks: HashMap<TaskKey, Cached<Task>>,
    raw: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    staged: Vec<Staged>,
    staged_index: StagedIndex,
    log_seq: Arc<Sequence>,
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

impl Unit {
    pub(super) fn new(kv: Kv, log_seq: Arc<Sequence>) -> Self {
        Unit {
            kv,
            jobs: HashMap::new(),
            tasks: HashMap::new(),
            raw: Vec::new(),
            staged: Vec::new(),
            staged_index: HashMap::new(),
            log_seq,
        }
    }

    /// The jobs this unit changes.
    pub fn dirty_jobs(&self) -> Vec<JobId> {
        self.jobs.iter().filter(|(_, c)| c.dirty).map(|(id, _)| *id).collect()
    }

    /// Whether the unit writes nothing.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty() && !self.jobs.values().any(|c| c.dirty) && !self.tasks.values().any(|c| c.dirty)
    }

    fn load_job(&mut self, id: JobId) -> Result<Option<&mut Cached<Job>>, Error> {
        if !self.jobs.contains_key(&id) {
            let Some(bytes) = self.kv.get(keys::job(id))? else { return Ok(None) };
            let value = records::decode::<JobRecord>("job", &bytes)?.into_job(id);
            self.jobs.insert(id, Cached { value, dirty: false });
        }
        Ok(self.jobs.get_mut(&id))
    }

    fn load_task(&mut self, key: TaskKey) -> Result<Option<&mut Cached<Task>>, Error> {
        if !self.tasks.contains_key(&key) {
            let Some(bytes) = self.kv.get(keys::task(key))? else { return Ok(None) };
            let value = records::decode::<TaskRecord>("task", &bytes)?.into_task(key)?;
            self.tasks.insert(key, Cached { value, dirty: false });
        }
        Ok(self.tasks.get_mut(&key))
    }

    /// The job `id`, to change; it is written at commit.
    pub fn job(&mut self, id: JobId) -> Result<Option<&mut Job>, Error> {
        Ok(self.load_job(id)?.map(|c| {
            c.dirty = true;
            &mut c.value
        }))
    }

    /// The job `id`, to read only.
    pub fn job_view(&mut self, id: JobId) -> Result<Option<&Job>, Error> {
        Ok(self.load_job(id)?.map(|c| &c.value))
    }

    /// The task `key`, to change; it is written at commit.
    pub fn task(&mut self, key: TaskKey) -> Result<Option<&mut Task>, Error> {
        Ok(self.load_task(key)?.map(|c| {
            c.dirty = true;
            &mut c.value
        }))
    }

    /// The task `key`, to read only.
    pub fn task_view(&mut self, key: TaskKey) -> Result<Option<&Task>, Error> {
        Ok(self.load_task(key)?.map(|c| &c.value))
    }

    /// The ids of every task of `job`, including tasks created in this unit.
    pub fn task_keys_of(&self, job: JobId) -> Result<Vec<TaskKey>, Error> {
        let mut keys: Vec<TaskKey> = self.tasks.keys().filter(|k| k.job == job).copied().collect();
        for item in self.kv.scan_prefix(keys::tasks_of(job)) {
            let (k, _) = item?;
            let key = keys::task_key_at(&k, 1)
                .ok_or(Error::Corrupt { what: "task", reason: "malformed key".into() })?;
            if !self.tasks.contains_key(&key) {
                keys.push(key);
            }
        }
        keys.sort();
        Ok(keys)
    }

    /// Deletes job `job` with everything it holds: its record, its tasks and
    /// their live keys, logs, spans, and its idempotency key.
    pub fn delete_job(&mut self, job: &Job) -> Result<(), Error> {
        let mut removed = Vec::new();
        for item in self.kv.scan_prefix(keys::tasks_of(job.id)) {
            let (k, v) = item?;
            let key = keys::task_key_at(&k, 1)
                .ok_or(Error::Corrupt { what: "task", reason: "malformed key".into() })?;
            let task = records::decode::<TaskRecord>("task", &v)?.into_task(key)?;
            removed.push(keys::live(&task.cluster, key));
            removed.push(k.to_vec());
            self.tasks.remove(&key);
        }
        for prefix in [keys::logs_of(job.id), keys::spans_of(job.id)] {
            for item in self.kv.scan_prefix(prefix) {
                removed.push(item?.0.to_vec());
            }
        }
        if let Some(k) = &job.idempotency_key {
            removed.push(keys::idempotency(k));
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
    pub fn insert_task(&mut self, task: Task) {
        self.tasks.insert(task.key, Cached { value: task, dirty: true });
    }

    /// Adds the new subtasks of `parent`, which this unit completes. A large
    /// set is written ahead of the unit in chunks (see [`staged`]).
    pub fn insert_subtasks(&mut self, parent: TaskKey, children: Vec<Task>) {
        if children.len() >= staged::THRESHOLD {
            let index = self.staged.len();
            let keys = children.iter().map(|c| c.key).collect::<Vec<_>>();
            self.staged_index.extend(keys.iter().map(|k| (*k, index)));
            self.staged.push(Staged { parent: Some(parent), children: keys, raw: Vec::new() });
        }
        for child in children {
            self.insert_task(child);
        }
    }

    /// Records whether `key` (of `cluster`) is ready, running, or neither.
    /// One key per live task holds both, so a start is a single write.
    pub fn mark(&mut self, cluster: &str, key: TaskKey, mark: Live) {
        let value = match mark {
            Live::Ready => Some(Vec::new()),
            Live::Running => Some(vec![keys::RUNNING_MARK]),
            Live::Done => None,
        };
        let write = (keys::live(cluster, key), value);
        match self.staged_index.get(&key) {
            Some(&i) => self.staged[i].raw.push(write),
            None => self.raw.push(write),
        }
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

    /// Everything to write: the chunks of staged subtasks first, then one
    /// atomic batch that holds the rest and removes the staged markers.
    /// The unit's writes as groups for the log: each staged set's chunks
    /// (the first writes its marker), then everything else, which removes
    /// the markers.
    pub(super) fn into_groups(mut self) -> Vec<Vec<KvWrite>> {
        let mut groups = Vec::new();
        let mut last = Vec::new();
        for set in std::mem::take(&mut self.staged) {
            let Some(parent) = set.parent else { continue };
            let marker = keys::staged(parent);
            groups.extend(self.chunks_of(&marker, set));
            last.push((marker, None));
        }
        for (id, job) in self.jobs.iter().filter(|(_, c)| c.dirty) {
            last.push((keys::job(*id), Some(records::encode(&JobRecord::from(&job.value)))));
        }
        for (key, task) in self.tasks.iter().filter(|(_, c)| c.dirty) {
            last.push((keys::task(*key), Some(records::encode(&TaskRecord::from(&task.value)))));
        }
        last.extend(self.raw);
        groups.push(last);
        groups
    }

    /// The chunks of one staged set; the first writes its marker.
    fn chunks_of(&mut self, marker: &[u8], set: Staged) -> Vec<Vec<KvWrite>> {
        let mut chunks = vec![vec![(marker.to_vec(), Some(set.marker_value()))]];
        let writes = set.children.iter().filter_map(|k| {
            let task = self.tasks.remove(k)?;
            Some((keys::task(*k), Some(records::encode(&TaskRecord::from(&task.value)))))
        });
        for (i, w) in writes.collect::<Vec<_>>().into_iter().chain(set.raw).enumerate() {
            if i > 0 && i % staged::CHUNK == 0 {
                chunks.push(Vec::new());
            }
            chunks.last_mut().expect("one chunk at least").push(w);
        }
        chunks
    }
}

impl Unit {
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
