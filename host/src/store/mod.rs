//! The store: the only code that touches sled or the database.
//!
//! Everything is ordered keys and values under fixed one-byte key prefixes
//! (see [`keys`]), read and written through the interface of [`kv`], which
//! two backends implement: [`local`] (a sled tree behind a write-ahead log
//! and an in-memory table, in a data directory; the default) and
//! [`postgres`] (a PostgreSQL database, [`Location::Postgres`]). A [`Unit`]
//! of many records commits as one group made durable with one sync. Records are versioned ([`records`]) and convert to
//! and from the domain model; no domain struct is serialized directly.

mod automations;
mod checkpoint;
mod chunk;
mod copy;
mod edges;
mod fault;
mod keys;
mod kv;
mod local;
mod migrate;
mod modules;
mod outputs;
mod postgres;
mod records;
mod secrets;
mod segment;
mod staged;
mod table;
mod unit;
mod wal;

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use chunk::Chunk;
pub use copy::Copied;
pub use secrets::SealedSecret;
pub use unit::{Live, Unit};

use crate::model::{
    Cluster, Digest, Job, JobId, LogEntry, ModuleInfo, SpanEntry, Task, TaskKey, TaskType, Version,
};
use records::{
    ClusterRecord, DefRecord, ErrorRecord, JobRecord, LogRecord, ModuleRecord, SpanRecord, TaskRecord,
};

/// The layout version written by this code.
/// Version 2: log lines keyed by job and write order (version 1 keyed them
/// by task). Version 3: a task is a status, a definition and error records
/// (version 2 kept one record per task; earlier builds of version 3 also
/// wrote dependents lists, which are no longer read); version 2 data
/// directories are migrated at open (`migrate.rs`), version 1 ones refused.
const SCHEMA_VERSION: u32 = 3;
/// The oldest layout this code migrates.
const MIGRATES_FROM: u32 = 2;

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
    /// A log record in the middle of the log is bad.
    #[error(
        "the write-ahead log {file} has a bad record at byte {offset} and a valid one after it (at byte {next}), \
         so it is corrupt, not torn by a crash; start with `serve --recover-log` to end the log at byte {offset}, \
         losing what was logged after it"
    )]
    CorruptLog {
        /// The log file.
        file: String,
        /// Where the bad record starts.
        offset: u64,
        /// Where a valid record was found after it.
        next: u64,
    },
    /// The store stopped taking writes after a fault (`fault.rs`).
    #[error("the store stopped taking writes: {0}")]
    Unavailable(std::sync::Arc<str>),
    /// The database failed, could not be reached, or did not answer.
    #[error("database: {0}")]
    Postgres(String),
    /// Another host holds the database's store lock.
    #[error(
        "another host holds this store: it is locked by the PostgreSQL session of the host that opened it \
         (stop that host, or wait for its connection to end)"
    )]
    Held,
    /// Another host took the store over since this one opened it.
    #[error("another host took over this store (lease epoch {now}, this host held {held})")]
    Fenced {
        /// The lease's epoch now.
        now: i64,
        /// The epoch this host held.
        held: i64,
    },
    /// The database's schema was migrated by a newer build.
    #[error("the database has schema version {found}, this build knows up to {reads}")]
    DatabaseSchema {
        /// The version found in the database.
        found: i32,
        /// The latest version this build knows.
        reads: i32,
    },
    /// The destination of a copy already holds data.
    #[error("the destination store is not empty: a copy goes into a new store only")]
    NotEmpty,
    /// The data directory was written by an incompatible version.
    #[error("data directory has schema version {found}, this build reads {SCHEMA_VERSION}")]
    Schema {
        /// The version found on disk.
        found: u32,
    },
}

impl Error {
    /// Whether the store cannot take or answer requests for now (its fault
    /// is raised, or its database failed or is held by another host), as
    /// opposed to a bad record: what clients see as 503.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Unavailable(_) | Error::Postgres(_) | Error::Fenced { .. } | Error::Held)
    }
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

/// Where a store keeps its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A data directory on this machine (sled, a write-ahead log, files).
    Dir(std::path::PathBuf),
    /// A PostgreSQL database, by its connection URL.
    Postgres(String),
}

impl Location {
    /// A `postgres://` or `postgresql://` URL names a database; anything
    /// else is a directory.
    pub fn parse(text: &str) -> Location {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Location::Postgres(text.to_owned())
        } else {
            Location::Dir(text.into())
        }
    }

    /// Whether several hosts may share the store (one writes it at a time).
    pub fn is_shared(&self) -> bool {
        matches!(self, Location::Postgres(_))
    }
}

impl std::fmt::Display for Location {
    /// The directory, or the database URL without its password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Dir(dir) => write!(f, "{}", dir.display()),
            Location::Postgres(url) => f.write_str(&postgres::redact(url)),
        }
    }
}

/// The durable state of the host.
#[derive(Clone)]
pub struct Store {
    kv: kv::Kv,
    log_seq: Arc<unit::Sequence>,
    epoch: u32,
}

impl Store {
    /// Opens (or creates) the local store in `dir`, migrating an older
    /// layout. A corrupt log record stops it ([`Error::CorruptLog`]).
    pub fn open(dir: &Path) -> Result<Self, Error> {
        Store::open_at(&Location::Dir(dir.to_path_buf()), false)
    }

    /// Opens (or creates) the store at `location`, migrating an older
    /// layout; with `recover_log`, a corrupt record of a local store's log
    /// ends the log there instead (what follows it is dropped).
    pub fn open_at(location: &Location, recover_log: bool) -> Result<Self, Error> {
        let kv = match location {
            Location::Dir(dir) => local::open(dir, recover_log)?,
            Location::Postgres(url) => postgres::open(url)?,
        };
        Store::open_kv(kv)
    }

    /// [`Store::open_at`], refused at once ([`Error::Held`]) when another
    /// host holds a shared store: a host that serves then starts as its
    /// standby rather than wait.
    pub fn open_unless_held(location: &Location, recover_log: bool) -> Result<Self, Error> {
        match location {
            Location::Dir(_) => Store::open_at(location, recover_log),
            Location::Postgres(url) => Store::open_kv(postgres::open_waiting(url, Some(Duration::ZERO))?),
        }
    }

    /// Opens the store at `location` once no other host holds it: at once
    /// for a local store (whose directory lock refuses a second host), after
    /// the host that leads a database lets it go (however long that takes).
    /// The wait is a series of bounded ones, each on a new connection, so a
    /// connection the database lost meanwhile never stalls it.
    pub fn open_when_free(location: &Location) -> Result<Self, Error> {
        match location {
            Location::Dir(_) => Store::open_at(location, false),
            Location::Postgres(url) => loop {
                match postgres::open(url) {
                    Err(Error::Held) => continue,
                    opened => return Store::open_kv(opened?),
                }
            },
        }
    }

    /// Follows the API address of the host that leads the store at
    /// `location`, if hosts can share it (a database).
    pub fn follow_leader(location: &Location) -> Option<tokio::sync::watch::Receiver<Option<String>>> {
        match location {
            Location::Dir(_) => None,
            Location::Postgres(url) => Some(postgres::follow_leader(url)),
        }
    }

    /// Tells the hosts sharing this store that this one leads it and serves
    /// its API at `address` (blocking; nothing for a local store).
    pub fn announce(&self, address: &str) -> Result<(), Error> {
        self.kv.announce(address)
    }

    /// Lets a shared store go at once: nothing is written through this
    /// handle after it, and its lock is free for the next leader (nothing
    /// for a local store, whose lock goes with the process).
    pub fn release(&self) {
        self.kv.release();
    }

    fn open_kv(kv: kv::Kv) -> Result<Self, Error> {
        let schema = check_schema(&kv)?;
        let discarded = staged::discard_uncommitted(&kv)?;
        if discarded > 0 {
            tracing::info!(subtasks = discarded, "deleted subtasks whose parent's report never committed");
        }
        if schema != SCHEMA_VERSION {
            migrate::to_schema_3(&kv)?;
            // Every converted record is in place before the schema says so.
            kv.checkpoint()?;
        }
        set_schema(&kv)?;
        let epoch = next_epoch(&kv)?;
        Ok(Store { kv, log_seq: Arc::default(), epoch })
    }

    /// The number of this start of the store (1 for the first): every start
    /// has a larger one than any before it, durably.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// Bytes written to durable storage since the host started (appended
    /// to the write-ahead log, or sent to the database).
    pub fn log_bytes(&self) -> u64 {
        self.kv.written_bytes()
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

    /// Writes everything held in memory to its final place (at shutdown, so
    /// the next start of a local store has no log to replay).
    pub fn checkpoint(&self) -> Result<(), Error> {
        self.kv.checkpoint()
    }

    /// Follows the store's fault: `None` until writes stopped, then why.
    pub fn fault(&self) -> tokio::sync::watch::Receiver<Option<std::sync::Arc<str>>> {
        self.kv.fault()
    }
}

/// Counts this start: the stored epoch plus one, logged and synced before
/// anything uses it.
fn next_epoch(kv: &kv::Kv) -> Result<u32, Error> {
    let key = keys::meta("epoch");
    let last = kv.get(&key)?.and_then(|v| v.as_ref().try_into().ok().map(u32::from_be_bytes)).unwrap_or(0);
    let epoch = last.checked_add(1).ok_or(Error::Corrupt { what: "epoch", reason: "exhausted".into() })?;
    kv.apply(vec![vec![(key, Some(epoch.to_be_bytes().to_vec()))]])?;
    kv.sync_blocking()?;
    Ok(epoch)
}

/// The layout of the stored records: this code's, or one it migrates (a
/// new store has this code's).
fn check_schema(kv: &kv::Kv) -> Result<u32, Error> {
    let Some(v) = kv.get(keys::meta("schema"))? else { return Ok(SCHEMA_VERSION) };
    let found = v.as_ref().try_into().map(u32::from_be_bytes).unwrap_or(0);
    if !(MIGRATES_FROM..=SCHEMA_VERSION).contains(&found) {
        return Err(Error::Schema { found });
    }
    Ok(found)
}

fn set_schema(kv: &kv::Kv) -> Result<(), Error> {
    let key = keys::meta("schema");
    if kv.get(&key)?.as_deref() != Some(&SCHEMA_VERSION.to_be_bytes()[..]) {
        kv.apply(vec![vec![(key, Some(SCHEMA_VERSION.to_be_bytes().to_vec()))]])?;
        kv.sync_blocking()?;
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
    async fn write(&self, writes: Vec<kv::KvWrite>) -> Result<(), Error> {
        self.kv.apply(vec![writes])?;
        self.kv.sync().await
    }

    /// The job `id`.
    pub fn job(&self, id: JobId) -> Result<Option<Job>, Error> {
        let Some(bytes) = self.kv.get(keys::job(id))? else { return Ok(None) };
        Ok(Some(records::decode::<JobRecord>("job", &bytes)?.into_job(id)))
    }

    /// Jobs with ids in `[from, to)` that `keep` accepts, newest first (or
    /// oldest first), at most `limit`. A range scan over the time-ordered
    /// job keys.
    pub fn jobs_between(
        &self,
        from: JobId,
        to: JobId,
        newest_first: bool,
        limit: usize,
        keep: impl Fn(&Job) -> bool,
    ) -> Result<Vec<Job>, Error> {
        let mut out = Vec::new();
        let range = (Bound::Included(keys::job(from)), Bound::Excluded(keys::job(to)));
        for item in self.kv.range(range, newest_first) {
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

    /// Every task of `job`, in creation order (subtasks of a commit that is
    /// still being written left out).
    pub fn tasks_of(&self, job: JobId) -> Result<Vec<Task>, Error> {
        self.tasks_page(job, 0, usize::MAX, None)
    }

    /// At most `limit` of the tasks of `job` that `keep` accepts (all
    /// without it) after the first `offset` of those, in creation order, as
    /// [`Store::tasks_of`] lists them; without `keep` the tasks skipped are
    /// not decoded.
    pub fn tasks_page(
        &self,
        job: JobId,
        offset: usize,
        limit: usize,
        keep: Option<&dyn Fn(&Task) -> bool>,
    ) -> Result<Vec<Task>, Error> {
        let staged = staged::staged_of(&self.kv, job)?;
        let mut errors = self.errors_by_task(keys::errors_of(job))?.into_iter().peekable();
        let statuses = self.kv.scan_prefix(keys::tasks_of(job));
        let defs = self.kv.scan_prefix(keys::defs_of(job));
        let (mut out, mut seen) = (Vec::new(), 0);
        for (status, def) in statuses.zip(defs) {
            if out.len() >= limit {
                break;
            }
            let ((sk, sv), (dk, dv)) = (status?, def?);
            let key = keys::task_key_at(&sk, 1).ok_or_else(|| corrupt_key("task"))?;
            if keys::task_key_at(&dk, 1) != Some(key) {
                return Err(Error::Corrupt {
                    what: "task",
                    reason: format!("no definition of task {}", key.task),
                });
            }
            let errors = errors.next_if(|(k, _)| *k == key).map(|(_, e)| e).unwrap_or_default();
            if staged.contains(&key.task) {
                continue;
            }
            if keep.is_none() && seen < offset {
                seen += 1;
                continue;
            }
            let task = assemble(key, &sv, &dv, errors)?;
            if keep.is_some_and(|keep| !keep(&task)) {
                continue;
            }
            seen += 1;
            if seen > offset {
                out.push(task);
            }
        }
        Ok(out)
    }

    /// The errors under `prefix`, grouped by task, in key order.
    fn errors_by_task(
        &self,
        prefix: Vec<u8>,
    ) -> Result<Vec<(TaskKey, Vec<crate::model::AttemptError>)>, Error> {
        let mut out: Vec<(TaskKey, Vec<crate::model::AttemptError>)> = Vec::new();
        for item in self.kv.scan_prefix(prefix) {
            let (k, v) = item?;
            let key = keys::task_key_at(&k, 1).ok_or_else(|| corrupt_key("error"))?;
            let error = records::decode::<ErrorRecord>("error", &v)?.into_error();
            match out.last_mut() {
                Some((last, list)) if *last == key => list.push(error),
                _ => out.push((key, vec![error])),
            }
        }
        Ok(out)
    }

    /// Log lines of `job` after position `after` (a value of the returned
    /// position; `None`: from the start) that `keep` accepts, at most
    /// `limit`, in the order they were written. Also answers the position
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
        let Some(status) = self.kv.get(keys::task(key))? else { return Ok(None) };
        let def = self.kv.get(keys::def(key))?.ok_or_else(|| Error::Corrupt {
            what: "task",
            reason: format!("no definition of task {}", key.task),
        })?;
        let errors =
            self.errors_by_task(keys::errors_of_task(key))?.into_iter().flat_map(|(_, e)| e).collect();
        Ok(Some(assemble(key, &status, &def, errors)?))
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

    /// Every live task (waiting, ready or running) with its cluster and
    /// mark, in key order.
    pub fn live_tasks(&self) -> Result<Vec<(String, TaskKey, Live)>, Error> {
        let mut out = Vec::new();
        for item in self.kv.scan_prefix([keys::LIVE]) {
            let (k, v) = item?;
            let (cluster, key) = keys::parse_live(&k).ok_or_else(|| corrupt_key("live"))?;
            let live = Live::of_value(&v).ok_or_else(|| corrupt_key("live"))?;
            out.push((cluster, key, live));
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

    /// Whether any task of `cluster` is waiting, ready or running.
    pub fn cluster_has_live_tasks(&self, cluster: &str) -> Result<bool, Error> {
        Ok(self.kv.scan_prefix(keys::live_of(cluster)).next().transpose()?.is_some())
    }

    /// Replaces the record of a stored module (its limits), durably.
    pub async fn update_module(&self, info: &ModuleInfo) -> Result<(), Error> {
        self.write(vec![(keys::module(&info.digest), Some(records::encode(&ModuleRecord::from(info))))]).await
    }

    /// Stores a module, its bytes (a file, durable before the record) and
    /// its task types in the registry, durably.
    pub async fn put_module(&self, info: &ModuleInfo, bytes: &[u8]) -> Result<(), Error> {
        let (kv, digest, owned) = (self.kv.clone(), info.digest, bytes.to_vec());
        tokio::task::spawn_blocking(move || kv.write_module(&digest, &owned))
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e)))??;
        let mut writes = vec![(keys::module(&info.digest), Some(records::encode(&ModuleRecord::from(info))))];
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
        self.kv.read_module(digest)
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

/// A task from its status and definition records and its errors.
fn assemble(
    key: TaskKey,
    status: &[u8],
    def: &[u8],
    errors: Vec<crate::model::AttemptError>,
) -> Result<Task, Error> {
    Ok(Task {
        key,
        def: records::decode::<DefRecord>("def", def)?.into_def()?,
        status: records::decode::<TaskRecord>("task", status)?.into_status()?,
        errors,
    })
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
            other_roots: Vec::new(),
            cluster: "default".into(),
            counts: TaskCounts { queued: 1, ..TaskCounts::default() },
            canceled: false,
            idempotency_key: None,
            progress: Default::default(),
            traceparent: None,
            automation: None,
            priority: 0,
            stats: Default::default(),
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
        assert_eq!(store.live_tasks().unwrap(), vec![("default".into(), key, Live::Ready)]);
    }

    #[test]
    fn every_open_has_a_higher_epoch_than_the_one_before() {
        let dir = tempfile::tempdir().unwrap();
        let first = Store::open(dir.path()).unwrap().epoch();
        // Dropped without a checkpoint: the epoch is in the log only.
        let second = Store::open(dir.path()).unwrap().epoch();
        let third = Store::open(dir.path()).unwrap().epoch();
        assert!(first < second && second < third, "{first} {second} {third}");
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
            .jobs_between(ids[0], JobId::lower_bound_at(u64::MAX >> 16), true, 10, |_| true)
            .unwrap()
            .iter()
            .map(|j| j.id)
            .collect();
        assert_eq!(got, vec![ids[2], ids[1], ids[0]]);
    }

    /// The root of `j` with `n` subtasks written ahead in chunks of 1,000
    /// (each a dependent of the one before), as the writer does for a large
    /// set; answers the units to apply in order, the last completing the
    /// set and holding the job.
    fn staged_units(store: &Store, j: &Job, n: usize) -> (Vec<TaskKey>, Vec<Unit>) {
        let parent = TaskKey { job: j.id, task: j.root };
        let task_type = crate::model::TaskType::parse("Leaf").unwrap();
        let keys: Vec<TaskKey> = (0..n).map(|_| TaskKey { job: j.id, task: TaskId::new() }).collect();
        let mut units = Vec::new();
        for (c, part) in keys.chunks(1000).enumerate() {
            let mut chunk = Chunk::default();
            if c == 0 {
                chunk.stage(parent, &keys.iter().map(|k| k.task).collect::<Vec<_>>());
            }
            for k in part {
                let def = crate::model::TaskDef {
                    task_type: task_type.clone(),
                    input: "{}".into(),
                    depends_on: vec![],
                    handles: vec![],
                };
                chunk.add_task(*k, def, crate::model::TaskStatus::queued(Some(j.root), "default".into(), 0));
                chunk.mark("default".into(), *k, Live::Ready);
            }
            let mut unit = store.unit();
            unit.write_ahead(chunk);
            units.push(unit);
        }
        let mut last = store.unit();
        last.insert_job(j.clone());
        last.unstage(parent);
        units.push(last);
        (keys, units)
    }

    #[tokio::test]
    async fn staged_subtasks_are_left_out_until_their_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let j = job("big");
        let (keys, mut units) = staged_units(&store, &j, 2500);
        let last = units.pop().unwrap();
        for unit in units {
            store.apply(unit).unwrap();
        }
        assert_eq!(store.tasks_of(j.id).unwrap(), vec![], "not part of the job before the commit");
        assert!(store.unit().task_keys_of(j.id).unwrap().is_empty());
        store.commit(last).await.unwrap();
        assert_eq!(store.tasks_of(j.id).unwrap().len(), keys.len());
        assert_eq!(store.live_tasks().unwrap().len(), keys.len());
        assert_eq!(store.kv.scan_prefix([keys::STAGED]).count(), 0, "the marker is removed");
        // A page is the same slice of the list, whatever the offset.
        let all: Vec<TaskKey> = store.tasks_of(j.id).unwrap().iter().map(|t| t.key).collect();
        for (offset, limit) in [(0, 50), (1_000, 7), (2_480, 50), (2_500, 10)] {
            let page: Vec<TaskKey> =
                store.tasks_page(j.id, offset, limit, None).unwrap().iter().map(|t| t.key).collect();
            let expected: Vec<TaskKey> = all.iter().skip(offset).take(limit).copied().collect();
            assert_eq!(page, expected, "offset {offset}, limit {limit}");
        }
        // With a filter, offset and limit count the tasks it keeps.
        let every_third = |t: &Task| all.iter().position(|k| *k == t.key).is_some_and(|i| i % 3 == 0);
        let page: Vec<TaskKey> =
            store.tasks_page(j.id, 10, 5, Some(&every_third)).unwrap().iter().map(|t| t.key).collect();
        let expected: Vec<TaskKey> = all.iter().step_by(3).skip(10).take(5).copied().collect();
        assert_eq!(page, expected);
    }

    #[tokio::test]
    async fn subtasks_of_a_unit_that_never_committed_are_deleted_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let j = job("crashed");
        {
            let store = Store::open(dir.path()).unwrap();
            let (keys, mut units) = staged_units(&store, &j, 2500);
            units.pop();
            for unit in units {
                store.apply(unit).unwrap();
            }
            assert_eq!(store.live_tasks().unwrap().len(), keys.len());
            store.flush().await.unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.live_tasks().unwrap(), vec![]);
        for prefix in [keys::TASK, keys::DEF, keys::DEPENDENTS, keys::STAGED] {
            assert_eq!(store.kv.scan_prefix([prefix]).count(), 0, "prefix {}", prefix as char);
        }
        assert_eq!(store.job(j.id).unwrap(), None, "the job record was in the last batch");
    }
}
