//! The store: the only code that touches sled.
//!
//! One sled tree holds everything under fixed one-byte key prefixes (see
//! [`keys`]), so a [`Unit`] of many records commits as one atomic batch
//! followed by one flush. Records are versioned ([`records`]) and convert to
//! and from the domain model; no domain struct is serialized directly.

mod checkpoint;
mod keys;
mod kv;
mod records;
mod segment;
mod staged;
mod table;
mod unit;
mod wal;

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

pub use unit::{Live, Unit};

use crate::model::{
    Cluster, Digest, Job, JobId, LogEntry, ModuleInfo, SpanEntry, Task, TaskKey, TaskType, Version,
};
use records::{ClusterRecord, JobRecord, LogRecord, ModuleRecord, SpanRecord, TaskRecord};

/// The layout version written by this code.
/// Version 2: log lines keyed by job and write order (version 1 keyed them
/// by task). Version 1 data directories are refused, not migrated.
const SCHEMA_VERSION: u32 = 2;

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// sled failed (I/O, corruption it detected).
    #[error("database error: {0}")]
    Db(#[from] sled::Error),
    /// A record could not be decoded.
    #[error("corrupt {what} record: {reason}")]
    Corrupt {
        /// The kind of record.
        what: &'static str,
        /// The decoder's complaint.
        reason: String,
    },
    /// The write-ahead log could not be written or read.
    #[error("write-ahead log: {0}")]
    Io(#[from] std::io::Error),
    /// The data directory was written by an incompatible version.
    #[error("data directory has schema version {found}, this build reads {SCHEMA_VERSION}")]
    Schema {
        /// The version found on disk.
        found: u32,
    },
}

/// One page of a job's log lines.
#[derive(Debug)]
pub struct LogPage {
    /// The lines, with the task that logged each.
    pub lines: Vec<(TaskKey, LogEntry)>,
    /// Where the next page starts (opaque); `None` when nothing was read.
    pub position: Option<Vec<u8>>,
    /// Whether the page ended at its limit with lines left.
    pub more: bool,
}

/// The durable state of the host.
#[derive(Clone)]
pub struct Store {
    kv: kv::Kv,
    log_seq: Arc<unit::Sequence>,
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        let db = sled::Config::new().path(dir).cache_capacity(256 << 20).open()?;
        let tree = db.open_tree("sandflow")?;
        check_schema(&db, &tree)?;
        let kv = kv::Kv::open(db, tree, &dir.join("wal"))?;
        let discarded = staged::discard_uncommitted(&kv)?;
        if discarded > 0 {
            tracing::info!(subtasks = discarded, "deleted subtasks whose parent's report never committed");
        }
        Ok(Store { kv, log_seq: Arc::default() })
    }

    /// Lets background checkpoints start: call once start-up has read what it
    /// needs (they start 5 s after open otherwise).
    pub fn resume_checkpoints(&self) {
        self.kv.resume();
    }

    /// Waits while too many writes wait for a checkpoint (back-pressure for
    /// the scheduler's writer).
    pub async fn room(&self) {
        self.kv.room().await;
    }

    /// Writes everything held in memory to sled (at shutdown, so the next
    /// start has no log to replay).
    pub fn checkpoint(&self) -> Result<(), Error> {
        self.kv.checkpoint()
    }
}

fn check_schema(db: &sled::Db, tree: &sled::Tree) -> Result<(), Error> {
    let key = keys::meta("schema");
    match tree.get(&key)? {
        Some(v) => {
            let found = v.as_ref().try_into().map(u32::from_be_bytes).unwrap_or(0);
            if found != SCHEMA_VERSION {
                return Err(Error::Schema { found });
            }
        }
        None => {
            tree.insert(key, &SCHEMA_VERSION.to_be_bytes())?;
            db.flush()?;
        }
    }
    Ok(())
}

impl Store {
    /// Starts a unit of work.
    pub fn unit(&self) -> Unit {
        Unit::new(self.kv.clone(), self.log_seq.clone())
    }

    /// Applies `unit` atomically and flushes it to disk.
    pub async fn commit(&self, unit: Unit) -> Result<(), Error> {
        if self.apply(unit)? {
            self.flush().await?;
        }
        Ok(())
    }

    /// Applies `unit` atomically, without waiting for it to reach disk: its
    /// writes are visible at once and durable after the next [`Store::flush`].
    /// Answers whether there was anything to write.
    pub fn apply(&self, unit: Unit) -> Result<bool, Error> {
        if unit.is_empty() {
            return Ok(false);
        }
        self.kv.apply(unit.into_groups())?;
        Ok(true)
    }

    /// Makes every write applied so far durable.
    pub async fn flush(&self) -> Result<(), Error> {
        self.kv.sync().await
    }

    /// Applies `writes` as one group and makes them durable.
    async fn write(&self, writes: Vec<wal::KvWrite>) -> Result<(), Error> {
        self.kv.apply(vec![writes])?;
        self.kv.sync().await
    }

    /// The job `id`.
    pub fn job(&self, id: JobId) -> Result<Option<Job>, Error> {
        let Some(bytes) = self.kv.get(keys::job(id))? else { return Ok(None) };
        Ok(Some(records::decode::<JobRecord>("job", &bytes)?.into_job(id)))
    }

    /// Jobs with ids in `[from, to)` that `keep` accepts, newest first, at
    /// most `limit`. A range scan over the time-ordered job keys.
    pub fn jobs_between(
        &self,
        from: JobId,
        to: JobId,
        limit: usize,
        keep: impl Fn(&Job) -> bool,
    ) -> Result<Vec<Job>, Error> {
        let mut out = Vec::new();
        for item in self.kv.range((Bound::Included(keys::job(from)), Bound::Excluded(keys::job(to))), true) {
            if out.len() >= limit {
                break;
            }
            let (k, v) = item?;
            let id = JobId::from_bytes(k[1..17].try_into().map_err(|_| corrupt_key("job"))?);
            let job = records::decode::<JobRecord>("job", &v)?.into_job(id);
            if keep(&job) {
                out.push(job);
            }
        }
        Ok(out)
    }

    /// Every task of `job`, in creation order.
    pub fn tasks_of(&self, job: JobId) -> Result<Vec<Task>, Error> {
        let mut out = Vec::new();
        for item in self.kv.scan_prefix(keys::tasks_of(job)) {
            let (k, v) = item?;
            let key = keys::task_key_at(&k, 1).ok_or_else(|| corrupt_key("task"))?;
            out.push(records::decode::<TaskRecord>("task", &v)?.into_task(key)?);
        }
        Ok(out)
    }

    /// The log lines of `job`, per task in creation order, then per attempt.
    /// Log lines of `job` after position `after` (a value of the returned
    /// position; `None`: from the start) that `keep` accepts, at most
    /// `limit`, in order of task, attempt and line. Also answers the position
    /// after the last line read and whether more lines follow.
    pub fn logs_page(
        &self,
        job: JobId,
        after: Option<&[u8]>,
        limit: usize,
        keep: impl Fn(&TaskKey, &LogEntry) -> bool,
    ) -> Result<LogPage, Error> {
        let prefix = keys::logs_of(job);
        let start = match after {
            Some(pos) => std::ops::Bound::Excluded([prefix.as_slice(), pos].concat()),
            None => std::ops::Bound::Included(prefix.clone()),
        };
        let mut page = LogPage { lines: Vec::new(), position: after.map(<[u8]>::to_vec), more: false };
        for item in self.kv.range((start, kv::prefix_end(&prefix)), false) {
            let (k, v) = item?;
            if page.lines.len() == limit {
                page.more = true;
                break;
            }
            let (task, entry) = records::decode::<LogRecord>("log", &v)?.into_entry();
            let key = TaskKey { job, task };
            page.position = Some(k[prefix.len()..].to_vec());
            if keep(&key, &entry) {
                page.lines.push((key, entry));
            }
        }
        Ok(page)
    }

    /// The task `key`, if stored.
    pub fn task(&self, key: TaskKey) -> Result<Option<Task>, Error> {
        let Some(bytes) = self.kv.get(keys::task(key))? else { return Ok(None) };
        Ok(Some(records::decode::<TaskRecord>("task", &bytes)?.into_task(key)?))
    }

    /// The spans of `job` (of one task when `task` is given), at most
    /// `limit`; also whether more were left out.
    pub fn spans_of(
        &self,
        job: JobId,
        task: Option<crate::model::TaskId>,
        limit: usize,
    ) -> Result<(Vec<(TaskKey, SpanEntry)>, bool), Error> {
        let prefix = match task {
            Some(t) => keys::spans_of_task(TaskKey { job, task: t }),
            None => keys::spans_of(job),
        };
        let mut out = Vec::new();
        for item in self.kv.scan_prefix(prefix) {
            if out.len() == limit {
                return Ok((out, true));
            }
            let (k, v) = item?;
            let key = keys::task_key_at(&k, 1).ok_or_else(|| corrupt_key("span"))?;
            out.push((key, records::decode::<SpanRecord>("span", &v)?.into_entry()));
        }
        Ok((out, false))
    }

    /// Every live task (ready or running) with its cluster, in key order;
    /// `true` marks running ones.
    pub fn live_tasks(&self) -> Result<Vec<(String, TaskKey, bool)>, Error> {
        let mut out = Vec::new();
        for item in self.kv.scan_prefix([keys::LIVE]) {
            let (k, v) = item?;
            let (cluster, key) = keys::parse_live(&k).ok_or_else(|| corrupt_key("live"))?;
            out.push((cluster, key, v.as_ref() == [keys::RUNNING_MARK]));
        }
        Ok(out)
    }

    /// Stores a cluster, durably.
    pub async fn put_cluster(&self, cluster: &Cluster) -> Result<(), Error> {
        self.write(vec![(keys::cluster(&cluster.slug), Some(records::encode(&ClusterRecord::from(cluster))))])
            .await
    }

    /// Deletes a cluster, durably.
    pub async fn delete_cluster(&self, slug: &str) -> Result<(), Error> {
        self.write(vec![(keys::cluster(slug), None)]).await
    }

    /// The cluster `slug`, if stored.
    pub fn cluster(&self, slug: &str) -> Result<Option<Cluster>, Error> {
        let Some(bytes) = self.kv.get(keys::cluster(slug))? else { return Ok(None) };
        Ok(Some(records::decode::<ClusterRecord>("cluster", &bytes)?.into_cluster(slug.to_owned())))
    }

    /// Every stored cluster, by slug.
    pub fn clusters(&self) -> Result<Vec<Cluster>, Error> {
        let mut out = Vec::new();
        for item in self.kv.scan_prefix([keys::CLUSTER]) {
            let (k, v) = item?;
            let slug = std::str::from_utf8(&k[1..]).map_err(|_| corrupt_key("cluster"))?.to_owned();
            out.push(records::decode::<ClusterRecord>("cluster", &v)?.into_cluster(slug));
        }
        Ok(out)
    }

    /// Whether any task of `cluster` is ready or running.
    pub fn cluster_has_live_tasks(&self, cluster: &str) -> Result<bool, Error> {
        Ok(self.kv.scan_prefix(keys::live_of(cluster)).next().transpose()?.is_some())
    }

    /// Replaces the record of a stored module (its limits), durably.
    pub async fn update_module(&self, info: &ModuleInfo) -> Result<(), Error> {
        self.write(vec![(keys::module(&info.digest), Some(records::encode(&ModuleRecord::from(info))))]).await
    }

    /// Stores a module, its bytes and its task types in the registry, durably.
    pub async fn put_module(&self, info: &ModuleInfo, bytes: &[u8]) -> Result<(), Error> {
        let mut writes = vec![
            (keys::module(&info.digest), Some(records::encode(&ModuleRecord::from(info)))),
            (keys::module_bytes(&info.digest), Some(bytes.to_vec())),
        ];
        for t in &info.task_types {
            writes.push((keys::registry(&t.name, t.version), Some(info.digest.0.to_vec())));
        }
        self.write(writes).await
    }

    /// The module `digest`, if stored.
    pub fn module(&self, digest: &Digest) -> Result<Option<ModuleInfo>, Error> {
        let Some(v) = self.kv.get(keys::module(digest))? else { return Ok(None) };
        Ok(Some(records::decode::<ModuleRecord>("module", &v)?.into_info(*digest)))
    }

    /// Every stored module.
    pub fn modules(&self) -> Result<Vec<ModuleInfo>, Error> {
        let mut out = Vec::new();
        for item in self.kv.scan_prefix([keys::MODULE]) {
            let (k, v) = item?;
            let digest = Digest(k[1..].try_into().map_err(|_| corrupt_key("module"))?);
            out.push(records::decode::<ModuleRecord>("module", &v)?.into_info(digest));
        }
        Ok(out)
    }

    /// The bytes of module `digest`.
    pub fn module_bytes(&self, digest: &Digest) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.kv.get(keys::module_bytes(digest))?.map(|v| v.to_vec()))
    }

    /// Every registered task type and the module implementing it.
    pub fn registry(&self) -> Result<Vec<(TaskType, Digest)>, Error> {
        let mut out = Vec::new();
        for item in self.kv.scan_prefix([keys::REGISTRY]) {
            let (k, v) = item?;
            let (name, version): (String, Version) =
                keys::parse_registry(&k).ok_or_else(|| corrupt_key("registry"))?;
            let digest = Digest(v.as_ref().try_into().map_err(|_| corrupt_key("registry"))?);
            out.push((TaskType { name, version }, digest));
        }
        Ok(out)
    }
}

fn corrupt_key(what: &'static str) -> Error {
    Error::Corrupt { what, reason: "malformed key".to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{TaskCounts, TaskId};

    fn job(name: &str) -> Job {
        Job {
            id: JobId::new(),
            name: name.into(),
            root: TaskId::new(),
            cluster: "default".into(),
            counts: TaskCounts { queued: 1, ..TaskCounts::default() },
            canceled: false,
            idempotency_key: None,
            progress: Default::default(),
            traceparent: None,
        }
    }

    #[tokio::test]
    async fn committed_units_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = job("a");
        j.traceparent = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap());
        {
            let store = Store::open(dir.path()).unwrap();
            let mut unit = store.unit();
            unit.insert_job(j.clone());
            let key = TaskKey { job: j.id, task: j.root };
            unit.mark("default", key, Live::Ready);
            store.commit(unit).await.unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.job(j.id).unwrap(), Some(j.clone()));
        let key = TaskKey { job: j.id, task: j.root };
        assert_eq!(store.live_tasks().unwrap(), vec![("default".into(), key, false)]);
    }

    #[tokio::test]
    async fn job_ranges_are_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut ids = Vec::new();
        for name in ["a", "b", "c"] {
            let j = job(name);
            ids.push(j.id);
            let mut unit = store.unit();
            unit.insert_job(j);
            store.commit(unit).await.unwrap();
        }
        let got: Vec<JobId> = store
            .jobs_between(ids[0], JobId::lower_bound_at(u64::MAX >> 16), 10, |_| true)
            .unwrap()
            .iter()
            .map(|j| j.id)
            .collect();
        assert_eq!(got, vec![ids[2], ids[1], ids[0]]);
    }

    /// A unit with a large subtask set, as a list of batches; the parent
    /// and its job are in the last one.
    fn large_unit(store: &Store, j: &Job) -> (TaskKey, Vec<TaskKey>, Vec<Vec<wal::KvWrite>>) {
        let parent = TaskKey { job: j.id, task: j.root };
        let task_type = crate::model::TaskType::parse("Leaf").unwrap();
        let children: Vec<Task> = (0..staged::THRESHOLD + 10)
            .map(|_| TaskKey { job: j.id, task: TaskId::new() })
            .map(|k| Task::new_queued(k, Some(j.root), task_type.clone(), "{}".into(), "default".into(), 0))
            .collect();
        let keys: Vec<TaskKey> = children.iter().map(|c| c.key).collect();
        let mut unit = store.unit();
        unit.insert_job(j.clone());
        unit.insert_subtasks(parent, children);
        for k in &keys {
            unit.mark("default", *k, Live::Ready);
        }
        (parent, keys, unit.into_groups())
    }

    #[tokio::test]
    async fn large_subtask_sets_are_written_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (_, keys, groups) = large_unit(&store, &job("big"));
        assert!(groups.len() > 2, "{} groups", groups.len());
        store.kv.apply(groups).unwrap();
        assert_eq!(store.live_tasks().unwrap().len(), keys.len());
        assert_eq!(store.kv.scan_prefix([keys::STAGED]).count(), 0, "the marker is removed");
    }

    #[tokio::test]
    async fn subtasks_of_a_unit_that_never_committed_are_deleted_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let j = job("crashed");
        {
            let store = Store::open(dir.path()).unwrap();
            let (_, keys, mut groups) = large_unit(&store, &j);
            groups.pop();
            store.kv.apply(groups).unwrap();
            assert_eq!(store.live_tasks().unwrap().len(), keys.len());
            store.flush().await.unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.live_tasks().unwrap(), vec![]);
        assert_eq!(store.kv.scan_prefix([keys::TASK]).count(), 0);
        assert_eq!(store.kv.scan_prefix([keys::STAGED]).count(), 0);
        assert_eq!(store.job(j.id).unwrap(), None, "the job record was in the last batch");
    }
}
